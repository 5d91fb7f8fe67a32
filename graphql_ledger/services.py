"""The ledger's use cases, one method each: what a caller asks of the ledger, checked against
who the caller is and the input rules, then carried out by the repository. Resolvers translate
GraphQL in and out and call these; nothing here knows GraphQL or SQL."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from graphql_ledger.access import NotPermitted, Principal
from graphql_ledger.history import HistoryPage, HistoryQuery
from graphql_ledger.ledger import Balance, EntryOutcome, identifier_problem
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.storage import LedgerRepository

__all__ = ["Ledger", "NotPermitted"]


@dataclass(frozen=True, slots=True)
class Ledger:
    """One caller's view of one app's ledger."""

    repository: LedgerRepository
    caller: Principal

    def check_may_read(self, *owner_ids: str) -> None:
        """Raises NotPermitted unless the caller may read every one of `owner_ids`."""
        if not all(self.caller.may_read(owner_id) for owner_id in owner_ids):
            raise NotPermitted()

    async def create_entry(
        self, owner_id: str, operation: LedgerOperation, nonce: str
    ) -> EntryOutcome:
        """Appends an entry, or answers the original one for a replayed nonce, or a refusal
        that wrote nothing: the input rules and the caller's rights first, then the
        database's (idempotency, limits, no overdraft)."""
        refusal = (
            identifier_problem("ownerId", owner_id)
            or identifier_problem("nonce", nonce)
            or self.caller.refusal_to_write(owner_id, operation)
        )
        if refusal is not None:
            return refusal
        return await self.repository.create_entry(owner_id, operation, nonce)

    async def balances(self, owner_ids: Sequence[str]) -> list[Balance]:
        """Current balances, in the order asked, in one read (the caller's rights are
        checked per field, before the read is batched)."""
        return await self.repository.balances_of(owner_ids)

    async def balances_at(self, requests: Sequence[tuple[str, datetime]]) -> list[Balance]:
        """Balances as of instants, in the order asked, in one read."""
        return await self.repository.balances_at(requests)

    async def history(self, queries: Sequence[HistoryQuery]) -> list[HistoryPage]:
        """A page of history for each query, in the order asked, in one read."""
        return await self.repository.entry_pages(queries)
