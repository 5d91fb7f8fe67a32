"""LedgerSchema: Strawberry's Schema with the ledger's execution of single operations.

HTTP requests (and nothing else) come through `execute`, which runs them straight on
graphql-core: each distinct document is parsed and validated once (the same rules and
limits as everywhere), then executed, and its errors logged, masked and coded. Strawberry's
own per-request pipeline (a fresh instance of every extension, hooks around each phase)
cost about as much as executing a small query (measured, see bench/README.md), so HTTP
skips it; WebSocket operations keep it, with the extensions from `limits.py`. Subscriptions
run only on WebSocket.
"""

import functools
from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, parse, specified_rules
from graphql import execute as execute_document
from strawberry.exceptions import MissingQueryError
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES, validate_document
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.operation import get_operation_type

from graphql_ledger.schema.errors import is_unavailable, is_unexpected, logger, reported
from graphql_ledger.schema.limits import CACHED_DOCUMENTS, QueryLimits

__all__ = ["LedgerSchema"]


class LedgerSchema(strawberry.Schema):
    def __init__(self, *, limits: QueryLimits, **options: Any) -> None:
        super().__init__(**options)
        self.limits = limits
        self._rules = (*specified_rules, *limits.validation_rules)
        self._prepared = functools.lru_cache(maxsize=CACHED_DOCUMENTS)(self._prepare)

    def _prepare(self, query: str) -> tuple[DocumentNode | None, tuple[GraphQLError, ...]]:
        """The parsed document and its validation errors (or the syntax error)."""
        try:
            document = parse(query, max_tokens=self.limits.max_tokens)
        except GraphQLError as error:
            return None, (error,)
        problems = validate_document(self._schema, document, self._rules)
        if self.config.disable_field_suggestions:
            for problem in problems:
                self.remove_field_suggestion(problem)
        return document, tuple(problems)

    def operation_name(self, query: str, requested: str | None) -> str | None:
        """The name of the operation `query` runs: the one requested, or its only one."""
        if requested:
            return requested
        document, _ = self._prepared(query)
        names = [
            definition.name.value
            for definition in (document.definitions if document else ())
            if isinstance(definition, OperationDefinitionNode) and definition.name
        ]
        return names[0] if len(names) == 1 else None

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
        if not query:
            raise MissingQueryError
        document, problems = self._prepared(query)
        if document is None or problems:
            return ExecutionResult(None, reported(list(problems), parsed=document is not None))
        try:
            operation_type = get_operation_type(document, operation_name)
        except RuntimeError as error:
            raise CannotGetOperationTypeError(operation_name) from error
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        if operation_type not in allowed - {OperationType.SUBSCRIPTION}:
            raise InvalidOperationTypeError(operation_type)
        result = execute_document(
            self._schema,
            document,
            root_value=root_value,
            context_value=context_value,
            variable_values=variable_values,
            operation_name=operation_name,
            is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
        )
        if optimized_is_awaitable(result):
            result = await result  # type: ignore[misc]
        errors = list(result.errors or ())  # type: ignore[union-attr]
        if errors:
            self._log_unexpected(errors, operation_name)
        return ExecutionResult(result.data, reported(errors, parsed=True) or None)  # type: ignore[union-attr]

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Strawberry's hook, on the WebSocket path."""
        self._log_unexpected(
            errors, execution_context.operation_name if execution_context else None
        )

    def _log_unexpected(self, errors: list[GraphQLError], operation_name: str | None) -> None:
        """Unexpected errors go to the log with their cause, an unavailable database as a
        warning; expected ones are the client's business and stay out of it."""
        for error in errors:
            path = ".".join(str(key) for key in error.path or ())
            if is_unavailable(error):
                logger.warning("operation %s at %s: %s", operation_name, path, error.original_error)
            elif is_unexpected(error):
                logger.error(
                    "unexpected error in operation %s at %s: %s",
                    operation_name,
                    path,
                    error.message,
                    exc_info=error.original_error,
                )
