"""The GraphQL types of low-balance alerts (setBalanceAlert). They name no operation, so
unlike entries and holds they are the same for every app, made once here.

This module must not use `from __future__ import annotations` (see `entries.py`).
"""

from typing import Annotated, Any

import strawberry

from graphql_ledger import alerts, ledger
from graphql_ledger.schema.types import InvalidInput, OperationNotAllowed

__all__ = ["BalanceAlert", "SetBalanceAlertInput", "SetBalanceAlertResult", "alert_result_of"]


@strawberry.type(
    description="An owner's low-balance alert: a balance.low event fires when available "
    "falls below the threshold in force, once until it is at or above it again."
)
class BalanceAlert:
    owner_id: strawberry.ID
    below: int | None = strawberry.field(
        description="The owner's own threshold; null when the app's applies."
    )
    below_in_force: int | None = strawberry.field(
        description="The owner's own threshold, else the app's; null: no alert."
    )
    available: int = strawberry.field(description="What is available now.")


@strawberry.input
class SetBalanceAlertInput:
    owner_id: strawberry.ID
    below: int | None = strawberry.field(
        description="Alert when available falls below this many credits (1 or more); "
        "null removes the owner's own threshold."
    )


SetBalanceAlertResult = Annotated[
    BalanceAlert | InvalidInput | OperationNotAllowed,
    strawberry.union("SetBalanceAlertResult"),
]


def alert_result_of(outcome: Any) -> Any:
    """setBalanceAlert's outcome as the member of its union that shows it."""
    match outcome:
        case alerts.BalanceAlert():
            return BalanceAlert(
                owner_id=strawberry.ID(outcome.owner_id),
                below=outcome.below,
                below_in_force=outcome.below_in_force,
                available=outcome.available,
            )
        case ledger.InvalidInput():
            return InvalidInput.of(outcome)
        case ledger.OperationNotAllowed():
            return OperationNotAllowed.of(outcome)
    raise TypeError(f"not an outcome of setBalanceAlert: {outcome!r}")
