"""The audit behind `graphql-ledger verify`: proves, owner by owner, that an app's books
balance, from what the database holds and nothing else.

For every owner it checks that
- the stored balance equals the sum of the owner's entry amounts, and is not negative;
- balanceAfter runs through the owner's entries in order (createdOn, then id: the order
  of the history): each is the previous one plus the entry's amount, and none is
  negative; ids grow along that order too, as they are drawn under the owner's lock;
- the newest entry's balanceAfter is the stored balance and its createdOn the stored
  lastUpdated;
- every entry's amount is its operation's amount in force when it was written
  (operation_rules keeps each amount an operation has had, and since when);
- no balance exists without entries, and no entries without a balance.

PostgreSQL does the work in one pass over `entries`, in the order of its primary key (a
window over each owner's entries, then one row per owner), and sends back only the owners
that break a rule; the command reads those through a cursor, a few at a time, so its memory
does not grow with the ledger. The audit runs in one REPEATABLE READ snapshot: a ledger
taking writes meanwhile is checked as of one instant.
"""

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.pool import NullPool

from graphql_ledger.storage.database import create_engine, display_url, reporting_unreachable
from graphql_ledger.storage.migrations import head_revision

__all__ = ["AuditSummary", "BrokenOwner", "NotMigrated", "audit"]

# One row per owner that breaks a rule. Rules are joined by the instant they took effect
# and the next one's (valid_to); an entry with no rule in force gets a NULL rule amount.
BROKEN_OWNERS = """
    WITH rules AS (
        SELECT operation, amount, valid_from,
               coalesce(lead(valid_from) OVER (PARTITION BY operation ORDER BY valid_from),
                        'infinity') AS valid_to
          FROM operation_rules
    ), walked AS (
        SELECT e.owner_id, e.id, e.operation, e.amount, e.balance_after, e.created_on,
               sum(e.amount) OVER w AS running,
               lag(e.id) OVER w AS previous_id,
               lead(e.id) OVER w IS NULL AS newest,
               row_number() OVER w AS position
          FROM entries e
        WINDOW w AS (PARTITION BY e.owner_id ORDER BY e.created_on, e.id)
    ), owners AS (
        SELECT w.owner_id,
               count(*) AS entries,
               sum(w.amount) AS total,
               max(w.created_on) AS newest_created_on,
               max(w.balance_after) FILTER (WHERE w.newest) AS newest_balance_after,
               count(*) FILTER (WHERE w.balance_after <> w.running) AS broken_runs,
               min(ARRAY[w.position, w.id]) FILTER (WHERE w.balance_after <> w.running)
                   AS first_broken_run,
               count(*) FILTER (WHERE w.balance_after < 0) AS negative_runs,
               min(ARRAY[w.position, w.id]) FILTER (WHERE w.balance_after < 0)
                   AS first_negative_run,
               count(*) FILTER (WHERE w.id < w.previous_id) AS time_travels,
               min(ARRAY[w.position, w.id]) FILTER (WHERE w.id < w.previous_id)
                   AS first_time_travel,
               count(*) FILTER (WHERE r.amount IS DISTINCT FROM w.amount) AS wrong_amounts,
               min(ARRAY[w.position, w.id]) FILTER (WHERE r.amount IS DISTINCT FROM w.amount)
                   AS first_wrong_amount
          FROM walked w
          LEFT JOIN rules r ON r.operation = w.operation
               AND w.created_on >= r.valid_from AND w.created_on < r.valid_to
         GROUP BY w.owner_id
    )
    SELECT coalesce(o.owner_id, b.owner_id) AS owner_id, o.entries, o.total,
           o.newest_created_on, o.newest_balance_after, o.broken_runs, o.first_broken_run,
           o.negative_runs, o.first_negative_run, o.time_travels, o.first_time_travel,
           o.wrong_amounts, o.first_wrong_amount, b.owner_id IS NOT NULL AS has_balance,
           b.balance, b.last_updated
      FROM owners o
      FULL JOIN balances b ON b.owner_id = o.owner_id
     WHERE o.owner_id IS NULL OR b.owner_id IS NULL
        OR b.balance <> o.total OR b.balance < 0
        OR b.balance <> o.newest_balance_after
        OR b.last_updated <> o.newest_created_on
        OR o.broken_runs > 0 OR o.negative_runs > 0 OR o.time_travels > 0
        OR o.wrong_amounts > 0
     ORDER BY 1
"""

