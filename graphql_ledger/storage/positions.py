"""Positions in the primary's write-ahead log: the tokens a client carries to read its own
writes on a replica (`extensions.ledgerPosition`, `X-Ledger-Position`), in PostgreSQL's
`pg_lsn` text form, and the position one request's reads must see."""

import re
from dataclasses import dataclass

__all__ = ["CURRENT_POSITION", "LedgerPosition", "format_position", "parse_position"]

# Read on the write's connection right after its commit returned: the insert position is
# then at or past the commit record's end, whatever synchronous_commit says.
CURRENT_POSITION = "SELECT pg_current_wal_insert_lsn()::text"

_LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")


def parse_position(text: str) -> int:
    """The WAL position `text` (`pg_lsn` form: `16/B374D848`) as a number. Raises
    ValueError for anything else."""
    if not _LSN.fullmatch(text):
        raise ValueError(f"{text!r} is not a ledger position")
    high, low = text.split("/")
    return int(high, 16) << 32 | int(low, 16)


def format_position(lsn: int) -> str:
    """`lsn` in the `pg_lsn` form."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


@dataclass
class LedgerPosition:
    """The WAL position one request's (or one WebSocket connection's) reads must see: the
    one its client sent, advanced by each of its own writes. Its resolvers share it."""

    lsn: int = 0

    def advance(self, lsn: int) -> None:
        self.lsn = max(self.lsn, lsn)

    @property
    def token(self) -> str | None:
        """The position as clients carry it; None when there is none."""
        return format_position(self.lsn) if self.lsn else None
