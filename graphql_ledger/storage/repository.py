"""The ledger's statements: the only door to an app's ledger tables, one statement per unit
of work (`connections.py` gives each its pooled connection and its deadline). The rules
themselves (locking, no overdraft, idempotency, amounts, limits) live in the database:
create_entry() and the operation_rules that `graphql-ledger migrate` records (`rules.py`).
With read replicas, `following` gives a request's repository, whose balance, history, hold
and grant reads may be served by a replica (`replicas.py`); the live feed's are the primary's.
"""

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from graphql_ledger.alerts import BalanceAlert
from graphql_ledger.history import HistoryPage, HistoryQuery
from graphql_ledger.holds import CreateEntryOutcome, HoldNonceConflict
from graphql_ledger.ledger import (
    Balance,
    Entry,
    InsufficientCredits,
    InvalidInput,
    LimitReached,
    Metadata,
    NonceConflict,
)
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.storage.connections import Connections
from graphql_ledger.storage.feed import BalanceUpdate
from graphql_ledger.storage.grants import GrantReads
from graphql_ledger.storage.holds import HoldRepository
from graphql_ledger.storage.positions import LedgerPosition
from graphql_ledger.storage.replicas import ReadReplicas
from graphql_ledger.storage.rows import (
    ENTRY_COLUMNS,
    WRITTEN_ENTRY,
    entry_of,
    metadata_json,
    written_entry,
)
from graphql_ledger.storage.rules import OperationRules

__all__ = ["TOO_LARGE", "LedgerRepository", "entry_page_parameters"]

# A write whose amount, or the balance it would make, leaves PostgreSQL's integer range.
TOO_LARGE = InvalidInput(
    "quantity", "this quantity would take the amount or the balance past 2,147,483,647 credits"
)

CREATE_ENTRY = (
    f"SELECT {WRITTEN_ENTRY} FROM create_entry($1, $2, $3, $4, $5::jsonb, $6::timestamptz)"
)

# What create_entry() raises (SQLSTATE) for an expiresAt not after the entry's createdOn.
EXPIRES_AT_PASSED = "LG001"
EXPIRES_AT_ON_A_SPEND = InvalidInput("expiresAt", "only an entry that adds credits may expire")

# What has lapsed of an owner's grants and is not booked out yet (ledger_lapsed): nothing
# to compute while balances.expiring_until is ahead.
LAPSED = """CASE WHEN b.expiring_until IS NULL OR b.expiring_until > now() THEN 0
                ELSE ledger_lapsed(b.owner_id, now()) END AS lapsed"""

# Balances with the credits their open holds reserve now: the stored held while no hold has
# expired (held_until ahead), else summed from the holds (ledger_held); and what has lapsed.
BALANCES = f"""
    SELECT b.owner_id, b.balance, b.last_updated,
           CASE WHEN b.held = 0 OR b.held_until > now() THEN b.held
                ELSE ledger_held(b.owner_id, now()) END AS held,
           {LAPSED}
      FROM balances b WHERE b.owner_id = ANY($1::text[])
"""

# Pages of several owners' histories in one statement: one index range scan of
# entries_pkey (owner_id, created_on, id) per requested page, newest first, starting right
# at the page's upper bound. A missing bound becomes an infinite one so that every
# condition stays an index condition.
ENTRY_PAGES = f"""
    SELECT q.n, e.*
      FROM unnest($1::text[], $2::integer[], $3::timestamptz[], $4::bigint[], $5::text[],
                  $6::timestamptz[], $7::text[])
           WITH ORDINALITY AS q(owner_id, lim, below_created_on, below_id, operation, since,
                                metadata, n)
     CROSS JOIN LATERAL (
           SELECT {ENTRY_COLUMNS}
             FROM entries e
            WHERE e.owner_id = q.owner_id
              AND (e.created_on, e.id) < (coalesce(q.below_created_on, 'infinity'),
                                          coalesce(q.below_id, 9223372036854775807))
              AND e.created_on >= coalesce(q.since, '-infinity')
              AND (q.operation IS NULL OR e.operation = q.operation)
              AND (q.metadata IS NULL OR e.metadata @> q.metadata::jsonb)
            ORDER BY e.created_on DESC, e.id DESC
            LIMIT q.lim) e
     ORDER BY q.n, e.created_on DESC, e.id DESC
"""

# Entries by id (a refund's original, a hold's capture), each owner's by its id: the BRIN
# index on id finds the few pages that can hold it.
ENTRIES_BY_ID = f"""
    SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.id = ANY($1::bigint[])
"""

# The refunds of entries, by the original's owner and id (entries_owner_refund_key).
REFUNDS_OF = f"""
    SELECT {ENTRY_COLUMNS}
      FROM unnest($1::text[], $2::bigint[]) AS q(owner_id, id)
      JOIN entries e ON e.owner_id = q.owner_id AND e.refund_of = q.id
"""

