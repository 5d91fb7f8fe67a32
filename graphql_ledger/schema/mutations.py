"""The Mutation type of one app: each mutation translates its input, calls the caller's
use case, and shows the outcome as a member of its result union.

This module must not use `from __future__ import annotations` (see `entries.py`).
"""

from typing import Any

import strawberry

from graphql_ledger.schema.context import LedgerContext
from graphql_ledger.schema.entries import EntryTypes

__all__ = ["mutation_type"]


def mutation_type(types: EntryTypes) -> type:
    """The app's Mutation type."""
    CreateEntryInput = types.CreateEntryInput
    CreateEntryResult = types.CreateEntryResult

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
            asked: Any = input  # a CreateEntryInput, made per app
            outcome = await context.create_entry(asked.owner_id, asked.operation, asked.nonce)
            return types.result_of(outcome)

    return Mutation
