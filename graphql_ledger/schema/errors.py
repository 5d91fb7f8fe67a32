"""How the GraphQL layer reports errors: BAD_USER_INPUT for arguments that break the rules,
a code on every error a client may branch on, and unexpected errors logged with their
cause but masked for the client. Business refusals are not errors: they are data."""

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension

__all__ = [
    "BadUserInput",
    "ErrorCodes",
    "Forbidden",
    "MaskUnexpectedErrors",
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


def is_unexpected(error: GraphQLError) -> bool:
    """True for errors raised by a bug or an outage rather than by the request itself;
    these are logged and masked. Syntax, validation and our own GraphQLErrors are not."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


def masked(error: GraphQLError) -> GraphQLError:
    """An unexpected error as the client sees it: no detail, a code to branch on."""
    return GraphQLError(
        "Unexpected error.",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR"},
    )


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
    return [masked(e) if is_unexpected(e) else with_code(e, parsed=parsed) for e in errors]


class MaskUnexpectedErrors(MaskErrors):
    """Masks unexpected errors on the WebSocket path (HTTP uses `reported`)."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return masked(error)


class ErrorCodes(SchemaExtension):
    """Gives each error without a code its code on the WebSocket path (see `with_code`)."""

    def on_operation(self) -> Iterator[None]:
        yield
        parsed = self.execution_context.graphql_document is not None
        for error in getattr(self.execution_context.result, "errors", None) or ():
            if not is_unexpected(error):
                with_code(error, parsed=parsed)
