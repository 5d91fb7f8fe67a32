"""The Mutation type of one app: each mutation translates its input, calls the caller's use
case, and shows the outcome as a member of its result union.

This module must not use `from __future__ import annotations` (see `entries.py`).
"""

from typing import Any

import strawberry

from graphql_ledger import ledger
from graphql_ledger.schema import arguments
from graphql_ledger.schema.alerts import (
    SetBalanceAlertInput,
    SetBalanceAlertResult,
    alert_result_of,
)
from graphql_ledger.schema.arguments import given
from graphql_ledger.schema.context import LedgerContext
from graphql_ledger.schema.errors import BadUserInput
from graphql_ledger.schema.holds import HoldTypes

__all__ = ["mutation_type"]


def _or(value: int | None, default: int) -> int:
    """An optional input's value, its default when the client sent null."""
    return default if value is None else value


def mutation_type(types: HoldTypes) -> type:
    """The app's Mutation type."""
    CreateEntryInput, CreateEntryResult = types.entries.CreateEntryInput, types.CreateEntryResult
    ReserveCreditsInput, ReserveCreditsResult = (
        types.ReserveCreditsInput,
        types.ReserveCreditsResult,
    )
    CaptureHoldInput, CaptureHoldResult = types.CaptureHoldInput, types.CaptureHoldResult
    ReleaseHoldInput, ReleaseHoldResult = types.ReleaseHoldInput, types.ReleaseHoldResult
    RefundEntryInput, RefundEntryResult = types.RefundEntryInput, types.RefundEntryResult

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
            try:
                expires_at = arguments.checked_instant(given(asked.expires_at), "expiresAt")
            except BadUserInput as error:
                return types.result_of(ledger.InvalidInput("expiresAt", error.message))
            outcome = await context.ledger.create_entry(
                asked.owner_id,
                asked.operation,
                asked.nonce,
                _or(asked.quantity, 1),
                given(asked.metadata),
                expires_at,
            )
            return types.result_of(context.observed(outcome))

        @strawberry.mutation(
            description="Reserves credits for a job: a hold, which books nothing until it is "
            "captured, and frees them when released or expired."
        )
        async def reserve_credits(
            self, info: strawberry.Info, input: ReserveCreditsInput
        ) -> ReserveCreditsResult:
            context: LedgerContext = info.context
            asked: Any = input
            outcome = await context.ledger.reserve_credits(
                asked.owner_id,
                asked.operation,
                asked.nonce,
                _or(asked.quantity, 1),
                _or(asked.expires_in, 900),
                given(asked.metadata),
            )
            return types.result_of(context.observed(outcome))

        @strawberry.mutation(
            description="Books what the job used out of an open hold (one CAPTURE entry) and "
            "releases the rest; the same capture again answers the same entry."
        )
        async def capture_hold(
            self, info: strawberry.Info, input: CaptureHoldInput
        ) -> CaptureHoldResult:
            context: LedgerContext = info.context
            asked: Any = input
            outcome = await context.ledger.capture_hold(
                asked.hold_id, given(asked.quantity), given(asked.metadata)
            )
            return types.result_of(context.observed(outcome))

        @strawberry.mutation(description="Ends an open hold and books nothing.")
        async def release_hold(
            self, info: strawberry.Info, input: ReleaseHoldInput
        ) -> ReleaseHoldResult:
            context: LedgerContext = info.context
            asked: Any = input
            outcome = await context.ledger.release_hold(asked.hold_id)
            return types.result_of(context.observed(outcome))

        @strawberry.mutation(
            description="Reverses an OPERATION or CAPTURE entry once, with a REFUND entry of "
            "the opposite amount (backend services only)."
        )
        async def refund_entry(
            self, info: strawberry.Info, input: RefundEntryInput
        ) -> RefundEntryResult:
            context: LedgerContext = info.context
            asked: Any = input
            outcome = await context.ledger.refund_entry(
                asked.entry_id, asked.nonce, given(asked.metadata)
            )
            return types.result_of(context.observed(outcome))

        @strawberry.mutation(
            description="Sets an owner's own low-balance threshold, or with below: null "
            "removes it (backend services only)."
        )
        async def set_balance_alert(
            self, info: strawberry.Info, input: SetBalanceAlertInput
        ) -> SetBalanceAlertResult:
            context: LedgerContext = info.context
            outcome = await context.ledger.set_balance_alert(input.owner_id, input.below)
            return alert_result_of(context.observed(outcome))

    return Mutation
