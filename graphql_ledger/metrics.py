"""What `/metrics` reports, in Prometheus' text format (prometheus-client): requests by
GraphQL operation and outcome, their latency, entries created by operation, business
refusals by code, and the database pool.

Figures are per process. With several uvicorn workers, set PROMETHEUS_MULTIPROC_DIR to an
empty directory shared by the workers and `/metrics` aggregates them (prometheus-client's
multiprocess mode; the pool gauges then stay per process and are left out).
"""

import os
from collections.abc import Callable, Iterator

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

__all__ = ["CONTENT_TYPE_LATEST", "LedgerMetrics"]

# Operation names come from clients: past this many distinct ones, the rest are "other",
# so that a client cannot make the metrics grow without bound.
_MAX_OPERATION_NAMES = 100
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


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
        self._operations: set[str] = set()
        if self._multiprocess:
            MultiProcessCollector(self._registry)  # type: ignore[no-untyped-call]
        else:
            self._registry.register(_PoolCollector(app, pool_status))

    def request(self, operation: str | None, outcome: str, seconds: float) -> None:
        name = self._operation_label(operation)
        self._requests.labels(self.app, name, outcome).inc()
        self._latency.labels(self.app, name).observe(seconds)

    def entry_created(self, operation: str) -> None:
        self._entries.labels(self.app, operation).inc()

    def refusal(self, code: str) -> None:
        self._refusals.labels(self.app, code).inc()

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
