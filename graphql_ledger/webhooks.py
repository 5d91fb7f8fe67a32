"""Webhook delivery: a worker in each server process claims due events from the outbox
(FOR UPDATE SKIP LOCKED, each owner's oldest pending one), POSTs them signed as Standard
Webhooks specifies, and records each attempt; failures are retried with exponential backoff
and jitter until the retry window passes, then dead-lettered.

The worker has a database connection and an HTTP client of its own, so a slow receiver
never holds a connection of the request pool nor the request path's event loop for long: it
awaits the receiver like any other I/O."""

import asyncio
import base64
import hashlib
import hmac
import logging
import random
import signal
import time
import urllib.parse
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson

from graphql_ledger.config import Settings, Webhook
from graphql_ledger.metrics import LedgerMetrics
from graphql_ledger.storage.events import (
    Attempt,
    OutboxEvent,
    claim_events,
    claim_following,
    configure_events,
    event_stats,
    open_connection,
    prune_events,
    record_attempts,
)

__all__ = [
    "RetrySchedule",
    "WebhookWorker",
    "deliver_until_stopped",
    "event_body",
    "sign",
    "start_events",
]

logger = logging.getLogger(__name__)

_OWNERS = 50  # owners whose events are claimed per transaction, POSTed concurrently
_PER_OWNER = 20  # events of one owner per transaction, POSTed one after the other
_PRUNE_BATCH = 1000
_PRUNE_EVERY = 60.0  # or the retention, when shorter
_STATS_EVERY = 1.0


def _iso(at: datetime) -> str:
    """As the GraphQL API and the events' data write a DateTime (ledger_iso())."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def event_body(event: OutboxEvent) -> bytes:
    """The JSON POSTed for `event`: the same bytes at every attempt (the data is spliced in
    as stored, so a retry repeats the body exactly)."""
    envelope = orjson.dumps(
        {"id": str(event.id), "type": event.type, "createdOn": _iso(event.created_on)}
    )
    return envelope[:-1] + b',"data":' + event.data.encode() + b"}"


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Standard Webhooks' headers: the signature is the base64 HMAC-SHA256, with the
    secret's key, of "id.timestamp.body"."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{digest}",
        "content-type": "application/json",
    }


@dataclass(frozen=True)
class RetrySchedule:
    """When a failed event is tried again: `base` seconds after the first failure, twice as
    long after each next one up to `cap`, each delay jittered to between half and all of it
    (so that events failed together do not come back together); dead-lettered once `window`
    seconds have passed since its first attempt, the last attempt falling at the window's
    end."""

    base: float
    cap: float
    window: float
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    @classmethod
    def of(cls, settings: Settings) -> "RetrySchedule":
        return cls(
            settings.webhook_retry_base,
            settings.webhook_retry_max,
            settings.webhook_retry_window,
        )

    def after_failure(self, event: OutboxEvent, now: datetime, error: str) -> Attempt:
        end = event.retry_from + timedelta(seconds=self.window)
        if now >= end:
            return Attempt(event, "dead", error=error)
        delay = min(self.cap, self.base * 2 ** min(event.attempts, 60))
        delay *= 0.5 + self.jitter() / 2
        return Attempt(event, "retry", min(now + timedelta(seconds=delay), end), error)


def _shown(url: str) -> str:
    """The receiver's URL as logs show it: without credentials or query."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"


