"""The ledger's statements: the only door to an app's ledger tables, one statement per unit
of work (`connections.py` gives each its pooled connection and its deadline). The rules
themselves (locking, no overdraft, idempotency, amounts, limits) live in the database:
create_entry() and the operation_rules that `graphql-ledger migrate` records (`rules.py`).
"""

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
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
from graphql_ledger.storage.connections import Connections
from graphql_ledger.storage.feed import BalanceUpdate
from graphql_ledger.storage.rules import OperationRules

__all__ = ["LedgerRepository"]

CREATE_ENTRY = """
    SELECT outcome, entry_id AS id, entry_operation AS operation, entry_amount AS amount,
           entry_balance_after AS balance_after, entry_created_on AS created_on,
           current_balance, retry_after, required
      FROM create_entry($1, $2, $3)
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
        self.connections = Connections(engine, timeout=timeout)
        self.rules = OperationRules(self.connections, operations)

    async def create_entry(
        self, owner_id: str, operation: LedgerOperation, nonce: str
    ) -> Entry | InsufficientCredits | NonceConflict | LimitReached:
        """Appends an entry of `operation` for `owner_id` unless the nonce was used before
        (replay: the original entry; another operation: NonceConflict), the operation's
        limit is reached (LimitReached), or the balance would go negative
        (InsufficientCredits); a refusal writes nothing."""
        arguments = (owner_id, operation.name, nonce)
        deadline = asyncio.get_running_loop().time() + self.connections.timeout
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
        async with self.connections.connection(deadline) as connection:
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
        rows = await self.connections.read(BALANCES, list(set(owner_ids)))
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
        rows = await self.connections.read(
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
        rows = await self.connections.read(
            BALANCES_AT, [owner_id for owner_id, _ in requests], [at for _, at in requests]
        )
        return [
            Balance(owner_id, row["balance_after"] or 0, row["created_on"])
            for (owner_id, _), row in zip(requests, rows, strict=True)
        ]

    async def newest_balances(self, owner_ids: Sequence[str]) -> list[BalanceUpdate]:
        """Each owner's current balance and the entry that made it, in one statement."""
        rows = await self.connections.read(NEWEST_BALANCES, list(owner_ids))
        return [
            BalanceUpdate(
                Balance(owner_id, row["balance"] or 0, row["last_updated"]), row["entry_id"]
            )
            for owner_id, row in zip(owner_ids, rows, strict=True)
        ]
