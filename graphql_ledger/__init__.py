"""graphql-ledger: a credit ledger shared by several apps, each served as its own typed
GraphQL API on PostgreSQL.

An app is its operation enum and one line::

    from graphql_ledger import LedgerOperation, create_app, credits, shared

    class ZooAIOperation(LedgerOperation):
        DAILY_REWARD = shared()
        SIGNUP_CREDIT = shared()
        CREDIT_SPEND = shared()
        CREDIT_ADD = shared()
        FEEDING = credits(-2)

    app = create_app("zooai", ZooAIOperation)

Layers, each importing only those before it: operations and ledger (the domain), storage
(PostgreSQL), schema (Strawberry), app (Starlette), cli.
"""

from graphql_ledger.app import create_app
from graphql_ledger.config import Settings
from graphql_ledger.operations import SHARED_AMOUNTS, LedgerOperation, Limit, credits, shared
from graphql_ledger.schema import build_schema

__all__ = [
    "SHARED_AMOUNTS",
    "LedgerOperation",
    "Limit",
    "Settings",
    "build_schema",
    "create_app",
    "credits",
    "shared",
]
