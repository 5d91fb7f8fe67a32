"""The GraphQL types that mention an app's operation enum and an entry: entries, history
pages, the createEntry input, and how a use case's outcome becomes one of them. Made once
per app by `entry_types`, since each app has its own enum (holds: `holds.py`).

This module must not use `from __future__ import annotations`: Strawberry resolves
annotations at runtime, and string annotations cannot see the function's local classes.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

import strawberry
from strawberry import UNSET

from graphql_ledger import history, ledger
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.schema.types import (
    JSON,
    EntryKind,
    InsufficientCredits,
    InvalidInput,
    LedgerError,
    LedgerErrorCode,
    LimitReached,
    OperationNotAllowed,
    PageInfo,
    page_info,
)
from graphql_ledger.storage.grants import grant_cursor

__all__ = ["EntryTypes", "entry_types"]


@dataclass(frozen=True)
class EntryTypes:
    """One app's entry types (Strawberry classes, hence `Any` to the type checker)."""

    operations: type[LedgerOperation]
    LedgerEntry: Any
    LedgerEntryConnection: Any
    OperationInfo: Any
    CreateEntryInput: Any
    NonceConflict: Any
    LedgerEntryEdge: Any

    def grant_connection(
        self, grants: list[tuple[ledger.Entry, int]], has_next: bool, has_previous: bool
    ) -> Any:
        """A page of an owner's grants as a LedgerEntryConnection."""
        edges = [
            self.LedgerEntryEdge(
                cursor=grant_cursor(entry), node=self.LedgerEntry.of(entry, remaining=left)
            )
            for entry, left in grants
        ]
        return self.LedgerEntryConnection(
            edges=edges,
            page_info=page_info(
                [edge.cursor for edge in edges], has_next=has_next, has_previous=has_previous
            ),
        )

    def result_of(self, outcome: Any) -> Any:
        """A refusal any write may answer, or an entry, as the GraphQL type that shows it;
        None for an outcome that is none of these (the caller's own types)."""
        match outcome:
            case ledger.Entry():
                return self.LedgerEntry.of(outcome)
            case ledger.InsufficientCredits():
                return InsufficientCredits.of(outcome)
            case ledger.NonceConflict(existing=existing):
                return self.NonceConflict(
                    code=LedgerErrorCode[outcome.code],
                    message=outcome.message,
                    existing=self.LedgerEntry.of(existing),
                )
            case ledger.InvalidInput():
                return InvalidInput.of(outcome)
            case ledger.OperationNotAllowed():
                return OperationNotAllowed.of(outcome)
            case ledger.LimitReached():
                return LimitReached.of(outcome)
        return None


