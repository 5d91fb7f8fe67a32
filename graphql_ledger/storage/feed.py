"""Live balances: one LISTEN connection per process and app, shared by every subscriber,
fanning out the `ledger_balances` notifications that create_entry() sends when an entry
commits (and reserve_credits(), capture_hold() and release_hold() when holds change). The
write functions notify only for owners some process watches: the feed records its owners
(ledger_watch, which also reads their balances in the same transaction, so that no update
falls between the read and the watch) and forgets them when their last subscriber leaves;
every WATCH_INTERVAL seconds it says so again, which keeps its watches alive. If the
connection drops, the feed reconnects with backoff and gives each subscriber its current
balance, so nobody is left showing a stale one."""

import asyncio
import collections
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from graphql_ledger.ledger import Balance
from graphql_ledger.storage.database import asyncpg_url

__all__ = ["CHANNEL", "BalanceFeed", "BalanceUpdate", "Follower"]

logger = logging.getLogger(__name__)

CHANNEL = "ledger_balances"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BalanceUpdate:
    """An owner's balance (and held) at `version`, which grows with every write of the
    owner (an entry, a hold reserved, captured or released); 0 before the first."""

    balance: Balance
    version: int


class Follower:
    """One subscriber's updates of one owner, newest last. At most `buffer` wait: a
    subscriber that falls behind loses the oldest, never the newest, and never holds up
    the feed or anyone else."""

    def __init__(self, owner_id: str, buffer: int) -> None:
        self.owner_id = owner_id
        self._pending: collections.deque[BalanceUpdate] = collections.deque(maxlen=buffer)
        self._arrived = asyncio.Event()
        self._newest: int | None = None
        self._closed = False

    def offer(self, update: BalanceUpdate) -> None:
        """Queues `update` unless it is not newer than what this follower already has."""
        if self._newest is not None and update.version <= self._newest:
            return
        self._newest = update.version
        self._pending.append(update)
        self._arrived.set()

    def close(self) -> None:
        self._closed = True
        self._arrived.set()

    def __aiter__(self) -> "Follower":
        return self

    async def __anext__(self) -> BalanceUpdate:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            self._arrived.clear()
            await self._arrived.wait()
        return self._pending.popleft()


# What the feed needs from the repository: each owner's balance and newest entry id; and,
# to be notified only for its owners, to watch them (answering their balances, as read in
# the same transaction) and to stop.
NewestBalances = Callable[[Sequence[str]], Any]
Watch = Callable[[str, Sequence[str]], Awaitable[list[BalanceUpdate]]]
Unwatch = Callable[[str, Sequence[str]], Awaitable[None]]

# Seconds between two renewals of a feed's watches; a process unheard of for five minutes
# loses them (ledger_watch).
WATCH_INTERVAL = 30.0


class BalanceFeed:
    """Listens on one connection (to `listen_url`, by default the engine's database: it
    must reach PostgreSQL itself, LISTEN does not pass a transaction pooler) and hands each
    notification to the followers of its owner. `newest_balances` reads the current
    balances (at follow and after a reconnect)."""

    def __init__(
        self,
        engine: AsyncEngine,
        newest_balances: NewestBalances,
        *,
        listen_url: str | None = None,
        buffer: int = 16,
        max_backoff: float = 5.0,
        watch: Watch | None = None,
        unwatch: Unwatch | None = None,
    ) -> None:
        self._engine = engine
        self._watch = watch
        self._unwatch = unwatch
        self._watcher = uuid.uuid4().hex  # this process's name in ledger_watches
        self._owner_locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._renewal: asyncio.Task[None] | None = None
        self._listen_url = engine.url if listen_url is None else asyncpg_url(listen_url)
        self._newest_balances = newest_balances
        self._buffer = buffer
        self._max_backoff = max_backoff
        self._followers: dict[str, set[Follower]] = collections.defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        self.connections = 0  # how many times the feed has (re)connected, for tests and logs

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="balance feed")
        if self._watch is not None:
            self._renewal = asyncio.create_task(self._renew_watches(), name="balance watches")

    async def stop(self) -> None:
        for task in (self._task, self._renewal):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for followers in self._followers.values():
            for follower in followers:
                follower.close()

    @asynccontextmanager
    async def follow(self, owner_id: str) -> AsyncIterator[Follower]:
        """A follower of `owner_id` whose first update is the current balance."""
        follower = Follower(owner_id, self._buffer)
        self._followers[owner_id].add(follower)  # before reading, so no commit falls between
        try:
            if self._watch is None:
                [current] = await self._newest_balances([owner_id])
            else:
                async with self._owner_locks[owner_id]:
                    [current] = await self._watch(self._watcher, [owner_id])
            follower.offer(current)
            yield follower
        finally:
            self._followers[owner_id].discard(follower)
            if not self._followers[owner_id]:
                del self._followers[owner_id]
                await self._forget(owner_id)

    async def _forget(self, owner_id: str) -> None:
        """Stops watching an owner whose last subscriber left, unless another came since
        (watch and unwatch of one owner take turns, so a new watch is never undone)."""
        if self._unwatch is None:
            return
        async with self._owner_locks[owner_id]:
            if owner_id in self._followers:
                return
            try:
                await self._unwatch(self._watcher, [owner_id])
            except Exception as error:  # the watch lapses with the process's, or is renewed
                logger.warning("balance feed could not stop watching %r (%s)", owner_id, error)
            finally:
                self._owner_locks.pop(owner_id, None)

    async def _renew_watches(self) -> None:
        """Says every WATCH_INTERVAL seconds which owners this process watches (also when
        it has none: it is alive), and offers their balances as read then, which also
        restores watches removed while the database could not be reached."""
        assert self._watch is not None
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                for update in await self._watch(self._watcher, list(self._followers)):
                    self._offer(update)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("balance feed could not renew its watches (%s)", error)

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._listen_until_lost()
                logger.warning("balance feed lost its connection; reconnecting")
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("balance feed cannot listen (%s); retrying in %.1fs", error, backoff)
                backoff = min(backoff * 2, self._max_backoff)
            await asyncio.sleep(backoff)

    async def _listen_until_lost(self) -> None:
        arguments, options = self._engine.dialect.create_connect_args(self._listen_url)
        options.setdefault("timeout", self._max_backoff)
        connection = await asyncpg.connect(*arguments, **options)
        try:
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _: lost.set())
            await connection.add_listener(CHANNEL, self._notified)
            self.connections += 1
            if self.connections > 1:
                # Notifications sent while the feed was away are gone: resend the present.
                logger.info("balance feed reconnected; resending current balances")
                await self._resend_current()
            self.listening.set()
            await lost.wait()
        finally:
            self.listening.clear()
            if not connection.is_closed():
                connection.terminate()

    async def _resend_current(self) -> None:
        owners = list(self._followers)
        if owners:
            if self._watch is None:
                updates = await self._newest_balances(owners)
            else:
                updates = await self._watch(self._watcher, owners)
            for update in updates:
                self._offer(update)

    def _notified(self, connection: object, pid: int, channel: str, payload: str) -> None:
        notice = json.loads(payload)
        owner_id = notice["owner_id"]
        if owner_id not in self._followers:
            return
        last_updated = _EPOCH + timedelta(microseconds=notice["last_updated_us"])
        balance = Balance(owner_id, notice["balance"], last_updated, notice["held"])
        self._offer(BalanceUpdate(balance, notice["version"]))

    def _offer(self, update: BalanceUpdate) -> None:
        for follower in self._followers.get(update.balance.owner_id, ()):
            follower.offer(update)
