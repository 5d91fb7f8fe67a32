"""The outbox's SQL: claiming due events for delivery (one connection of the worker's own,
in a transaction that holds the claimed rows' locks while they are POSTed), recording the
attempts, pruning, the operators' figures, listing and re-sending. The write functions
write the events (migrations/sql/ledger_record_event.sql); nothing here knows HTTP."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

__all__ = [
    "Attempt",
    "EventStats",
    "OutboxEvent",
    "claim_events",
    "claim_following",
    "configure_events",
    "event_stats",
    "list_events",
    "open_connection",
    "prune_events",
    "record_attempts",
    "resend_events",
]

EVENT_COLUMNS = """owner_id, id, owner_seq, type, created_on, data::text AS data, status,
    attempts, next_attempt_at, retry_from, delivered_on, last_error"""

STATS = """
    SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
           min(created_on) FILTER (WHERE status = 'pending') AS oldest_pending,
           (SELECT count(*) FROM events WHERE status = 'dead') AS dead,
           clock_timestamp() AS now
      FROM events WHERE status = 'pending'
"""


@dataclass(frozen=True)
class OutboxEvent:
    """One row of the outbox; `data` is the JSON text of the event's data as stored."""

    owner_id: str
    id: int
    owner_seq: int
    type: str
    created_on: datetime
    data: str
    status: str
    attempts: int
    next_attempt_at: datetime
    retry_from: datetime
    delivered_on: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, row: Any) -> "OutboxEvent":
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Attempt:
    """What came of one delivery attempt: 'delivered', 'retry' at `next_attempt_at`, or
    'dead' (the retry window has passed)."""

    event: OutboxEvent
    outcome: str
    next_attempt_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class EventStats:
    pending: int
    dead: int
    oldest_pending_seconds: float


async def open_connection(url: str | URL, *, timeout: float) -> asyncpg.Connection:
    """A connection of its own (not the request pool's): the worker's transactions last as
    long as a receiver takes to answer. It prepares nothing by name, so it works behind
    PgBouncer in transaction mode as well."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection: asyncpg.Connection = await asyncpg.connect(
        dsn, timeout=timeout, statement_cache_size=0
    )
    return connection


async def configure_events(
    connection: asyncpg.Connection, webhooks: bool, low_balance: int | None
) -> None:
    """Tells the write functions whether to write events, and the app's threshold."""
    await connection.execute("SELECT ledger_configure_events($1, $2)", webhooks, low_balance)


async def claim_events(connection: asyncpg.Connection, limit: int) -> list[OutboxEvent]:
    """Due events, each its owner's oldest pending one; locked until the transaction of
    `connection` (which the caller opened) ends."""
    rows = await connection.fetch(f"SELECT {EVENT_COLUMNS} FROM ledger_claim_events($1)", limit)
    return [OutboxEvent.of(row) for row in rows]


async def claim_following(
    connection: asyncpg.Connection, owner_ids: Sequence[str], limit: int
) -> list[OutboxEvent]:
    """For owners whose oldest pending event this transaction claimed: that one and up to
    `limit` - 1 next ones each, by owner and in order, locked like it."""
    rows = await connection.fetch(
        f"SELECT {EVENT_COLUMNS} FROM ledger_claim_following($1, $2)", list(owner_ids), limit
    )
    return [OutboxEvent.of(row) for row in rows]


async def record_attempts(connection: asyncpg.Connection, attempts: Sequence[Attempt]) -> None:
    await connection.execute(
        "SELECT ledger_record_attempts($1, $2, $3, $4, $5)",
        [a.event.owner_id for a in attempts],
        [a.event.id for a in attempts],
        [a.outcome for a in attempts],
        [a.next_attempt_at for a in attempts],
        [a.error for a in attempts],
    )


async def prune_events(connection: asyncpg.Connection, before: datetime, batch: int) -> int:
    """Deletes delivered events older than `before`, `batch` at a time (each batch its own
    transaction); answers how many."""
    total = 0
    while True:
        pruned: int = await connection.fetchval("SELECT ledger_prune_events($1, $2)", before, batch)
        total += pruned
        if pruned < batch:
            return total


async def event_stats(connection: asyncpg.Connection) -> EventStats:
    row = await connection.fetchrow(STATS)
    assert row is not None
    oldest = row["oldest_pending"]
    age = (row["now"] - oldest).total_seconds() if oldest is not None else 0.0
    return EventStats(pending=row["pending"], dead=row["dead"], oldest_pending_seconds=age)


async def list_events(
    connection: asyncpg.Connection, since: int, limit: int, status: str | None = None
) -> list[OutboxEvent]:
    """Events with an id above `since`, by id, of one status or all."""
    rows = await connection.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE id > $1 AND ($3::text IS NULL"
        " OR status = $3) ORDER BY id LIMIT $2",
        since,
        limit,
        status,
    )
    return [OutboxEvent.of(row) for row in rows]


async def resend_events(connection: asyncpg.Connection, ids: Sequence[int] | None) -> int:
    """Makes dead-lettered events (all, or those of `ids`) pending again; how many."""
    count: int = await connection.fetchval(
        "SELECT ledger_resend_events($1)", None if ids is None else list(ids)
    )
    return count