def _ledger_entry(operations: type[LedgerOperation]) -> Any:
    """LedgerEntry, whose refundOf and refundedBy are LedgerEntry themselves."""

    class LedgerEntry:
        id: strawberry.ID
        owner_id: strawberry.ID
        operation: LedgerOperation = strawberry.field(graphql_type=operations)
        amount: int
        balance_after: int = strawberry.field(
            description="The owner's balance right after this entry."
        )
        nonce: str
        created_on: datetime
        quantity: int = strawberry.field(
            description="Units of the operation; amount = its amount x quantity."
        )
        kind: EntryKind
        metadata: JSON | None = strawberry.field(
            description="What the client attached; null when none."
        )
        expires_at: datetime | None = strawberry.field(
            description="When this entry's credits expire (a grant); null: never."
        )

        @strawberry.field(
            description="For an entry that added credits: those neither spent (entries, "
            "captures, open holds) nor expired yet; null for other entries."
        )
        async def remaining(self, info: strawberry.Info) -> int | None:
            entry: ledger.Entry = self.entry  # type: ignore[attr-defined]
            if not entry.is_credit:
                return None
            known: int | None = self.known_remaining  # type: ignore[attr-defined]
            if known is not None:  # read with the page it is on (Owner.grants)
                return known
            left: dict[tuple[str, int], int] = await info.context.remaining.load(entry.owner_id)
            return left.get((entry.owner_id, entry.id), 0)

        @classmethod
        def of(cls, entry: ledger.Entry, remaining: int | None = None) -> "LedgerEntry":
            fields: dict[str, Any] = {  # the class is a Strawberry type only once made
                "id": strawberry.ID(str(entry.id)),
                "owner_id": strawberry.ID(entry.owner_id),
                "operation": entry.operation,
                "amount": entry.amount,
                "balance_after": entry.balance_after,
                "nonce": entry.nonce,
                "created_on": entry.created_on,
                "quantity": entry.quantity,
                "kind": entry.kind,
                "metadata": dict(entry.metadata) if entry.metadata is not None else None,
                "expires_at": entry.expires_at,
            }
            found = cls(**fields)
            found.entry = entry  # type: ignore[attr-defined]
            found.known_remaining = remaining  # type: ignore[attr-defined]
            return found

    # Fields that are LedgerEntry themselves, added once the class exists: an annotation
    # inside it could not name it (see the module docstring).
    async def refund_of(root: Any, info: strawberry.Info) -> Any:
        refunded = root.entry.refund_of
        if refunded is None:
            return None
        entry = await info.context.entries_by_id.load(refunded)
        return None if entry is None else LedgerEntry.of(entry)

    async def refunded_by(root: Any, info: strawberry.Info) -> Any:
        if root.entry.kind not in (ledger.EntryKind.OPERATION, ledger.EntryKind.CAPTURE):
            return None
        refund = await info.context.refunds_of.load((root.entry.owner_id, root.entry.id))
        return None if refund is None else LedgerEntry.of(refund)

    async def expiry_of(root: Any, info: strawberry.Info) -> Any:
        grant = root.entry.expiry_of
        if grant is None:
            return None
        entry = await info.context.entries_by_id.load(grant)
        return None if entry is None else LedgerEntry.of(entry)

    LedgerEntry.expiry_of = strawberry.field(  # type: ignore[attr-defined]
        resolver=expiry_of,
        graphql_type=Optional[LedgerEntry],  # noqa: UP045
        description="For an EXPIRY, the grant whose credits it booked out.",
    )
    LedgerEntry.refund_of = strawberry.field(  # type: ignore[attr-defined]
        resolver=refund_of,
        graphql_type=Optional[LedgerEntry],  # noqa: UP045
        description="For a REFUND, the entry it reverses.",
    )
    LedgerEntry.refunded_by = strawberry.field(  # type: ignore[attr-defined]
        resolver=refunded_by,
        graphql_type=Optional[LedgerEntry],  # noqa: UP045
        description="The REFUND that reversed this entry, if any.",
    )
    LedgerEntry = strawberry.type(  # type: ignore[misc]
        LedgerEntry, description="One append-only line of an owner's ledger."
    )
    return LedgerEntry


def entry_types(operations: type[LedgerOperation]) -> EntryTypes:
    """The entry types of the app whose operations are `operations` (already a Strawberry
    enum)."""
    LedgerEntry = _ledger_entry(operations)

    @strawberry.type(description="An entry of a history page and its cursor.")
    class LedgerEntryEdge:
        cursor: str
        node: LedgerEntry

    @strawberry.type(description="A page of an owner's entries, newest first.")
    class LedgerEntryConnection:
        edges: list[LedgerEntryEdge]
        page_info: PageInfo

        @classmethod
        def of(
            cls, query: history.HistoryQuery, page: history.HistoryPage
        ) -> "LedgerEntryConnection":
            edges = [
                LedgerEntryEdge(cursor=query.cursor(e), node=LedgerEntry.of(e))
                for e in page.entries
            ]
            cursors = [edge.cursor for edge in edges]
            return cls(
                edges=edges,
                page_info=page_info(
                    cursors, has_next=page.has_next_page, has_previous=query.after is not None
                ),
            )

    @strawberry.type(description="The nonce already identifies another operation's entry.")
    class NonceConflict(LedgerError):
        existing: LedgerEntry

    @strawberry.type(description="An operation and the credits one entry of it adds or takes.")
    class OperationInfo:
        operation: LedgerOperation = strawberry.field(graphql_type=operations)
        amount: int

    @strawberry.input
    class CreateEntryInput:
        owner_id: strawberry.ID
        operation: LedgerOperation = strawberry.field(graphql_type=operations)
        nonce: str = strawberry.field(
            description="Chosen by the client; the same ownerId and nonce is the same entry."
        )
        quantity: int | None = strawberry.field(
            default=1,
            description=f"Units, 1 to {ledger.MAX_QUANTITY:,}; 1 for a limited operation.",
        )
        metadata: JSON | None = strawberry.field(
            default=UNSET,
            description="At most 16 string values by key, stored with the entry.",
        )
        expires_at: datetime | None = strawberry.field(
            default=UNSET,
            description="For a service's entry that adds credits: when they expire (after "
            "now, at most 10 years ahead); wins over the operation's lifetime.",
        )

    return EntryTypes(
        operations=operations,
        LedgerEntry=LedgerEntry,
        LedgerEntryConnection=LedgerEntryConnection,
        OperationInfo=OperationInfo,
        CreateEntryInput=CreateEntryInput,
        NonceConflict=NonceConflict,
        LedgerEntryEdge=LedgerEntryEdge,
    )
