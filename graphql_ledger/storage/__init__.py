"""Storage: the PostgreSQL side of the ledger (engines, migrations, the embedded dev
server, the repository, and the live balance feed). Nothing here knows GraphQL."""

from graphql_ledger.storage.database import (
    DatabaseUnreachable,
    StorageUnavailable,
    check_reachable,
    create_engine,
    display_url,
    ensure_database,
    unreachable,
)
from graphql_ledger.storage.embedded import EmbeddedPostgres
from graphql_ledger.storage.feed import BalanceFeed, BalanceUpdate
from graphql_ledger.storage.migrations import head_revision, migrate
from graphql_ledger.storage.positions import LedgerPosition, parse_position
from graphql_ledger.storage.replicas import ReadReplicas
from graphql_ledger.storage.repository import LedgerRepository

__all__ = [
    "BalanceFeed",
    "BalanceUpdate",
    "DatabaseUnreachable",
    "EmbeddedPostgres",
    "LedgerPosition",
    "LedgerRepository",
    "ReadReplicas",
    "StorageUnavailable",
    "check_reachable",
    "create_engine",
    "display_url",
    "ensure_database",
    "head_revision",
    "migrate",
    "parse_position",
    "unreachable",
]
