"""Who is asking, and what they may do: a backend service may read and write any owner;
an end user only itself, and only the operations declared for users. Pure domain: how a
caller proves who it is (tokens) lives in `auth.py`."""

from dataclasses import dataclass

from graphql_ledger.ledger import OperationNotAllowed
from graphql_ledger.operations import LedgerOperation

__all__ = ["SERVICE_SCOPE", "NotPermitted", "Principal"]

SERVICE_SCOPE = "ledger:service"


class NotPermitted(Exception):
    """The caller may not read what it asked for. The message reveals nothing of the owner
    it asked about."""

    def __init__(self, message: str = "this token may only read its own owner") -> None:
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a backend service, or the end user who is owner
    `subject`."""

    subject: str
    is_service: bool

    def may_read(self, owner_id: str) -> bool:
        return self.is_service or owner_id == self.subject

    def refusal_to_write(
        self, owner_id: str, operation: LedgerOperation
    ) -> OperationNotAllowed | None:
        """Why this caller may not create `operation` for `owner_id`; None when it may."""
        if self.is_service:
            return None
        if owner_id != self.subject:
            return OperationNotAllowed("this token may only write entries of its own owner")
        if not operation.user_may_invoke:
            return OperationNotAllowed(f"{operation.name} may only be created by a backend service")
        return None
