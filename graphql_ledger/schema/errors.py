"""How the GraphQL layer reports errors: BAD_USER_INPUT for arguments that break the rules,
a code on every error a client may branch on, SERVICE_UNAVAILABLE when the database cannot
serve, and unexpected errors logged with their cause but masked for the client. Business
refusals are not errors: they are data."""

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension

from graphql_ledger.storage import StorageUnavailable

__all__ = [
    "BadUserInput",
    "ErrorCodes",
    "Forbidden",
    "MaskUnexpectedErrors",
    "is_unavailable",
    "is_unexpected",
    "masked",
    "reported",
    "with_code",
]

logger = logging.getLogger("graphql_ledger.schema")


class BadUserInput(GraphQLError):
    """A query argument breaks the input rules: a GraphQL error whose `extensions.code` is
    BAD_USER_INPUT, shown to the client as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": "BAD_USER_INPUT"})


class Forbidden(GraphQLError):
    """The caller may not read what it asked for: `extensions.code` FORBIDDEN, and a
    message that reveals nothing of the owner it asked about."""

    def __init__(self, message: str = "this token may only read its own owner") -> None:
        super().__init__(message, extensions={"code": "FORBIDDEN"})


def is_unavailable(error: GraphQLError) -> bool:
    """True when the database could not serve the field (StorageUnavailable)."""
    return isinstance(error.original_error, StorageUnavailable)


def is_unexpected(error: GraphQLError) -> bool:
    """True for errors raised by a bug rather than by the request or an outage; these are
    logged and masked. Syntax, validation, our own GraphQLErrors and an unavailable
    database are not."""
    return (
        error.original_error is not None
        and not isinstance(error.original_error, GraphQLError)
        and not is_unavailable(error)
    )


def masked(error: GraphQLError) -> GraphQLError:
    """An unexpected error as the client sees it: no detail, a code to branch on."""
    return _restated(error, "Unexpected error.", "INTERNAL_SERVER_ERROR")


def unavailable(error: GraphQLError) -> GraphQLError:
    """A field the database could not serve, as the client sees it: worth retrying (a
    write with the same nonce), and without the database's own words."""
    return _restated(
        error,
        "The ledger's database is unavailable; retry shortly (a createEntry with the same"
        " nonce: it is applied at most once).",
        "SERVICE_UNAVAILABLE",
    )


def _restated(error: GraphQLError, message: str, code: str) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": code},
    )


def for_client(error: GraphQLError, *, parsed: bool) -> GraphQLError:
    """`error` as the client receives it: masked if unexpected, and with a code."""
    if is_unavailable(error):
        return unavailable(error)
    if is_unexpected(error):
        return masked(error)
    return with_code(error, parsed=parsed)


def with_code(error: GraphQLError, *, parsed: bool) -> GraphQLError:
    """`error` with the `extensions.code` that says whose mistake it is, when it has none:
    GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, or BAD_USER_INPUT for variables
    that do not fit their types (the codes Apollo Server uses)."""
    if not (error.extensions or {}).get("code"):
        if not parsed:
            code = "GRAPHQL_PARSE_FAILED"
        elif error.original_error is None:
            code = "GRAPHQL_VALIDATION_FAILED"
        else:
            code = "BAD_USER_INPUT"
        error.extensions = {**(error.extensions or {}), "code": code}
    return error


def reported(errors: list[GraphQLError], *, parsed: bool) -> list[GraphQLError]:
    """The errors as a client receives them: unexpected ones masked, all with a code."""
    return [for_client(e, parsed=parsed) for e in errors]


class MaskUnexpectedErrors(MaskErrors):
    """Masks unexpected errors, and restates an unavailable database's, on the WebSocket
    path (HTTP uses `reported`)."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda e: is_unexpected(e) or is_unavailable(e))

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return unavailable(error) if is_unavailable(error) else masked(error)


class ErrorCodes(SchemaExtension):
    """Gives each error without a code its code on the WebSocket path (see `with_code`)."""

    def on_operation(self) -> Iterator[None]:
        yield
        parsed = self.execution_context.graphql_document is not None
        for error in getattr(self.execution_context.result, "errors", None) or ():
            if not is_unexpected(error):
                with_code(error, parsed=parsed)
