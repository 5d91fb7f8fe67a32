"""How the GraphQL layer reports errors, on every transport alike: BAD_USER_INPUT for
arguments that break the rules, FORBIDDEN for what the caller may not read, a code on every
error a client may branch on, SERVICE_UNAVAILABLE when the database cannot serve, and
unexpected errors logged with their cause but masked for the client. Business refusals are
not errors: they are data."""

import logging

from graphql import GraphQLError

from graphql_ledger.access import NotPermitted
from graphql_ledger.storage import StorageUnavailable

__all__ = [
    "BadUserInput",
    "is_unavailable",
    "is_unexpected",
    "log_unexpected",
    "outcome_of",
    "reported",
]

logger = logging.getLogger("graphql_ledger.schema")


class BadUserInput(GraphQLError):
    """A query argument breaks the input rules: a GraphQL error whose `extensions.code` is
    BAD_USER_INPUT, shown to the client as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": "BAD_USER_INPUT"})


def is_unavailable(error: GraphQLError) -> bool:
    """True when the database could not serve the field (StorageUnavailable)."""
    return isinstance(error.original_error, StorageUnavailable)


def is_unexpected(error: GraphQLError) -> bool:
    """True for errors raised by a bug rather than by the request or an outage; these are
    logged and masked. Syntax, validation, our own GraphQLErrors, a refused read and an
    unavailable database are not."""
    return error.original_error is not None and not isinstance(
        error.original_error, GraphQLError | StorageUnavailable | NotPermitted
    )


def _restated(error: GraphQLError, message: str, code: str) -> GraphQLError:
    """A plain GraphQLError in `error`'s place: a syntax error stays an error message of the
    operation on WebSocket too, rather than closing the whole connection."""
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": code},
    )


def for_client(error: GraphQLError, *, parsed: bool) -> GraphQLError:
    """`error` as the client receives it, with the `extensions.code` that says whose
    mistake it is (Apollo Server's names where they exist)."""
    code = (error.extensions or {}).get("code")
    if is_unavailable(error):
        return _restated(
            error,
            "The ledger's database is unavailable; retry shortly (a write with the same"
            " nonce: it is applied at most once).",
            "SERVICE_UNAVAILABLE",
        )
    if isinstance(error.original_error, NotPermitted):
        return _restated(error, str(error.original_error), "FORBIDDEN")
    if is_unexpected(error):
        return _restated(error, "Unexpected error.", "INTERNAL_SERVER_ERROR")
    if not parsed:
        return _restated(error, error.message, code or "GRAPHQL_PARSE_FAILED")
    if not code:
        code = "GRAPHQL_VALIDATION_FAILED" if error.original_error is None else "BAD_USER_INPUT"
        return _restated(error, error.message, code)
    return error


def reported(errors: list[GraphQLError], *, parsed: bool) -> list[GraphQLError]:
    """The errors as a client receives them: unexpected ones masked, all with a code."""
    return [for_client(e, parsed=parsed) for e in errors]


def outcome_of(errors: list[GraphQLError] | None) -> str:
    """What the logs and metrics call an operation's result, from its reported errors."""
    if not errors:
        return "ok"
    codes = {(error.extensions or {}).get("code") for error in errors}
    if "INTERNAL_SERVER_ERROR" in codes:
        return "unexpected"
    if "SERVICE_UNAVAILABLE" in codes:
        return "unavailable"
    return "error"


def log_unexpected(errors: list[GraphQLError], operation_name: str | None) -> None:
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
