"""`build_schema`: one app's Strawberry schema from its operation enum. The types that
mention the enum (LedgerEntry and everything holding one) are made here, once per app;
the apps' schemas differ only in that enum.

This module must not use `from __future__ import annotations`: Strawberry resolves
annotations at runtime, and string annotations cannot see the factory's local classes.
"""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Optional, TypeVar, Union

import strawberry
from strawberry import UNSET

from graphql_ledger import history, ledger
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.schema import arguments
from graphql_ledger.schema.base import LedgerSchema
from graphql_ledger.schema.context import LedgerContext
from graphql_ledger.schema.errors import ErrorCodes, MaskUnexpectedErrors
from graphql_ledger.schema.limits import QueryLimits
from graphql_ledger.schema.types import (
    Balance,
    InsufficientCredits,
    InvalidInput,
    LedgerError,
    LedgerErrorCode,
    LimitReached,
    OperationNotAllowed,
    PageInfo,
)

__all__ = ["build_schema"]

T = TypeVar("T")


def given(value: T | None) -> T | None:
    """An optional argument's value; None when the client left it out (UNSET, which keeps
    Strawberry from printing `= null` defaults into the SDL) or sent null."""
    return None if value is UNSET else value


def build_schema(
    operations: type[LedgerOperation], limits: QueryLimits | None = None
) -> LedgerSchema:
    """Builds the GraphQL schema of the app whose operations are `operations`; its enum
    is named after the class (`HealthAIOperation`). `limits` bounds what one document
    may ask for (defaults when omitted)."""
    limits = limits or QueryLimits()
    strawberry.enum(operations, name=operations.__name__)
    OperationFilter = Annotated[
        Optional[LedgerOperation],  # noqa: UP045
        strawberry.argument(
            graphql_type=Optional[operations],  # noqa: UP045
            description="Only entries of this operation.",
        ),
    ]
    Since = Annotated[
        Optional[datetime],  # noqa: UP045
        strawberry.argument(description="Only entries created at or after this instant."),
    ]
    Until = Annotated[
        Optional[datetime],  # noqa: UP045
        strawberry.argument(description="Only entries created at or before this instant."),
    ]
    First = Annotated[
        Optional[int],  # noqa: UP045
        strawberry.argument(description=f"Page size, 1 to {history.MAX_PAGE_SIZE}."),
    ]
    After = Annotated[
        Optional[str],  # noqa: UP045
        strawberry.argument(description="endCursor of the previous page."),
    ]

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

    async def entries_page(
        info: strawberry.Info,
        owner_id: str,
        first: int | None,
        after: str | None,
        operation: LedgerOperation | None,
        since: datetime | None,
        until: datetime | None,
    ) -> LedgerEntryConnection:
        query = arguments.history_query(
            owner_id, first, given(after), given(operation), given(since), given(until)
        )
        context: LedgerContext = info.context
        context.check_may_read(query.owner_id)
        return LedgerEntryConnection.of(query, await context.entry_pages.load(query))

    @strawberry.type(description="An owner: its balance and its history.")
    class Owner:
        id: strawberry.ID

        @strawberry.field(description="0 for an owner with no entries.")
        async def balance(self, info: strawberry.Info) -> int:
            context: LedgerContext = info.context
            [balance] = await context.balances_of(self.id)
            return balance.balance

        @strawberry.field(description="createdOn of the newest entry; null when none.")
        async def last_updated(self, info: strawberry.Info) -> datetime | None:
            context: LedgerContext = info.context
            [balance] = await context.balances_of(self.id)
            return balance.last_updated

        @strawberry.field(description="The owner's entries, newest first.")
        async def entries(
            self,
            info: strawberry.Info,
            first: First = history.DEFAULT_PAGE_SIZE,
            after: After = UNSET,
            operation: OperationFilter = UNSET,
            since: Since = UNSET,
            until: Until = UNSET,
        ) -> LedgerEntryConnection:
            return await entries_page(info, self.id, first, after, operation, since, until)

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

    def result_of(
        outcome: ledger.EntryOutcome,
    ) -> (
        LedgerEntry
        | InsufficientCredits
        | NonceConflict
        | InvalidInput
        | OperationNotAllowed
        | LimitReached
    ):
        match outcome:
            case ledger.Entry():
                return LedgerEntry.of(outcome)
            case ledger.InsufficientCredits():
                return InsufficientCredits.of(outcome)
            case ledger.NonceConflict(existing=existing):
                return NonceConflict(
                    code=LedgerErrorCode[outcome.code],
                    message=outcome.message,
                    existing=LedgerEntry.of(existing),
                )
            case ledger.InvalidInput():
                return InvalidInput.of(outcome)
            case ledger.OperationNotAllowed():
                return OperationNotAllowed.of(outcome)
            case ledger.LimitReached():
                return LimitReached.of(outcome)

    @strawberry.type
    class Query:
        @strawberry.field(
            description="An owner's balance; with `at`, as it was right after the newest "
            "entry created at or before that instant (0 before the first entry)."
        )
        async def balance(
            self, info: strawberry.Info, owner_id: strawberry.ID, at: datetime | None = UNSET
        ) -> Balance:
            context: LedgerContext = info.context
            owner_id = strawberry.ID(arguments.checked_owner_id(owner_id))
            instant = arguments.checked_instant(given(at), "at")
            context.check_may_read(owner_id)
            if instant is None:
                [balance] = await context.balances_of(owner_id)
                return balance
            return await context.balances_at.load((owner_id, instant))

        @strawberry.field(
            description="Several owners' balances, in the order asked; at most "
            f"{arguments.MAX_BALANCES_PER_QUERY} ids."
        )
        async def balances(
            self, info: strawberry.Info, owner_ids: list[strawberry.ID]
        ) -> list[Balance]:
            context: LedgerContext = info.context
            checked = arguments.checked_owner_ids(owner_ids)
            context.check_may_read(*checked)
            return await context.balances_of(*checked)

        @strawberry.field(description="Every operation of this app and its amount.")
        def operations(self) -> list[OperationInfo]:
            return [OperationInfo(operation=op, amount=op.amount) for op in operations]

        @strawberry.field(description="An owner's entries, newest first.")
        async def entries(
            self,
            info: strawberry.Info,
            owner_id: strawberry.ID,
            first: First = history.DEFAULT_PAGE_SIZE,
            after: After = UNSET,
            operation: OperationFilter = UNSET,
            since: Since = UNSET,
            until: Until = UNSET,
        ) -> LedgerEntryConnection:
            return await entries_page(info, owner_id, first, after, operation, since, until)

        @strawberry.field(description="An owner, to read its balance and history at once.")
        def owner(self, info: strawberry.Info, id: strawberry.ID) -> Owner:
            checked = arguments.checked_owner_id(id, "id")
            context: LedgerContext = info.context
            context.check_may_read(checked)
            return Owner(id=strawberry.ID(checked))

    @strawberry.type
    class Subscription:
        @strawberry.subscription(
            description="The owner's balance now, then again each time an entry of it "
            "commits, in commit order. A subscriber that reads slower than the balance "
            "changes may skip older values, never the newest."
        )
        async def balance_changed(
            self, info: strawberry.Info, owner_id: strawberry.ID
        ) -> AsyncIterator[Balance]:
            context: LedgerContext = info.context
            checked = arguments.checked_owner_id(owner_id)
            context.check_may_read(checked)
            assert context.feed is not None  # subscriptions run on WebSocket only
            async with context.feed.follow(checked) as updates:
                async for update in updates:
                    yield Balance.of(update.balance)

    @strawberry.type
    class Mutation:
        @strawberry.mutation(
            description="Appends an entry, or answers with the original one for a replayed "
            "nonce, or with a LedgerError and writes nothing."
        )
        async def create_entry(
            self, info: strawberry.Info, input: CreateEntryInput
        ) -> CreateEntryResult:
            context: LedgerContext = info.context
            problem = (
                ledger.identifier_problem("ownerId", input.owner_id)
                or ledger.identifier_problem("nonce", input.nonce)
                or context.caller().refusal_to_write(input.owner_id, input.operation)
            )
            outcome = problem or await context.repository.create_entry(
                input.owner_id, input.operation, input.nonce
            )
            if context.observe is not None:
                context.observe(outcome)
            return result_of(outcome)

    return LedgerSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[*limits.extensions(), MaskUnexpectedErrors, ErrorCodes],
        config=limits.config(),
        limits=limits,
    )
