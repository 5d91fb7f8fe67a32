"""Reaching an app's PostgreSQL database: async engines on asyncpg, creating the database
when it is missing, and URLs fit to show people (passwords masked). No ledger SQL here."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, Pool

__all__ = [
    "DatabaseUnreachable",
    "StorageUnavailable",
    "asyncpg_url",
    "check_reachable",
    "create_engine",
    "display_url",
    "ensure_database",
    "reporting_unreachable",
    "unreachable",
]

# SQLSTATE classes that mean "this server or database cannot be used right now": connection
# exceptions, bad credentials, an unknown database, a server shutting down or starting up,
# too many connections, or a server that has become a read-only standby (a failover).
_UNREACHABLE_SQLSTATES = ("08", "28", "3D", "57P", "53300", "25006")

# SQLSTATEs of a statement the database refused for now, on a connection still fine: out of
# resources (disk, memory), cancelled (statement_timeout, an administrator, a pooler), a
# lock timeout, a deadlock or serialization failure. Each rolled the statement back whole.
_TRANSIENT_SQLSTATES = ("53", "57014", "55P03", "40001", "40P01")


class DatabaseUnreachable(Exception):
    """The database cannot be reached; the message names it with the password masked."""

    def __init__(self, url: str | URL, reason: str) -> None:
        super().__init__(f"cannot reach the database at {display_url(url)}: {reason}")


@contextmanager
def reporting_unreachable(url: str | URL) -> Iterator[None]:
    """Restates, inside the block, errors that mean the database cannot be reached as
    DatabaseUnreachable; every other error passes unchanged."""
    try:
        yield
    except Exception as error:
        problem = unreachable(url, error)
        if problem is None:
            raise
        raise problem from error


class StorageUnavailable(Exception):
    """The database cannot serve the request now: it is down or unreachable, restarting,
    out of connections, slower than the configured timeout, or the connection broke in
    the middle. A write that ends so may or may not have been applied; repeating it with
    the same nonce is safe. `lost` says a connection broke while in use (so a read may be
    repeated on another)."""

    def __init__(self, reason: str, *, lost: bool = False) -> None:
        super().__init__(reason)
        self.lost = lost


def unreachable(url: str | URL, error: BaseException) -> DatabaseUnreachable | None:
    """`error` restated as DatabaseUnreachable when it says the database cannot be reached
    (refused, timed out, unknown host or database, bad credentials); None otherwise."""
    cause = _cause(error)
    if not cannot_serve(cause):
        return None
    return DatabaseUnreachable(url, str(cause) or type(cause).__name__)


def cannot_serve(error: BaseException) -> bool:
    """Whether `error` says the database or the connection failed, rather than the
    statement: refused, timed out, broken, or a server that is shutting down, starting
    up, out of connections, or does not know the database or the credentials."""
    cause = _cause(error)
    if isinstance(cause, OSError):  # refused, reset, unreachable; TimeoutError is one too
        return True
    return isinstance(cause, asyncpg.PostgresError) and cause.sqlstate.startswith(
        _UNREACHABLE_SQLSTATES
    )


def refused_for_now(error: BaseException) -> bool:
    """Whether the database refused a statement for now (see _TRANSIENT_SQLSTATES), leaving
    the connection fit for use: worth repeating later."""
    cause = _cause(error)
    return isinstance(cause, asyncpg.PostgresError) and cause.sqlstate.startswith(
        _TRANSIENT_SQLSTATES
    )


def _cause(error: BaseException) -> BaseException:
    """The driver's own error under SQLAlchemy's wrapping, if any: SQLAlchemy's DBAPIError
    holds the adapter's DBAPI error (`orig`), raised from asyncpg's; a failed connect
    raises the adapter's error itself."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig
    driver_errors = (OSError, asyncpg.PostgresError)
    if not isinstance(error, driver_errors) and isinstance(error.__cause__, driver_errors):
        return error.__cause__
    return error


def asyncpg_url(url: str | URL) -> URL:
    """`url` with the asyncpg driver named, as SQLAlchemy wants it."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed


def display_url(url: str | URL) -> str:
    """The URL as it may be shown in logs and error messages: the password masked."""
    shown = make_url(url).set(drivername="postgresql")
    if not shown.password:
        shown = shown._replace(password=None)
    return shown.render_as_string(hide_password=True)


def create_engine(
    url: str | URL,
    *,
    autocommit: bool = True,
    pool_size: int = 10,
    timeout: float = 5.0,
    statement_cache: int = 100,
    poolclass: type[Pool] | None = None,
) -> AsyncEngine:
    """An engine on asyncpg that waits at most `timeout` seconds to connect or for a free
    connection, keeping `statement_cache` prepared statements per connection. With
    `autocommit`, each statement is its own transaction: every ledger unit of work is one
    statement, so BEGIN and COMMIT would be two round trips of pure overhead."""
    connect: dict[str, Any] = {"timeout": timeout}
    if statement_cache == 0:
        # Behind PgBouncer in transaction mode a named prepared statement may live on
        # another server connection than the next query's: prepare nothing by name.
        connect.update(statement_cache_size=0, prepared_statement_cache_size=0)
    else:
        connect["statement_cache_size"] = statement_cache
    options: dict[str, Any] = {"connect_args": connect}
    if autocommit:
        # No statement ever opens a transaction, so there is nothing to roll back when a
        # connection goes back to the pool.
        options.update(isolation_level="AUTOCOMMIT", pool_reset_on_return=None)
    if poolclass is None:
        options.update(pool_size=pool_size, max_overflow=0, pool_timeout=timeout)
    else:
        options["poolclass"] = poolclass
    return create_async_engine(asyncpg_url(url), **options)


async def check_reachable(url: str | URL) -> None:
    """Raises DatabaseUnreachable unless the database answers (a connection and SELECT 1),
    changing nothing."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with reporting_unreachable(url):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def ensure_database(url: str | URL) -> bool:
    """Creates the database `url` names when it does not exist yet, connecting to the
    server's `postgres` database to do so. Returns True when it created it."""
    target = asyncpg_url(url)
    name = target.database
    if not name:
        raise ValueError(f"{display_url(url)} names no database")
    exists = text("SELECT 1 FROM pg_database WHERE datname = :name").bindparams(name=name)
    maintenance = create_engine(target.set(database="postgres"), poolclass=NullPool)
    try:
        with reporting_unreachable(url):
            async with maintenance.connect() as connection:
                if await connection.scalar(exists):
                    return False
                quoted = connection.dialect.identifier_preparer.quote(name)
                try:
                    await connection.execute(text(f"CREATE DATABASE {quoted}"))
                except DBAPIError:
                    # A concurrent migrate created it first; PostgreSQL says so as
                    # duplicate_database or as a unique violation, depending on timing.
                    if await connection.scalar(exists):
                        return False
                    raise
                return True
    finally:
        await maintenance.dispose()
