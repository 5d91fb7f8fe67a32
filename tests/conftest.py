"""Fixtures: one real PostgreSQL server per test run (the embedded one, or the server named
by TEST_DATABASE_URL), fresh migrated databases on it, and each app served in-process
through its ASGI interface."""

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from graphql_ledger import LedgerOperation, Settings, create_app
from graphql_ledger.storage import EmbeddedPostgres, ensure_database, migrate
from healthai.operations import HealthAIOperation
from tests.support import (
    TEST_SECRET,
    GraphQLClient,
    Ledger,
    private_postgres,
    service_headers,
    sql,
    user_headers,
    with_database,
    with_user,
)
from travelai.operations import TravelAIOperation

# The login, a member of the serving role, that the session's apps serve as: `migrate`
# creates it (the test server trusts loopback, as the embedded one trusts its socket).
SERVING_LOGIN = EmbeddedPostgres.serving_login


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Records a figure the test measured (requests sent, faults injected, entries
    checked); the run ends by printing them all, so every `make test` shows them. They
    travel with the test's report, so they reach the summary from xdist's workers too."""
    item = request.node
    return lambda line: item.user_properties.append(("figure", line.strip()))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == "figure"
    ]
    if lines:
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The maintenance database (`postgres`) of the server the tests use."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield with_database(configured, "postgres")
        return
    with private_postgres() as embedded:
        yield embedded.url("postgres")


@pytest.fixture(scope="session")
def new_database(postgres_url: str) -> Iterator[Callable[..., str]]:
    """Makes a database of its own for a test: migrated with an app's operation rules
    (healthai's unless told), or just created."""
    created = []

    def make(
        label: str,
        *,
        migrated: bool = True,
        operations: type[LedgerOperation] = HealthAIOperation,
    ) -> str:
        name = f"test_{label}_{uuid.uuid4().hex[:10]}"
        created.append(name)
        url = with_database(postgres_url, name)
        asyncio.run(
            migrate(url, operations, login=SERVING_LOGIN) if migrated else ensure_database(url)
        )
        return url

    yield make
    for name in created:
        sql(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def app_urls(new_database: Callable[..., str]) -> dict[str, str]:
    """The session's database of each app."""
    return {
        "healthai": new_database("healthai"),
        "travelai": new_database("travelai", operations=TravelAIOperation),
    }


@pytest.fixture(scope="session")
def settings(app_urls: dict[str, str]) -> Settings:
    """The in-process apps' configuration: they serve as the serving role's login, as in
    production (the tests' own SQL and `migrate` use the owner's URLs)."""
    serving = {app: with_user(url, SERVING_LOGIN) for app, url in app_urls.items()}
    return Settings(app_database_urls=serving, jwt_secret=TEST_SECRET)


@pytest.fixture(scope="session")
def healthai_app(settings: Settings) -> Iterator[TestClient]:
    """healthai in-process, started; a client without credentials."""
    with TestClient(create_app("healthai", HealthAIOperation, settings)) as client:
        yield client


@pytest.fixture(scope="session")
def travelai_app(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app("travelai", TravelAIOperation, settings)) as client:
        yield client


@pytest.fixture
def healthai_http(healthai_app: TestClient) -> TestClient:
    """A client of healthai that is a backend service."""
    healthai_app.headers.clear()
    healthai_app.headers.update(service_headers("healthai"))
    return healthai_app


@pytest.fixture
def travelai_http(travelai_app: TestClient) -> TestClient:
    travelai_app.headers.clear()
    travelai_app.headers.update(service_headers("travelai"))
    return travelai_app


@pytest.fixture
def healthai(healthai_http: TestClient) -> GraphQLClient:
    return GraphQLClient(healthai_http)


@pytest.fixture
def travelai(travelai_http: TestClient) -> GraphQLClient:
    return GraphQLClient(travelai_http)


@pytest.fixture
def owner() -> str:
    """An owner id no other test uses."""
    return f"owner-{uuid.uuid4()}"


# Statements on the app's pool that no request sent: asyncpg's type introspection
# (asyncpg/introspection.py and its JIT guard), and the app's background work, the expiry
# pass (every LEDGER_EXPIRY_INTERVAL seconds) and the feed's renewal of its watches.
NOT_REQUESTS = (
    "typeinfo_tree",
    "typebases",
    "current_setting('jit')",
    "set_config('jit'",
    "ledger_expire_grants(",
    "ledger_watch(",
)


@pytest.fixture
def statements(healthai_http: TestClient) -> Iterator[list[str]]:
    """Every SQL statement the in-process healthai app sends while the test runs, seen by
    asyncpg's query logger on each connection the pool hands out; not NOT_REQUESTS (asyncpg's
    type introspection was seen when a test ran first on a fresh app: 5 statements counted
    for 2; the expiry pass could fall inside any test's window)."""
    pool = healthai_http.app.state.repository.engine.sync_engine.pool  # type: ignore[attr-defined]
    seen: list[str] = []
    instrumented: list[Any] = []

    def record(logged: Any) -> None:
        if not any(marker in logged.query for marker in NOT_REQUESTS):
            seen.append(logged.query)

    def on_checkout(dbapi_connection: Any, *_: object) -> None:
        driver = dbapi_connection.driver_connection
        if driver not in instrumented:
            driver.add_query_logger(record)
            instrumented.append(driver)

    event.listen(pool, "checkout", on_checkout)
    yield seen
    event.remove(pool, "checkout", on_checkout)
    for driver in instrumented:
        driver.remove_query_logger(record)


@pytest.fixture
def as_user(healthai_http: TestClient) -> Callable[[str], Ledger]:
    """Clients of the issue-14 surface acting as the end user who is the given owner."""

    def make(owner_id: str) -> Ledger:
        return Ledger(GraphQLClient(healthai_http, headers=user_headers("healthai", owner_id)))

    return make
