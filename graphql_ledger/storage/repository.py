"""The only door to an app's ledger tables: one statement per unit of work, each on a
pooled connection of its own, so concurrent resolvers of one request never share one. The
rules themselves (locking, no overdraft, idempotency, amounts, limits) live in the
database: create_entry() and the operation_rules that `graphql-ledger migrate` records.

Connections come from the SQLAlchemy engine's pool; the statements run on the asyncpg
connection underneath, prepared once per connection. Every unit of work is a single
statement in autocommit mode, so SQLAlchemy's statement layer would add nothing but
cost: measured, it was 40% of the CPU a balance read takes (see bench/README.md).

When the database cannot serve (down, restarting, unreachable, a connection broken or a
unit of work slower than `timeout`), the unit of work fails with StorageUnavailable within
`timeout` seconds, and a statement it abandons is cancelled in PostgreSQL. A connection
that failed as a connection leaves the pool, and so does one the server closed while it
sat idle. A read that lost its connection is repeated once on another; a write never is,
since nobody can tell whether it was applied: the caller repeats it with the same nonce,
which the ledger makes safe.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection

from graphql_ledger.history import HistoryPage, HistoryQuery
from graphql_ledger.ledger import (
    Balance,
    Entry,
    InsufficientCredits,
    LimitReached,
    NonceConflict,
)
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.storage.database import StorageUnavailable, cannot_serve, refused_for_now
from graphql_ledger.storage.feed import BalanceUpdate

__all__ = ["LedgerRepository"]

logger = logging.getLogger(__name__)

CREATE_ENTRY = """
    SELECT outcome, entry_id AS id, entry_operation AS operation, entry_amount AS amount,
           entry_balance_after AS balance_after, entry_created_on AS created_on,
           current_balance, retry_after, required
      FROM create_entry($1, $2, $3)
"""

# The operations whose rule in force is not the one declared (or that have none).
RULE_DIFFERENCES = """
    SELECT t.operation, t.amount, t.limit_kind, r.amount AS stored_amount,
           r.limit_kind AS stored_limit_kind, r.operation IS NOT NULL AS stored
      FROM unnest($1::text[], $2::integer[], $3::text[]) AS t(operation, amount, limit_kind)
      LEFT JOIN LATERAL (
           SELECT r.operation, r.amount, r.limit_kind FROM operation_rules r
            WHERE r.operation = t.operation AND r.valid_from <= clock_timestamp()
            ORDER BY r.valid_from DESC
            LIMIT 1) r ON true
     WHERE r.operation IS NULL OR r.amount <> t.amount
        OR r.limit_kind IS DISTINCT FROM t.limit_kind
     ORDER BY t.operation
"""

BALANCES = """
    SELECT owner_id, balance, last_updated FROM balances WHERE owner_id = ANY($1::text[])
"""

# Pages of several owners' histories in one statement: one index range scan of
# entries_pkey (owner_id, created_on, id) per requested page, newest first, starting right
# at the page's upper bound. A missing bound becomes an infinite one so that every
# condition stays an index condition.
ENTRY_PAGES = """
    SELECT q.n, e.id, e.operation, e.amount, e.balance_after, e.nonce, e.created_on
      FROM unnest($1::text[], $2::integer[], $3::timestamptz[], $4::bigint[], $5::text[],
                  $6::timestamptz[])
           WITH ORDINALITY AS q(owner_id, lim, below_created_on, below_id, operation, since, n)
     CROSS JOIN LATERAL (
           SELECT e.id, e.operation, e.amount, e.balance_after, e.nonce, e.created_on
             FROM entries e
            WHERE e.owner_id = q.owner_id
              AND (e.created_on, e.id) < (coalesce(q.below_created_on, 'infinity'),
                                          coalesce(q.below_id, 9223372036854775807))
              AND e.created_on >= coalesce(q.since, '-infinity')
              AND (q.operation IS NULL OR e.operation = q.operation)
            ORDER BY e.created_on DESC, e.id DESC
            LIMIT q.lim) e
     ORDER BY q.n, e.created_on DESC, e.id DESC
"""

# Current balances with the id of the entry that made each, for the live balance feed.
NEWEST_BALANCES = """
    SELECT q.n, b.balance, b.last_updated, e.id AS entry_id
      FROM unnest($1::text[]) WITH ORDINALITY AS q(owner_id, n)
      LEFT JOIN balances b ON b.owner_id = q.owner_id
      LEFT JOIN LATERAL (
           SELECT e.id FROM entries e
            WHERE e.owner_id = q.owner_id
            ORDER BY e.created_on DESC, e.id DESC
            LIMIT 1) e ON true
     ORDER BY q.n
"""

# Balances as of instants: the balance_after of each owner's newest entry created at or
# before the instant, one index lookup each.
BALANCES_AT = """
    SELECT q.n, e.balance_after, e.created_on
      FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS q(owner_id, instant, n)
      LEFT JOIN LATERAL (
           SELECT e.balance_after, e.created_on
             FROM entries e
            WHERE e.owner_id = q.owner_id AND e.created_on <= q.instant
            ORDER BY e.created_on DESC, e.id DESC
            LIMIT 1) e ON true
     ORDER BY q.n
