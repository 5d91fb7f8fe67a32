"""Reads on PostgreSQL streaming replicas: how far each replica has replayed, and which
replica, if any, may serve a read. Writes, the live feed and the operator's checks never
come here (positions.py: the positions themselves).

A read that carries a position is served by a replica once it has replayed that far
(`pg_last_wal_replay_lsn()`), waiting at most `wait` seconds; one without may be served by
a replica that has replayed everything the primary had written `max_lag` seconds ago. Lag is
measured in WAL, never in time stamps (an idle primary makes a timestamp lag grow forever):
each process samples the primary's `pg_current_wal_lsn()` every `interval` seconds and
keeps the last `max_lag` seconds of samples. A replica that fails is left alone for a
backoff that doubles, then probed again; its reads fall back to the primary meanwhile.
"""

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import URL
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from graphql_ledger.storage.connections import Connections
from graphql_ledger.storage.database import StorageUnavailable, create_engine, display_url
from graphql_ledger.storage.positions import parse_position

__all__ = ["ReadReplicas", "Replica"]

logger = logging.getLogger(__name__)

PRIMARY_POSITION = "SELECT pg_current_wal_lsn()::text"
REPLAYED = "SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn()::text AS replayed"
REPLAYED_ONLY = "SELECT pg_last_wal_replay_lsn()::text"

# A replica is asked for a connection (and to connect) for at most this long before the
# primary serves the read instead: a stopped or unreachable replica costs a request little.
REPLICA_CONNECT_TIMEOUT = 0.5
FIRST_BACKOFF = 0.5
LAST_BACKOFF = 30.0
# While a read waits for its position, the replica is asked again after 1, 2, 4... ms.
FIRST_POLL = 0.001
LAST_POLL = 0.02


class Replica:
    """One streaming replica: its pool for reads, a connection of its own for the sampler
    (a replica busy with reads is not a failed one), what it was last seen to have
    replayed, and when it may be asked again after a failure."""

    def __init__(self, engine: AsyncEngine, probe: AsyncEngine, *, timeout: float = 5.0) -> None:
        self.engine = engine
        self.connections = Connections(engine, timeout=timeout)
        self.probe = Connections(probe, timeout=REPLICA_CONNECT_TIMEOUT * 2)
        self.name = display_url(engine.url)
        self.replayed = 0
        self.up = False  # known to serve: it answered as a standby since its last failure
        self.retry_at = 0.0
        self.failures = 0

    def answered(self, replayed: int) -> None:
        if not self.up:
            logger.info("replica %s serves reads (replayed %s)", self.name, replayed)
        self.up = True
        self.failures = 0
        self.replayed = max(self.replayed, replayed)

    def failed(self, now: float, reason: object) -> None:
        backoff = min(LAST_BACKOFF, FIRST_BACKOFF * 2**self.failures)
        if self.up or not self.failures:
            logger.warning("replica %s skipped for %g s: %s", self.name, backoff, reason)
        self.up = False
        self.failures += 1
        self.retry_at = now + backoff


