"""An owner's history, newest first: which entries a page asks for, where a page continues
(its cursor), and what it holds. Pure domain: no storage, no GraphQL.

Within an owner, entries are ordered by (created_on, id); both grow in commit order, so an
entry committed while a client pages always sorts before the page it is on and can never
show up twice or push another entry out of a later page.
"""

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from graphql_ledger.ledger import Entry
from graphql_ledger.operations import LedgerOperation

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "HistoryPage",
    "HistoryQuery",
    "InvalidCursor",
    "Position",
]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_CURSOR_VERSION = "e1"
_MAX_ID = 2**63 - 1  # above every bigint id


class InvalidCursor(ValueError):
    """A cursor that is malformed, or was issued for another owner or other filters."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where an entry sits in its owner's history."""

    created_on: datetime
    id: int


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """A page of an owner's entries: at most `first` of them, older than `after`, of
    `operation` only, created within [since, until] (both inclusive), whose metadata holds
    every pair of `metadata`, when given."""

    owner_id: str
    first: int = DEFAULT_PAGE_SIZE
    after: Position | None = None
    operation: LedgerOperation | None = None
    since: datetime | None = None
    until: datetime | None = None
    metadata: tuple[tuple[str, str], ...] | None = None  # pairs an entry's metadata holds

    def upper_bound(self) -> Position | None:
        """The page's entries sort strictly below this position: the cursor's, or just
        above `until`, whichever is lower. One bound, so that an index scan can start
        right at it."""
        bounds = [self.after] if self.after else []
        if self.until is not None:
            bounds.append(Position(self.until, _MAX_ID))
        return min(bounds, key=lambda p: (p.created_on, p.id), default=None)

    def cursor(self, entry: Entry) -> str:
        """The opaque cursor of `entry` in this query's results."""
        micros = (entry.created_on - _EPOCH) // _MICROSECOND
        text = f"{_CURSOR_VERSION}:{micros}:{entry.id}:{self._fingerprint()}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def position_of(self, cursor: str) -> Position:
        """The position a cursor of this same query (owner and filters) points at."""
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            version, micros, entry_id, fingerprint = (
                base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii").split(":")
            )
            position = Position(_EPOCH + int(micros) * _MICROSECOND, int(entry_id))
        except (ValueError, UnicodeError, binascii.Error, OverflowError):
            raise InvalidCursor("after is not a cursor of this API") from None
        if version != _CURSOR_VERSION or fingerprint != self._fingerprint():
            raise InvalidCursor(
                "after is a cursor of another owner or other filters; "
                "page with the arguments that produced it"
            )
        return position

    def _fingerprint(self) -> str:
        filters = (
            self.owner_id,
            self.operation.name if self.operation else None,
            self.since.astimezone(UTC).isoformat() if self.since else None,
            self.until.astimezone(UTC).isoformat() if self.until else None,
            *([self.metadata] if self.metadata else []),
        )
        return hashlib.blake2b(repr(filters).encode(), digest_size=6).hexdigest()


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """The entries of one page, newest first, and whether older ones follow."""

    entries: tuple[Entry, ...]
    has_next_page: bool
