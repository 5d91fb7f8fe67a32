"""Bringing an app database to the newest schema with the Alembic tree in `migrations/`,
which every app database shares, and setting up the serving role that may read the ledger
and write only through its functions. Concurrent migrators wait for each other."""

from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import NullPool

from graphql_ledger.operations import LedgerOperation
from graphql_ledger.storage.connections import Connections
from graphql_ledger.storage.database import create_engine, ensure_database, reporting_unreachable
from graphql_ledger.storage.functions import install_ledger_functions, sql_source
from graphql_ledger.storage.rules import OperationRules

__all__ = [
    "MIGRATIONS_DIR",
    "SERVING_ROLE",
    "ServingRoleMissing",
    "ensure_roles",
    "head_revision",
    "migrate",
]

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

# The NOLOGIN role whose members serve the apps: they may read the ledger's tables and write
# only by calling create_entry() (migrations/sql/serving_role.sql). Roles are cluster-wide.
SERVING_ROLE = "ledger_serving"

# Any constant both migrators agree on; pg_advisory_xact_lock serialises them.
_MIGRATION_LOCK = 0x6C6564676572  # "ledger"


# A role's CREATE ROLE racing another migrator's: PostgreSQL says so either way.
_ROLE_EXISTS = (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError)


class ServingRoleMissing(Exception):
    """The serving role does not exist and the migrating role may not create it."""

    def __init__(self, user: str | None) -> None:
        super().__init__(
            f"the role {SERVING_ROLE} does not exist and {user or 'this role'} may not create"
            f" it: have an administrator run `CREATE ROLE {SERVING_ROLE} NOLOGIN;`, then run"
            " graphql-ledger migrate again"
        )


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
    install_ledger_functions(connection)
    for statement in sql_source("serving_role").split(";\n"):
        if statement.strip():
            connection.execute(text(statement))


def _driver_error(error: DBAPIError) -> BaseException | None:
    """asyncpg's error under SQLAlchemy's adapter error."""
    return getattr(error.orig, "__cause__", None)


async def _has_role(connection: AsyncConnection, role: str) -> bool:
    found = text("SELECT 1 FROM pg_roles WHERE rolname = :role").bindparams(role=role)
    return bool(await connection.scalar(found))


async def _create_role(connection: AsyncConnection, role: str, options: str) -> None:
    """CREATE ROLE unless it exists, also when another migrator creates it meanwhile."""
    if await _has_role(connection, role):
        return
    try:
        await connection.execute(text(f'CREATE ROLE "{role}" {options}'))
    except DBAPIError as error:
        if not isinstance(_driver_error(error), _ROLE_EXISTS):
            raise


async def ensure_roles(url: str | URL, login: str | None = None) -> None:
    """Creates the serving role if missing (which needs CREATEROLE: ServingRoleMissing
    otherwise), and `login`, a LOGIN member of it without a password, when given (for
    servers that trust their clients: the embedded one, the test suite's)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with reporting_unreachable(url):
            async with engine.connect() as connection:
                try:
                    await _create_role(connection, SERVING_ROLE, "NOLOGIN")
                except DBAPIError as error:
                    if isinstance(_driver_error(error), asyncpg.InsufficientPrivilegeError):
                        raise ServingRoleMissing(make_url(url).username) from error
                    raise
                if login is not None:
                    await _create_role(connection, login, f'LOGIN IN ROLE "{SERVING_ROLE}"')
                    await connection.execute(text(f'GRANT "{SERVING_ROLE}" TO "{login}"'))
    finally:
        await engine.dispose()


async def migrate(
    url: str | URL, operations: type[LedgerOperation] | None = None, *, login: str | None = None
) -> None:
    """Creates the database if missing, sets up the serving role (and `login`, a member of
    it; see ensure_roles), upgrades the database to head, grants the serving role its
    rights, and records `operations`' rules when given. Idempotent."""
    await ensure_database(url)
    await ensure_roles(url, login)
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