"""

# create_entry() raises unique_violation on one of these when a concurrent writer committed
# the same nonce, or the same limited operation, first: the call is then repeated once.
_RACE_KEYS = frozenset({"entries_owner_nonce_key", "entries_owner_limit_key"})


class LedgerRepository:
    """Reads and writes one app's ledger; each unit of work takes at most `timeout` seconds,
    from waiting for a connection to the statement's answer."""

    def __init__(
        self, engine: AsyncEngine, operations: type[LedgerOperation], *, timeout: float = 5.0
    ) -> None:
        self.engine = engine
        self.operations = operations
        self.timeout = timeout
        self._settling: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def connection(self, deadline: float | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A pooled asyncpg connection for one unit of work, which must end by `deadline`
        (the event loop's clock; by default `timeout` seconds from now). Failures of the
        database or of the connection (refused, lost, timed out, a server that cannot
        serve now) become StorageUnavailable, and a broken connection leaves the pool;
        errors of the statement itself pass unchanged."""
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            async with asyncio.timeout_at(deadline):
                pooled = await self._checkout()
                driver: asyncpg.Connection = pooled.driver_connection
                settling = False
                try:
                    yield driver
                except asyncio.CancelledError:
                    # Abandoned mid-statement (the deadline, or the client went away):
                    # asyncpg has asked the server to cancel the statement, which must not
                    # keep running (holding locks, or committing later) in PostgreSQL.
                    if not driver.is_closed():
                        settling = True
                        self._settle(pooled, driver)
                    raise
                except Exception as error:
                    if driver.is_closed() or cannot_serve(error):
                        pooled.invalidate()
                        raise StorageUnavailable(
                            f"the connection to the database failed: {error!r}", lost=True
                        ) from error
                    if refused_for_now(error):
                        raise StorageUnavailable(f"the database refused: {error!r}") from error
                    raise
                finally:
                    if not settling:
                        pooled.close()
        except StorageUnavailable:
            raise
        except TimeoutError as error:
            raise StorageUnavailable(
                f"the database did not answer within {self.timeout:g} s"
            ) from error
        except PoolTimeout as error:
            raise StorageUnavailable("no free database connection") from error
        except Exception as error:
            if not cannot_serve(error):
                raise
            raise StorageUnavailable(f"cannot connect to the database: {error!r}") from error

    async def _checkout(self) -> PoolProxiedConnection:
        """A pooled connection the server has not closed: one that the server closed while
        idle (a restart, pg_terminate_backend, an idle timeout) is known closed without a
        round trip, and is dropped for the next."""
        while True:
            pooled = await self.engine.raw_connection()
            driver = pooled.driver_connection
            if driver is not None and not driver.is_closed():
                return pooled
            pooled.invalidate()
            pooled.close()

    def _settle(self, pooled: PoolProxiedConnection, driver: asyncpg.Connection) -> None:
        """Keeps an abandoned connection out of the pool until the server has cancelled its
        statement (the next statement on it waits for that), or drops it."""

        async def settle() -> None:
            try:
                async with asyncio.timeout(self.timeout):
                    await driver.fetchval("SELECT 1")
            except asyncio.CancelledError:
                pooled.invalidate()
                raise
            except Exception as error:
                logger.info("dropping a connection whose statement was abandoned: %r", error)
                pooled.invalidate()
            finally:
                pooled.close()

        task = asyncio.create_task(settle())
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _read(self, query: str, *arguments: Any) -> list[asyncpg.Record]:
        """The rows of a read. When its connection was lost under it, the read is repeated
        once on another (reading twice changes nothing), within the same deadline."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            async with self.connection(deadline) as connection:
                rows: list[asyncpg.Record] = await connection.fetch(query, *arguments)
                return rows
        except StorageUnavailable as error:
            if not error.lost:
                raise
            logger.warning("a read lost its connection (%s); repeating it once", error)
        async with self.connection(deadline) as connection:
            rows = await connection.fetch(query, *arguments)
            return rows

    async def create_entry(
        self, owner_id: str, operation: LedgerOperation, nonce: str
    ) -> Entry | InsufficientCredits | NonceConflict | LimitReached:
        """Appends an entry of `operation` for `owner_id` unless the nonce was used before
        (replay: the original entry; another operation: NonceConflict), the operation's
        limit is reached (LimitReached), or the balance would go negative
        (InsufficientCredits); a refusal writes nothing."""
        arguments = (owner_id, operation.name, nonce)
        deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            row = await self._create_entry(arguments, deadline)
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name not in _RACE_KEYS:
                raise
            # Lost a race; the winner has committed, so the same call now answers from it
            # (the first call rolled back whole: repeating it cannot apply it twice).
            row = await self._create_entry(arguments, deadline)
        outcome = row["outcome"]
        if outcome == "insufficient_credits":
            return InsufficientCredits(balance=row["current_balance"], required=row["required"])
        if outcome == "limit_reached":
            return LimitReached(operation=operation, retry_after=row["retry_after"])
        entry = self._entry(row, owner_id, nonce, replayed=outcome != "created")
        return NonceConflict(existing=entry) if outcome == "nonce_conflict" else entry

    async def _create_entry(self, arguments: tuple[Any, ...], deadline: float) -> asyncpg.Record:
        async with self.connection(deadline) as connection:
            row: asyncpg.Record = await connection.fetchrow(CREATE_ENTRY, *arguments)
            return row

    def _entry(
        self, row: asyncpg.Record, owner_id: str, nonce: str, *, replayed: bool = False
    ) -> Entry:
        return Entry(
            id=row["id"],
            owner_id=owner_id,
            operation=self.operations[row["operation"]],
            amount=row["amount"],
            balance_after=row["balance_after"],
            nonce=nonce,
            created_on=row["created_on"],
            replayed=replayed,
        )

    async def balances_of(self, owner_ids: Sequence[str]) -> list[Balance]:
        """Balances of `owner_ids`, in the same order, in one query."""
        rows = await self._read(BALANCES, list(set(owner_ids)))
        found = {row["owner_id"]: row for row in rows}
        return [
            Balance(owner_id, found[owner_id]["balance"], found[owner_id]["last_updated"])
            if owner_id in found
            else Balance(owner_id, 0, None)
            for owner_id in owner_ids
        ]

    async def entry_pages(self, queries: Sequence[HistoryQuery]) -> list[HistoryPage]:
        """A page of history for each query, in the same order, in one statement."""
        bounds = [q.upper_bound() for q in queries]
        rows = await self._read(
            ENTRY_PAGES,
            [q.owner_id for q in queries],
            [q.first + 1 for q in queries],  # one more tells if a next page exists
            [b.created_on if b else None for b in bounds],
            [b.id if b else None for b in bounds],
            [q.operation.name if q.operation else None for q in queries],
            [q.since for q in queries],
        )
        found: list[list[Entry]] = [[] for _ in queries]
        for row in rows:
            query = queries[row["n"] - 1]
            found[row["n"] - 1].append(self._entry(row, query.owner_id, row["nonce"]))
        return [
            HistoryPage(tuple(entries[: q.first]), has_next_page=len(entries) > q.first)
            for q, entries in zip(queries, found, strict=True)
        ]

    async def balances_at(self, requests: Sequence[tuple[str, datetime]]) -> list[Balance]:
        """Each owner's balance right after its newest entry created at or before the
        instant (0 and no last_updated before its first entry), in one statement."""
        rows = await self._read(
            BALANCES_AT, [owner_id for owner_id, _ in requests], [at for _, at in requests]
        )
        return [
            Balance(owner_id, row["balance_after"] or 0, row["created_on"])
            for (owner_id, _), row in zip(requests, rows, strict=True)
        ]

    async def newest_balances(self, owner_ids: Sequence[str]) -> list[BalanceUpdate]:
        """Each owner's current balance and the entry that made it, in one statement."""
        rows = await self._read(NEWEST_BALANCES, list(owner_ids))
        return [
            BalanceUpdate(
                Balance(owner_id, row["balance"] or 0, row["last_updated"]), row["entry_id"]
            )
            for owner_id, row in zip(owner_ids, rows, strict=True)
        ]

    def _declared_rules(self) -> tuple[list[str], list[int], list[str | None]]:
        operations = list(self.operations)
        return (
            [op.name for op in operations],
            [op.amount for op in operations],
            [op.limit.value if op.limit else None for op in operations],
        )

    async def rule_differences(self) -> list[str]:
        """How the rules in force in the database differ from this app's operations, in
        words; empty when they are the same."""
        async with self.connection() as connection:
            rows = await connection.fetch(RULE_DIFFERENCES, *self._declared_rules())
        return [
            f"{row['operation']}: {_rule(row['amount'], row['limit_kind'])} here, "
            + (
                f"{_rule(row['stored_amount'], row['stored_limit_kind'])} in the database"
                if row["stored"]
                else "none in the database"
            )
            for row in rows
        ]

    async def register_rules(self) -> int:
        """Records this app's operation rules (amounts and limits) where they differ from
        those recorded, which create_entry() applies from then on (record_operation_rules()
        takes the rules' lock). Returns how many operations changed. Only `graphql-ledger
        migrate` calls it, as the owner: a rule change then happens once per release, never
        because an older process restarted, and the serving role may not call it."""
        async with self.connection() as connection:
            changed: int = await connection.fetchval(
                "SELECT record_operation_rules($1, $2, $3)", *self._declared_rules()
            )
        return changed

    async def schema_revision(self) -> str | None:
        """The migration revision the database is at; None before the first migration.
        Raises StorageUnavailable when the database cannot answer."""
        async with self.connection() as connection:
            try:
                revision: str | None = await connection.fetchval(
                    "SELECT version_num FROM alembic_version"
                )
            except asyncpg.UndefinedTableError:
                return None
            return revision


def _rule(amount: int, limit_kind: str | None) -> str:
    return f"{amount:+d} credits" + (f", limit {limit_kind}" if limit_kind else "")
