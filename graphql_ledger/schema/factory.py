"""`build_schema`: one app's Strawberry schema from its operation enum. The types that mention
the enum are made per app (`entries.py`, `holds.py`), then the root types over them (`queries.py`,
`mutations.py`); the apps' schemas differ only in that enum."""

import strawberry

from graphql_ledger.operations import LedgerOperation
from graphql_ledger.schema.base import LedgerSchema
from graphql_ledger.schema.entries import entry_types
from graphql_ledger.schema.holds import hold_types
from graphql_ledger.schema.limits import QueryLimits
from graphql_ledger.schema.mutations import mutation_type
from graphql_ledger.schema.queries import query_type
from graphql_ledger.schema.subscriptions import Subscription

__all__ = ["build_schema"]


def build_schema(
    operations: type[LedgerOperation], limits: QueryLimits | None = None
) -> LedgerSchema:
    """Builds the GraphQL schema of the app whose operations are `operations`; its enum
    is named after the class (`HealthAIOperation`). `limits` bounds what one document
    may ask for (defaults when omitted)."""
    limits = limits or QueryLimits()
    strawberry.enum(operations, name=operations.__name__)
    types = hold_types(entry_types(operations))
    return LedgerSchema(
        query=query_type(types),
        mutation=mutation_type(types),
        subscription=Subscription,
        config=limits.config(),
        limits=limits,
    )