class ReadReplicas:
    """The replicas of one app's database, and the primary's recent WAL positions.

    Args:
        primary: An engine of one connection to the primary, to sample its WAL position
            (not the reads' pool, which a load may exhaust).
        replicas: The replicas.
        max_lag: Seconds of the primary's WAL a replica may lag and still serve reads that
            carry no position.
        wait: Seconds a read that carries a position waits for a replica to reach it.
        timeout: The primary's unit-of-work timeout; a replica's read keeps half of it.
    """

    def __init__(
        self,
        primary: AsyncEngine,
        replicas: Sequence[Replica],
        *,
        max_lag: float = 1.0,
        wait: float = 1.0,
        timeout: float = 5.0,
    ) -> None:
        self.primary = primary
        self.replicas = list(replicas)
        self.max_lag = max_lag
        self.wait = wait
        self.timeout = timeout
        self.interval = min(0.1, max_lag / 2)
        self._primary = Connections(primary, timeout=REPLICA_CONNECT_TIMEOUT)
        self._primary_positions: deque[tuple[float, int]] = deque()
        self._turn = itertools.count()
        self._sampler: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @classmethod
    def connect(
        cls,
        primary: AsyncEngine,
        urls: Sequence[str],
        *,
        pool_size: int = 10,
        statement_cache: int = 100,
        timeout: float = 5.0,
        **options: Any,
    ) -> "ReadReplicas":
        """Replicas at `urls` of the primary `primary` is an engine of, each with a pool of
        its own that waits at most REPLICA_CONNECT_TIMEOUT for a connection."""

        def engine(url: str | URL, size: int) -> AsyncEngine:
            return create_engine(
                url,
                pool_size=size,
                timeout=REPLICA_CONNECT_TIMEOUT,
                statement_cache=statement_cache,
            )

        replicas = [
            Replica(engine(url, pool_size), engine(url, 1), timeout=timeout) for url in urls
        ]
        return cls(engine(primary.url, 1), replicas, timeout=timeout, **options)

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def start(self) -> None:
        """Samples the primary and every replica once, then every `interval` seconds."""
        await self.sample()
        self._sampler = asyncio.create_task(self._sample_forever())

    async def stop(self) -> None:
        """Ends the sampling once its round is done (a round cancelled mid-statement would
        leave its connection to be settled after the pools are gone), then the pools."""
        self._stopping.set()
        if self._sampler is not None:
            await asyncio.gather(self._sampler, return_exceptions=True)
        await self.primary.dispose()
        for replica in self.replicas:
            await replica.engine.dispose()
            await replica.probe.engine.dispose()

    async def _sample_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._stopping.wait(), self.interval)
                return
            except TimeoutError:
                pass
            try:
                await self.sample()
            except Exception:  # one failed round must not end the sampling
                logger.exception("sampling the replicas failed")

    async def sample(self) -> None:
        """The primary's WAL position now, and how far each replica that may be asked has
        replayed."""
        now = self.now()
        due = [r for r in self.replicas if r.up or r.retry_at <= now]
        await asyncio.gather(self._sample_primary(now), *(self._probe(r, now) for r in due))

    async def _sample_primary(self, now: float) -> None:
        try:
            async with self._primary.connection() as connection:
                position = await connection.fetchval(PRIMARY_POSITION)
        except StorageUnavailable as error:
            logger.debug("the primary's position is unknown: %s", error)
            return
        positions = self._primary_positions
        positions.append((now, parse_position(position)))
        while positions[0][0] < now - self.max_lag:  # only the lag window's samples count
            positions.popleft()

    async def _probe(self, replica: Replica, now: float) -> None:
        try:
            async with replica.probe.connection() as connection:
                row = await connection.fetchrow(REPLAYED)
        except StorageUnavailable as error:  # refused, unreachable, timed out
            replica.failed(now, error)
            return
        if not row["standby"] or row["replayed"] is None:
            replica.failed(now, "it is not a standby (promoted?)")
            return
        replica.answered(parse_position(row["replayed"]))

    def fresh_floor(self, now: float) -> int | None:
        """What a replica must have replayed to serve a read without a position: the
        primary's position as sampled `max_lag` seconds ago (the oldest sample since then,
        which can only be later, so the bound holds). None when no sample is that recent
        (before the first, or while the primary does not answer): then nobody knows how
        far behind a replica is, and the primary serves."""
        for sampled_at, position in self._primary_positions:
            if sampled_at >= now - self.max_lag:
                return position
        return None

    def candidates(self, now: float) -> list[Replica]:
        """The replicas fresh enough to serve now, each in turn first."""
        floor = self.fresh_floor(now)
        if floor is None:
            return []
        fresh = [r for r in self.replicas if r.up and r.retry_at <= now and r.replayed >= floor]
        if len(fresh) > 1:
            turn = next(self._turn) % len(fresh)
            fresh = fresh[turn:] + fresh[:turn]
        return fresh

    async def read(
        self, query: str, arguments: Sequence[Any], wanted: int, deadline: float
    ) -> list[asyncpg.Record] | None:
        """The rows of a read from a replica fresh enough that has replayed `wanted` (0:
        any position), or None when none can serve it by `deadline` (the read's own, of
        which the primary keeps at least half) and within `wait`."""
        started = self.now()
        wait_until = started + self.wait
        attempt_deadline = min(deadline, started + self.wait + self.timeout / 2)
        for replica in self.candidates(started):
            try:
                return await self._read_on(
                    replica, query, arguments, wanted, (wait_until, attempt_deadline)
                )
            except _NotThereYet:
                return None  # the others were no further when last seen
            except StorageUnavailable as error:
                if not isinstance(error.__cause__, PoolTimeout):  # busy is not failed
                    replica.failed(self.now(), error)
        return None

    async def _read_on(
        self,
        replica: Replica,
        query: str,
        arguments: Sequence[Any],
        wanted: int,
        until: tuple[float, float],
    ) -> list[asyncpg.Record]:
        """The read on `replica` once it has replayed `wanted`, asked again until the first
        of `until` (the wait's end), all by the second (the attempt's deadline)."""
        wait_until, deadline = until
        async with replica.connections.connection(deadline) as connection:
            poll = FIRST_POLL
            while replica.replayed < wanted:
                replayed = await connection.fetchval(REPLAYED_ONLY)
                if replayed is None:
                    raise StorageUnavailable("it is not a standby (promoted?)")
                replica.answered(parse_position(replayed))
                if replica.replayed >= wanted:
                    break
                if self.now() + poll > wait_until:
                    raise _NotThereYet
                await asyncio.sleep(poll)
                poll = min(LAST_POLL, poll * 2)
            rows: list[asyncpg.Record] = await connection.fetch(query, *arguments)
            return rows


class _NotThereYet(Exception):
    """The replica had not replayed the read's position within the wait."""
