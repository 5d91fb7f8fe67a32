"""LedgerSchema: Strawberry's Schema with the ledger's one executor. Every operation, whether it
arrives over HTTP (`execute`) or over WebSocket (`stream`, which Strawberry's
graphql-transport-ws handler calls for queries, mutations and subscriptions alike), takes
the same steps on graphql-core:

1. the document is parsed and validated once per distinct text (the specification's rules
   plus the document limits), cached;
2. it is executed (a subscription: subscribed, each event executed);
3. its errors are logged when unexpected, masked, and coded (`errors.reported`);
4. one `OperationRecord` (name, outcome, duration) goes to the context's `record`, which the
   transport turns into its log line and metrics.

Strawberry's own per-request pipeline (a fresh instance of every extension, hooks around each
phase) is not used: it cost as much as executing a small query (bench/README.md), and a second
pipeline is a second copy of every policy.
"""

import functools
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    parse,
    specified_rules,
    subscribe,
)
from graphql import ExecutionResult as CoreResult
from graphql import execute as execute_document
from strawberry.exceptions import MissingQueryError
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES, validate_document
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.utils.operation import get_operation_type

from graphql_ledger.schema.errors import log_unexpected, outcome_of, reported
from graphql_ledger.schema.limits import CACHED_DOCUMENTS, QueryLimits

__all__ = ["LedgerSchema", "OperationRecord"]


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """What the logs and metrics say of one operation: its name (None when anonymous),
    its outcome (ok, error, unexpected, unavailable) and how long it took."""

    name: str | None
    outcome: str
    seconds: float


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
        return _only_operation_name(document) if document else None

    def _document(
        self,
        query: str | None,
        operation_name: str | None,
        allowed: Iterable[OperationType] | None,
    ) -> tuple[DocumentNode | None, OperationType | None, list[GraphQLError]]:
        """The prepared document and its operation's type, or the errors the client gets
        instead. Raises the exceptions Strawberry's views turn into a 400."""
        if not query:
            raise MissingQueryError
        document, problems = self._prepared(query)
        if document is None or problems:
            return None, None, reported(list(problems), parsed=document is not None)
        try:
            operation_type = get_operation_type(document, operation_name)
        except RuntimeError as error:
            raise CannotGetOperationTypeError(operation_name) from error
        if operation_type not in set(allowed or DEFAULT_ALLOWED_OPERATION_TYPES):
            raise InvalidOperationTypeError(operation_type)
        return document, operation_type, []

    def _finish(
        self, result: CoreResult, operation_name: str | None, context: Any, started: float
    ) -> ExecutionResult:
        errors = list(result.errors or ())
        log_unexpected(errors, operation_name)
        shown = reported(errors, parsed=True) or None
        self._record(context, operation_name, outcome_of(shown), started)
        return ExecutionResult(result.data, shown)

    @staticmethod
    def _record(context: Any, operation_name: str | None, outcome: str, started: float) -> None:
        record = getattr(context, "record", None)
        if record is not None:
            record(OperationRecord(operation_name, outcome, time.perf_counter() - started))

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
        """Runs a query or mutation (subscriptions run on WebSocket, through `stream`)."""
        started = time.perf_counter()
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        document, _, errors = self._document(
            query, operation_name, allowed - {OperationType.SUBSCRIPTION}
        )
        name = self.operation_name(query, operation_name) if query else None
        if document is None:
            self._record(context_value, name, "error", started)
            return ExecutionResult(None, errors)
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
        return self._finish(result, name, context_value, started)  # type: ignore[arg-type]

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> AsyncGenerator[ExecutionResult, None]:
        """Any operation over WebSocket: a query or mutation yields its one result (through
        `execute`), a subscription one result per event; refusals before execution are a
        PreExecutionError, which the handler sends as the operation's `error` message."""
        return self._results(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
        )

    async def _results(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None,
        context_value: Any,
        root_value: Any,
        operation_name: str | None,
        allowed_operation_types: Iterable[OperationType] | None,
    ) -> AsyncGenerator[ExecutionResult, None]:
        started = time.perf_counter()
        try:
            document, operation_type, errors = self._document(
                query, operation_name, allowed_operation_types
            )
        except MissingQueryError:
            errors = [_refusal("No GraphQL query found in the request")]
        except CannotGetOperationTypeError as error:
            errors = [_refusal(error.as_http_error_reason())]
        except InvalidOperationTypeError as error:
            errors = [_refusal(error.as_http_error_reason("WebSocket"))]
        else:
            if operation_type is OperationType.SUBSCRIPTION and document is not None:
                async for event in self._subscribe(
                    document, variable_values, context_value, root_value, operation_name
                ):
                    yield event
                return
            if document is not None:
                yield await self.execute(
                    query, variable_values, context_value, root_value, operation_name
                )
                return
        name = self.operation_name(query, operation_name) if query else None
        self._record(context_value, name, "error", started)
        yield PreExecutionError(None, errors)

    async def _subscribe(
        self,
        document: DocumentNode,
        variable_values: dict[str, Any] | None,
        context_value: Any,
        root_value: Any,
        operation_name: str | None,
    ) -> AsyncIterator[ExecutionResult]:
        """A subscription's results; the operation is recorded once, when it ends."""
        started = time.perf_counter()
        name = operation_name or _only_operation_name(document)
        outcome = "ok"
        subscribed = subscribe(
            self._schema,
            document,
            root_value=root_value,
            context_value=context_value,
            variable_values=variable_values,
            operation_name=operation_name,
        )
        source: Any = subscribed
        if optimized_is_awaitable(source):
            source = await source
        try:
            if isinstance(source, CoreResult):  # refused before the first event
                errors = list(source.errors or ())
                log_unexpected(errors, name)
                shown = reported(errors, parsed=True)
                outcome = outcome_of(shown)
                yield PreExecutionError(None, shown)
                return
            try:
                async for event in source:
                    errors = list(event.errors or ())
                    log_unexpected(errors, name)
                    if errors:
                        shown = reported(errors, parsed=True)
                        outcome = outcome_of(shown)
                    yield ExecutionResult(event.data, shown if errors else None)
            except Exception as failure:  # raised by the subscription's own event source
                error = GraphQLError(str(failure), original_error=failure)
                log_unexpected([error], name)
                shown = reported([error], parsed=True)
                outcome = outcome_of(shown)
                yield ExecutionResult(None, shown)
            finally:
                await source.aclose()
        finally:
            self._record(context_value, name, outcome, started)


def _refusal(reason: str) -> GraphQLError:
    return GraphQLError(reason, extensions={"code": "BAD_REQUEST"})


def _only_operation_name(document: DocumentNode) -> str | None:
    names = [
        d.name.value
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode) and d.name
    ]
    return names[0] if len(names) == 1 else None
