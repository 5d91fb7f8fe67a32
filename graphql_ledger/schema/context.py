"""What the resolvers of one request (or one WebSocket connection) share: the caller's
`Ledger` (the use cases), DataLoaders that gather every read of a kind into one call, and
where the executor reports each operation."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from graphql_ledger.access import NotPermitted, Principal
from graphql_ledger.history import HistoryPage, HistoryQuery
from graphql_ledger.holds import Hold
from graphql_ledger.ledger import Entry
from graphql_ledger.schema.base import OperationRecord
from graphql_ledger.schema.types import Balance
from graphql_ledger.services import Ledger
from graphql_ledger.storage import BalanceFeed, LedgerPosition, LedgerRepository
from graphql_ledger.storage.grants import GrantPageQuery
from graphql_ledger.storage.holds import HoldPageQuery

T = TypeVar("T")

__all__ = ["LedgerContext"]


@dataclass
class LedgerContext:
    """`principal` is None on a WebSocket until its connection_init authenticates it with
    `authenticate` (the transport's token check); Strawberry fills `connection_params`
    with that message's payload. `feed` serves subscriptions (WebSocket only); `observe`
    hears every createEntry outcome and `record` every operation (the app logs and counts
    them). `position` is what the reads must see: the one the client sent, advanced by the
    operation's (or the connection's) own writes; the transport returns it.

    The DataLoaders batch but do not cache: a WebSocket connection keeps one context for
    all its operations, and a cached balance would go stale. Within one request the keys
    loaded together are still read by one statement."""

    repository: LedgerRepository
    principal: Principal | None
    authenticate: Callable[[str | None], Awaitable[Principal]] | None = None
    feed: BalanceFeed | None = None
    observe: Callable[[object], None] | None = None
    record: Callable[[OperationRecord], None] | None = None
    connection_params: dict[str, Any] | None = None
    position: LedgerPosition = field(default_factory=LedgerPosition)
    _following: LedgerRepository = field(init=False, repr=False)
    balances: DataLoader[tuple[str, ...], list[Balance]] = field(init=False)
    balances_at: DataLoader[tuple[str, datetime], Balance] = field(init=False)
    entry_pages: DataLoader[HistoryQuery, HistoryPage] = field(init=False)
    entries_by_id: DataLoader[int, Entry | None] = field(init=False)
    refunds_of: DataLoader[tuple[str, int], Entry | None] = field(init=False)
    holds_by_id: DataLoader[str, Hold | None] = field(init=False)
    hold_pages: DataLoader[HoldPageQuery, tuple[list[Hold], bool]] = field(init=False)
    remaining: DataLoader[str, dict[tuple[str, int], int]] = field(init=False)
    grant_pages: DataLoader[GrantPageQuery, tuple[list[tuple[Entry, int]], bool]] = field(
        init=False
    )
    expiring_within: DataLoader[tuple[str, datetime | None, int], int] = field(init=False)

    def __post_init__(self) -> None:
        self._following = self.repository.following(self.position)

        async def load_balances(requests: list[tuple[str, ...]]) -> list[list[Balance]]:
            # A key is every id one field asks for (one for `balance`, all of a `balances`
            # list): one future per field rather than per owner (measured: per-owner
            # futures were most of the cost of 50 balances), one statement for all fields.
            owners = list({owner_id for request in requests for owner_id in request})
            found = {b.owner_id: Balance.of(b) for b in await self.ledger.balances(owners)}
            return [[found[owner_id] for owner_id in request] for request in requests]

        async def load_balances_at(requests: list[tuple[str, datetime]]) -> list[Balance]:
            return [Balance.of(b) for b in await self.ledger.balances_at(requests)]

        async def load_pages(queries: list[HistoryQuery]) -> list[HistoryPage]:
            return await self.ledger.history(queries)

        async def load_entries(entry_ids: list[int]) -> list[Entry | None]:
            found = await self.ledger.entries_by_id(entry_ids)
            return [found.get(entry_id) for entry_id in entry_ids]

        async def load_refunds(entries: list[tuple[str, int]]) -> list[Entry | None]:
            found = await self.ledger.refunds_of(entries)
            return [found.get(entry_id) for _, entry_id in entries]

        async def load_holds(hold_ids: list[str]) -> list[Hold | None]:
            return await self.ledger.holds_by_id(hold_ids)

        async def load_hold_pages(
            queries: list[HoldPageQuery],
        ) -> list[tuple[list[Hold], bool]]:
            return await self.ledger.hold_pages(queries)

        async def load_remaining(owner_ids: list[str]) -> list[dict[tuple[str, int], int]]:
            found = await self.ledger.remaining(owner_ids)
            return [found for _ in owner_ids]  # one map for all: keys name their owner

        async def load_grant_pages(
            queries: list[GrantPageQuery],
        ) -> list[tuple[list[tuple[Entry, int]], bool]]:
            return [await self.ledger.grants(query) for query in queries]

        async def load_expiring(requests: list[tuple[str, datetime | None, int]]) -> list[int]:
            return await self.ledger.expiring_within(requests)

        self.remaining = DataLoader(load_fn=load_remaining, cache=False)
        self.grant_pages = DataLoader(load_fn=load_grant_pages, cache=False)
        self.expiring_within = DataLoader(load_fn=load_expiring, cache=False)
        self.balances = DataLoader(load_fn=load_balances, cache=False)
        self.balances_at = DataLoader(load_fn=load_balances_at, cache=False)
        self.entry_pages = DataLoader(load_fn=load_pages, cache=False)
        self.entries_by_id = DataLoader(load_fn=load_entries, cache=False)
        self.refunds_of = DataLoader(load_fn=load_refunds, cache=False)
        self.holds_by_id = DataLoader(load_fn=load_holds, cache=False)
        self.hold_pages = DataLoader(load_fn=load_hold_pages, cache=False)

    @property
    def ledger(self) -> Ledger:
        """The use cases, as the authenticated caller."""
        if self.principal is None:  # the transport authenticates before any operation
            raise NotPermitted("not authenticated")
        return Ledger(self._following, self.principal)

    async def balances_of(self, *owner_ids: str) -> list[Balance]:
        """The balances of `owner_ids`, read with every other balance field of the
        request, once the caller may read them all."""
        self.ledger.check_may_read(*owner_ids)
        return await self.balances.load(owner_ids)

    def observed(self, outcome: T) -> T:
        """A write's outcome, once the app has heard it (its metrics count entries written
        and refusals)."""
        if self.observe is not None:
            self.observe(outcome)
        return outcome
