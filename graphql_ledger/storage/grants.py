"""Reads of grants: the credits each positive entry has left (`LedgerEntry.remaining`), an
owner's grants in the order spends take them (`Owner.grants`) and what expires soon
(`Balance.expiringWithin`). The arithmetic is ledger_grants() in PostgreSQL: an expiring
grant's remaining is kept in the grants table, and credits that never expire are spent
oldest first, so the newest such entries hold what the owner has of them.

Expiry itself is the database's: ledger_expire_grants(), which every serving process calls
every few seconds (graphql_ledger.expiry), and which every write of an owner does first."""

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from graphql_ledger.ledger import Entry
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.storage.connections import Connections
from graphql_ledger.storage.rows import ENTRY_COLUMNS, entry_of

__all__ = ["GrantPageQuery", "GrantReads", "grant_cursor", "grant_position"]

# Every owner's grants with credits left now, by entry id (a DataLoader's batch).
REMAINING = """
    SELECT q.owner_id, g.entry_id, g.remaining
      FROM unnest($1::text[]) AS q(owner_id)
     CROSS JOIN LATERAL ledger_grants(q.owner_id, now()) g
"""

# One page of an owner's grants: unexpired ones soonest-expiring first, then those that
# never expire, oldest first (the order spends take them in), after a cursor's position.
GRANT_PAGE = f"""
    SELECT g.remaining, {ENTRY_COLUMNS}
      FROM ledger_grants($1, now()) g
      JOIN entries e ON e.owner_id = $1 AND e.created_on = g.created_on AND e.id = g.entry_id
     WHERE (coalesce(g.expires_at, 'infinity'), g.entry_id)
           > (CASE WHEN $3::bigint IS NULL THEN '-infinity'
                   ELSE coalesce($2::timestamptz, 'infinity') END, coalesce($3::bigint, 0))
     ORDER BY coalesce(g.expires_at, 'infinity'), g.entry_id
     LIMIT $4
"""

# How many available credits of each owner expire within so many seconds of an instant
# (now when NULL).
EXPIRING_WITHIN = """
    SELECT ledger_expiring_within(q.owner_id, q.at, q.seconds) AS credits
      FROM unnest($1::text[], $2::timestamptz[], $3::integer[]) WITH ORDINALITY
           AS q(owner_id, at, seconds, n)
     ORDER BY q.n
"""

_CURSOR_VERSION = "g1"


@dataclass(frozen=True, slots=True)
class GrantPageQuery:
    """A page of an owner's grants: at most `first`, after the grant `after` points at
    (its expires_at, None for never, and its entry id)."""

    owner_id: str
    first: int
    after: tuple[datetime | None, int] | None


def grant_cursor(entry: Entry) -> str:
    """The opaque cursor of a grant in an owner's grants."""
    expires = entry.expires_at.isoformat() if entry.expires_at else ""
    text = f"{_CURSOR_VERSION}|{expires}|{entry.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def grant_position(cursor: str) -> tuple[datetime | None, int] | None:
    """Where a cursor of `grants` points; None when it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, expires, entry_id = (
            base64.urlsafe_b64decode(padded.encode("ascii")).decode().split("|")
        )
        if version != _CURSOR_VERSION:
            return None
        return (datetime.fromisoformat(expires) if expires else None, int(entry_id))
    except (ValueError, UnicodeError, binascii.Error):
        return None


class GrantReads:
    """What one app's owners have left of their grants."""

    def __init__(self, connections: Connections, operations: type[LedgerOperation]) -> None:
        self.connections = connections
        self.operations = operations

    async def remaining(self, owner_ids: Sequence[str]) -> dict[tuple[str, int], int]:
        """The credits left now by (owner, entry id), for every entry that has some."""
        rows = await self.connections.read(REMAINING, list(set(owner_ids)))
        return {(row["owner_id"], row["entry_id"]): row["remaining"] for row in rows}

    async def page(self, query: GrantPageQuery) -> tuple[list[tuple[Entry, int]], bool]:
        """A page of an owner's grants with what each has left, and whether more follow."""
        after_expires, after_id = query.after or (None, None)
        rows = await self.connections.read(
            GRANT_PAGE, query.owner_id, after_expires, after_id, query.first + 1
        )
        found = [(entry_of(row, self.operations), row["remaining"]) for row in rows]
        return found[: query.first], len(found) > query.first

    async def expiring_within(
        self, requests: Sequence[tuple[str, datetime | None, int]]
    ) -> list[int]:
        """For each (owner, instant or None for now, seconds): the available credits that
        expire after the instant and at most so many seconds later."""
        rows = await self.connections.read(
            EXPIRING_WITHIN,
            [owner for owner, _, _ in requests],
            [at for _, at, _ in requests],
            [seconds for _, _, seconds in requests],
        )
        return [row["credits"] for row in rows]
