"""The GraphQL types that mention an app's operation enum: entries, history pages, the
createEntry input and result, and how a use case's outcome becomes one of them. Made once
per app by `entry_types`, since each app has its own enum.

This module must not use `from __future__ import annotations`: Strawberry resolves
annotations at runtime, and string annotations cannot see the function's local classes.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Union

import strawberry

from graphql_ledger import history, ledger
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.schema.types import (
    InsufficientCredits,
    InvalidInput,
    LedgerError,
    LedgerErrorCode,
    LimitReached,
    OperationNotAllowed,
    PageInfo,
)

__all__ = ["EntryTypes", "entry_types"]


@dataclass(frozen=True)
class EntryTypes:
    """One app's entry types (Strawberry classes, hence `Any` to the type checker)."""

    operations: type[LedgerOperation]
    LedgerEntry: Any
    LedgerEntryConnection: Any
    OperationInfo: Any
    CreateEntryInput: Any
    CreateEntryResult: Any
    NonceConflict: Any

    def result_of(self, outcome: ledger.EntryOutcome) -> Any:
        """A createEntry outcome as the member of CreateEntryResult that shows it."""
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


def entry_types(operations: type[LedgerOperation]) -> EntryTypes:
    """The entry types of the app whose operations are `operations` (already a Strawberry
    enum)."""

    @strawberry.type(description="One append-only line of an owner's ledger.")
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

        @classmethod
        def of(cls, entry: ledger.Entry) -> "LedgerEntry":
            return cls(
                id=strawberry.ID(str(entry.id)),
                owner_id=strawberry.ID(entry.owner_id),
                operation=entry.operation,
                amount=entry.amount,
                balance_after=entry.balance_after,
                nonce=entry.nonce,
                created_on=entry.created_on,
            )

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
            return cls(
                edges=edges,
                page_info=PageInfo(
                    has_next_page=page.has_next_page,
                    has_previous_page=query.after is not None,
                    start_cursor=edges[0].cursor if edges else None,
                    end_cursor=edges[-1].cursor if edges else None,
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

    CreateEntryResult = Annotated[
        Union[  # noqa: UP007
            LedgerEntry,
            InsufficientCredits,
            NonceConflict,
            InvalidInput,
            OperationNotAllowed,
            LimitReached,
        ],
        strawberry.union("CreateEntryResult"),
    ]

    return EntryTypes(
        operations=operations,
        LedgerEntry=LedgerEntry,
        LedgerEntryConnection=LedgerEntryConnection,
        OperationInfo=OperationInfo,
        CreateEntryInput=CreateEntryInput,
        CreateEntryResult=CreateEntryResult,
        NonceConflict=NonceConflict,
    )
