"""What `/metrics` reports, in Prometheus' text format (prometheus-client): requests by
GraphQL operation and outcome, their latency, entries created by operation, business
refusals by code, the database pool, and webhook deliveries (attempts by outcome; the
outbox's pending and dead-lettered events and the age of the oldest pending one, as the
delivery worker last read them).

Figures are per process. With several uvicorn workers, set PROMETHEUS_MULTIPROC_DIR to an
empty directory shared by the workers and `/metrics` aggregates them (prometheus-client's
multiprocess mode; the pool gauges then stay per process and are left out).
"""

import os
from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "LedgerMetrics", "OutboxFigures"]

# Operation names come from clients: past this many distinct ones, the rest are "other",
# so that a client cannot make the metrics grow without bound.
_MAX_OPERATION_NAMES = 100
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class OutboxFigures(Protocol):
    @property
    def pending(self) -> int: ...
    @property
    def dead(self) -> int: ...
    @property
    def oldest_pending_seconds(self) -> float: ...


class _OutboxCollector(Collector):
    def __init__(self, app: str) -> None:
        self._app = app
        self.figures: OutboxFigures | None = None

    def collect(self) -> Iterator[Metric]:
        if self.figures is None:  # no webhook, or not read yet
            return
        for name, text, value in (
            ("ledger_webhook_events_pending", "Events not yet delivered.", self.figures.pending),
            (
                "ledger_webhook_events_dead_lettered",
                "Events dead-lettered after the retry window.",
                self.figures.dead,
            ),
            (
                "ledger_webhook_oldest_pending_seconds",
                "Age of the oldest event not yet delivered.",
                self.figures.oldest_pending_seconds,
            ),
        ):
            gauge = GaugeMetricFamily(name, text, labels=["app"])
            gauge.add_metric([self._app], value)
            yield gauge


class _PoolCollector(Collector):
    def __init__(self, app: str, pool_status: Callable[[], tuple[int, int]]) -> None:
        self._app = app
        self._pool_status = pool_status

    def collect(self) -> Iterator[Metric]:
        in_use, idle = self._pool_status()
        gauge = GaugeMetricFamily(
            "ledger_db_pool_connections",
            "Database connections of this process's pool, by state.",
            labels=["app", "state"],
        )
        gauge.add_metric([self._app, "in_use"], in_use)
        gauge.add_metric([self._app, "idle"], idle)
        yield gauge


class LedgerMetrics:
    """One app's metrics in one process."""

    def __init__(self, app: str, pool_status: Callable[[], tuple[int, int]]) -> None:
        self.app = app
        self._multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._registry = CollectorRegistry()
        # In multiprocess mode the values live in files that every worker writes and the
        # scrape collects; the objects below must not be registered twice then.
        registry = None if self._multiprocess else self._registry
        self._requests = Counter(
            "ledger_graphql_requests",
            "GraphQL requests by operation name and outcome.",
            ["app", "operation", "outcome"],
            registry=registry,
        )
        self._latency = Histogram(
            "ledger_graphql_request_duration_seconds",
            "Time to answer a GraphQL request, by operation name.",
            ["app", "operation"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self._entries = Counter(
            "ledger_entries_created",
            "Entries written (replays not counted), by operation.",
            ["app", "operation"],
            registry=registry,
        )
        self._refusals = Counter(
            "ledger_business_errors",
            "Refusals of writes (LedgerError members of their unions), by code.",
            ["app", "code"],
            registry=registry,
        )
        self._deliveries = Counter(
            "ledger_webhook_deliveries",
            "Webhook delivery attempts by outcome: delivered, retry (failed, tried again"
            " later) or dead (failed past the retry window: dead-lettered).",
            ["app", "outcome"],
            registry=registry,
        )
        self._operations: set[str] = set()
        self._outbox = _OutboxCollector(app)
        if self._multiprocess:
            MultiProcessCollector(self._registry)  # type: ignore[no-untyped-call]
        else:
            self._registry.register(_PoolCollector(app, pool_status))
            self._registry.register(self._outbox)

    def request(self, operation: str | None, outcome: str, seconds: float) -> None:
        name = self._operation_label(operation)
        self._requests.labels(self.app, name, outcome).inc()
        self._latency.labels(self.app, name).observe(seconds)

    def entry_created(self, operation: str) -> None:
        self._entries.labels(self.app, operation).inc()

    def refusal(self, code: str) -> None:
        self._refusals.labels(self.app, code).inc()

    def webhook_attempt(self, outcome: str) -> None:
        self._deliveries.labels(self.app, outcome).inc()

    def webhook_outbox(self, figures: OutboxFigures) -> None:
        self._outbox.figures = figures

    def exposition(self) -> bytes:
        return generate_latest(self._registry)

    def _operation_label(self, operation: str | None) -> str:
        if not operation:
            return "anonymous"
        if operation in self._operations:
            return operation
        if len(self._operations) < _MAX_OPERATION_NAMES and len(operation) <= 100:
            self._operations.add(operation)
            return operation
        return "other"
