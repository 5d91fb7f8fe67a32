"""The GraphQL types of holds and refunds for one app (a Hold names the app's operation), the
inputs and result unions of every write, and how a use case's outcome becomes a member of
its union. Made once per app by `hold_types`, over the app's `EntryTypes`.

This module must not use `from __future__ import annotations` (see `entries.py`).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Union

import strawberry
from strawberry import UNSET

from graphql_ledger import holds
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.schema.entries import EntryTypes
from graphql_ledger.schema.types import (
    JSON,
    HoldStatus,
    InsufficientCredits,
    InvalidInput,
    LedgerError,
    LedgerErrorCode,
    LimitReached,
    NotFound,
    NotRefundable,
    OperationNotAllowed,
    PageInfo,
    page_info,
)

__all__ = ["HoldTypes", "hold_types"]


def _json(metadata: object) -> Any:
    return dict(metadata) if isinstance(metadata, Mapping) else None


@dataclass(frozen=True)
class HoldTypes:
    """One app's hold types and write unions (Strawberry classes: `Any` to mypy)."""

    entries: EntryTypes
    Hold: Any
    HoldConnection: Any
    ReserveCreditsInput: Any
    CaptureHoldInput: Any
    ReleaseHoldInput: Any
    RefundEntryInput: Any
    CreateEntryResult: Any
    ReserveCreditsResult: Any
    CaptureHoldResult: Any
    ReleaseHoldResult: Any
    RefundEntryResult: Any
    HoldNotOpen: Any
    HoldNonceConflict: Any
    AlreadyRefunded: Any

    def result_of(self, outcome: Any) -> Any:
        """Any write's outcome as the member of its result union that shows it."""
        LedgerEntry = self.entries.LedgerEntry
        match outcome:
            case holds.Hold():
                return self.Hold.of(outcome)
            case holds.HoldNotOpen(hold=hold):
                return self.HoldNotOpen(
                    code=LedgerErrorCode[outcome.code],
                    message=outcome.message,
                    hold=self.Hold.of(hold),
                )
            case holds.HoldNonceConflict(existing=existing):
                return self.HoldNonceConflict(
                    code=LedgerErrorCode[outcome.code],
                    message=outcome.message,
                    existing=self.Hold.of(existing),
                )
            case holds.AlreadyRefunded(refund=refund):
                return self.AlreadyRefunded(
                    code=LedgerErrorCode[outcome.code],
                    message=outcome.message,
                    refund=LedgerEntry.of(refund),
                )
            case holds.NotFound():
                return NotFound.of(outcome)
            case holds.NotRefundable():
                return NotRefundable.of(outcome)
        return self.entries.result_of(outcome)


def _hold_type(entries: EntryTypes) -> tuple[Any, Any]:
    """Hold, and a page of them."""
    operations = entries.operations
    LedgerEntry = entries.LedgerEntry

    @strawberry.type(
        description="Credits reserved for a job until it is captured (booking what the job "
        "used), released, or expires."
    )
    class Hold:
        id: strawberry.ID
        owner_id: strawberry.ID
        operation: LedgerOperation = strawberry.field(graphql_type=operations)
        quantity: int = strawberry.field(description="Units reserved.")
        amount: int = strawberry.field(
            description="Credits reserved: the operation's amount x quantity, negative."
        )
        status: HoldStatus
        nonce: str
        metadata: JSON | None
        created_on: datetime
        expires_at: datetime

        @strawberry.field(description="The entry its capture wrote; null otherwise.")
        async def capture(self, info: strawberry.Info) -> LedgerEntry | None:
            capture_id = self.hold.capture_id  # type: ignore[attr-defined]
            if capture_id is None:
                return None
            entry = await info.context.entries_by_id.load(capture_id)
            return None if entry is None else LedgerEntry.of(entry)

        @classmethod
        def of(cls, hold: holds.Hold) -> "Hold":
            found = cls(
                id=strawberry.ID(str(hold.id)),
                owner_id=strawberry.ID(hold.owner_id),
                operation=hold.operation,
                quantity=hold.quantity,
                amount=hold.amount,
                status=hold.status,
                nonce=hold.nonce,
                metadata=_json(hold.metadata),
                created_on=hold.created_on,
                expires_at=hold.expires_at,
            )
            found.hold = hold  # type: ignore[attr-defined]
            return found

    @strawberry.type(description="A hold of a page and its cursor.")
    class HoldEdge:
        cursor: str
        node: Hold

    @strawberry.type(description="A page of an owner's holds, newest first.")
    class HoldConnection:
        edges: list[HoldEdge]
        page_info: PageInfo

        @classmethod
        def of(cls, found: list[holds.Hold], has_next: bool, after: int | None) -> "HoldConnection":
            edges = [HoldEdge(cursor=holds.hold_cursor(h), node=Hold.of(h)) for h in found]
            cursors = [edge.cursor for edge in edges]
            return cls(
                edges=edges,
                page_info=page_info(cursors, has_next=has_next, has_previous=after is not None),
            )

    return Hold, HoldConnection


