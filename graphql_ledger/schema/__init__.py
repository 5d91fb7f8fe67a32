"""The GraphQL layer: `build_schema` turns an app's operation enum into its Strawberry
schema. No SQL here: resolvers reach storage through the request's `LedgerContext`.

Modules: `factory` (the schema and the types that mention the app's enum), `types` (the
types every app shares), `arguments` (argument rules), `context` (per-request
DataLoaders, the caller), `errors` (error codes and masking), `base` (the Schema class:
error logging, subscriptions on WebSocket only), `limits` (document size limits and
introspection).
"""

from graphql_ledger.schema.base import LedgerSchema
from graphql_ledger.schema.context import LedgerContext
from graphql_ledger.schema.errors import BadUserInput, Forbidden
from graphql_ledger.schema.factory import build_schema
from graphql_ledger.schema.limits import QueryLimits

__all__ = [
    "BadUserInput",
    "Forbidden",
    "LedgerContext",
    "LedgerSchema",
    "QueryLimits",
    "build_schema",
]
