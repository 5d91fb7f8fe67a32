"""The GraphQL types every app shares unchanged. Types that mention an app's operation enum
are made per app, in `factory.py`."""

import enum
from datetime import datetime

import strawberry
from strawberry.relay import PageInfo

from graphql_ledger import ledger

__all__ = [
    "Balance",
    "InsufficientCredits",
    "InvalidInput",
    "LedgerError",
    "LedgerErrorCode",
    "LimitReached",
    "OperationNotAllowed",
    "PageInfo",
]


@strawberry.enum(description="What a LedgerError is about; clients branch on it.")
class LedgerErrorCode(enum.Enum):
    INSUFFICIENT_CREDITS = "INSUFFICIENT_CREDITS"
    NONCE_CONFLICT = "NONCE_CONFLICT"
    INVALID_INPUT = "INVALID_INPUT"
    OPERATION_NOT_ALLOWED = "OPERATION_NOT_ALLOWED"
    LIMIT_REACHED = "LIMIT_REACHED"


@strawberry.type(description="An owner's credit balance, now or as of an instant.")
class Balance:
    owner_id: strawberry.ID
    balance: int = strawberry.field(description="0 for an owner with no entries.")
    last_updated: datetime | None = strawberry.field(
        description="createdOn of the newest entry counted; null when there is none."
    )

    @classmethod
    def of(cls, record: ledger.Balance) -> "Balance":
        return cls(
            owner_id=strawberry.ID(record.owner_id),
            balance=record.balance,
            last_updated=record.last_updated,
        )


@strawberry.interface(description="A refusal: nothing was written.")
class LedgerError:
    code: LedgerErrorCode
    message: str


@strawberry.type(description="The entry would take the balance below zero.")
class InsufficientCredits(LedgerError):
    balance: int = strawberry.field(description="The owner's balance now.")
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
