"""The Subscription type every app shares: live balances, fed by the process's BalanceFeed
(WebSocket only)."""

from collections.abc import AsyncIterator

import strawberry

from graphql_ledger.schema import arguments
from graphql_ledger.schema.context import LedgerContext
from graphql_ledger.schema.types import Balance

__all__ = ["Subscription"]


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The owner's balance now, then again each time an entry of it "
        "commits, in commit order (and each time its holds change held and available). A "
        "subscriber that reads slower than the balance changes may skip older values, never "
        "the newest."
    )
    async def balance_changed(
        self, info: strawberry.Info, owner_id: strawberry.ID
    ) -> AsyncIterator[Balance]:
        context: LedgerContext = info.context
        checked = arguments.checked_owner_id(owner_id)
        context.ledger.check_may_read(checked)
        assert context.feed is not None  # subscriptions run on WebSocket only
        async with context.feed.follow(checked) as updates:
            async for update in updates:
                yield Balance.of(update.balance)
