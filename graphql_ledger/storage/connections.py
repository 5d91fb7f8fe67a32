"""Connections for the ledger's units of work: each unit of work takes a pooled connection of
its own (concurrent resolvers of one request never share one) and ends within one deadline.

Connections come from the SQLAlchemy engine's pool; the statements run on the asyncpg
connection underneath, prepared once per connection. Every unit of work is a single
statement in autocommit mode, so SQLAlchemy's statement layer would add nothing but
cost: measured, it was 40% of the CPU a balance read takes (see bench/README.md).

When the database cannot serve (down, restarting, unreachable, a connection broken or a
unit of work slower than `timeout`), the unit of work fails with StorageUnavailable within
`timeout` seconds, and a statement it abandons is cancelled in PostgreSQL. A connection
that failed as a connection leaves the pool, and so does one the server closed while it
sat idle. A read that lost its connection is repeated once on another; a write never is,
since nobody can tell whether it was applied: the caller repeats it with the same nonce,
which the ledger makes safe.

With read replicas (`replicas.py`), a unit of work bound to a request's position (`following`)
reads on a replica fresh enough for it, else on the primary, and each of its writes
advances the position to the primary's WAL position after the write's commit.
"""

import asyncio
import copy
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Optional

import asyncpg
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection

from graphql_ledger.storage.database import StorageUnavailable, cannot_serve, refused_for_now
from graphql_ledger.storage.positions import CURRENT_POSITION, LedgerPosition, parse_position

if TYPE_CHECKING:  # replicas.py reads through Connections of its own
    from graphql_ledger.storage.replicas import ReadReplicas

__all__ = ["RACE_KEYS", "Connections"]

logger = logging.getLogger(__name__)

RACE_KEYS = frozenset(
    {
        "entries_owner_nonce_key",
        "entries_owner_limit_key",
        "entries_owner_refund_key",
        "entries_owner_hold_key",
        "holds_owner_nonce_key",
    }
)


