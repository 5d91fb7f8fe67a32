"""What the ledger records and what it refuses: entries, balances, the refusals a write can
meet, and the rules every ownerId and nonce obey. Pure domain: no storage, no GraphQL."""

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from graphql_ledger.operations import LedgerOperation

__all__ = [
    "MAX_IDENTIFIER_LENGTH",
    "Balance",
    "Entry",
    "EntryOutcome",
    "InsufficientCredits",
    "InvalidInput",
    "LimitReached",
    "NonceConflict",
    "OperationNotAllowed",
    "identifier_problem",
]

MAX_IDENTIFIER_LENGTH = 255

# Control characters (Cc), invisible format characters such as RTL marks and zero-width
# joiners (Cf), and lone surrogates (Cs) that cannot even be stored as UTF-8.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


@dataclass(frozen=True, slots=True)
class Entry:
    """One append-only line of an owner's ledger."""

    id: int
    owner_id: str
    operation: LedgerOperation
    amount: int
    balance_after: int
    nonce: str
    created_on: datetime
    replayed: bool = False  # answered from an earlier request with the same nonce


@dataclass(frozen=True, slots=True)
class Balance:
    """An owner's current balance; an owner with no entries has 0 and no `last_updated`."""

    owner_id: str
    balance: int
    last_updated: datetime | None


@dataclass(frozen=True, slots=True)
class InsufficientCredits:
    """The entry would have taken the balance below zero; nothing was written."""

    code: ClassVar[str] = "INSUFFICIENT_CREDITS"

    balance: int
    required: int

    @property
    def message(self) -> str:
        return f"this operation needs {self.required} credits and the balance is {self.balance}"


@dataclass(frozen=True, slots=True)
class NonceConflict:
    """The nonce already names another operation's entry for this owner."""

    code: ClassVar[str] = "NONCE_CONFLICT"

    existing: Entry

    @property
    def message(self) -> str:
        return (
            f"nonce {self.existing.nonce!r} already identifies a "
            f"{self.existing.operation.name} entry of this owner"
        )


@dataclass(frozen=True, slots=True)
class InvalidInput:
    """A field of the request breaks the input rules; nothing was written."""

    code: ClassVar[str] = "INVALID_INPUT"

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class OperationNotAllowed:
    """The caller may not create this entry: another owner's, or an operation reserved
    to backend services. Nothing was written, and nothing of the owner is revealed."""

    code: ClassVar[str] = "OPERATION_NOT_ALLOWED"

    message: str


@dataclass(frozen=True, slots=True)
class LimitReached:
    """The owner already had this operation as often as its limit allows; nothing was
    written. `retry_after` is when it is allowed again, None for never."""

    code: ClassVar[str] = "LIMIT_REACHED"

    operation: LedgerOperation
    retry_after: datetime | None

    @property
    def message(self) -> str:
        if self.retry_after is None:
            return f"{self.operation.name} is allowed once per owner and was already granted"
        return (
            f"{self.operation.name} is allowed once per UTC day; "
            f"next at {self.retry_after.isoformat()}"
        )


EntryOutcome = (
    Entry | InsufficientCredits | NonceConflict | InvalidInput | OperationNotAllowed | LimitReached
)


def identifier_problem(field: str, value: str) -> InvalidInput | None:
    """Checks an ownerId or nonce: 1 to 255 characters, none of them control or format
    characters. Returns the refusal, or None when the value is acceptable."""
    if not value:
        return InvalidInput(field, f"{field} must not be empty")
    if len(value) > MAX_IDENTIFIER_LENGTH:
        return InvalidInput(
            field, f"{field} is {len(value)} characters long; at most {MAX_IDENTIFIER_LENGTH}"
        )
    if value.isprintable():  # the common case, checked in C
        return None
    for position, char in enumerate(value):
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return InvalidInput(
                field,
                f"{field} contains the control or format character U+{ord(char):04X} "
                f"at position {position}",
            )
    return None
