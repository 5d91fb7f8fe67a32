"""What operators rely on: /healthz, /readyz, /metrics in Prometheus' format, and one JSON
log line per request that never carries a token or a variable."""

import asyncio
import json
from collections.abc import Callable, Iterator

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from graphql_ledger import Settings, create_app
from graphql_ledger.storage import head_revision, migrate
from healthai.operations import HealthAIOperation
from tests.support import (
    TEST_SECRET,
    GraphQLClient,
    ServerProcess,
    clean_environment,
    create_entry_request,
    service_headers,
    sql,
    user_headers,
)


def app_on(url: str) -> TestClient:
    settings = Settings(app_database_urls={"healthai": url}, jwt_secret=TEST_SECRET)
    return TestClient(
        create_app("healthai", HealthAIOperation, settings), headers=service_headers("healthai")
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_healthz_answers_without_a_token(healthai_app: TestClient) -> None:
    response = healthai_app.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_is_ready_on_a_migrated_database(healthai_app: TestClient) -> None:
    response = healthai_app.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "revision": head_revision()}


def test_readyz_is_503_on_a_database_not_migrated_to_head(
    new_database: Callable[..., str],
) -> None:
    with app_on(new_database("not_ready", migrated=False)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "reason": f"the database is at revision None, this code needs {head_revision()}",
    }


def test_readyz_is_503_until_the_database_holds_this_apps_rules(
    new_database: Callable[..., str],
) -> None:
    url = new_database("other_rules")
    # A newer release changed CREDIT_ADD (and its migrate ran); this process declares 10.
    sql(url, "INSERT INTO operation_rules VALUES ('CREDIT_ADD', 12, NULL, clock_timestamp())")
    sql(url, "DELETE FROM operation_rules WHERE operation = 'CONTENT_ACCESS'")
    with app_on(url) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "reason": "the database's operation rules are not this app's (run graphql-ledger"
            " migrate): CONTENT_ACCESS: +0 credits here, none in the database;"
            " CREDIT_ADD: +10 credits here, +12 credits in the database",
        }
        # The process does not write its own rules: the database's stay in force.
        assert sql(url, "SELECT count(*) FROM operation_rules WHERE amount = 12") == [(1,)]
        asyncio.run(migrate(url, HealthAIOperation))
        assert client.get("/readyz").json() == {"status": "ready", "revision": head_revision()}


def test_readyz_is_503_when_the_database_does_not_answer() -> None:
    unreachable = "postgresql://ledger:secret@127.0.0.1:1/healthai"
    settings = Settings(
        app_database_urls={"healthai": unreachable}, jwt_secret=TEST_SECRET, pool_timeout=1
    )
    with TestClient(create_app("healthai", HealthAIOperation, settings)) as client:
        response = client.get("/readyz")
        assert client.get("/healthz").status_code == 200  # alive, just not ready
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "the database does not answer"}
    assert "secret" not in response.text


def test_metrics_count_requests_entries_refusals_and_the_pool(
    new_database: Callable[..., str], owner: str
) -> None:
    with app_on(new_database("metrics")) as client:
        graphql = GraphQLClient(client)
        created = graphql.create_entry(owner, "CREDIT_ADD", "a")
        assert graphql.create_entry(owner, "CREDIT_ADD", "a") == created  # a replay
        graphql.create_entry(owner, "CONTENT_CREATION", "b")
        graphql.create_entry(owner, "CONTENT_CREATION", "c")
        assert graphql.create_entry(owner, "CONTENT_CREATION", "d")["code"] == (
            "INSUFFICIENT_CREDITS"
        )
        client.post("/graphql", json={"query": "query Mine { operations { amount } }"})
        client.post("/graphql", json={"query": "{ nope }"})
        client.post("/graphql", json={"query": "{ __typename }"}, headers={"authorization": ""})
        response = client.get("/metrics")

    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    app = ("app", "healthai")

    def requests(operation: str, outcome: str) -> float:
        key = (
            "ledger_graphql_requests_total",
            (app, ("operation", operation), ("outcome", outcome)),
        )
        return found.get(key, 0)

    assert requests("CreateEntry", "ok") == 5
    assert requests("Mine", "ok") == 1
    assert requests("anonymous", "error") == 1
    assert requests("anonymous", "unauthenticated") == 1
    created = "ledger_entries_created_total"
    assert found[(created, (app, ("operation", "CREDIT_ADD")))] == 1  # not the replay
    assert found[(created, (app, ("operation", "CONTENT_CREATION")))] == 2
    refused = ("ledger_business_errors_total", (app, ("code", "INSUFFICIENT_CREDITS")))
    assert found[refused] == 1
    latency = ("ledger_graphql_request_duration_seconds_count", (app, ("operation", "CreateEntry")))
    assert found[latency] == 5
    in_use = found[("ledger_db_pool_connections", (app, ("state", "in_use")))]
    idle = found[("ledger_db_pool_connections", (app, ("state", "idle")))]
    assert in_use == 0 and idle >= 1


def test_client_chosen_operation_names_cannot_grow_the_metrics_without_bound(
    healthai_http: TestClient,
) -> None:
    for number in range(150):
        healthai_http.post(
            "/graphql", json={"query": f"query Q{number} {{ operations {{ amount }} }}"}
        )
    operations = {
        dict(key[1]).get("operation")
        for key in samples(healthai_http.get("/metrics").text)
        if key[0] == "ledger_graphql_requests_total"
    }
    assert len(operations) <= 102 and "other" in operations  # 100 names, anonymous, other


@pytest.fixture
def json_logging_server(new_database: Callable[..., str]) -> Iterator[ServerProcess]:
    env = clean_environment(HEALTHAI_DATABASE_URL=new_database("logs"))
    server = ServerProcess.uvicorn("healthai", env)
    server.args = [a for a in server.args if a not in ("--log-level", "warning")]
    with server:
        yield server


def test_each_request_is_one_json_line_without_tokens_or_variables(
    json_logging_server: ServerProcess, owner: str
) -> None:
    secret_owner = f"{owner}-personal-data"
    headers = {**user_headers("healthai", secret_owner), "X-Request-ID": "trace-42"}
    response = httpx.post(
        f"{json_logging_server.url()}/graphql",
        json=create_entry_request(secret_owner, "CREDIT_SPEND", "n"),
        headers=headers,
    )
    assert response.headers["x-request-id"] == "trace-42"
    unauthenticated = httpx.post(f"{json_logging_server.url()}/graphql", json={"query": "{ a }"})
    generated = unauthenticated.headers["x-request-id"]
    json_logging_server.stop()

    lines = [json.loads(line) for line in json_logging_server.output().splitlines() if line]
    [request] = [line for line in lines if line.get("request_id") == "trace-42"]
    assert request["logger"] == "graphql_ledger.requests"
    assert request["app"] == "healthai"
    assert request["operation"] == "CreateEntry"
    assert request["outcome"] == "ok"
    assert request["status"] == 200
    assert request["duration_ms"] > 0
    assert request["level"] == "INFO" and request["time"].endswith("+00:00")
    [refused] = [line for line in lines if line.get("request_id") == generated]
    assert (refused["outcome"], refused["status"]) == ("unauthenticated", 401)
    everything = json_logging_server.output()
    assert secret_owner not in everything
    assert headers["Authorization"].split()[1] not in everything
    assert all("message" in line and "level" in line for line in lines)
