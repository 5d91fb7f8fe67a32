"""LedgerSchema: Strawberry's Schema with the ledger's logging of unexpected errors and its
one transport rule (subscriptions only on WebSocket)."""

from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from graphql_ledger.schema.errors import is_unexpected, logger

__all__ = ["LedgerSchema"]


class LedgerSchema(strawberry.Schema):
    """Logs unexpected errors with their context; expected ones are the client's business
    and stay out of the server log. Subscriptions run only on WebSocket (`subscribe`):
    `execute`, which serves HTTP, refuses them (Strawberry would otherwise run one over
    POST as a plain query and fail)."""

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed - {OperationType.SUBSCRIPTION},
            operation_extensions,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if is_unexpected(error):
                logger.error(
                    "unexpected error in operation %s at %s: %s",
                    execution_context.operation_name if execution_context else None,
                    ".".join(str(key) for key in error.path or ()),
                    error.message,
                    exc_info=error.original_error,
                )
