"""The expiry backlog (`make bench`, or alone: `python -m bench.expiry`): 100,000 grants of
10,000 owners that expire at once, worked off by the expiry pass (ledger_expire_grants(),
the batches every server process runs) while a writer keeps spending for other owners of
the same database. Reports how long the backlog took, how long one batch transaction held
its owners' locks (the longest a write of one of them could wait), and the writer's
latency meanwhile against its latency with no backlog.

Environment: BENCH_DATABASE_URL (a server to use instead of an embedded one),
BENCH_EXPIRY_GRANTS (default 100,000).
"""

import asyncio
import os
import statistics
import time
import uuid

import asyncpg

from graphql_ledger.expiry import BATCH
from graphql_ledger.storage import migrate
from healthai.operations import HealthAIOperation
from tests.support import PrivatePostgres

__all__ = ["measure"]

GRANTS = int(os.environ.get("BENCH_EXPIRY_GRANTS", "100000"))
OWNERS = 10_000
LEAD_SECONDS = 5  # the grants expire this long after the first is written, plus the writing

# One statement writes every grant: each owner gets GRANTS / OWNERS credits of 10 that all
# expire at the same instant, and spends 3 of them.
GRANT_ALL = """
    SELECT count(*) FROM (
        SELECT create_entry('owner-' || (i % $2), 'CREDIT_ADD', 'grant-' || i, 1, NULL, $3)
          FROM generate_series(1, $1) i) c
"""
SPEND_SOME = """
    SELECT count(*) FROM (
        SELECT create_entry('owner-' || i, 'CREDIT_SPEND', 'spend-' || i, 3)
          FROM generate_series(0, $1 - 1) i) c
"""


async def _writer(url: str, stop: asyncio.Event, latencies: list[float]) -> None:
    """Spends and tops up owners of their own, one write at a time, until stopped."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "SELECT create_entry('writer', 'CREDIT_ADD', 'writer-funds', 100000)"
        )
        n = 0
        while not stop.is_set():
            n += 1
            started = time.perf_counter()
            await connection.execute(
                "SELECT create_entry('writer', 'CREDIT_SPEND', $1)", f"writer-{uuid.uuid4()}"
            )
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        await connection.close()


async def _run(url: str) -> dict[str, float]:
    connection = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        expires = await connection.fetchval(
            "SELECT clock_timestamp() + make_interval(secs => $1)",
            LEAD_SECONDS + GRANTS / 4000,  # time enough to write them all first
        )
        await connection.fetchval(GRANT_ALL, GRANTS, OWNERS, expires)
        await connection.fetchval(SPEND_SOME, OWNERS)
        written = time.perf_counter() - started

        quiet: list[float] = []
        stop = asyncio.Event()
        writer = asyncio.create_task(_writer(url, stop, quiet))
        await asyncio.sleep(2)
        stop.set()
        await writer

        while await connection.fetchval("SELECT clock_timestamp() <= $1", expires):
            await asyncio.sleep(0.1)
        busy: list[float] = []
        stop = asyncio.Event()
        writer = asyncio.create_task(_writer(url, stop, busy))
        batches: list[float] = []
        booked = 0
        began = time.perf_counter()
        while True:
            batch_started = time.perf_counter()
            done = await connection.fetchval("SELECT ledger_expire_grants($1)", BATCH)
            batches.append((time.perf_counter() - batch_started) * 1000)
            booked += done
            if done < BATCH:
                break
        took = time.perf_counter() - began
        stop.set()
        await writer
        left = await connection.fetchval("SELECT count(*) FROM grants WHERE remaining > 0")
        assert booked == GRANTS and left == 0, (booked, left)
    finally:
        await connection.close()
    return {
        "written_s": written,
        "took_s": took,
        "batches": len(batches),
        "batch_p50_ms": statistics.median(batches),
        "batch_max_ms": max(batches),
        "quiet_p50_ms": statistics.median(quiet),
        "quiet_p99_ms": statistics.quantiles(quiet, n=100)[98],
        "busy_p50_ms": statistics.median(busy),
        "busy_p99_ms": statistics.quantiles(busy, n=100)[98],
        "busy_max_ms": max(busy),
    }


def driver_url(url: str) -> str:
    """The URL for asyncpg itself (no SQLAlchemy driver name)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def measure() -> list[str]:
    """The backlog's figures, as lines of bench/RESULTS.md."""
    configured = os.environ.get("BENCH_DATABASE_URL")
    embedded = None if configured else PrivatePostgres()
    name = f"ledger_expiry_{uuid.uuid4().hex[:8]}"
    try:
        url = embedded.url(name) if embedded else configured.rsplit("/", 1)[0] + "/" + name
        asyncio.run(migrate(url, HealthAIOperation))
        figures = asyncio.run(_run(driver_url(url)))
    finally:
        if embedded is not None:
            embedded.close()
    return [
        f"- {GRANTS:,} grants of {OWNERS:,} owners expiring at once: booked in"
        f" {figures['took_s']:.1f} s, {figures['batches']:,} batches of {BATCH} EXPIRY entries,"
        f" each one transaction holding its owners' locks {figures['batch_p50_ms']:.1f} ms"
        f" (median), {figures['batch_max_ms']:.1f} ms at most (writing them took"
        f" {figures['written_s']:.1f} s).",
        f"- A writer of another owner meanwhile: {figures['busy_p50_ms']:.2f} ms median,"
        f" {figures['busy_p99_ms']:.2f} ms p99, {figures['busy_max_ms']:.1f} ms at most;"
        f" with no backlog {figures['quiet_p50_ms']:.2f} ms median,"
        f" {figures['quiet_p99_ms']:.2f} ms p99.",
    ]


if __name__ == "__main__":
    print("\n".join(measure()))
