"""What the resolvers of one request (or one WebSocket connection) share: the caller's
`Ledger` (the use cases), DataLoaders that gather every read of a kind into one call, and
where the executor reports each operation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
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

    def __post_init__(self) -> None:
        self._following = self.repository.following(self.position)

    # Each DataLoader is made on first use: most operations need one or two of them.

    @cached_property
    def balances(self) -> DataLoader[tuple[str, ...], list[Balance]]:
        # A key is every id one field asks for (one for `balance`, all of a `balances`
        # list): one future per field rather than per owner (measured: per-owner futures
        # were most of the cost of 50 balances), one statement for all fields.
        return DataLoader(load_fn=self._load_balances, cache=False)

    async def _load_balances(self, requests: list[tuple[str, ...]]) -> list[list[Balance]]:
        owners = list({owner_id for request in requests for owner_id in request})
        found = {b.owner_id: Balance.of(b) for b in await self.ledger.balances(owners)}
        return [[found[owner_id] for owner_id in request] for request in requests]

    @cached_property
    def balances_at(self) -> DataLoader[tuple[str, datetime], Balance]:
        return DataLoader(load_fn=self._load_balances_at, cache=False)

    async def _load_balances_at(self, requests: list[tuple[str, datetime]]) -> list[Balance]:
        return [Balance.of(b) for b in await self.ledger.balances_at(requests)]

    @cached_property
    def entry_pages(self) -> DataLoader[HistoryQuery, HistoryPage]:
        return DataLoader(load_fn=self._load_pages, cache=False)

    async def _load_pages(self, queries: list[HistoryQuery]) -> list[HistoryPage]:
        return await self.ledger.history(queries)

    @cached_property
    def entries_by_id(self) -> DataLoader[int, Entry | None]:
        return DataLoader(load_fn=self._load_entries, cache=False)

    async def _load_entries(self, entry_ids: list[int]) -> list[Entry | None]:
        found = await self.ledger.entries_by_id(entry_ids)
        return [found.get(entry_id) for entry_id in entry_ids]

    @cached_property
    def refunds_of(self) -> DataLoader[tuple[str, int], Entry | None]:
        return DataLoader(load_fn=self._load_refunds, cache=False)

    async def _load_refunds(self, entries: list[tuple[str, int]]) -> list[Entry | None]:
        found = await self.ledger.refunds_of(entries)
        return [found.get(entry_id) for _, entry_id in entries]

    @cached_property
    def holds_by_id(self) -> DataLoader[str, Hold | None]:
        return DataLoader(load_fn=self._load_holds, cache=False)

    async def _load_holds(self, hold_ids: list[str]) -> list[Hold | None]:
        return await self.ledger.holds_by_id(hold_ids)

    @cached_property
    def hold_pages(self) -> DataLoader[HoldPageQuery, tuple[list[Hold], bool]]:
        return DataLoader(load_fn=self._load_hold_pages, cache=False)

    async def _load_hold_pages(self, queries: list[HoldPageQuery]) -> list[tuple[list[Hold], bool]]:
        return await self.ledger.hold_pages(queries)

    @cached_property
    def remaining(self) -> DataLoader[str, dict[tuple[str, int], int]]:
        return DataLoader(load_fn=self._load_remaining, cache=False)

    async def _load_remaining(self, owner_ids: list[str]) -> list[dict[tuple[str, int], int]]:
        found = await self.ledger.remaining(owner_ids)
        return [found for _ in owner_ids]  # one map for all: keys name their owner

    @cached_property
    def grant_pages(self) -> DataLoader[GrantPageQuery, tuple[list[tuple[Entry, int]], bool]]:
        return DataLoader(load_fn=self._load_grant_pages, cache=False)

    async def _load_grant_pages(
        self, queries: list[GrantPageQuery]
    ) -> list[tuple[list[tuple[Entry, int]], bool]]:
        return [await self.ledger.grants(query) for query in queries]

    @cached_property
    def expiring_within(self) -> DataLoader[tuple[str, datetime | None, int], int]:
        return DataLoader(load_fn=self._load_expiring, cache=False)

    async def _load_expiring(self, requests: list[tuple[str, datetime | None, int]]) -> list[int]:
        return await self.ledger.expiring_within(requests)

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