# Current balances and their version (which grows with every write of the owner), for
# the live balance feed.
NEWEST_BALANCES = f"""
    SELECT q.n, b.balance, b.last_updated, b.version,
           CASE WHEN b.held = 0 OR b.held_until > now() THEN b.held
                ELSE ledger_held(b.owner_id, now()) END AS held,
           {LAPSED}
      FROM unnest($1::text[]) WITH ORDINALITY AS q(owner_id, n)
      LEFT JOIN balances b ON b.owner_id = q.owner_id
     ORDER BY q.n
"""

# Balances as of instants: the balance_after of each owner's newest entry created at or
# before the instant, one index lookup each, and the credits the holds open at that
# instant reserved (created by then, not yet ended or expired), and what had lapsed of
# grants by then (ledger_lapsed_at, for owners with a grant that had expired).
BALANCES_AT = """
    SELECT q.n, e.balance_after, e.created_on, coalesce(h.held, 0) AS held,
           CASE WHEN EXISTS (SELECT FROM grants g WHERE g.owner_id = q.owner_id
                                                   AND g.expires_at <= q.instant)
                THEN ledger_lapsed_at(q.owner_id, q.instant) ELSE 0 END AS lapsed
      FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS q(owner_id, instant, n)
      LEFT JOIN LATERAL (
           SELECT e.balance_after, e.created_on
             FROM entries e
            WHERE e.owner_id = q.owner_id AND e.created_on <= q.instant
            ORDER BY e.created_on DESC, e.id DESC
            LIMIT 1) e ON true
      LEFT JOIN LATERAL (
           SELECT sum(-h.amount)::integer AS held
             FROM holds h
            WHERE h.owner_id = q.owner_id AND h.created_on <= q.instant
              AND h.expires_at > q.instant
              AND (h.ended_on IS NULL OR h.ended_on > q.instant)) h ON true
     ORDER BY q.n
"""


def entry_page_parameters(queries: Sequence[HistoryQuery]) -> list[list[Any]]:
    """What ENTRY_PAGES binds for these queries: one array per column of its unnest()."""
    bounds = [q.upper_bound() for q in queries]
    return [
        [q.owner_id for q in queries],
        [q.first + 1 for q in queries],  # one more tells if a next page exists
        [b.created_on if b else None for b in bounds],
        [b.id if b else None for b in bounds],
        [q.operation.name if q.operation else None for q in queries],
        [q.since for q in queries],
        [metadata_json(dict(q.metadata)) if q.metadata else None for q in queries],
    ]


