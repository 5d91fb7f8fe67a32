"""Bringing an app database to the newest schema with the Alembic tree in `migrations/`,
which every app database shares. Concurrent migrators wait for each other."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

from graphql_ledger.operations import LedgerOperation
from graphql_ledger.storage.connections import Connections
from graphql_ledger.storage.database import create_engine, ensure_database, reporting_unreachable
from graphql_ledger.storage.rules import OperationRules

__all__ = ["MIGRATIONS_DIR", "head_revision", "migrate"]

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

# Any constant both migrators agree on; pg_advisory_xact_lock serialises them.
_MIGRATION_LOCK = 0x6C6564676572  # "ledger"


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    """The newest revision in `migrations/`."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _upgrade(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    config = _alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(url: str | URL, operations: type[LedgerOperation] | None = None) -> None:
    """Creates the database if missing, upgrades it to head, and records `operations`'
    rules when given. Idempotent."""
    await ensure_database(url)
    engine = create_engine(url, autocommit=False, poolclass=NullPool)
    try:
        with reporting_unreachable(url):
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()
    if operations is not None:
        # The repository hands pooled connections back to a pool, which NullPool is not.
        rules_engine = create_engine(url, pool_size=1)
        try:
            with reporting_unreachable(url):
                await OperationRules(Connections(rules_engine), operations).record()
        finally:
            await rules_engine.dispose()
