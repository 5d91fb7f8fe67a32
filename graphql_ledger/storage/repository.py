"""The only door to an app's ledger tables: one statement per unit of work, each on a
connection of its own, so concurrent resolvers of one request never share one. The rules
themselves (locking, no overdraft, idempotency) live in the database's create_entry()."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, BigInteger, DateTime, Integer, Text, bindparam, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from graphql_ledger.history import HistoryPage, HistoryQuery
from graphql_ledger.ledger import (
    Balance,
    Entry,
    InsufficientCredits,
    LimitReached,
    NonceConflict,
)
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.storage.feed import BalanceUpdate

__all__ = ["LedgerRepository"]

CREATE_ENTRY = text(
    "SELECT outcome, entry_id AS id, entry_operation AS operation, entry_amount AS amount,"
    " entry_balance_after AS balance_after, entry_created_on AS created_on, current_balance,"
    " retry_after FROM create_entry(:owner_id, :operation, :amount, :nonce, :limit)"
)

BALANCES = text(
    "SELECT owner_id, balance, last_updated FROM balances WHERE owner_id = ANY(:owner_ids)"
).bindparams(bindparam("owner_ids", type_=ARRAY(Text)))

# Pages of several owners' histories in one statement: one index range scan of
# entries_pkey (owner_id, created_on, id) per requested page, newest first, starting right
# at the page's upper bound. A missing bound becomes an infinite one so that every
# condition stays an index condition.
ENTRY_PAGES = text(
    """
    SELECT q.n, e.id, e.operation, e.amount, e.balance_after, e.nonce, e.created_on
      FROM unnest(:owner_ids, :limits, :below_created_on, :below_ids, :operations, :since)
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
).bindparams(
    bindparam("owner_ids", type_=ARRAY(Text)),
    bindparam("limits", type_=ARRAY(Integer)),
    bindparam("below_created_on", type_=ARRAY(DateTime(timezone=True))),
    bindparam("below_ids", type_=ARRAY(BigInteger)),
    bindparam("operations", type_=ARRAY(Text)),
    bindparam("since", type_=ARRAY(DateTime(timezone=True))),
)

# Current balances with the id of the entry that made each, for the live balance feed.
NEWEST_BALANCES = text(
    """
    SELECT q.n, b.balance, b.last_updated, e.id AS entry_id
      FROM unnest(:owner_ids) WITH ORDINALITY AS q(owner_id, n)
      LEFT JOIN balances b ON b.owner_id = q.owner_id
      LEFT JOIN LATERAL (
           SELECT e.id FROM entries e
            WHERE e.owner_id = q.owner_id
            ORDER BY e.created_on DESC, e.id DESC
            LIMIT 1) e ON true
     ORDER BY q.n
    """
).bindparams(bindparam("owner_ids", type_=ARRAY(Text)))

# Balances as of instants: the balance_after of each owner's newest entry created at or
# before the instant, one index lookup each.
BALANCES_AT = text(
    """
    SELECT q.n, e.balance_after, e.created_on
      FROM unnest(:owner_ids, :instants) WITH ORDINALITY AS q(owner_id, instant, n)
      LEFT JOIN LATERAL (
           SELECT e.balance_after, e.created_on
             FROM entries e
            WHERE e.owner_id = q.owner_id AND e.created_on <= q.instant
            ORDER BY e.created_on DESC, e.id DESC
            LIMIT 1) e ON true
     ORDER BY q.n
    """
).bindparams(
    bindparam("owner_ids", type_=ARRAY(Text)),
    bindparam("instants", type_=ARRAY(DateTime(timezone=True))),
)

# create_entry() raises unique_violation on one of these when a concurrent writer committed
# the same nonce, or the same limited operation, first: the call is then repeated once.
_RACE_KEYS = frozenset({"entries_owner_nonce_key", "entries_owner_limit_key"})


