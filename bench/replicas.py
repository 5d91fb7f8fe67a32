"""The read scenario with one streaming replica (`make bench`, or alone:
`python -m bench.replicas`): balance reads and createEntry on one app worker, without a
replica and with one, in the same run, on a primary and a hot standby of the run's own.

On one machine the replica shares the primary's cores, so this measures what routing costs
(the replica's checks, a write's extra round trip for its position), not what a replica on
its own machine gains; bench/README.md says how to read it.
"""

import sys
import uuid

import httpx2 as httpx
import psutil

from bench.run import (
    OWNERS,
    READY,
    SECONDS,
    SECRET,
    Load,
    app_env,
    prepare,
    server,
    uvicorn,
    wrk,
)
from graphql_ledger.auth import issue_token
from tests.support import PrivatePostgres, StreamingStandby

__all__ = ["measure", "render"]

# (scenario, wrk script, its environment); the position is filled in once known.
LOADS = [
    ("balance", "balance.lua", {"BENCH_BATCH": "1"}),
    ("balance, each read carrying a position", "balance.lua", {"BENCH_BATCH": "1"}),
    ("createEntry, 10,000 owners", "create_entry.lua", {"BENCH_OWNERS": str(OWNERS)}),
]


Loads = dict[tuple[str, str], tuple[Load, float]]  # (scenario, target): load, CPU µs/request


def measure() -> Loads:
    """Each load on one worker against the primary alone, then with the standby: wrk's
    figures, and the app's CPU per request (steadier than req/s on a shared machine)."""
    loads: Loads = {}
    primary = PrivatePostgres()
    try:
        url = primary.url("ledger_bench")
        prepare(url)
        standby = StreamingStandby(primary)
        try:
            for target, extra in (
                ("primary only", {}),
                ("with one replica", {"HEALTHAI_READ_DATABASE_URL": standby.url("ledger_bench")}),
            ):
                _measure_target(loads, target, {**app_env(url, 1), **extra})
        finally:
            standby.close()
    finally:
        primary.close()
    return loads


def _cpu_seconds(root: psutil.Process) -> float:
    processes = [root, *root.children(recursive=True)]
    return sum(sum(p.cpu_times()[:2]) for p in processes if p.is_running())


def _measure_target(loads: Loads, target: str, env: dict[str, str]) -> None:
    token = issue_token(SECRET, "healthai", "bench", service=True, ttl=3600)
    with server(uvicorn("healthai.app:app", 1), env, READY) as (base, root):
        position = _position_of_a_write(base, token)
        for scenario, script, scenario_env in LOADS:
            run_env = {**scenario_env, "BENCH_TOKEN": token}
            if "position" in scenario:
                if position is None:
                    continue  # no replica: writes carry no position
                run_env["BENCH_POSITION"] = position
            wrk(base, script, run_env, seconds=3)  # warm up (the standby's cache too)
            before = _cpu_seconds(root)
            load = wrk(base, script, run_env)
            cpu = (_cpu_seconds(root) - before) / (load.rps * SECONDS) * 1e6
            loads[(scenario, target)] = load, cpu
            print(f"  {scenario:40} {target:18} {load.rps:8.0f} req/s {cpu:6.0f} µs", flush=True)


def _position_of_a_write(base: str, token: str) -> str | None:
    mutation = (
        'mutation { createEntry(input: {ownerId: "owner-1", operation: CREDIT_ADD, '
        f'nonce: "{uuid.uuid4()}"}}) {{ __typename }} }}'
    )
    response = httpx.post(
        f"{base}/graphql",
        json={"query": mutation},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.headers.get("X-Ledger-Position")


def render(loads: Loads) -> list[str]:
    """The scenario's table, for bench/RESULTS.md."""
    lines = [
        "## Reads on a streaming replica (one worker, replica on the same machine)",
        "",
        "| scenario | target | req/s | p50 ms | p99 ms | vs primary only | app CPU µs/request |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for scenario, _, _ in LOADS:
        alone = loads.get((scenario, "primary only")) or loads.get(("balance", "primary only"))
        for target in ("primary only", "with one replica"):
            if (scenario, target) not in loads:
                continue
            load, cpu = loads[(scenario, target)]
            errors = f" ({load.errors} errors)" if load.errors else ""
            ratio = f"{load.rps / alone[0].rps:.0%}" if alone and target != "primary only" else ""
            lines.append(
                f"| {scenario} | {target}{errors} | {load.rps:,.0f} | {load.p50:.1f} | "
                f"{load.p99:.1f} | {ratio} | {cpu:,.0f} |"
            )
    return lines


if __name__ == "__main__":
    print("\n".join(render(measure())))
    sys.exit(0)
