"""The only door to an app's ledger tables: one statement per unit of work, each on a
connection of its own, so concurrent resolvers of one request never share one. The rules
themselves (locking, no overdraft, idempotency) live in the database's create_entry()."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, Text, bindparam, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from graphql_ledger.ledger import Balance, Entry, InsufficientCredits, NonceConflict
from graphql_ledger.operations import LedgerOperation

__all__ = ["LedgerRepository"]

_CREATE_ENTRY = text(
    "SELECT outcome, entry_id, entry_operation, entry_amount, entry_balance_after,"
    " entry_created_on, current_balance"
    " FROM create_entry(:owner_id, :operation, :amount, :nonce)"
)

_BALANCES = text(
    "SELECT owner_id, balance, last_updated FROM balances WHERE owner_id = ANY(:owner_ids)"
).bindparams(bindparam("owner_ids", type_=ARRAY(Text)))

# create_entry() raises this when a copy of the same request committed concurrently.
_NONCE_KEY = "entries_owner_nonce_key"


class LedgerRepository:
    """Reads and writes one app's ledger."""

    def __init__(self, engine: AsyncEngine, operations: type[LedgerOperation]) -> None:
        self.engine = engine
        self.operations = operations

    async def create_entry(
        self, owner_id: str, operation: LedgerOperation, nonce: str
    ) -> Entry | InsufficientCredits | NonceConflict:
        """Appends an entry of `operation` for `owner_id` unless the nonce was used before
        (replay: the original entry; another operation: NonceConflict) or the balance
        would go negative (InsufficientCredits, nothing written)."""
        parameters = {
            "owner_id": owner_id,
            "operation": operation.name,
            "amount": operation.amount,
            "nonce": nonce,
        }
        try:
            row = await self._create_entry(parameters)
        except IntegrityError as error:
            database_error = error.orig.__cause__ if error.orig is not None else None
            if getattr(database_error, "constraint_name", None) != _NONCE_KEY:
                raise
            # Lost a race with a copy of this request; it has committed, so the same call
            # now answers from it.
            row = await self._create_entry(parameters)
        outcome = row.outcome
        if outcome == "insufficient_credits":
            return InsufficientCredits(balance=row.current_balance, required=-operation.amount)
        entry = Entry(
            id=row.entry_id,
            owner_id=owner_id,
            operation=self.operations[row.entry_operation],
            amount=row.entry_amount,
            balance_after=row.entry_balance_after,
            nonce=nonce,
            created_on=row.entry_created_on,
        )
        return NonceConflict(existing=entry) if outcome == "nonce_conflict" else entry

    async def _create_entry(self, parameters: dict[str, Any]) -> Any:
        async with self.engine.connect() as connection:
            result = await connection.execute(_CREATE_ENTRY, parameters)
            return result.one()

    async def balances_of(self, owner_ids: Sequence[str]) -> list[Balance]:
        """Balances of `owner_ids`, in the same order, in one query."""
        async with self.engine.connect() as connection:
            result = await connection.execute(_BALANCES, {"owner_ids": list(set(owner_ids))})
            found = {row.owner_id: row for row in result}
        return [
            Balance(owner_id, found[owner_id].balance, found[owner_id].last_updated)
            if owner_id in found
            else Balance(owner_id, 0, None)
            for owner_id in owner_ids
        ]
