"""Holds, refunds and what they refuse: a hold reserves an owner's credits for a job until
it is captured (booking what the job used), released, or expires; a refund reverses one
entry. Pure domain: no storage, no GraphQL.

A hold's `status` as stored is OPEN, CAPTURED or RELEASED; an OPEN hold whose `expires_at`
has passed reads as EXPIRED from that instant, with no job needed to mark it.
"""

import base64
import binascii
import enum
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from graphql_ledger.ledger import (
    Entry,
    EntryOutcome,
    InsufficientCredits,
    InvalidInput,
    LimitReached,
    Metadata,
    NonceConflict,
    OperationNotAllowed,
)
from graphql_ledger.operations import LedgerOperation

__all__ = [
    "MAX_HOLD_SECONDS",
    "AlreadyRefunded",
    "CaptureOutcome",
    "CreateEntryOutcome",
    "Hold",
    "HoldNonceConflict",
    "HoldNotOpen",
    "HoldStatus",
    "NotFound",
    "NotRefundable",
    "RefundOutcome",
    "ReleaseOutcome",
    "ReserveOutcome",
    "expires_in_problem",
    "hold_cursor",
    "hold_position",
    "reservable_problem",
]

MAX_HOLD_SECONDS = 86_400


class HoldStatus(enum.Enum):
    OPEN = "open"
    CAPTURED = "captured"
    RELEASED = "released"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Hold:
    """Credits reserved for a job: `quantity` units of a spending `operation`, `amount`
    (negative) credits in all. `capture_id` is the entry its capture booked."""

    id: int
    owner_id: str
    operation: LedgerOperation
    quantity: int
    amount: int
    status: HoldStatus
    nonce: str
    metadata: Metadata | None
    created_on: datetime
    expires_at: datetime
    capture_id: int | None = None
    replayed: bool = False  # answered from an earlier reserve with the same nonce


@dataclass(frozen=True, slots=True)
class NotFound:
    """No such hold or entry for this caller: unknown, another owner's, or another app's
    (never a hint which)."""

    code: ClassVar[str] = "NOT_FOUND"

    what: str

    @property
    def message(self) -> str:
        return f"no such {self.what}"


@dataclass(frozen=True, slots=True)
class HoldNotOpen:
    """The hold was captured, released or expired: it can no longer be captured (or, once
    captured or expired, released)."""

    code: ClassVar[str] = "HOLD_NOT_OPEN"

    hold: Hold

    @property
    def message(self) -> str:
        return f"hold {self.hold.id} is {self.hold.status.name}, not OPEN"


@dataclass(frozen=True, slots=True)
class HoldNonceConflict:
    """The nonce already names a hold of this owner (another operation or quantity, or a
    write that is not a reserve)."""

    code: ClassVar[str] = "NONCE_CONFLICT"

    existing: Hold

    @property
    def message(self) -> str:
        return (
            f"nonce {self.existing.nonce!r} already identifies hold {self.existing.id} "
            f"({self.existing.operation.name} x{self.existing.quantity}) of this owner"
        )


@dataclass(frozen=True, slots=True)
class AlreadyRefunded:
    """The entry was refunded already, by `refund`."""

    code: ClassVar[str] = "ALREADY_REFUNDED"

    refund: Entry

    @property
    def message(self) -> str:
        return f"entry {self.refund.refund_of} was already refunded by entry {self.refund.id}"


@dataclass(frozen=True, slots=True)
class NotRefundable:
    """Only OPERATION and CAPTURE entries can be refunded."""

    code: ClassVar[str] = "NOT_REFUNDABLE"

    entry: Entry

    @property
    def message(self) -> str:
        return f"entry {self.entry.id} is a {self.entry.kind.name} entry, which is not refundable"


CreateEntryOutcome = EntryOutcome | HoldNonceConflict
ReserveOutcome = (
    Hold
    | InsufficientCredits
    | NonceConflict
    | HoldNonceConflict
    | InvalidInput
    | OperationNotAllowed
    | LimitReached
)
CaptureOutcome = Entry | HoldNotOpen | NotFound | InvalidInput | OperationNotAllowed
ReleaseOutcome = Hold | HoldNotOpen | NotFound | OperationNotAllowed
RefundOutcome = (
    Entry
    | AlreadyRefunded
    | NotRefundable
    | InsufficientCredits
    | NonceConflict
    | HoldNonceConflict
    | InvalidInput
    | NotFound
    | OperationNotAllowed
)


def reservable_problem(operation: LedgerOperation) -> InvalidInput | None:
    """A hold reserves credits for a spend: an operation that takes credits, unlimited."""
    if operation.amount >= 0:
        return InvalidInput(
            "operation", f"{operation.name} takes no credits: only spends can be reserved"
        )
    if operation.limit is not None:
        return InvalidInput("operation", f"{operation.name} has a limit and cannot be reserved")
    return None


def expires_in_problem(seconds: int) -> InvalidInput | None:
    if not 1 <= seconds <= MAX_HOLD_SECONDS:
        return InvalidInput(
            "expiresIn", f"expiresIn must be from 1 to {MAX_HOLD_SECONDS:,} seconds, not {seconds}"
        )
    return None


_CURSOR_VERSION = "h1"


def hold_cursor(hold: Hold) -> str:
    """The opaque cursor of a hold in an owner's holds, newest first."""
    text = f"{_CURSOR_VERSION}:{hold.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def hold_position(cursor: str) -> int | None:
    """The hold id a cursor of `holds` points at; None when it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, hold_id = base64.urlsafe_b64decode(padded.encode("ascii")).decode().split(":")
        return int(hold_id) if version == _CURSOR_VERSION else None
    except (ValueError, UnicodeError, binascii.Error):
        return None