# What was checked, in the same snapshot.
TOTALS = """
    SELECT (SELECT count(*) FROM entries) AS entries,
           (SELECT count(*) FROM (SELECT owner_id FROM balances
                                  UNION SELECT owner_id FROM entries) o) AS owners
"""


class NotMigrated(Exception):
    """The database is not at the revision this code audits."""


@dataclass(frozen=True)
class BrokenOwner:
    """An owner whose books do not balance, and each rule they break, in words."""

    owner_id: str
    problems: tuple[str, ...]

    def __str__(self) -> str:
        return f"owner {self.owner_id!r}: " + "; ".join(self.problems)


@dataclass(frozen=True)
class AuditSummary:
    entries: int
    owners: int
    broken: int
    seconds: float

    @property
    def balanced(self) -> bool:
        return self.broken == 0

    def __str__(self) -> str:
        verdict = "the books balance" if self.balanced else f"{_count(self.broken, 'owner')} broken"
        return (
            f"{verdict}: {_count(self.entries, 'entry', 'entries')} of"
            f" {_count(self.owners, 'owner')} checked in {self.seconds:.1f} s"
        )


async def audit(url: str, report: Callable[[BrokenOwner], None]) -> AuditSummary:
    """Audits the ledger at `url`, calling `report` with each broken owner as it is found
    (ordered by owner id); returns what was checked."""
    started = time.perf_counter()
    engine = create_engine(url, poolclass=NullPool, timeout=30)
    broken = 0
    try:
        opened = engine.connect()
        with reporting_unreachable(url):
            await opened.start()
        try:
            pooled = await opened.get_raw_connection()
            connection: asyncpg.Connection = pooled.driver_connection
            async with connection.transaction(isolation="repeatable_read", readonly=True):
                await _check_revision(connection, url)
                async for owner in _broken_owners(connection):
                    broken += 1
                    report(owner)
                totals = await connection.fetchrow(TOTALS)
        finally:
            await opened.close()
    finally:
        await engine.dispose()
    return AuditSummary(totals["entries"], totals["owners"], broken, time.perf_counter() - started)


async def _check_revision(connection: asyncpg.Connection, url: str) -> None:
    revision = None
    if await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
        revision = await connection.fetchval("SELECT version_num FROM alembic_version")
    if revision != head_revision():
        raise NotMigrated(
            f"{display_url(url)} is at revision {revision}, not {head_revision()}:"
            " run `graphql-ledger migrate` first"
        )


async def _broken_owners(connection: asyncpg.Connection) -> AsyncIterator[BrokenOwner]:
    async for row in connection.cursor(BROKEN_OWNERS, prefetch=100):
        yield BrokenOwner(row["owner_id"], tuple(_problems(row)))


def _problems(row: Any) -> list[str]:
    """The rules one owner's row breaks, each in words."""
    if not row["has_balance"]:
        return [f"{_entries(row['entries'])} but no balance"]
    if row["entries"] is None:
        return [f"a balance of {row['balance']} but no entries"]
    problems = []
    if row["balance"] != row["total"]:
        problems.append(f"balance {row['balance']} but its entries sum to {row['total']}")
    if row["balance"] < 0:
        problems.append(f"negative balance {row['balance']}")
    if row["balance"] != row["newest_balance_after"]:
        problems.append(
            f"balance {row['balance']} but the newest entry's balanceAfter is"
            f" {row['newest_balance_after']}"
        )
    if row["last_updated"] != row["newest_created_on"]:
        problems.append(
            f"lastUpdated {row['last_updated'].isoformat()} but the newest entry was"
            f" created on {row['newest_created_on'].isoformat()}"
        )
    for count, first, what in (
        ("broken_runs", "first_broken_run", "a balanceAfter that is not the running sum"),
        ("negative_runs", "first_negative_run", "a negative balanceAfter"),
        ("time_travels", "first_time_travel", "an id lower than the entry's before it"),
        ("wrong_amounts", "first_wrong_amount", "an amount not its operation's at the time"),
    ):
        if row[count]:
            position, entry_id = row[first]
            problems.append(
                f"{_entries(row[count])} with {what} (the first: entry {position} of its"
                f" history, id {entry_id})"
            )
    return problems


def _count(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def _entries(count: int) -> str:
    return _count(count, "entry", "entries")
