"""The Query type of one app, and `Owner`: each resolver checks its arguments, then reads
through the request's DataLoaders, which call the caller's `Ledger`.

This module must not use `from __future__ import annotations` (see `entries.py`).
"""

from datetime import datetime
from typing import Annotated, Any, Optional

import strawberry
from strawberry import UNSET

from graphql_ledger import history
from graphql_ledger.holds import HoldStatus
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.schema import arguments
from graphql_ledger.schema.arguments import given
from graphql_ledger.schema.context import LedgerContext
from graphql_ledger.schema.holds import HoldTypes
from graphql_ledger.schema.types import JSON, Balance
from graphql_ledger.schema.types import HoldStatus as HoldStatusType

__all__ = ["query_type"]

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
MetadataFilter = Annotated[
    Optional[JSON],  # noqa: UP045
    strawberry.argument(description="Only entries whose metadata holds every one of these pairs."),
]
StatusFilter = Annotated[
    Optional[HoldStatus],  # noqa: UP045
    strawberry.argument(
        graphql_type=Optional[HoldStatusType],  # noqa: UP045
        description="Only holds of this status; null: every status.",
    ),
]


def _operation_filter(operations: type[LedgerOperation]) -> Any:
    return Annotated[
        Optional[LedgerOperation],  # noqa: UP045
        strawberry.argument(
            graphql_type=Optional[operations],  # noqa: UP045
            description="Only entries of this operation.",
        ),
    ]


async def _entries_page(
    info: strawberry.Info,
    connection: Any,
    owner_id: str,
    first: int | None,
    after: str | None,
    operation: LedgerOperation | None,
    since: datetime | None,
    until: datetime | None,
    metadata: object,
) -> Any:
    query = arguments.history_query(
        owner_id, first, given(after), given(operation), given(since), given(until), given(metadata)
    )
    context: LedgerContext = info.context
    context.ledger.check_may_read(query.owner_id)
    return connection.of(query, await context.entry_pages.load(query))


async def _holds_page(
    info: strawberry.Info,
    connection: Any,
    owner_id: str,
    status: HoldStatus | None,
    first: int | None,
    after: str | None,
) -> Any:
    query = arguments.hold_page_query(owner_id, given(status), first, given(after))
    context: LedgerContext = info.context
    context.ledger.check_may_read(query.owner_id)
    found, has_next = await context.hold_pages.load(query)
    return connection.of(found, has_next, query.after)


async def _grants_page(
    info: strawberry.Info, entries: Any, owner_id: str, first: int | None, after: str | None
) -> Any:
    query = arguments.grant_page_query(owner_id, first, given(after))
    context: LedgerContext = info.context
    context.ledger.check_may_read(query.owner_id)
    found, has_next = await context.grant_pages.load(query)
    return entries.grant_connection(found, has_next, query.after is not None)


def owner_type(holds: HoldTypes) -> type:
    """Owner: an owner's balance, held and available credits, history and holds."""
    Connection = holds.entries.LedgerEntryConnection
    HoldConnection = holds.HoldConnection
    OperationFilter = _operation_filter(holds.entries.operations)

    @strawberry.type(description="An owner: its balance and its history.")
    class Owner:
        id: strawberry.ID

        @strawberry.field(description="0 for an owner with no entries.")
        async def balance(self, info: strawberry.Info) -> int:
            [balance] = await info.context.balances_of(self.id)
            return balance.balance

        @strawberry.field(description="createdOn of the newest entry; null when none.")
        async def last_updated(self, info: strawberry.Info) -> datetime | None:
            [balance] = await info.context.balances_of(self.id)
            return balance.last_updated

        @strawberry.field(description="Credits reserved by open holds not yet expired.")
        async def held(self, info: strawberry.Info) -> int:
            [balance] = await info.context.balances_of(self.id)
            return balance.held

        @strawberry.field(
            description="balance - held, less credits of grants that have expired: what a "
            "spend may take."
        )
        async def available(self, info: strawberry.Info) -> int:
            [balance] = await info.context.balances_of(self.id)
            return balance.available

        @strawberry.field(description="The owner's entries, newest first.")
        async def entries(
            self,
            info: strawberry.Info,
            first: First = history.DEFAULT_PAGE_SIZE,
            after: After = UNSET,
            operation: OperationFilter = UNSET,
            since: Since = UNSET,
            until: Until = UNSET,
            metadata: MetadataFilter = UNSET,
        ) -> Connection:
            return await _entries_page(
                info, Connection, self.id, first, after, operation, since, until, metadata
            )

        @strawberry.field(
            description="The owner's entries with credits left (remaining) that have not "
            "expired, in the order spends take them: expiring ones soonest first, then "
            "those that never expire, oldest first."
        )
        async def grants(
            self,
            info: strawberry.Info,
            first: First = history.DEFAULT_PAGE_SIZE,
            after: After = UNSET,
        ) -> Connection:
            return await _grants_page(info, holds.entries, self.id, first, after)

        @strawberry.field(description="The owner's holds, newest first.")
        async def holds(
            self,
            info: strawberry.Info,
            status: StatusFilter = HoldStatus.OPEN,
            first: First = history.DEFAULT_PAGE_SIZE,
            after: After = UNSET,
        ) -> HoldConnection:
            return await _holds_page(info, HoldConnection, self.id, status, first, after)

    return Owner


def query_type(holds: HoldTypes) -> type:
    """The app's Query type."""
    operations = holds.entries.operations
    Connection = holds.entries.LedgerEntryConnection
    OperationInfo = holds.entries.OperationInfo
    Hold = holds.Hold
    HoldConnection = holds.HoldConnection
    OperationFilter = _operation_filter(operations)
    Owner = owner_type(holds)

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
            if instant is None:
                [balance] = await context.balances_of(owner_id)
                return balance
            context.ledger.check_may_read(owner_id)
            return await context.balances_at.load((owner_id, instant))

        @strawberry.field(
            description="Several owners' balances, in the order asked; at most "
            f"{arguments.MAX_BALANCES_PER_QUERY} ids."
        )
        async def balances(
            self, info: strawberry.Info, owner_ids: list[strawberry.ID]
        ) -> list[Balance]:
            context: LedgerContext = info.context
            return await context.balances_of(*arguments.checked_owner_ids(owner_ids))

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
            metadata: MetadataFilter = UNSET,
        ) -> Connection:
            return await _entries_page(
                info, Connection, owner_id, first, after, operation, since, until, metadata
            )

        @strawberry.field(description="A hold; null when unknown or not the caller's to see.")
        async def hold(self, info: strawberry.Info, id: strawberry.ID) -> Hold | None:
            found = await info.context.holds_by_id.load(id)
            return None if found is None else Hold.of(found)

        @strawberry.field(description="An owner's holds, newest first.")
        async def holds(
            self,
            info: strawberry.Info,
            owner_id: strawberry.ID,
            status: StatusFilter = HoldStatus.OPEN,
            first: First = history.DEFAULT_PAGE_SIZE,
            after: After = UNSET,
        ) -> HoldConnection:
            return await _holds_page(info, HoldConnection, owner_id, status, first, after)

        @strawberry.field(description="An owner, to read its balance and history at once.")
        def owner(self, info: strawberry.Info, id: strawberry.ID) -> Owner:
            checked = arguments.checked_owner_id(id, "id")
            context: LedgerContext = info.context
            context.ledger.check_may_read(checked)
            return Owner(id=strawberry.ID(checked))

    return Query
