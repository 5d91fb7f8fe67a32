"""The GraphQL layer: `build_schema` turns an app's operation enum into its Strawberry
schema. No SQL here: resolvers reach the ledger through the request's `LedgerContext`, whose
`Ledger` holds the use cases.

Modules: `factory` (the schema), `entries` (the types that mention the app's enum),
`queries`, `mutations`, `subscriptions` (the root types), `types` (the types every app
shares), `arguments` (argument rules), `context` (per-request DataLoaders, the caller),
`errors` (error codes and masking), `base` (the executor every transport runs operations
on), `limits` (document size limits and introspection).
"""

from graphql_ledger.schema.base import LedgerSchema, OperationRecord
from graphql_ledger.schema.context import LedgerContext
from graphql_ledger.schema.errors import BadUserInput
from graphql_ledger.schema.factory import build_schema
from graphql_ledger.schema.limits import QueryLimits

__all__ = [
    "BadUserInput",
    "LedgerContext",
    "LedgerSchema",
    "OperationRecord",
    "QueryLimits",
    "build_schema",
]
