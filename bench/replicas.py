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

from bench.run import (
    OWNERS,
    READY,
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


def measure() -> dict[tuple[str, str], Load]:
    """Each load on one worker against the primary alone, then with the standby."""
    loads: dict[tuple[str, str], Load] = {}
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


def _measure_target(loads: dict[tuple[str, str], Load], target: str, env: dict[str, str]) -> None:
    token = issue_token(SECRET, "healthai", "bench", service=True, ttl=3600)
    with server(uvicorn("healthai.app:app", 1), env, READY) as (base, _):
        position = _position_of_a_write(base, token)
        for scenario, script, scenario_env in LOADS:
            run_env = {**scenario_env, "BENCH_TOKEN": token}
            if "position" in scenario:
                if position is None:
                    continue  # no replica: writes carry no position
                run_env["BENCH_POSITION"] = position
            wrk(base, script, run_env, seconds=1)  # warm up
            loads[(scenario, target)] = load = wrk(base, script, run_env)
            print(f"  {scenario:40} {target:18} {load.rps:8.0f} req/s", flush=True)


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


def render(loads: dict[tuple[str, str], Load]) -> list[str]:
    """The scenario's table, for bench/RESULTS.md."""
    lines = [
        "## Reads on a streaming replica (one worker, replica on the same machine)",
        "",
        "| scenario | target | req/s | p50 ms | p99 ms | vs primary only |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for scenario, _, _ in LOADS:
        alone = loads.get((scenario, "primary only"))
        for target in ("primary only", "with one replica"):
            load = loads.get((scenario, target))
            if load is None:
                continue
            errors = f" ({load.errors} errors)" if load.errors else ""
            base = alone or loads.get(("balance", "primary only"))
            ratio = f"{load.rps / base.rps:.0%}" if base and target != "primary only" else ""
            lines.append(
                f"| {scenario} | {target}{errors} | {load.rps:,.0f} | {load.p50:.1f} | "
                f"{load.p99:.1f} | {ratio} |"
            )
    return lines


if __name__ == "__main__":
    print("\n".join(render(measure())))
    sys.exit(0)
