"""The ledger's operations: the four every app shares, their amounts, and the base enum an
app subclasses to declare its own. Pure domain: no storage, no GraphQL.

An app declares its operations like this, and the class statement itself fails when a
shared operation is missing or an operation has no amount::

    class HealthAIOperation(LedgerOperation):
        DAILY_REWARD = shared()
        SIGNUP_CREDIT = shared()
        CREDIT_SPEND = shared()
        CREDIT_ADD = shared()
        CONTENT_CREATION = credits(-5)
        CONTENT_ACCESS = credits(0)
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, EnumType
from types import MappingProxyType
from typing import Any

__all__ = [
    "SHARED_AMOUNTS",
    "LedgerOperation",
    "OperationDeclaration",
    "credits",
    "shared",
]

SHARED_AMOUNTS: Mapping[str, int] = MappingProxyType(
    {
        "DAILY_REWARD": 1,
        "SIGNUP_CREDIT": 3,
        "CREDIT_SPEND": -1,
        "CREDIT_ADD": 10,
    }
)


@dataclass(frozen=True, eq=False)
class OperationDeclaration:
    """What an enum member was declared as; compared by identity, so that two
    operations with the same amount stay two members rather than becoming aliases."""

    amount: int | None


def shared() -> OperationDeclaration:
    """Declares one of the shared operations; its amount lives in `SHARED_AMOUNTS`."""
    return OperationDeclaration(amount=None)


def credits(amount: int) -> OperationDeclaration:
    """Declares an app's own operation that changes a balance by `amount` credits."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"credits() takes a whole number of credits, not {amount!r}")
    return OperationDeclaration(amount=amount)


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
    missing = [op for op in SHARED_AMOUNTS if op not in members]
    if missing:
        problems.append(f"it lacks the shared operations {', '.join(missing)}")
    undeclared = [n for n, m in members.items() if not isinstance(m.value, OperationDeclaration)]
    if undeclared:
        problems.append(
            f"these operations have no amount: {', '.join(undeclared)} "
            "(declare each as credits(n), or shared() for a shared operation)"
        )
    declared = {n: m.value for n, m in members.items() if n not in undeclared}
    not_shared = [n for n, d in declared.items() if d.amount is None and n not in SHARED_AMOUNTS]
    if not_shared:
        problems.append(
            f"these operations are not shared and have no amount: {', '.join(not_shared)} "
            "(declare each as credits(n))"
        )
    overridden = [n for n, d in declared.items() if d.amount is not None and n in SHARED_AMOUNTS]
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
    def amount(self) -> int:
        """Credits one entry of this operation adds (positive) or takes (negative)."""
        declared: int | None = self.value.amount
        return SHARED_AMOUNTS[self.name] if declared is None else declared
