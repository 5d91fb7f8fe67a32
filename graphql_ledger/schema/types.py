"""The GraphQL types every app shares unchanged. Types that mention an app's operation enum
are made per app, in `factory.py`."""

import enum
from datetime import datetime
from typing import Any

import strawberry
from strawberry.relay import PageInfo
from strawberry.scalars import JSON

from graphql_ledger import holds, ledger
from graphql_ledger.grants import MAX_EXPIRING_WITHIN, expiring_within_problem
from graphql_ledger.schema.errors import BadUserInput

__all__ = [
    "JSON",
    "Balance",
    "EntryKind",
    "HoldStatus",
    "InsufficientCredits",
    "InvalidInput",
    "LedgerError",
    "LedgerErrorCode",
    "LimitReached",
    "NotFound",
    "NotRefundable",
    "OperationNotAllowed",
    "PageInfo",
    "page_info",
]

EntryKind = strawberry.enum(
    ledger.EntryKind,
    name="EntryKind",
    description="What wrote an entry: an operation, a hold's capture, a refund of another "
    "entry, or the expiry of a grant's remaining credits.",
)
HoldStatus = strawberry.enum(
    holds.HoldStatus,
    name="HoldStatus",
    description="OPEN until captured or released; EXPIRED from the instant expiresAt passes "
    "while OPEN.",
)


@strawberry.enum(description="What a LedgerError is about; clients branch on it.")
class LedgerErrorCode(enum.Enum):
    INSUFFICIENT_CREDITS = "INSUFFICIENT_CREDITS"
    NONCE_CONFLICT = "NONCE_CONFLICT"
    INVALID_INPUT = "INVALID_INPUT"
    OPERATION_NOT_ALLOWED = "OPERATION_NOT_ALLOWED"
    LIMIT_REACHED = "LIMIT_REACHED"
    NOT_FOUND = "NOT_FOUND"
    HOLD_NOT_OPEN = "HOLD_NOT_OPEN"
    ALREADY_REFUNDED = "ALREADY_REFUNDED"
    NOT_REFUNDABLE = "NOT_REFUNDABLE"


async def _expiring_within(root: Any, info: strawberry.Info, seconds: int) -> int:
    problem = expiring_within_problem(seconds)
    if problem is not None:
        raise BadUserInput(problem)
    if root.last_updated is None:
        return 0
    credits: int = await info.context.expiring_within.load((root.owner_id, root.at, seconds))
    return credits


@strawberry.type(description="An owner's credit balance, now or as of an instant.")
class Balance:
    owner_id: strawberry.ID
    balance: int = strawberry.field(description="0 for an owner with no entries.")
    last_updated: datetime | None = strawberry.field(
        description="createdOn of the newest entry counted; null when there is none."
    )
    held: int = strawberry.field(
        description="Credits reserved by open holds whose expiresAt is still ahead."
    )
    available: int = strawberry.field(
        description="balance - held, less credits of grants that have expired: what a spend "
        "or a reserve may take; never below 0."
    )

    expiring_within: int = strawberry.field(
        resolver=_expiring_within,
        description="How many available credits expire within this many seconds (0 to "
        f"{MAX_EXPIRING_WITHIN:,}) of now, or of `at` for a balance as of an instant.",
    )

    @classmethod
    def of(cls, record: ledger.Balance) -> "Balance":
        found = cls(
            owner_id=strawberry.ID(record.owner_id),
            balance=record.balance,
            last_updated=record.last_updated,
            held=record.held,
            available=record.available,
        )
        found.at = record.at  # type: ignore[attr-defined]
        return found


def page_info(cursors: list[str], *, has_next: bool, has_previous: bool) -> PageInfo:
    """The PageInfo of a page whose edges have these cursors, in order."""
    return PageInfo(
        has_next_page=has_next,
        has_previous_page=has_previous,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


@strawberry.interface(description="A refusal: nothing was written.")
class LedgerError:
    code: LedgerErrorCode
    message: str


@strawberry.type(description="The write would take the available credits below zero.")
class InsufficientCredits(LedgerError):
    balance: int = strawberry.field(
        description="The owner's available credits now (balance less what holds reserve)."
    )
    required: int = strawberry.field(description="Credits the operation takes.")

    @classmethod
    def of(cls, refusal: ledger.InsufficientCredits) -> "InsufficientCredits":
        return cls(
            code=LedgerErrorCode[refusal.code],
            message=refusal.message,
            balance=refusal.balance,
            required=refusal.required,
        )


@strawberry.type(description="An input field breaks the input rules.")
class InvalidInput(LedgerError):
    field: str = strawberry.field(description="The input field at fault, e.g. ownerId.")

    @classmethod
    def of(cls, refusal: ledger.InvalidInput) -> "InvalidInput":
        return cls(code=LedgerErrorCode[refusal.code], message=refusal.message, field=refusal.field)


@strawberry.type(
    description="The caller may not create this entry: another owner's, or an operation "
    "reserved to backend services."
)
class OperationNotAllowed(LedgerError):
    @classmethod
    def of(cls, refusal: ledger.OperationNotAllowed) -> "OperationNotAllowed":
        return cls(code=LedgerErrorCode[refusal.code], message=refusal.message)


@strawberry.type(description="The owner already had this operation as often as it may.")
class LimitReached(LedgerError):
    retry_after: datetime | None = strawberry.field(
        description="When the operation is allowed again; null for never."
    )

    @classmethod
    def of(cls, refusal: ledger.LimitReached) -> "LimitReached":
        return cls(
            code=LedgerErrorCode[refusal.code],
            message=refusal.message,
            retry_after=refusal.retry_after,
        )


@strawberry.type(
    description="No such hold or entry for this caller: unknown, another owner's, or another app's."
)
class NotFound(LedgerError):
    @classmethod
    def of(cls, refusal: holds.NotFound) -> "NotFound":
        return cls(code=LedgerErrorCode[refusal.code], message=refusal.message)


@strawberry.type(description="A REFUND or EXPIRY entry cannot be refunded.")
class NotRefundable(LedgerError):
    @classmethod
    def of(cls, refusal: holds.NotRefundable) -> "NotRefundable":
        return cls(code=LedgerErrorCode[refusal.code], message=refusal.message)
