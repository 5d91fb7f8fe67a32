"""The GraphQL layer: `build_schema` turns an app's operation enum into its Strawberry
schema. No SQL here: resolvers reach storage through the request's `LedgerContext`.

Modules: `factory` (the schema and the types that mention the app's enum), `types` (the
types every app shares), `arguments` (argument rules), `context` (per-request
DataLoaders), `errors` (error codes, masking and logging).
"""

from graphql_ledger.schema.context import LedgerContext
from graphql_ledger.schema.errors import BadUserInput, LedgerSchema
from graphql_ledger.schema.factory import build_schema

__all__ = ["BadUserInput", "LedgerContext", "LedgerSchema", "build_schema"]