def _inputs(operations: type[LedgerOperation]) -> tuple[Any, Any, Any, Any]:
    """The inputs of reserveCredits, captureHold, releaseHold and refundEntry."""

    @strawberry.input
    class ReserveCreditsInput:
        owner_id: strawberry.ID
        operation: LedgerOperation = strawberry.field(graphql_type=operations)
        nonce: str = strawberry.field(
            description="Chosen by the client; the same ownerId and nonce is the same hold."
        )
        quantity: int | None = strawberry.field(default=1, description="Units to reserve.")
        expires_in: int | None = strawberry.field(
            default=900,
            description=f"Seconds until the hold expires, 1 to {holds.MAX_HOLD_SECONDS:,}.",
        )
        metadata: JSON | None = UNSET

    @strawberry.input
    class CaptureHoldInput:
        hold_id: strawberry.ID
        quantity: int | None = strawberry.field(
            default=UNSET, description="Units the job used, up to those reserved; default all."
        )
        metadata: JSON | None = strawberry.field(
            default=UNSET, description="The capture entry's metadata; default the hold's."
        )

    @strawberry.input
    class ReleaseHoldInput:
        hold_id: strawberry.ID

    @strawberry.input
    class RefundEntryInput:
        entry_id: strawberry.ID
        nonce: str = strawberry.field(
            description="Chosen by the client; the same nonce is the same refund."
        )
        metadata: JSON | None = UNSET

    return ReserveCreditsInput, CaptureHoldInput, ReleaseHoldInput, RefundEntryInput


def _unions(
    entries: EntryTypes, Hold: Any, HoldNotOpen: Any, HoldNonceConflict: Any, AlreadyRefunded: Any
) -> dict[str, Any]:
    """The result union of every write, by name."""
    LedgerEntry = entries.LedgerEntry
    NonceConflict = entries.NonceConflict

    CreateEntryResult = Annotated[
        Union[  # noqa: UP007
            LedgerEntry,
            InsufficientCredits,
            NonceConflict,
            InvalidInput,
            OperationNotAllowed,
            LimitReached,
            HoldNonceConflict,
        ],
        strawberry.union("CreateEntryResult"),
    ]
    ReserveCreditsResult = Annotated[
        Union[  # noqa: UP007
            Hold,
            InsufficientCredits,
            NonceConflict,
            HoldNonceConflict,
            InvalidInput,
            OperationNotAllowed,
            LimitReached,
        ],
        strawberry.union("ReserveCreditsResult"),
    ]
    CaptureHoldResult = Annotated[
        Union[LedgerEntry, HoldNotOpen, NotFound, InvalidInput, OperationNotAllowed],  # noqa: UP007
        strawberry.union("CaptureHoldResult"),
    ]
    ReleaseHoldResult = Annotated[
        Union[Hold, HoldNotOpen, NotFound, OperationNotAllowed],  # noqa: UP007
        strawberry.union("ReleaseHoldResult"),
    ]
    RefundEntryResult = Annotated[
        Union[  # noqa: UP007
            LedgerEntry,
            AlreadyRefunded,
            NotRefundable,
            InsufficientCredits,
            NonceConflict,
            HoldNonceConflict,
            InvalidInput,
            NotFound,
            OperationNotAllowed,
        ],
        strawberry.union("RefundEntryResult"),
    ]
    return {
        "CreateEntryResult": CreateEntryResult,
        "ReserveCreditsResult": ReserveCreditsResult,
        "CaptureHoldResult": CaptureHoldResult,
        "ReleaseHoldResult": ReleaseHoldResult,
        "RefundEntryResult": RefundEntryResult,
    }


def hold_types(entries: EntryTypes) -> HoldTypes:
    """The hold types of the app whose entry types are `entries`."""
    LedgerEntry = entries.LedgerEntry
    Hold, HoldConnection = _hold_type(entries)

    @strawberry.type(description="The hold was captured, released or expired.")
    class HoldNotOpen(LedgerError):
        hold: Hold

    @strawberry.type(description="The nonce already identifies a hold of this owner.")
    class HoldNonceConflict(LedgerError):
        existing: Hold

    @strawberry.type(description="The entry was refunded already.")
    class AlreadyRefunded(LedgerError):
        refund: LedgerEntry

    ReserveCreditsInput, CaptureHoldInput, ReleaseHoldInput, RefundEntryInput = _inputs(
        entries.operations
    )
    return HoldTypes(
        entries=entries,
        Hold=Hold,
        HoldConnection=HoldConnection,
        ReserveCreditsInput=ReserveCreditsInput,
        CaptureHoldInput=CaptureHoldInput,
        ReleaseHoldInput=ReleaseHoldInput,
        RefundEntryInput=RefundEntryInput,
        HoldNotOpen=HoldNotOpen,
        HoldNonceConflict=HoldNonceConflict,
        AlreadyRefunded=AlreadyRefunded,
        **_unions(entries, Hold, HoldNotOpen, HoldNonceConflict, AlreadyRefunded),
    )
