"""The ledger's use cases, one method each: what a caller asks of the ledger, checked against
who the caller is and the input rules, then carried out by the repository. Resolvers translate
GraphQL in and out and call these; nothing here knows GraphQL or SQL."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from graphql_ledger.access import NotPermitted, Principal
from graphql_ledger.alerts import BalanceAlert, below_problem
from graphql_ledger.grants import expires_at_problem
from graphql_ledger.history import HistoryPage, HistoryQuery
from graphql_ledger.holds import (
    CaptureOutcome,
    CreateEntryOutcome,
    Hold,
    NotFound,
    RefundOutcome,
    ReleaseOutcome,
    ReserveOutcome,
    expires_in_problem,
    reservable_problem,
)
from graphql_ledger.ledger import (
    Balance,
    Entry,
    InvalidInput,
    Metadata,
    OperationNotAllowed,
    identifier_problem,
    metadata_problem,
    quantity_problem,
)
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.storage import LedgerRepository
from graphql_ledger.storage.grants import GrantPageQuery
from graphql_ledger.storage.holds import HoldPageQuery

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
        self,
        owner_id: str,
        operation: LedgerOperation,
        nonce: str,
        quantity: int = 1,
        metadata: object = None,
        expires_at: datetime | None = None,
    ) -> CreateEntryOutcome:
        """Appends an entry, or answers the original one for a replayed nonce, or a refusal
        that wrote nothing: the input rules and the caller's rights first, then the
        database's (idempotency, limits, no overdraft). A service may say when the credits
        it adds expire (`expires_at`), which wins over the operation's lifetime."""
        refusal = (
            _write_problem(owner_id, nonce, metadata)
            or quantity_problem(quantity, operation)
            or self.caller.refusal_to_write(owner_id, operation)
            or (None if expires_at is None else self._expiry_problem(expires_at, operation))
        )
        if refusal is not None:
            return refusal
        return await self.repository.create_entry(
            owner_id, operation, nonce, quantity, _metadata(metadata), expires_at
        )

    def _expiry_problem(
        self, expires_at: datetime, operation: LedgerOperation
    ) -> InvalidInput | OperationNotAllowed | None:
        if not self.caller.is_service:
            return OperationNotAllowed("only a backend service may choose when credits expire")
        return expires_at_problem(expires_at, operation, datetime.now(UTC))

    async def reserve_credits(
        self,
        owner_id: str,
        operation: LedgerOperation,
        nonce: str,
        quantity: int = 1,
        expires_in: int = 900,
        metadata: object = None,
    ) -> ReserveOutcome:
        """Reserves credits for a job: a hold, until captured, released or expired."""
        refusal = (
            _write_problem(owner_id, nonce, metadata)
            or reservable_problem(operation)
            or quantity_problem(quantity, operation)
            or expires_in_problem(expires_in)
            or self.caller.refusal_to_write(owner_id, operation)
        )
        if refusal is not None:
            return refusal
        return await self.repository.holds.reserve(
            owner_id, operation, nonce, quantity, expires_in, _metadata(metadata)
        )

    async def capture_hold(
        self, hold_id: str, quantity: int | None = None, metadata: object = None
    ) -> CaptureOutcome:
        """Books what a job used out of its hold, and releases the rest."""
        number = _id_number(hold_id)
        if number is None:
            return NotFound("hold")
        refusal = (None if metadata is None else metadata_problem(metadata)) or (
            None if quantity is None else _capture_quantity_problem(quantity)
        )
        if refusal is not None:
            return refusal
        as_owner, operations = self._end_user_scope()
        return await self.repository.holds.capture(
            number, quantity, _metadata(metadata), as_owner, operations
        )

    async def release_hold(self, hold_id: str) -> ReleaseOutcome:
        """Ends an open hold: its credits are available again."""
        number = _id_number(hold_id)
        if number is None:
            return NotFound("hold")
        as_owner, operations = self._end_user_scope()
        return await self.repository.holds.release(number, as_owner, operations)

    async def refund_entry(
        self, entry_id: str, nonce: str, metadata: object = None
    ) -> RefundOutcome:
        """Reverses an OPERATION or CAPTURE entry, at most once; for backend services."""
        if not self.caller.is_service:
            return OperationNotAllowed("only a backend service may refund an entry")
        number = _id_number(entry_id)
        if number is None:
            return NotFound("entry")
        refusal = identifier_problem("nonce", nonce) or (
            None if metadata is None else metadata_problem(metadata)
        )
        if refusal is not None:
            return refusal
        return await self.repository.holds.refund(number, nonce, _metadata(metadata))

    async def set_balance_alert(
        self, owner_id: str, below: int | None
    ) -> BalanceAlert | InvalidInput | OperationNotAllowed:
        """Sets the owner's own low-balance threshold, or removes it; for backend services."""
        if not self.caller.is_service:
            return OperationNotAllowed("only a backend service may set a balance alert")
        refusal = identifier_problem("ownerId", owner_id) or below_problem(below)
        if refusal is not None:
            return refusal
        return await self.repository.set_balance_alert(owner_id, below)

    async def holds_by_id(self, hold_ids: Sequence[str]) -> list[Hold | None]:
        """Each hold the caller may see, None for one that is unknown or not theirs."""
        numbers = [_id_number(hold_id) for hold_id in hold_ids]
        found = await self.repository.holds.holds_by_id([n for n in numbers if n is not None])
        holds = [found.get(n) if n is not None else None for n in numbers]
        return [h if h is not None and self.caller.may_read(h.owner_id) else None for h in holds]

    async def hold_pages(self, queries: Sequence[HoldPageQuery]) -> list[tuple[list[Hold], bool]]:
        """A page of holds for each query (the caller's rights checked per field)."""
        return [await self.repository.holds.page(query) for query in queries]

    async def entries_by_id(self, entry_ids: Sequence[int]) -> dict[int, Entry]:
        """Entries by id, for the links between entries and holds the caller already sees."""
        return await self.repository.entries_by_id(entry_ids)

    async def refunds_of(self, entries: Sequence[tuple[str, int]]) -> dict[int, Entry]:
        """The refunds of these (owner, id) entries, by the original's id."""
        return await self.repository.refunds_of(entries)

    def _end_user_scope(self) -> tuple[str | None, list[str] | None]:
        """What restricts an end user's capture or release: their own holds, of the
        operations they may invoke; nothing for a backend service."""
        if self.caller.is_service:
            return None, None
        return self.caller.subject, _user_operations(self.repository.operations)

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

    async def remaining(self, owner_ids: Sequence[str]) -> dict[tuple[str, int], int]:
        """What each entry that added credits has left now, by (owner, entry id); an entry
        absent has none left."""
        return await self.repository.grants.remaining(owner_ids)

    async def grants(self, query: GrantPageQuery) -> tuple[list[tuple[Entry, int]], bool]:
        """A page of an owner's grants with credits left, in the order spends take them."""
        return await self.repository.grants.page(query)

    async def expiring_within(
        self, requests: Sequence[tuple[str, datetime | None, int]]
    ) -> list[int]:
        """For each (owner, instant or None for now, seconds): the available credits that
        expire within so many seconds of it."""
        return await self.repository.grants.expiring_within(requests)


def _user_operations(operations: type[LedgerOperation]) -> list[str]:
    """The operations of an app an end user may invoke for themselves."""
    return [operation.name for operation in operations if operation.user_may_invoke]


def _write_problem(owner_id: str, nonce: str, metadata: object) -> InvalidInput | None:
    return (
        identifier_problem("ownerId", owner_id)
        or identifier_problem("nonce", nonce)
        or (None if metadata is None else metadata_problem(metadata))
    )


def _metadata(metadata: object) -> Metadata | None:
    """Metadata that passed metadata_problem."""
    return metadata if isinstance(metadata, dict) else None


def _capture_quantity_problem(quantity: int) -> InvalidInput | None:
    if quantity < 1:
        return InvalidInput("quantity", f"quantity must be at least 1, not {quantity}")
    return None


def _id_number(value: str) -> int | None:
    """A hold's or an entry's id as its number; None for one that names nothing."""
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    return int(value)
