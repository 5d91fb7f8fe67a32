"""Low-balance alerts (CONTRACT.md section 6): an owner's own threshold beside the app's,
and the input rules of setting one. No I/O here."""

from dataclasses import dataclass

from graphql_ledger.ledger import InvalidInput

__all__ = ["MAX_BELOW", "BalanceAlert", "below_problem"]

MAX_BELOW = 2147483647


@dataclass(frozen=True, slots=True)
class BalanceAlert:
    """An owner's alert after setBalanceAlert: its own threshold (None: the app's applies),
    the threshold in force (None: no alert), and what is available now."""

    owner_id: str
    below: int | None
    below_in_force: int | None
    available: int


def below_problem(below: int | None) -> InvalidInput | None:
    if below is None or 1 <= below <= MAX_BELOW:
        return None
    return InvalidInput("below", f"below must be 1 to {MAX_BELOW} credits (or null), not {below}")