class WebhookWorker:
    """Delivers one app's events to its receiver, until stopped."""

    def __init__(
        self,
        database_url: str,
        webhook: Webhook,
        settings: Settings,
        metrics: LedgerMetrics,
        low_balance: int | None = None,
    ) -> None:
        self._database_url = database_url
        self._low_balance = low_balance
        self._webhook = webhook
        self._schedule = RetrySchedule.of(settings)
        self._timeout = settings.webhook_timeout
        self._retention = settings.webhook_retention
        self._poll = settings.webhook_poll
        self._db_timeout = settings.db_timeout
        self._metrics = metrics
        self._connection: asyncpg.Connection | None = None
        self._http = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        self._task: asyncio.Task[None] | None = None
        self._pruned_at = 0.0
        self._counted_at = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook delivery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._close()
        await self._http.aclose()

    async def _run(self) -> None:
        pause = self._poll
        while True:
            try:
                full = await self._deliver_batch()
                await self._housekeeping()
                pause = self._poll
            except Exception as error:  # whatever failed, the worker must go on
                # The database is down or restarting: whatever was claimed is claimed
                # again once it is back (the transaction rolled back with the connection).
                logger.warning("webhook delivery paused: %r", error)
                await self._close()
                full = False
                pause = min(pause * 2, 5.0)
            if not full:  # a batch that took all there was: let the next one gather
                await asyncio.sleep(pause)

    async def _connected(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            connection = await open_connection(self._database_url, timeout=self._db_timeout)
            try:  # again at every connection: start_events may have found the database down
                await configure_events(connection, True, self._low_balance)
            except BaseException:
                connection.terminate()
                raise
            self._connection = connection
        return self._connection

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()

    async def _deliver_batch(self) -> bool:
        """Claims, POSTs and records one batch in one transaction; whether it was full
        (more may be due). The claimed rows stay locked while they are POSTed, so no other
        process sends them (nor the same owners' later events) meanwhile."""
        connection = await self._connected()
        async with connection.transaction():
            heads = await claim_events(connection, _OWNERS)
            if not heads:
                return False
            claimed = await claim_following(connection, [e.owner_id for e in heads], _PER_OWNER)
            by_owner: dict[str, list[OutboxEvent]] = {}
            for event in claimed:
                by_owner.setdefault(event.owner_id, []).append(event)
            sent = await asyncio.gather(*(self._deliver_owner(e) for e in by_owner.values()))
            attempts = [attempt for owner in sent for attempt in owner]
            await record_attempts(connection, attempts)
        for attempt in attempts:
            self._observe(attempt)
        return len(heads) == _OWNERS or any(len(e) == _PER_OWNER for e in by_owner.values())

    async def _deliver_owner(self, events: list[OutboxEvent]) -> list[Attempt]:
        """An owner's events in order, until one fails (the rest wait for its retry)."""
        attempts = []
        for event in events:
            attempts.append(await self._attempt(event))
            if attempts[-1].outcome == "retry":
                break
        return attempts

    def _observe(self, attempt: Attempt) -> None:
        self._metrics.webhook_attempt(attempt.outcome)
        if attempt.outcome == "dead":
            logger.warning(
                "event %s (%s of %s) dead-lettered after %d attempts: %s",
                attempt.event.id,
                attempt.event.type,
                attempt.event.owner_id,
                attempt.event.attempts + 1,
                attempt.error,
            )

    async def _attempt(self, event: OutboxEvent) -> Attempt:
        body = event_body(event)
        headers = sign(self._webhook.key, str(event.id), int(time.time()), body)
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http.post(self._webhook.url, content=body, headers=headers)
        except (httpx.HTTPError, TimeoutError) as error:
            problem = f"{type(error).__name__} from {_shown(self._webhook.url)}"
        else:
            if 200 <= response.status_code < 300:
                return Attempt(event, "delivered")
            problem = f"HTTP {response.status_code} from {_shown(self._webhook.url)}"
        return self._schedule.after_failure(event, datetime.now(UTC), problem)

    async def _housekeeping(self) -> None:
        """The figures /metrics shows, about once a second, and pruning, once a minute."""
        now = time.monotonic()
        connection = await self._connected()
        if now - self._counted_at >= _STATS_EVERY:
            self._counted_at = now
            self._metrics.webhook_outbox(await event_stats(connection))
        if now - self._pruned_at >= min(_PRUNE_EVERY, self._retention):
            self._pruned_at = now
            before = datetime.now(UTC) - timedelta(seconds=self._retention)
            pruned = await prune_events(connection, before, _PRUNE_BATCH)
            if pruned:
                logger.info("pruned %d delivered events", pruned)


async def start_events(
    stack: AsyncExitStack, app: str, database_url: str, settings: Settings, metrics: LedgerMetrics
) -> None:
    """At a server's start: tells the database whether `app` has a webhook (the write
    functions write events only then) and its threshold, and starts the delivery worker
    (stopped with the stack). A database that does not answer now only delays the
    settings: the worker sets them once it connects."""
    webhook = settings.webhooks.get(app)
    low_balance = settings.low_balances.get(app)
    try:
        connection = await open_connection(database_url, timeout=settings.db_timeout)
        try:
            await configure_events(connection, webhook is not None, low_balance)
        finally:
            await connection.close()
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        logger.warning("%s: could not record the webhook settings yet (%r)", app, error)
    if webhook is None or not settings.webhook_worker:
        return  # without a worker here, a `graphql-ledger deliver` process delivers
    worker = WebhookWorker(database_url, webhook, settings, metrics, low_balance)
    worker.start()
    stack.push_async_callback(worker.stop)
    logger.info("%s delivers events to %s", app, _shown(webhook.url))


async def deliver_until_stopped(urls: dict[str, str], settings: Settings) -> None:
    """`graphql-ledger deliver`: the delivery workers of these apps (by database URL) in
    this process alone, until SIGTERM or SIGINT; the servers then run with
    LEDGER_WEBHOOK_WORKER=off and spend no CPU on delivery."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stopped.set)
    workers = [
        WebhookWorker(
            url,
            settings.webhooks[app],
            settings,
            LedgerMetrics(app, lambda: (0, 0)),
            settings.low_balances.get(app),
        )
        for app, url in urls.items()
    ]
    for app, worker in zip(urls, workers, strict=True):
        worker.start()
        logger.info("%s delivers events to %s", app, _shown(settings.webhooks[app].url))
    await stopped.wait()
    await asyncio.gather(*(worker.stop() for worker in workers))
