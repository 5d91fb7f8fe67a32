"""The growth scenario (`make bench`, or alone: `python -m bench.growth`): the createEntry
and balance loads of bench/run.py on a ledger that already holds 5,000,000 entries of
1,000,000 owners, against one of 100,000 entries (the same shape: five entries an owner),
in the same run; and a history page 50,000 entries deep (its cursor's page) against the
first page of the same owner. Both databases are filled by SQL in bulk, with balances and
balanceAfter consistent, as the ledger would have written them.

Environment: BENCH_DATABASE_URL (a server to use instead of an embedded one),
BENCH_GROWTH_ENTRIES (default 5,000,000), BENCH_SECONDS.
"""

import os
import sys
from datetime import datetime

import httpx2 as httpx

from bench.run import (
    READY,
    SECRET,
    Load,
    app_env,
    bench_database,
    server,
    sql,
    uvicorn,
    wrk,
)
from graphql_ledger.auth import issue_token
from graphql_ledger.history import HistoryQuery
from graphql_ledger.ledger import Entry
from graphql_ledger.storage import migrate
from healthai.operations import HealthAIOperation

__all__ = ["measure"]

BIG = int(os.environ.get("BENCH_GROWTH_ENTRIES", "5000000"))
SMALL = 100_000
PER_OWNER = 5
DEEP = 50_000  # how deep the paged history page is
DEEP_OWNER_ENTRIES = DEEP + 10_000  # the deep owner's: pages below the deep one exist
LOADED_OWNERS = 10_000  # the loads' owners: owner-1 ... owner-10000, in both ledgers

# Every owner gets PER_OWNER credits of 10, a second apart, in one statement per table.
FILL_ENTRIES = """
    INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on)
    SELECT 'owner-' || (g / {per}), 'CREDIT_ADD', 10, 10 * (g % {per} + 1), 'seed-' || g,
           timestamptz '2026-01-01' + make_interval(secs => g % {per})
      FROM generate_series({per}, {total} + {per} - 1) g
"""
FILL_BALANCES = """
    INSERT INTO balances (owner_id, balance, last_updated, version)
    SELECT 'owner-' || o, 10 * {per}, timestamptz '2026-01-01' + make_interval(secs => {per} - 1),
           {per}
      FROM generate_series(1, {owners}) o
"""
FILL_DEEP = """
    INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on)
    SELECT 'deep-owner', 'CREDIT_ADD', 10, 10 * g, 'deep-' || g,
           timestamptz '2026-01-01' + make_interval(secs => g)
      FROM generate_series(1, {entries}) g;
    INSERT INTO balances (owner_id, balance, last_updated, version)
    VALUES ('deep-owner', 10 * {entries},
            timestamptz '2026-01-01' + make_interval(secs => {entries}), {entries})
"""
# The newest entry below the deep page's cursor: DEEP entries from the newest.
DEEP_CURSOR = """
    SELECT created_on, id FROM entries WHERE owner_id = 'deep-owner'
     ORDER BY created_on DESC, id DESC OFFSET {deep} - 1 LIMIT 1
"""


def fill(url: str, entries: int) -> str:
    """A ledger of `entries` entries (PER_OWNER an owner) and the deep owner; answers the
    cursor of the page DEEP entries down that owner's history."""
    import asyncio

    asyncio.run(migrate(url, HealthAIOperation))
    owners = entries // PER_OWNER
    sql(url, FILL_ENTRIES.format(per=PER_OWNER, total=entries))
    sql(url, FILL_BALANCES.format(per=PER_OWNER, owners=owners))
    for statement in FILL_DEEP.format(entries=DEEP_OWNER_ENTRIES).split(";"):
        sql(url, statement)
    # Settled as a ledger that grew over time would be: visibility known, statistics
    # current, and the bulk load's dirty pages written, not flushed during the loads.
    sql(url, "VACUUM (FREEZE, ANALYZE)")
    sql(url, "CHECKPOINT")
    [(created_on, entry_id)] = sql(url, DEEP_CURSOR.format(deep=DEEP))
    assert isinstance(created_on, datetime) and isinstance(entry_id, int)
    shown = Entry(entry_id, "deep-owner", HealthAIOperation.CREDIT_ADD, 10, 0, "", created_on)
    return HistoryQuery("deep-owner").cursor(shown)


