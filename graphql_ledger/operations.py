"""The ledger's operations: the four every app shares, their amounts and rules, and the
base enum an app subclasses to declare its own. Pure domain: no storage, no GraphQL.

An app declares its operations like this, and the class statement itself fails when a
shared operation is missing or an operation has no amount::

    class HealthAIOperation(LedgerOperation):
        DAILY_REWARD = shared()
        SIGNUP_CREDIT = shared()
        CREDIT_SPEND = shared()
        CREDIT_ADD = shared()
        CONTENT_CREATION = credits(-5)
        CONTENT_ACCESS = credits(0)

Each operation also says whether end users may invoke it for themselves (by default those
that do not add credits), how often an owner may have it (`Limit`) and, for one that adds
credits, how long they last (`expires_after`; by default they never expire), which a shared
operation may also be given per app: `SIGNUP_CREDIT = shared(expires_after=timedelta(days=30))`.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum, EnumType
from types import MappingProxyType
from typing import Any

__all__ = [
    "MAX_LIFETIME",
    "SHARED_AMOUNTS",
    "SHARED_OPERATIONS",
    "LedgerOperation",
    "Limit",
    "OperationDeclaration",
    "credits",
    "shared",
]


class Limit(Enum):
    """How often one owner may have an entry of an operation, whatever its nonce. The
    database enforces it; the value is what create_entry() is told."""

    ONCE = "once"
    ONCE_PER_UTC_DAY = "utc_day"


@dataclass(frozen=True, eq=False)
class OperationDeclaration:
    """What an enum member was declared as; compared by identity, so that two
    operations with the same amount stay two members rather than becoming aliases.
    `amount` None stands for a shared operation, whose rules live in SHARED_OPERATIONS
    (but for its lifetime, which each app chooses)."""

    amount: int | None
    user_may_invoke: bool = False
    limit: Limit | None = None
    expires_after: timedelta | None = None


def shared(*, expires_after: timedelta | None = None) -> OperationDeclaration:
    """Declares one of the shared operations; its rules live in `SHARED_OPERATIONS`, but
    for how long the credits it adds last in this app (`expires_after`; never by default)."""
    return OperationDeclaration(amount=None, expires_after=_lifetime(expires_after))


def _lifetime(expires_after: timedelta | None) -> timedelta | None:
    if expires_after is None:
        return None
    if not isinstance(expires_after, timedelta):
        raise TypeError(f"expires_after takes a timedelta, not {expires_after!r}")
    if expires_after <= timedelta(0) or expires_after % timedelta(microseconds=1000):
        raise ValueError(
            f"expires_after must be a positive whole number of milliseconds, not {expires_after}"
        )
    if expires_after > MAX_LIFETIME:
        raise ValueError(f"expires_after must be at most 10 years, not {expires_after}")
    return expires_after


# The longest a credit may last: a service's expiresAt and an operation's lifetime alike.
MAX_LIFETIME = timedelta(days=3653)


def credits(
    amount: int,
    *,
    user_may_invoke: bool | None = None,
    limit: Limit | None = None,
    expires_after: timedelta | None = None,
) -> OperationDeclaration:
    """Declares an app's own operation that changes a balance by `amount` credits.

    Args:
        amount: Credits one entry adds (positive) or takes (negative).
        user_may_invoke: Whether an end user's token may create it for its own owner;
            by default those that add no credits (amount <= 0). Otherwise only a backend
            service may.
        limit: How often one owner may have it; unlimited by default.
        expires_after: How long the credits it adds last (a grant, spent before credits
            that never expire); they never expire by default. Only for a positive amount.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"credits() takes a whole number of credits, not {amount!r}")
    if expires_after is not None and amount <= 0:
        raise ValueError(f"only credits that add credits expire, not credits({amount})")
    if user_may_invoke is None:
        user_may_invoke = amount <= 0
    return OperationDeclaration(
        amount=amount,
        user_may_invoke=user_may_invoke,
        limit=limit,
        expires_after=_lifetime(expires_after),
    )


SHARED_OPERATIONS: Mapping[str, OperationDeclaration] = MappingProxyType(
    {
        "DAILY_REWARD": credits(1, user_may_invoke=True, limit=Limit.ONCE_PER_UTC_DAY),
        "SIGNUP_CREDIT": credits(3, user_may_invoke=False, limit=Limit.ONCE),
        "CREDIT_SPEND": credits(-1, user_may_invoke=True),
        "CREDIT_ADD": credits(10, user_may_invoke=False),  # a purchase
    }
)

SHARED_AMOUNTS: Mapping[str, int] = MappingProxyType(
    {name: declared.amount or 0 for name, declared in SHARED_OPERATIONS.items()}
)


class _OperationType(EnumType):
    def __new__(
        metacls,
        name: str,
        bases: tuple[type, ...],
        classdict: Any,
        **kwargs: Any,
    ) -> "_OperationType":
        cls = super().__new__(metacls, name, bases, classdict, **kwargs)
        if any(isinstance(base, _OperationType) for base in bases):
            _check_declarations(cls)
        return cls


def _check_declarations(cls: Any) -> None:
    members: dict[str, Any] = dict(cls.__members__)
    problems = []
    missing = [op for op in SHARED_OPERATIONS if op not in members]
    if missing:
        problems.append(f"it lacks the shared operations {', '.join(missing)}")
    undeclared = [n for n, m in members.items() if not isinstance(m.value, OperationDeclaration)]
    if undeclared:
        problems.append(
            f"these operations have no amount: {', '.join(undeclared)} "
            "(declare each as credits(n), or shared() for a shared operation)"
        )
    declared = {n: m.value for n, m in members.items() if n not in undeclared}
    not_shared = [n for n, d in declared.items() if d.amount is None and n not in SHARED_OPERATIONS]
    if not_shared:
        problems.append(
            f"these operations are not shared and have no amount: {', '.join(not_shared)} "
            "(declare each as credits(n))"
        )
    overridden = [n for n, d in declared.items() if d.amount is not None and n in SHARED_OPERATIONS]
    not_credits = [
        n
        for n, d in declared.items()
        if d.amount is None and d.expires_after and SHARED_AMOUNTS.get(n, 0) <= 0
    ]
    if not_credits:
        problems.append(
            f"these shared operations add no credits, so none expire: {', '.join(not_credits)}"
        )
    if overridden:
        problems.append(
            f"these shared operations must be declared as shared(), their amounts live in "
            f"the core: {', '.join(overridden)}"
        )
    if problems:
        raise TypeError(f"{cls.__name__}: {'; '.join(problems)}")


class LedgerOperation(Enum, metaclass=_OperationType):
    """Base of every app's operation enum; see the module docstring for an example."""

    @property
    def declaration(self) -> OperationDeclaration:
        """The operation's rules: the app's declaration, or the core's for a shared one."""
        declared: OperationDeclaration = self.value
        return SHARED_OPERATIONS[self.name] if declared.amount is None else declared

    @property
    def amount(self) -> int:
        """Credits one entry of this operation adds (positive) or takes (negative)."""
        amount = self.declaration.amount
        assert amount is not None
        return amount

    @property
    def user_may_invoke(self) -> bool:
        """Whether an end user may create it for its own owner, not only a service."""
        return self.declaration.user_may_invoke

    @property
    def limit(self) -> Limit | None:
        return self.declaration.limit

    @property
    def expires_after(self) -> timedelta | None:
        """How long the credits an entry of it adds last in this app; None for ever."""
        declared: OperationDeclaration = self.value
        return declared.expires_after
