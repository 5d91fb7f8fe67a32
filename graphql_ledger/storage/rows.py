"""Rows of the ledger's tables as the domain's values: the columns every statement selects
for an entry or a hold, and the mapping of a row to an `Entry` or a `Hold`. Metadata travels
as JSON text (`jsonb` in the tables), which keeps asyncpg's codecs untouched."""

from typing import Any

import orjson

from graphql_ledger.holds import Hold, HoldStatus
from graphql_ledger.ledger import Entry, EntryKind, Metadata
from graphql_ledger.operations import LedgerOperation

__all__ = [
    "ENTRY_COLUMNS",
    "HOLD_COLUMNS",
    "WRITTEN_ENTRY",
    "WRITTEN_HOLD",
    "entry_of",
    "hold_of",
    "metadata_json",
    "written_entry",
    "written_hold",
]

# An entry as every read selects it, from `entries e`; the write functions answer the same
# names (entry_id AS id, ...). An EXPIRY, the ledger's own, shows its grant's nonce.
ENTRY_COLUMNS = """e.id, e.owner_id, e.operation, e.amount, e.balance_after,
    coalesce(e.nonce, (SELECT g.nonce FROM grants g
                        WHERE g.owner_id = e.owner_id AND g.entry_id = e.expiry_of)) AS nonce,
    e.created_on, coalesce(e.quantity, 1) AS quantity, e.kind, e.metadata::text AS metadata,
    e.refund_of, e.expires_at, e.expiry_of"""

# An entry as a write function answers it (ledger_entry_answer), and a hold
# (ledger_hold_answer): the same names after entry_ or hold_.
WRITTEN_ENTRY = """outcome, entry_id, entry_owner_id, entry_operation, entry_amount,
    entry_balance_after, entry_nonce, entry_created_on, entry_quantity, entry_kind,
    entry_metadata::text AS entry_metadata, entry_refund_of, current_balance, required,
    retry_after, hold_id, reserved, entry_expires_at, entry_expiry_of"""
WRITTEN_HOLD = """outcome, hold_id, hold_owner_id, hold_operation, hold_quantity, hold_amount,
    hold_status, hold_nonce, hold_metadata::text AS hold_metadata, hold_created_on,
    hold_expires_at, hold_capture_id, current_balance, required, entry_id"""

# A hold as every read selects it, from `holds h`, its status as clients see it.
HOLD_COLUMNS = """h.id, h.owner_id, h.operation, h.quantity, h.amount,
    ledger_hold_status(h.status, h.expires_at, clock_timestamp()) AS status, h.nonce,
    h.metadata::text AS metadata, h.created_on, h.expires_at, h.capture_id"""


def metadata_json(metadata: Metadata | None) -> str | None:
    """Metadata as the JSON text a statement takes (`$n::jsonb`)."""
    return None if metadata is None else orjson.dumps(dict(metadata)).decode()


def _metadata(text: str | None) -> Metadata | None:
    if text is None:
        return None
    found: dict[str, str] = orjson.loads(text)
    return found


def entry_of(
    row: Any, operations: type[LedgerOperation], *, prefix: str = "", replayed: bool = False
) -> Entry:
    """The entry in `row`, whose columns are ENTRY_COLUMNS' names after `prefix`."""
    kind = row[f"{prefix}kind"]
    return Entry(
        id=row[f"{prefix}id"],
        owner_id=row[f"{prefix}owner_id"],
        operation=operations[row[f"{prefix}operation"]],
        amount=row[f"{prefix}amount"],
        balance_after=row[f"{prefix}balance_after"],
        nonce=row[f"{prefix}nonce"],
        created_on=row[f"{prefix}created_on"],
        replayed=replayed,
        quantity=row[f"{prefix}quantity"],
        kind=EntryKind(kind) if kind else EntryKind.OPERATION,
        metadata=_metadata(row[f"{prefix}metadata"]),
        refund_of=row[f"{prefix}refund_of"],
        expires_at=row[f"{prefix}expires_at"],
        expiry_of=row[f"{prefix}expiry_of"],
    )


def written_entry(row: Any, operations: type[LedgerOperation], created: str = "created") -> Entry:
    """The entry a write function answered (its columns named entry_...): a replay unless
    the outcome is `created`."""
    return entry_of(row, operations, prefix="entry_", replayed=row["outcome"] != created)


def written_hold(row: Any, operations: type[LedgerOperation], created: str = "created") -> Hold:
    """The hold a write function answered (its columns named hold_...)."""
    return hold_of(row, operations, prefix="hold_", replayed=row["outcome"] != created)


def hold_of(
    row: Any, operations: type[LedgerOperation], *, prefix: str = "", replayed: bool = False
) -> Hold:
    """The hold in `row`, whose columns are HOLD_COLUMNS' names after `prefix`."""
    return Hold(
        id=row[f"{prefix}id"],
        owner_id=row[f"{prefix}owner_id"],
        operation=operations[row[f"{prefix}operation"]],
        quantity=row[f"{prefix}quantity"],
        amount=row[f"{prefix}amount"],
        status=HoldStatus(row[f"{prefix}status"]),
        nonce=row[f"{prefix}nonce"],
        metadata=_metadata(row[f"{prefix}metadata"]),
        created_on=row[f"{prefix}created_on"],
        expires_at=row[f"{prefix}expires_at"],
        capture_id=row[f"{prefix}capture_id"],
        replayed=replayed,
    )