def check_pages(base: str, token: str, cursor: str) -> None:
    """Both history pages hold 20 entries: a load of empty pages would be no figure (the
    first version's cursor was the owner's oldest entry, and its deep page empty)."""
    query = (
        "query($o: ID!, $a: String) { entries(ownerId: $o, first: 20, after: $a)"
        " { edges { node { id } } } }"
    )
    for variables in ({"o": "deep-owner"}, {"o": "deep-owner", "a": cursor}):
        answer = httpx.post(
            f"{base}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert len(answer["data"]["entries"]["edges"]) == 20, answer


def loads_on(url: str, cursor: str) -> dict[str, Load]:
    token = issue_token(SECRET, "healthai", "bench", service=True, ttl=3600)
    found: dict[str, Load] = {}
    plans = {
        "createEntry, 10,000 owners": (
            "create_entry.lua",
            {"BENCH_OWNERS": str(LOADED_OWNERS)},
        ),
        "balance": ("balance.lua", {"BENCH_OWNERS": str(LOADED_OWNERS), "BENCH_BATCH": "1"}),
        "history, first page": ("history.lua", {"BENCH_OWNER": "deep-owner"}),
        f"history, a page {DEEP:,} entries deep": (
            "history.lua",
            {"BENCH_OWNER": "deep-owner", "BENCH_AFTER": cursor},
        ),
    }
    with server(uvicorn("healthai.app:app", 2), app_env(url, 2), READY) as (base, _):
        check_pages(base, token, cursor)
        for title, (script, env) in plans.items():
            env = {**env, "BENCH_TOKEN": token}
            wrk(base, script, env, seconds=1)
            found[title] = wrk(base, script, env)
            print(f"  {title:40} {found[title].rps:8.0f} req/s", flush=True)
    return found


def measure() -> list[str]:
    """The growth figures, as lines of bench/RESULTS.md."""
    figures: dict[str, dict[str, Load]] = {}
    for label, entries in ((f"{SMALL:,} entries", SMALL), (f"{BIG:,} entries", BIG)):
        with bench_database() as url:
            print(f"filling a ledger of {entries:,} entries", flush=True)
            cursor = fill(url, entries)
            size = sql(url, "SELECT pg_size_pretty(pg_database_size(current_database()))")
            print(f"  {size[0][0]} on disk", flush=True)
            figures[label] = loads_on(url, cursor)
    small, big = figures.values()
    lines = [
        f"## Growth: the same loads on {BIG:,} entries",
        "",
        f"GraphQL, 2 workers; the ledgers hold {SMALL:,} and {BIG:,} entries, five an owner, "
        f"plus one owner of {DEEP_OWNER_ENTRIES:,} entries whose history is paged.",
        "",
        f"| load | {SMALL:,} entries, req/s | {BIG:,} entries, req/s | change | p99 ms (small, "
        "big) |",
        "|---|---:|---:|---:|---:|",
    ]
    for title in small:
        a, b = small[title], big[title]
        lines.append(
            f"| {title} | {a.rps:,.0f} | {b.rps:,.0f} | {b.rps / a.rps - 1:+.0%} | "
            f"{a.p99:.1f}, {b.p99:.1f} |"
        )
    first, deep = "history, first page", f"history, a page {DEEP:,} entries deep"
    lines += [
        "",
        f"- Target: the {BIG:,}-entry figures within 10% of the {SMALL:,}-entry ones: "
        + ", ".join(
            f"{title} {big[title].rps / small[title].rps - 1:+.0%} "
            f"({'met' if big[title].rps >= 0.9 * small[title].rps else 'NOT met'})"
            for title in small
        )
        + ".",
        f"- The page {DEEP:,} entries deep against the first page, on {BIG:,} entries: "
        f"{big[deep].rps / big[first].rps:.0%} of its req/s.",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(measure()))
    sys.exit(0)
