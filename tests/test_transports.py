"""One executor for every transport: the same document gets the same errors over POST, GET
and WebSocket, every WebSocket operation gets a log line and metrics, and persisted queries
work on WebSocket too."""

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.testclient import TestClient

from graphql_ledger import Settings, create_app
from healthai.operations import HealthAIOperation
from tests.support import BALANCE, service_headers

# Each a document a client got wrong, and the variables sent with it. The app under test
# allows a depth of 3, so that a depth the schema can reach passes it.
BAD_DOCUMENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "syntax error": ("{ balance(ownerId: ) { balance } }", {}),
    "unknown field": ('{ balance(ownerId: "a") { balance colour } }', {}),
    "too deep": ('query Deep { owner(id: "a") { entries { edges { node { id } } } } }', {}),
    "too many aliases": (
        "{ " + " ".join(f'a{n}: balance(ownerId: "a") {{ balance }}' for n in range(101)) + " }",
        {},
    ),
    "variable of the wrong type": (BALANCE, {"ownerId": {"not": "an id"}}),
    "an argument breaking the input rules": ('{ balance(ownerId: "") { balance } }', {}),
}
EXPECTED_CODES = {
    "syntax error": "GRAPHQL_PARSE_FAILED",
    "unknown field": "GRAPHQL_VALIDATION_FAILED",
    "too deep": "GRAPHQL_VALIDATION_FAILED",
    "too many aliases": "GRAPHQL_VALIDATION_FAILED",
    "variable of the wrong type": "BAD_USER_INPUT",
    "an argument breaking the input rules": "BAD_USER_INPUT",
}


@pytest.fixture(scope="module")
def shallow(settings: Settings) -> Iterator[TestClient]:
    """healthai allowing a depth of 3, as a backend service."""
    app = create_app("healthai", HealthAIOperation, dataclasses.replace(settings, max_depth=3))
    with TestClient(app, headers=service_headers("healthai")) as client:
        yield client


def over_post(client: TestClient, query: str, variables: dict[str, Any]) -> list[Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    errors: list[Any] = response.json()["errors"]
    return errors


def over_get(client: TestClient, query: str, variables: dict[str, Any]) -> list[Any]:
    response = client.get(
        "/graphql",
        params={"query": query, "variables": json.dumps(variables)},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    errors: list[Any] = response.json()["errors"]
    return errors


def over_websocket(client: TestClient, query: str, variables: dict[str, Any]) -> list[Any]:
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": service_headers("healthai")})
        assert ws.receive_json() == {"type": "connection_ack"}
        ws.send_json(
            {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}
        )
        message = ws.receive_json()
        assert message["id"] == "1", message
        if message["type"] == "error":
            errors: list[Any] = message["payload"]
            return errors
        assert message["type"] == "next", message
        assert ws.receive_json() == {"id": "1", "type": "complete"}
        errors = message["payload"]["errors"]
        return errors


@pytest.mark.parametrize("name", BAD_DOCUMENTS)
def test_a_bad_document_gets_the_same_errors_over_post_get_and_websocket(
    shallow: TestClient, name: str
) -> None:
    query, variables = BAD_DOCUMENTS[name]
    posted = over_post(shallow, query, variables)
    assert {error["extensions"]["code"] for error in posted} == {EXPECTED_CODES[name]}, posted
    assert over_get(shallow, query, variables) == posted
    assert over_websocket(shallow, query, variables) == posted


@contextmanager
def captured_log(name: str) -> Iterator[list[logging.LogRecord]]:
    """The records `name` logs meanwhile, caught on that logger itself: once the app has
    configured logging (configure_logging, in any earlier test of the process) its records
    no longer propagate to the root logger, where pytest's caplog listens."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def test_every_websocket_operation_is_logged_and_counted(
    healthai_http: TestClient,
) -> None:
    def counted() -> float:
        text = healthai_http.get("/metrics").text
        line = next(
            (
                line
                for line in text.splitlines()
                if line.startswith("ledger_graphql_requests_total{")
                and 'operation="Balance"' in line
                and 'outcome="ok"' in line
            ),
            None,
        )
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    before = counted()
    with (
        captured_log("graphql_ledger.requests") as records,
        healthai_http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws,
    ):
        ws.send_json({"type": "connection_init", "payload": service_headers("healthai")})
        assert ws.receive_json() == {"type": "connection_ack"}
        for n in range(3):
            payload = {"query": BALANCE, "variables": {"ownerId": f"ws-log-{n}"}}
            ws.send_json({"id": str(n), "type": "subscribe", "payload": payload})
            assert ws.receive_json()["payload"]["data"]["balance"]["balance"] == 0
            assert ws.receive_json() == {"id": str(n), "type": "complete"}
    lines = [r for r in records if getattr(r, "operation", None) == "Balance"]
    assert [(r.getMessage(), getattr(r, "outcome", None)) for r in lines] == [
        ("WS /graphql Balance", "ok")
    ] * 3
    assert counted() == before + 3


def test_a_persisted_query_runs_over_websocket_as_over_http(healthai_http: TestClient) -> None:
    digest = hashlib.sha256(BALANCE.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    with healthai_http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": service_headers("healthai")})
        assert ws.receive_json() == {"type": "connection_ack"}
        unknown = {"extensions": persisted, "variables": {"ownerId": "p"}}
        ws.send_json({"id": "1", "type": "subscribe", "payload": unknown})
        assert ws.receive_json() == {
            "id": "1",
            "type": "error",
            "payload": [
                {
                    "message": "PersistedQueryNotFound",
                    "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
                }
            ],
        }
        ws.send_json({"id": "2", "type": "subscribe", "payload": {**unknown, "query": BALANCE}})
        assert ws.receive_json()["payload"]["data"]["balance"]["ownerId"] == "p"
        assert ws.receive_json() == {"id": "2", "type": "complete"}
        ws.send_json({"id": "3", "type": "subscribe", "payload": unknown})
        assert ws.receive_json()["payload"]["data"]["balance"]["ownerId"] == "p"
