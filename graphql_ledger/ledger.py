"""What the ledger records and what it refuses: entries, balances, the refusals a write can
meet, and the rules every ownerId and nonce obey. Pure domain: no storage, no GraphQL."""

import enum
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from graphql_ledger.operations import LedgerOperation

__all__ = [
    "MAX_IDENTIFIER_LENGTH",
    "MAX_METADATA_KEYS",
    "MAX_QUANTITY",
    "Balance",
    "Entry",
    "EntryKind",
    "EntryOutcome",
    "InsufficientCredits",
    "InvalidInput",
    "LimitReached",
    "Metadata",
    "NonceConflict",
    "OperationNotAllowed",
    "identifier_problem",
    "metadata_problem",
    "quantity_problem",
]

MAX_IDENTIFIER_LENGTH = 255
MAX_QUANTITY = 1_000_000
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_LENGTH = 64
MAX_METADATA_VALUE_LENGTH = 1000

# What a client attaches to a write to find it later ({"jobId": "..."}): string to string.
Metadata = Mapping[str, str]


class EntryKind(enum.Enum):
    """What wrote an entry: an operation, a hold's capture, a refund of another entry, or
    the expiry of a grant's remaining credits."""

    OPERATION = "operation"
    CAPTURE = "capture"
    REFUND = "refund"
    EXPIRY = "expiry"


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
    quantity: int = 1
    kind: EntryKind = EntryKind.OPERATION
    metadata: Metadata | None = None
    refund_of: int | None = None  # the id of the entry a REFUND reverses
    expires_at: datetime | None = None  # when a grant's credits expire; None: never
    expiry_of: int | None = None  # the id of the grant an EXPIRY books out

    @property
    def is_credit(self) -> bool:
        """Whether it added credits of its own (a grant, expiring or not), which have a
        `remaining`."""
        return self.kind is EntryKind.OPERATION and self.amount > 0


@dataclass(frozen=True, slots=True)
class Balance:
    """An owner's balance, now or as of an instant: `balance` is the sum of its entries,
    `held` the credits its open holds reserve, `lapsed` those of its grants that have
    expired and are not booked out yet; an owner with no entries has 0 and no
    `last_updated`. `at` is the instant a balance as of an instant was asked for."""

    owner_id: str
    balance: int
    last_updated: datetime | None
    held: int = 0
    lapsed: int = 0
    at: datetime | None = None

    @property
    def available(self) -> int:
        """What a spend may take: the balance less what holds reserve and what has lapsed;
        never below 0 (the database keeps it so; a balance as of an instant taken across a
        clock step back could otherwise show a hold before the credits it reserved)."""
        return max(0, self.balance - self.held - self.lapsed)


@dataclass(frozen=True, slots=True)
class InsufficientCredits:
    """The write would have taken the available credits below zero; nothing was written.
    `balance` is what was available, `required` the whole amount the write needs."""

    code: ClassVar[str] = "INSUFFICIENT_CREDITS"

    balance: int
    required: int

    @property
    def message(self) -> str:
        return f"this operation needs {self.required} credits and {self.balance} are available"


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


def quantity_problem(
    quantity: int, operation: LedgerOperation, field: str = "quantity"
) -> InvalidInput | None:
    """An entry's units: 1 to MAX_QUANTITY, and only 1 for an operation with a limit."""
    if not 1 <= quantity <= MAX_QUANTITY:
        return InvalidInput(field, f"{field} must be from 1 to {MAX_QUANTITY:,}, not {quantity}")
    if quantity != 1 and operation.limit is not None:
        return InvalidInput(field, f"{operation.name} has a limit and takes {field} 1 only")
    return None


def metadata_problem(value: object, field: str = "metadata") -> InvalidInput | None:
    """Metadata is an object of at most 16 keys (1 to 64 characters, no control or format
    characters), each value a string of at most 1,000 characters."""
    if not isinstance(value, dict):
        return InvalidInput(field, f"{field} must be an object of strings")
    if len(value) > MAX_METADATA_KEYS:
        return InvalidInput(field, f"{field} has {len(value)} keys; at most {MAX_METADATA_KEYS}")
    for key, text in value.items():
        if not isinstance(key, str) or not key or len(key) > MAX_METADATA_KEY_LENGTH:
            return InvalidInput(
                field, f"{field} keys must be 1 to {MAX_METADATA_KEY_LENGTH} characters"
            )
        if _refused_character(key) is not None:
            return InvalidInput(field, f"{field} key {key!r} contains a control character")
        if not isinstance(text, str):
            return InvalidInput(field, f"{field} value of {key!r} must be a string")
        if len(text) > MAX_METADATA_VALUE_LENGTH:
            return InvalidInput(
                field,
                f"{field} value of {key!r} is {len(text)} characters long;"
                f" at most {MAX_METADATA_VALUE_LENGTH}",
            )
    return None


def _refused_character(value: str) -> tuple[int, str] | None:
    """The first control, format or surrogate character of `value` and its position."""
    if value.isprintable():  # the common case, checked in C
        return None
    for position, char in enumerate(value):
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return position, char
    return None


def identifier_problem(field: str, value: str) -> InvalidInput | None:
    """Checks an ownerId or nonce: 1 to 255 characters, none of them control or format
    characters. Returns the refusal, or None when the value is acceptable."""
    if not value:
        return InvalidInput(field, f"{field} must not be empty")
    if len(value) > MAX_IDENTIFIER_LENGTH:
        return InvalidInput(
            field, f"{field} is {len(value)} characters long; at most {MAX_IDENTIFIER_LENGTH}"
        )
    refused = _refused_character(value)
    if refused is not None:
        position, char = refused
        return InvalidInput(
            field,
            f"{field} contains the control or format character U+{ord(char):04X} "
            f"at position {position}",
        )
    return None
