"""Expiring grants (CONTRACT.md section 5): the input rules of a credit's expiry. Pure
domain: no storage, no GraphQL. Spends take credits soonest-expiring first, then those that
never expire, oldest first; the database does the arithmetic (graphql_ledger.storage.grants)
and the booking of what lapses (graphql_ledger.expiry)."""

from datetime import datetime

from graphql_ledger.ledger import InvalidInput
from graphql_ledger.operations import MAX_LIFETIME, LedgerOperation

__all__ = ["MAX_EXPIRING_WITHIN", "expires_at_problem", "expiring_within_problem"]

# The widest window Balance.expiringWithin looks ahead: the longest lifetime.
MAX_EXPIRING_WITHIN = int(MAX_LIFETIME.total_seconds())


def expires_at_problem(
    expires_at: datetime, operation: LedgerOperation, now: datetime
) -> InvalidInput | None:
    """Why a service's expiresAt for an entry of `operation` is refused, if it is: it must
    be at most 10 years ahead, and on an entry that adds credits. That it must be after now
    is the database's to say (create_entry() refuses one that is not after the entry's
    createdOn), after it has looked for a replay: a retry of a grant that has since expired
    answers the original entry, as any replay does."""
    if operation.amount <= 0:
        return InvalidInput(
            "expiresAt", f"{operation.name} adds no credits, so none of its entries expire"
        )
    if expires_at > now + MAX_LIFETIME:
        return InvalidInput("expiresAt", "expiresAt must be at most 10 years ahead")
    return None


def expiring_within_problem(seconds: int) -> str | None:
    """Why a window of expiringWithin is refused, if it is."""
    if not 0 <= seconds <= MAX_EXPIRING_WITHIN:
        return f"seconds must be 0 to {MAX_EXPIRING_WITHIN:,}, not {seconds}"
    return None