class LedgerRepository:
    """Reads and writes one app's ledger; each unit of work takes at most `timeout` seconds,
    from waiting for a connection to the statement's answer."""

    def __init__(
        self,
        engine: AsyncEngine,
        operations: type[LedgerOperation],
        *,
        timeout: float = 5.0,
        replicas: ReadReplicas | None = None,
    ) -> None:
        self.engine = engine
        self.operations = operations
        self.connections = Connections(engine, timeout=timeout, replicas=replicas)
        self.rules = OperationRules(self.connections, operations)
        self.holds = HoldRepository(self.connections, operations)
        self.grants = GrantReads(self.connections, operations)

    def following(self, position: LedgerPosition) -> "LedgerRepository":
        """This repository for one request: its reads see at least `position` (the one its
        client sent), which its writes advance."""
        connections = self.connections.following(position)
        if connections is self.connections:
            return self
        bound = copy.copy(self)
        bound.connections = connections
        bound.rules = OperationRules(connections, self.operations)
        bound.holds = HoldRepository(connections, self.operations)
        bound.grants = GrantReads(connections, self.operations)
        return bound

    async def watch_balances(self, watcher: str, owner_ids: Sequence[str]) -> list[BalanceUpdate]:
        """Records that the server process `watcher` has live subscribers for `owner_ids`
        (the write functions notify only for watched owners) and answers each one's balance
        and version as of that commit, in the same order (ledger_watch)."""
        async with self.connections.connection() as connection:
            rows = await connection.fetch(
                "SELECT * FROM ledger_watch($1, $2)", watcher, list(owner_ids)
            )
        found = {row["owner_id"]: row for row in rows}
        return [
            BalanceUpdate(
                Balance(owner_id, row["balance"], row["last_updated"], row["held"], row["lapsed"]),
                row["version"],
            )
            if (row := found.get(owner_id)) is not None
            else BalanceUpdate(Balance(owner_id, 0, None), 0)
            for owner_id in owner_ids
        ]

    async def unwatch_balances(self, watcher: str, owner_ids: Sequence[str]) -> None:
        """The server process `watcher` has no live subscriber for `owner_ids` any more."""
        async with self.connections.connection() as connection:
            await connection.execute("SELECT ledger_unwatch($1, $2)", watcher, list(owner_ids))

    async def expire_grants(self, batch: int) -> int:
        """One transaction of the expiry pass: books what has lapsed for owners whose
        expiring_until has passed, about `batch` EXPIRY entries; answers how many."""
        row = await self.connections.write("SELECT ledger_expire_grants($1) AS booked", batch)
        booked: int = row["booked"]
        return booked

    async def set_balance_alert(self, owner_id: str, below: int | None) -> BalanceAlert:
        """Sets (or with None removes) the owner's own low-balance threshold."""
        row = await self.connections.write(
            "SELECT below, available FROM set_balance_alert($1, $2)", owner_id, below
        )
        return BalanceAlert(owner_id, below, row["below"], row["available"])

    async def create_entry(
        self,
        owner_id: str,
        operation: LedgerOperation,
        nonce: str,
        quantity: int = 1,
        metadata: Metadata | None = None,
        expires_at: datetime | None = None,
    ) -> CreateEntryOutcome:
        """Appends `quantity` units of `operation` for `owner_id` unless the nonce was used
        before (replay: the original entry; another operation or quantity: NonceConflict; a
        hold's nonce: HoldNonceConflict), the operation's limit is reached (LimitReached),
        or what is available would go negative (InsufficientCredits); a refusal writes
        nothing. A credit expires at `expires_at`, else after its rule's lifetime, if any."""
        try:
            row = await self.connections.write(
                CREATE_ENTRY,
                owner_id,
                operation.name,
                nonce,
                quantity,
                metadata_json(metadata),
                expires_at,
            )
        except asyncpg.PostgresError as error:
            if error.sqlstate == EXPIRES_AT_PASSED:
                return InvalidInput("expiresAt", "expiresAt must be after the entry's createdOn")
            raise
        match row["outcome"]:
            case "insufficient_credits":
                return InsufficientCredits(balance=row["current_balance"], required=row["required"])
            case "limit_reached":
                return LimitReached(operation=operation, retry_after=row["retry_after"])
            case "too_large":
                return TOO_LARGE
            case "not_expiring":
                return EXPIRES_AT_ON_A_SPEND
            case "hold_nonce_conflict":
                return HoldNonceConflict(await self.holds.by_id(row["hold_id"]))
            case "nonce_conflict":
                return NonceConflict(existing=entry_of(row, self.operations, prefix="entry_"))
            case _:
                return written_entry(row, self.operations)

    async def balances_of(self, owner_ids: Sequence[str]) -> list[Balance]:
        """Balances of `owner_ids`, in the same order, in one query."""
        rows = await self.connections.read(BALANCES, list(set(owner_ids)))
        found = {row["owner_id"]: row for row in rows}
        return [
            Balance(owner_id, row["balance"], row["last_updated"], row["held"], row["lapsed"])
            if (row := found.get(owner_id)) is not None
            else Balance(owner_id, 0, None)
            for owner_id in owner_ids
        ]

    async def entry_pages(self, queries: Sequence[HistoryQuery]) -> list[HistoryPage]:
        """A page of history for each query, in the same order, in one statement."""
        rows = await self.connections.read(ENTRY_PAGES, *entry_page_parameters(queries))
        found: list[list[Entry]] = [[] for _ in queries]
        for row in rows:
            found[row["n"] - 1].append(entry_of(row, self.operations))
        return [
            HistoryPage(tuple(entries[: q.first]), has_next_page=len(entries) > q.first)
            for q, entries in zip(queries, found, strict=True)
        ]

    async def entries_by_id(self, entry_ids: Sequence[int]) -> dict[int, Entry]:
        """The entries of these ids that exist, by id, in one statement."""
        rows = await self.connections.read(ENTRIES_BY_ID, list(set(entry_ids)))
        return {row["id"]: entry_of(row, self.operations) for row in rows}

    async def refunds_of(self, entries: Sequence[tuple[str, int]]) -> dict[int, Entry]:
        """The refunds of these (owner, id) entries that have one, by the original's id."""
        rows = await self.connections.read(
            REFUNDS_OF, [owner for owner, _ in entries], [entry_id for _, entry_id in entries]
        )
        return {row["refund_of"]: entry_of(row, self.operations) for row in rows}

    async def balances_at(self, requests: Sequence[tuple[str, datetime]]) -> list[Balance]:
        """Each owner's balance right after its newest entry created at or before the
        instant (0 and no last_updated before its first entry), and what its holds then
        reserved, in one statement."""
        rows = await self.connections.read(
            BALANCES_AT, [owner_id for owner_id, _ in requests], [at for _, at in requests]
        )
        return [
            Balance(
                owner_id,
                row["balance_after"] or 0,
                row["created_on"],
                row["held"],
                row["lapsed"],
                at=at,
            )
            for (owner_id, at), row in zip(requests, rows, strict=True)
        ]

    async def newest_balances(self, owner_ids: Sequence[str]) -> list[BalanceUpdate]:
        """Each owner's current balance and its version, in one statement, on the primary:
        the feed's followers must never see a version go back."""
        rows = await self.connections.read(NEWEST_BALANCES, list(owner_ids), primary=True)
        return [
            BalanceUpdate(
                Balance(
                    owner_id,
                    row["balance"] or 0,
                    row["last_updated"],
                    row["held"] or 0,
                    row["lapsed"] or 0,
                ),
                row["version"] or 0,
            )
            for owner_id, row in zip(owner_ids, rows, strict=True)
        ]
