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


class MaskUnexpectedErrors(MaskErrors):
    """Masks unexpected errors, keeping a code clients can branch on."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message="Unexpected error.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked


class ErrorCodes(SchemaExtension):
    """Gives each error that has no `extensions.code` the one that says whose mistake it
    is: GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, or BAD_USER_INPUT for variables
    that do not fit their types (the codes Apollo Server uses)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in getattr(result, "errors", None) or ():
            if not (error.extensions or {}).get("code") and not is_unexpected(error):
                error.extensions = {**(error.extensions or {}), "code": self._code(error)}

    def _code(self, error: GraphQLError) -> str:
        if self.execution_context.graphql_document is None:
            return "GRAPHQL_PARSE_FAILED"
        if error.original_error is None:
            return "GRAPHQL_VALIDATION_FAILED"
        return "BAD_USER_INPUT"
