"""What the resolvers of one request share: the repository, and DataLoaders that gather
every read of a kind in the request into one SQL statement. Made fresh per request, so
nothing cached outlives it."""

from dataclasses import dataclass
from datetime import datetime

from strawberry.dataloader import DataLoader

from graphql_ledger.history import HistoryPage, HistoryQuery
from graphql_ledger.schema.types import Balance
from graphql_ledger.storage import LedgerRepository

__all__ = ["LedgerContext"]


@dataclass
class LedgerContext:
    repository: LedgerRepository
    balances: DataLoader[str, Balance]
    balances_at: DataLoader[tuple[str, datetime], Balance]
    entry_pages: DataLoader[HistoryQuery, HistoryPage]

    @classmethod
    def for_request(cls, repository: LedgerRepository) -> "LedgerContext":
        async def load_balances(owner_ids: list[str]) -> list[Balance]:
            return [Balance.of(b) for b in await repository.balances_of(owner_ids)]

        async def load_balances_at(requests: list[tuple[str, datetime]]) -> list[Balance]:
            return [Balance.of(b) for b in await repository.balances_at(requests)]

        return cls(
            repository=repository,
            balances=DataLoader(load_fn=load_balances),
            balances_at=DataLoader(load_fn=load_balances_at),
            entry_pages=DataLoader(load_fn=repository.entry_pages),
        )
