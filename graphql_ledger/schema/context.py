"""What the resolvers of one request (or one WebSocket connection) share: the caller, the
repository, and DataLoaders that gather every read of a kind into one SQL statement."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strawberry.dataloader import DataLoader

from graphql_ledger.access import Principal
from graphql_ledger.history import HistoryPage, HistoryQuery
from graphql_ledger.ledger import EntryOutcome
from graphql_ledger.schema.errors import Forbidden
from graphql_ledger.schema.types import Balance
from graphql_ledger.storage import BalanceFeed, LedgerRepository

__all__ = ["LedgerContext"]


@dataclass
class LedgerContext:
    """`principal` is None on a WebSocket until its connection_init authenticates it with
    `authenticate` (the transport's token check); Strawberry fills `connection_params`
    with that message's payload. `feed` serves subscriptions (WebSocket only);
    `observe` hears every createEntry outcome (the app counts them in its metrics).

    The DataLoaders batch but do not cache: a WebSocket connection keeps one context for
    all its operations, and a cached balance would go stale. Within one request the keys
    loaded together are still read by one statement."""

    repository: LedgerRepository
    principal: Principal | None
    balances: DataLoader[tuple[str, ...], list[Balance]]
    balances_at: DataLoader[tuple[str, datetime], Balance]
    entry_pages: DataLoader[HistoryQuery, HistoryPage]
    authenticate: Callable[[str | None], Awaitable[Principal]] | None = None
    feed: BalanceFeed | None = None
    observe: Callable[[EntryOutcome], None] | None = None
    connection_params: dict[str, Any] | None = None

    @classmethod
    def for_request(
        cls,
        repository: LedgerRepository,
        principal: Principal | None,
        authenticate: Callable[[str | None], Awaitable[Principal]] | None = None,
        feed: BalanceFeed | None = None,
        observe: Callable[[EntryOutcome], None] | None = None,
    ) -> "LedgerContext":
        async def load_balances(requests: list[tuple[str, ...]]) -> list[list[Balance]]:
            # A key is every id one field asks for (one for `balance`, all of a `balances`
            # list): one future per field rather than per owner (measured: per-owner
            # futures were most of the cost of 50 balances), one statement for all fields.
            found = {
                b.owner_id: Balance.of(b)
                for b in await repository.balances_of(list({o for r in requests for o in r}))
            }
            return [[found[owner_id] for owner_id in request] for request in requests]

        async def load_balances_at(requests: list[tuple[str, datetime]]) -> list[Balance]:
            return [Balance.of(b) for b in await repository.balances_at(requests)]

        return cls(
            repository=repository,
            principal=principal,
            balances=DataLoader(load_fn=load_balances, cache=False),
            balances_at=DataLoader(load_fn=load_balances_at, cache=False),
            entry_pages=DataLoader(load_fn=repository.entry_pages, cache=False),
            authenticate=authenticate,
            feed=feed,
            observe=observe,
        )

    async def balances_of(self, *owner_ids: str) -> list[Balance]:
        """The balances of `owner_ids`, read with every other balance field of the request."""
        return await self.balances.load(owner_ids)

    def caller(self) -> Principal:
        if self.principal is None:  # the transport authenticates before any operation
            raise Forbidden("not authenticated")
        return self.principal

    def check_may_read(self, *owner_ids: str) -> None:
        """Raises Forbidden unless the caller may read every one of `owner_ids`."""
        caller = self.caller()
        if not all(caller.may_read(owner_id) for owner_id in owner_ids):
            raise Forbidden()
