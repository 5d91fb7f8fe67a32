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
(PostgreSQL), services (the use cases), schema (Strawberry), app (Starlette), cli.

Importing the domain (`graphql_ledger.operations`, as an app's enum does) loads no web or
database library: `create_app`, `build_schema` and `Settings` are imported on first use.
"""

from typing import TYPE_CHECKING, Any

from graphql_ledger.operations import SHARED_AMOUNTS, LedgerOperation, Limit, credits, shared

if TYPE_CHECKING:
    from graphql_ledger.app import create_app
    from graphql_ledger.config import Settings
    from graphql_ledger.schema import build_schema

_LAZY = {
    "create_app": "graphql_ledger.app",
    "Settings": "graphql_ledger.config",
    "build_schema": "graphql_ledger.schema",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graphql_ledger' has no attribute {name!r}")


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