class LedgerRepository:
    """Reads and writes one app's ledger."""

    def __init__(self, engine: AsyncEngine, operations: type[LedgerOperation]) -> None:
        self.engine = engine
        self.operations = operations

    async def create_entry(
        self, owner_id: str, operation: LedgerOperation, nonce: str
    ) -> Entry | InsufficientCredits | NonceConflict | LimitReached:
        """Appends an entry of `operation` for `owner_id` unless the nonce was used before
        (replay: the original entry; another operation: NonceConflict), the operation's
        limit is reached (LimitReached), or the balance would go negative
        (InsufficientCredits); a refusal writes nothing."""
        parameters = {
            "owner_id": owner_id,
            "operation": operation.name,
            "amount": operation.amount,
            "nonce": nonce,
            "limit": operation.limit.value if operation.limit else None,
        }
        try:
            row = await self._create_entry(parameters)
        except IntegrityError as error:
            database_error = error.orig.__cause__ if error.orig is not None else None
            if getattr(database_error, "constraint_name", None) not in _RACE_KEYS:
                raise
            # Lost a race; the winner has committed, so the same call now answers from it.
            row = await self._create_entry(parameters)
        outcome = row.outcome
        if outcome == "insufficient_credits":
            return InsufficientCredits(balance=row.current_balance, required=-operation.amount)
        if outcome == "limit_reached":
            return LimitReached(operation=operation, retry_after=row.retry_after)
        entry = self._entry(row, owner_id, nonce)
        return NonceConflict(existing=entry) if outcome == "nonce_conflict" else entry

    def _entry(self, row: Any, owner_id: str, nonce: str) -> Entry:
        return Entry(
            id=row.id,
            owner_id=owner_id,
            operation=self.operations[row.operation],
            amount=row.amount,
            balance_after=row.balance_after,
            nonce=nonce,
            created_on=row.created_on,
        )

    async def _create_entry(self, parameters: dict[str, Any]) -> Any:
        async with self.engine.connect() as connection:
            result = await connection.execute(CREATE_ENTRY, parameters)
            return result.one()

    async def balances_of(self, owner_ids: Sequence[str]) -> list[Balance]:
        """Balances of `owner_ids`, in the same order, in one query."""
        async with self.engine.connect() as connection:
            result = await connection.execute(BALANCES, {"owner_ids": list(set(owner_ids))})
            found = {row.owner_id: row for row in result}
        return [
            Balance(owner_id, found[owner_id].balance, found[owner_id].last_updated)
            if owner_id in found
            else Balance(owner_id, 0, None)
            for owner_id in owner_ids
        ]

    async def entry_pages(self, queries: Sequence[HistoryQuery]) -> list[HistoryPage]:
        """A page of history for each query, in the same order, in one statement."""
        bounds = [q.upper_bound() for q in queries]
        columns: dict[str, list[Any]] = {
            "owner_ids": [q.owner_id for q in queries],
            "limits": [q.first + 1 for q in queries],  # one more tells if a next page exists
            "below_created_on": [b.created_on if b else None for b in bounds],
            "below_ids": [b.id if b else None for b in bounds],
            "operations": [q.operation.name if q.operation else None for q in queries],
            "since": [q.since for q in queries],
        }
        found: list[list[Entry]] = [[] for _ in queries]
        async with self.engine.connect() as connection:
            for row in await connection.execute(ENTRY_PAGES, columns):
                found[row.n - 1].append(self._entry(row, queries[row.n - 1].owner_id, row.nonce))
        return [
            HistoryPage(tuple(entries[: q.first]), has_next_page=len(entries) > q.first)
            for q, entries in zip(queries, found, strict=True)
        ]

    async def balances_at(self, requests: Sequence[tuple[str, datetime]]) -> list[Balance]:
        """Each owner's balance right after its newest entry created at or before the
        instant (0 and no last_updated before its first entry), in one statement."""
        parameters = {
            "owner_ids": [owner_id for owner_id, _ in requests],
            "instants": [instant for _, instant in requests],
        }
        async with self.engine.connect() as connection:
            rows = list(await connection.execute(BALANCES_AT, parameters))
        return [
            Balance(owner_id, row.balance_after or 0, row.created_on)
            for (owner_id, _), row in zip(requests, rows, strict=True)
        ]

    async def newest_balances(self, owner_ids: Sequence[str]) -> list[BalanceUpdate]:
        """Each owner's current balance and the entry that made it, in one statement."""
        async with self.engine.connect() as connection:
            rows = list(await connection.execute(NEWEST_BALANCES, {"owner_ids": list(owner_ids)}))
        return [
            BalanceUpdate(Balance(owner_id, row.balance or 0, row.last_updated), row.entry_id)
            for owner_id, row in zip(owner_ids, rows, strict=True)
        ]
