"""The audit behind `graphql-ledger verify`: proves, owner by owner, that an app's books
balance, from what the database holds and nothing else.

For every owner it checks that
- the stored balance equals the sum of the owner's entry amounts, and is not negative;
- balanceAfter runs through the owner's entries in order (createdOn, then id: the order
  of the history): each is the previous one plus the entry's amount, and none is
  negative; ids grow along that order too, as they are drawn under the owner's lock;
- the newest entry's balanceAfter is the stored balance and its createdOn the stored
  lastUpdated;
- every entry's amount is its operation's amount in force when it was written, times its
  quantity (operation_rules keeps each amount an operation has had, and since when);
- every CAPTURE is within its hold (the hold's amount per unit, at most its units, the same
  operation and nonce, the hold CAPTURED by it), and every CAPTURED hold has its capture;
- every REFUND reverses an OPERATION or CAPTURE entry of the owner (the opposite amount, the
  same operation and quantity); at most one capture per hold and one refund per entry are
  unique indexes;
- the stored held is what the owner's OPEN holds reserve, and not above the balance;
- every grant (an entry whose credits expire) expires when its rule's lifetime says (from
  its createdOn), unless a service chose expiresAt; an entry of an operation whose rule has
  a lifetime is a grant; every EXPIRY books out a grant of the owner, of its operation, at
  or after its expiresAt;
- each grant's consumption (what entries took, net of what refunds gave back) plus its
  expiries plus its remaining plus what OPEN holds hold of it is its amount, no credit was
  taken from it at or after its expiresAt, and the stored expiring is the sum of the
  owner's grants' remaining;
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
# What each entry's amount must be: an operation's, its rule's amount times its quantity; a
# capture's, its hold's amount per unit times its quantity, for a hold CAPTURED by it, of
# the same operation and nonce and at least that many units; a refund's, the opposite of
# the OPERATION or CAPTURE entry of the same owner, operation and quantity it names. Either
# found by its key, only for the few entries that are captures or refunds.
BROKEN_OWNERS = """
    WITH rules AS (
        SELECT operation, amount, lifetime, valid_from,
               coalesce(lead(valid_from) OVER (PARTITION BY operation ORDER BY valid_from),
                        'infinity') AS valid_to
          FROM operation_rules
    ), walked AS (
        SELECT e.owner_id, e.id, e.operation, e.amount, e.balance_after, e.created_on,
               e.kind, coalesce(e.quantity, 1) AS quantity, e.hold_id, e.refund_of, e.nonce,
               e.expires_at, e.expiry_of,
               sum(e.amount) OVER w AS running,
               lag(e.id) OVER w AS previous_id,
               lead(e.id) OVER w IS NULL AS newest,
               row_number() OVER w AS position
          FROM entries e
        WINDOW w AS (PARTITION BY e.owner_id ORDER BY e.created_on, e.id)
    ), checked AS (
        SELECT w.*,
               CASE w.kind
                   WHEN 'capture' THEN (
                       SELECT h.amount / h.quantity * w.quantity FROM holds h
                        WHERE h.owner_id = w.owner_id AND h.id = w.hold_id
                          AND h.status = 'captured' AND h.capture_id = w.id
                          AND h.operation = w.operation AND h.nonce = w.nonce
                          AND w.quantity <= h.quantity)
                   WHEN 'refund' THEN (
                       SELECT -o.amount FROM entries o
                        WHERE o.id = w.refund_of AND o.owner_id = w.owner_id
                          AND o.operation = w.operation
                          AND coalesce(o.quantity, 1) = w.quantity
                          AND coalesce(o.kind, 'operation') IN ('operation', 'capture'))
                   WHEN 'expiry' THEN NULL
                   ELSE r.amount * w.quantity
               END AS expected_amount,
               CASE WHEN w.kind IS NULL AND w.amount > 0 AND w.expires_at IS NULL
                        THEN r.lifetime IS NULL
                    WHEN w.kind IS NULL AND w.amount > 0 THEN EXISTS (
                        SELECT FROM grants g
                         WHERE g.owner_id = w.owner_id AND g.entry_id = w.id
                           AND (g.given OR w.expires_at = w.created_on + r.lifetime))
                    WHEN w.kind = 'expiry' THEN w.amount < 0 AND EXISTS (
                        SELECT FROM grants g
                         WHERE g.owner_id = w.owner_id AND g.entry_id = w.expiry_of
                           AND g.operation = w.operation AND w.created_on >= g.expires_at)
                    ELSE w.expires_at IS NULL
               END AS expiry_ok
          FROM walked w
          LEFT JOIN rules r ON r.operation = w.operation AND w.kind IS NULL
               AND w.created_on >= r.valid_from AND w.created_on < r.valid_to
    ), held AS (
        SELECT h.owner_id,
               coalesce(sum(-h.amount) FILTER (WHERE h.status = 'open'), 0) AS open_held,
               count(*) FILTER (WHERE h.status = 'captured' AND NOT EXISTS (
                   SELECT FROM entries e WHERE e.owner_id = h.owner_id AND e.hold_id = h.id))
                   AS uncaptured
          FROM holds h
         GROUP BY h.owner_id
    ), grant_books AS (
        SELECT g.owner_id, sum(g.remaining) AS remaining,
               count(*) FILTER (WHERE e.id IS NULL OR e.amount <> g.amount
                   OR e.operation <> g.operation OR e.expires_at IS DISTINCT FROM g.expires_at
                   OR g.amount <> coalesce(u.used, 0) + coalesce(x.expired, 0) + g.remaining
                                  + coalesce(o.held, 0)) AS broken_grants,
               min(g.entry_id) FILTER (WHERE e.id IS NULL OR e.amount <> g.amount
                   OR e.operation <> g.operation OR e.expires_at IS DISTINCT FROM g.expires_at
                   OR g.amount <> coalesce(u.used, 0) + coalesce(x.expired, 0) + g.remaining
                                  + coalesce(o.held, 0)) AS first_broken_grant,
               coalesce(sum(u.late), 0) AS late_spends,
               min(g.entry_id) FILTER (WHERE u.late > 0) AS first_late_spend
          FROM grants g
          LEFT JOIN entries e ON e.owner_id = g.owner_id AND e.created_on = g.created_on
               AND e.id = g.entry_id
          LEFT JOIN LATERAL (
               SELECT sum(u.credits) FILTER (WHERE u.entry_id IS NOT NULL) AS used,
                      count(*) FILTER (WHERE u.credits > 0 AND u.taken_on >= g.expires_at)
                          AS late
                 FROM grant_uses u
                WHERE u.owner_id = g.owner_id AND u.grant_id = g.entry_id) u ON true
          LEFT JOIN LATERAL (
               SELECT sum(-x.amount) AS expired FROM entries x
                WHERE x.owner_id = g.owner_id AND x.expiry_of = g.entry_id) x ON true
          LEFT JOIN LATERAL (
               SELECT sum(u.credits) AS held
                 FROM grant_uses u
                 JOIN holds h ON h.owner_id = u.owner_id AND h.id = u.hold_id
                WHERE u.owner_id = g.owner_id AND u.grant_id = g.entry_id
                  AND h.status = 'open') o ON true
         GROUP BY g.owner_id
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
               count(*) FILTER (WHERE w.kind IS NULL AND w.expected_amount IS DISTINCT FROM
                   w.amount) AS wrong_amounts,
               min(ARRAY[w.position, w.id]) FILTER (WHERE w.kind IS NULL
                   AND w.expected_amount IS DISTINCT FROM w.amount) AS first_wrong_amount,
               count(*) FILTER (WHERE w.kind = 'capture' AND w.expected_amount IS DISTINCT FROM
                   w.amount) AS wrong_captures,
               min(ARRAY[w.position, w.id]) FILTER (WHERE w.kind = 'capture'
                   AND w.expected_amount IS DISTINCT FROM w.amount) AS first_wrong_capture,
               count(*) FILTER (WHERE w.kind = 'refund' AND w.expected_amount IS DISTINCT FROM
                   w.amount) AS wrong_refunds,
               min(ARRAY[w.position, w.id]) FILTER (WHERE w.kind = 'refund'
                   AND w.expected_amount IS DISTINCT FROM w.amount) AS first_wrong_refund,
               count(*) FILTER (WHERE NOT w.expiry_ok) AS wrong_expiries,
               min(ARRAY[w.position, w.id]) FILTER (WHERE NOT w.expiry_ok) AS first_wrong_expiry
          FROM checked w
         GROUP BY w.owner_id
    )
    SELECT coalesce(o.owner_id, b.owner_id) AS owner_id, o.entries, o.total,
           o.newest_created_on, o.newest_balance_after, o.broken_runs, o.first_broken_run,
           o.negative_runs, o.first_negative_run, o.time_travels, o.first_time_travel,
           o.wrong_amounts, o.first_wrong_amount, o.wrong_captures, o.first_wrong_capture,
           o.wrong_refunds, o.first_wrong_refund, b.owner_id IS NOT NULL AS has_balance,
           b.balance, b.last_updated, b.held, coalesce(h.open_held, 0) AS open_held,
           coalesce(h.uncaptured, 0) AS uncaptured, o.wrong_expiries, o.first_wrong_expiry,
           b.expiring, coalesce(gb.remaining, 0) AS grants_remaining,
           coalesce(gb.broken_grants, 0) AS broken_grants, gb.first_broken_grant,
           coalesce(gb.late_spends, 0) AS late_spends, gb.first_late_spend
      FROM owners o
      FULL JOIN balances b ON b.owner_id = o.owner_id
      LEFT JOIN held h ON h.owner_id = coalesce(o.owner_id, b.owner_id)
      LEFT JOIN grant_books gb ON gb.owner_id = coalesce(o.owner_id, b.owner_id)
     WHERE o.owner_id IS NULL OR b.owner_id IS NULL
        OR b.balance <> o.total OR b.balance < 0
        OR b.balance <> o.newest_balance_after
        OR b.last_updated <> o.newest_created_on
        OR o.broken_runs > 0 OR o.negative_runs > 0 OR o.time_travels > 0
        OR o.wrong_amounts > 0 OR o.wrong_captures > 0 OR o.wrong_refunds > 0
        OR b.held <> coalesce(h.open_held, 0) OR (b.held > 0 AND b.held > b.balance)
        OR coalesce(h.uncaptured, 0) > 0 OR o.wrong_expiries > 0
        OR b.expiring <> coalesce(gb.remaining, 0) OR coalesce(gb.broken_grants, 0) > 0
        OR coalesce(gb.late_spends, 0) > 0
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
    if row["held"] != row["open_held"]:
        problems.append(f"held {row['held']} but its open holds reserve {row['open_held']}")
    if row["held"] > 0 and row["held"] > row["balance"]:
        problems.append(f"held {row['held']} above its balance {row['balance']}")
    if row["uncaptured"]:
        problems.append(f"{_count(row['uncaptured'], 'hold')} CAPTURED without a capture entry")
    if row["expiring"] != row["grants_remaining"]:
        problems.append(
            f"expiring {row['expiring']} but its grants have {row['grants_remaining']} left"
        )
    if row["broken_grants"]:
        problems.append(
            f"{_count(row['broken_grants'], 'grant')} whose consumption, expiries, remaining"
            f" and holds do not add up to its amount (the first: entry {row['first_broken_grant']})"
        )
    if row["late_spends"]:
        problems.append(
            f"{_count(row['late_spends'], 'credit use')} taken after its grant expired"
            f" (the first of grant {row['first_late_spend']})"
        )
    for count, first, what in (
        ("broken_runs", "first_broken_run", "a balanceAfter that is not the running sum"),
        ("negative_runs", "first_negative_run", "a negative balanceAfter"),
        ("time_travels", "first_time_travel", "an id lower than the entry's before it"),
        ("wrong_amounts", "first_wrong_amount", "an amount not its operation's at the time"),
        ("wrong_captures", "first_wrong_capture", "a capture that is not within its hold"),
        ("wrong_refunds", "first_wrong_refund", "a refund that does not reverse its entry"),
        ("wrong_expiries", "first_wrong_expiry", "an expiry not as its rule or grant says"),
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