class Connections:
    """Units of work on `engine`'s pool, each at most `timeout` seconds long, from waiting
    for a connection to the statement's answer; reads on `replicas` when there are any."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        timeout: float = 5.0,
        replicas: Optional["ReadReplicas"] = None,
    ) -> None:
        self.engine = engine
        self.timeout = timeout
        self.replicas = replicas
        self.position: LedgerPosition | None = None
        self._settling: set[asyncio.Task[None]] = set()

    def following(self, position: LedgerPosition) -> "Connections":
        """These connections for one request: its reads see at least `position`, which its
        writes advance. Without replicas every read is the primary's: nothing to follow."""
        if self.replicas is None:
            return self
        bound = copy.copy(self)  # the same pool, replicas and settling connections
        bound.position = position
        return bound

    @asynccontextmanager
    async def connection(self, deadline: float | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A pooled asyncpg connection for one unit of work, which must end by `deadline`
        (the event loop's clock; by default `timeout` seconds from now). Failures of the
        database or of the connection (refused, lost, timed out, a server that cannot
        serve now) become StorageUnavailable, and a broken connection leaves the pool;
        errors of the statement itself pass unchanged."""
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            async with asyncio.timeout_at(deadline):
                pooled = await self._checkout()
                driver: asyncpg.Connection = pooled.driver_connection
                settling = False
                try:
                    yield driver
                except asyncio.CancelledError:
                    # Abandoned mid-statement (the deadline, or the client went away):
                    # asyncpg has asked the server to cancel the statement, which must not
                    # keep running (holding locks, or committing later) in PostgreSQL.
                    if not driver.is_closed():
                        settling = True
                        self._settle(pooled, driver)
                    raise
                except Exception as error:
                    if driver.is_closed() or cannot_serve(error):
                        pooled.invalidate()
                        raise StorageUnavailable(
                            f"the connection to the database failed: {error!r}", lost=True
                        ) from error
                    if refused_for_now(error):
                        raise StorageUnavailable(f"the database refused: {error!r}") from error
                    raise
                finally:
                    if not settling:
                        pooled.close()
        except StorageUnavailable:
            raise
        except TimeoutError as error:
            raise StorageUnavailable(
                f"the database did not answer within {self.timeout:g} s"
            ) from error
        except PoolTimeout as error:
            raise StorageUnavailable("no free database connection") from error
        except Exception as error:
            if not cannot_serve(error):
                raise
            raise StorageUnavailable(f"cannot connect to the database: {error!r}") from error

    async def _checkout(self) -> PoolProxiedConnection:
        """A pooled connection the server has not closed: one that the server closed while
        idle (a restart, pg_terminate_backend, an idle timeout) is known closed without a
        round trip, and is dropped for the next."""
        while True:
            pooled = await self.engine.raw_connection()
            driver = pooled.driver_connection
            if driver is not None and not driver.is_closed():
                return pooled
            pooled.invalidate()
            pooled.close()

    def _settle(self, pooled: PoolProxiedConnection, driver: asyncpg.Connection) -> None:
        """Keeps an abandoned connection out of the pool until the server has cancelled its
        statement (the next statement on it waits for that), or drops it."""

        async def settle() -> None:
            try:
                async with asyncio.timeout(self.timeout):
                    await driver.fetchval("SELECT 1")
            except asyncio.CancelledError:
                pooled.invalidate()
                raise
            except Exception as error:
                logger.info("dropping a connection whose statement was abandoned: %r", error)
                pooled.invalidate()
            finally:
                pooled.close()

        task = asyncio.create_task(settle())
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def read(
        self, query: str, *arguments: Any, primary: bool = False
    ) -> list[asyncpg.Record]:
        """The rows of a read: on a replica fresh enough for it, unless it must see the
        `primary` itself or none is, within the same deadline. When its connection to the
        primary was lost under it, the read is repeated once on another (reading twice
        changes nothing)."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        if self.replicas is not None and not primary:
            wanted = self.position.lsn if self.position is not None else 0
            served = await self.replicas.read(query, arguments, wanted, deadline)
            if served is not None:
                return served
        try:
            async with self.connection(deadline) as connection:
                rows: list[asyncpg.Record] = await connection.fetch(query, *arguments)
                return rows
        except StorageUnavailable as error:
            if not error.lost:
                raise
            logger.warning("a read lost its connection (%s); repeating it once", error)
        async with self.connection(deadline) as connection:
            rows = await connection.fetch(query, *arguments)
            return rows

    async def schema_revision(self) -> str | None:
        """The migration revision the database is at; None before the first migration.
        Raises StorageUnavailable when the database cannot answer."""
        async with self.connection() as connection:
            try:
                revision: str | None = await connection.fetchval(
                    "SELECT version_num FROM alembic_version"
                )
            except asyncpg.UndefinedTableError:
                return None
            return revision

    async def write(self, query: str, *arguments: Any) -> asyncpg.Record:
        """The row of a write function's call. The ledger's write functions raise
        unique_violation on one of RACE_KEYS when a concurrent writer committed the same
        nonce (or the same limited operation, refund or capture) first: the call rolled back
        whole, so it is repeated once, within the same deadline, and answers from what
        committed. A write that failed otherwise is never repeated."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            async with self.connection(deadline) as connection:
                row: asyncpg.Record = await connection.fetchrow(query, *arguments)
                await self._advance(connection)
                return row
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name not in RACE_KEYS:
                raise
        async with self.connection(deadline) as connection:
            row = await connection.fetchrow(query, *arguments)
            await self._advance(connection)
            return row

    async def _advance(self, connection: asyncpg.Connection) -> None:
        """Advances the request's position past the write that just committed on
        `connection`: one more round trip, made only when replicas serve reads. (Within the
        write's own statement, any position precedes its commit record.)"""
        if self.position is not None:
            self.position.advance(parse_position(await connection.fetchval(CURRENT_POSITION)))
