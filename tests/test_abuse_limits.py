"""Abuse limits: document depth, aliases and tokens, request body size, batching,
introspection and field suggestions, and CORS. Each refusal reads and writes nothing."""

import threading
from collections.abc import Callable, Iterator

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from graphql_ledger import Settings, create_app
from healthai.operations import HealthAIOperation
from tests.support import (
    TEST_SECRET,
    ServerProcess,
    clean_environment,
    create_entry_request,
    service_headers,
    sql,
)

DEEP = '{ owner(id: "o") { entries { edges { node { id } } } } }'  # depth 4 below the root
MEBIBYTE = 1024 * 1024


@pytest.fixture(scope="module")
def database(new_database: Callable[..., str]) -> str:
    return new_database("abuse")


def app_with(database: str, **settings: object) -> TestClient:
    """healthai on `database` with some settings changed, as a backend service calls it."""
    config = Settings(
        app_database_urls={"healthai": database},
        jwt_secret=TEST_SECRET,
        **settings,  # type: ignore[arg-type]
    )
    return TestClient(
        create_app("healthai", HealthAIOperation, config), headers=service_headers("healthai")
    )


@pytest.fixture(scope="module")
def defaults(database: str) -> Iterator[TestClient]:
    with app_with(database) as client:
        yield client


def refusal(response: httpx.Response, code: str) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"] == {"code": code}
    message: str = error["message"]
    return message


def entry_count(database: str) -> int:
    [(count,)] = sql(database, "SELECT count(*) FROM entries")
    return int(count)


def test_the_deepest_query_a_frontend_sends_is_within_the_default_depth(
    defaults: TestClient,
) -> None:
    response = defaults.post("/graphql", json={"query": DEEP})
    assert response.json() == {"data": {"owner": {"entries": {"edges": []}}}}


def test_a_query_deeper_than_the_limit_is_refused(database: str) -> None:
    with app_with(database, max_depth=3) as client:
        message = refusal(
            client.post("/graphql", json={"query": DEEP}), "GRAPHQL_VALIDATION_FAILED"
        )
    assert "exceeds maximum operation depth of 3" in message


def test_a_hundred_aliases_pass_and_a_hundred_and_one_are_refused(
    defaults: TestClient, database: str
) -> None:
    def aliased(count: int) -> str:
        return (
            "{ "
            + " ".join(f'b{n}: balance(ownerId: "o{n}") {{ balance }}' for n in range(count))
            + " }"
        )

    assert len(defaults.post("/graphql", json={"query": aliased(100)}).json()["data"]) == 100
    message = refusal(
        defaults.post("/graphql", json={"query": aliased(101)}), "GRAPHQL_VALIDATION_FAILED"
    )
    assert message == "101 aliases found. Allowed: 100"


def test_aliased_mutations_beyond_the_limit_write_nothing(database: str) -> None:
    before = entry_count(database)
    mutations = " ".join(
        f'm{n}: createEntry(input: {{ownerId: "alias-{n}", operation: CREDIT_ADD, nonce: "n"}})'
        " { __typename }"
        for n in range(101)
    )
    with app_with(database, max_tokens=10_000) as client:  # so the alias limit is what bites
        message = refusal(
            client.post("/graphql", json={"query": f"mutation {{ {mutations} }}"}),
            "GRAPHQL_VALIDATION_FAILED",
        )
    assert message == "101 aliases found. Allowed: 100"
    assert entry_count(database) == before


def fragment_bomb(levels: int, leaf: str) -> str:
    """Fragments that each spread the previous one twice: under 2,000 tokens, yet 2**levels
    copies of `leaf` once spread."""
    fragments = [f"fragment F0 on Query {{ {leaf} }}"]
    fragments += [f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels)]
    return f"{{ ...F{levels - 1} }} " + " ".join(fragments)


def answered_within(client: TestClient, query: str, seconds: float) -> httpx.Response:
    """The response, which must come before `seconds` pass: a request that would take
    years must fail the test, not hang the suite."""
    answers: list[httpx.Response] = []
    worker = threading.Thread(
        target=lambda: answers.append(client.post("/graphql", json={"query": query})),
        daemon=True,
    )
    worker.start()
    worker.join(seconds)
    assert answers, f"no answer in {seconds} s"
    return answers[0]


def test_nested_fragments_are_measured_once_each_not_once_per_spread(
    defaults: TestClient,
) -> None:
    # 2**60 spreads: walking each spread again (as Strawberry's limiters do) never ends.
    plain = answered_within(defaults, fragment_bomb(60, "operations { amount }"), 30)
    assert plain.json()["data"]["operations"][0] == {"amount": 1}
    aliased = answered_within(defaults, fragment_bomb(60, "a: operations { amount }"), 30)
    assert refusal(aliased, "GRAPHQL_VALIDATION_FAILED") == (f"{2**59} aliases found. Allowed: 100")
    deep_leaf = DEEP[1:-1]  # depth 4, through 2**59 spreads
    deep = answered_within(defaults, fragment_bomb(60, deep_leaf), 30).json()
    assert deep == {"data": {"owner": {"entries": {"edges": []}}}}


def test_depth_is_measured_through_fragments(database: str) -> None:
    with app_with(database, max_depth=3) as client:
        response = answered_within(client, fragment_bomb(60, DEEP[1:-1]), 30)
    assert refusal(response, "GRAPHQL_VALIDATION_FAILED") == (
        "'anonymous' exceeds maximum operation depth of 3"
    )


def test_a_document_of_more_than_2000_tokens_is_refused_while_parsing(defaults: TestClient) -> None:
    query = "{ operations { " + "amount " * 2001 + "} }"
    message = refusal(defaults.post("/graphql", json={"query": query}), "GRAPHQL_PARSE_FAILED")
    assert "more than 2000 tokens" in message


def test_limits_are_configurable(database: str) -> None:
    with app_with(database, max_aliases=2, max_tokens=20) as client:
        three = "{ a: operations { amount } b: operations { amount } c: operations { amount } }"
        assert (
            refusal(client.post("/graphql", json={"query": three}), "GRAPHQL_VALIDATION_FAILED")
            == "3 aliases found. Allowed: 2"
        )
        many = "{ operations { " + "amount " * 20 + "} }"
        assert "more than 20 tokens" in refusal(
            client.post("/graphql", json={"query": many}), "GRAPHQL_PARSE_FAILED"
        )


def test_a_body_over_one_mebibyte_is_a_413_before_parsing(
    defaults: TestClient, database: str
) -> None:
    before = entry_count(database)
    oversized = b'{"query": "' + b"x" * MEBIBYTE + b'"}'  # not even valid GraphQL
    response = defaults.post(
        "/graphql", content=oversized, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {
        "errors": [
            {
                "message": f"the request body is larger than {MEBIBYTE} bytes",
                "extensions": {"code": "PAYLOAD_TOO_LARGE"},
            }
        ]
    }
    assert entry_count(database) == before


def test_a_body_just_under_the_limit_is_parsed(defaults: TestClient) -> None:
    padding = " " * (MEBIBYTE - 100)
    body = ('{"query": "{ operations { amount } }' + padding + '"}').encode()
    assert len(body) < MEBIBYTE
    response = defaults.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert len(response.json()["data"]["operations"]) == 6


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(database: str) -> None:
    """Without Content-Length the server cannot refuse up front; it must stop reading."""
    env = clean_environment(HEALTHAI_DATABASE_URL=database)
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"query": "'
        for _ in range(64):  # 4 MiB offered in 64 KiB chunks
            sent += 65536
            yield b"x" * 65536
        yield b'"}'

    with ServerProcess.uvicorn("healthai", env) as server:
        response = httpx.post(
            f"{server.url()}/graphql",
            content=chunks(),
            headers={**service_headers("healthai"), "content-type": "application/json"},
            timeout=30,
        )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"] == {"code": "PAYLOAD_TOO_LARGE"}


def test_batched_operations_are_refused(defaults: TestClient, database: str) -> None:
    before = entry_count(database)
    batch = [
        create_entry_request("batch", "CREDIT_ADD", "n"),
        {"query": "{ operations { amount } }"},
    ]
    response = defaults.post("/graphql", json=batch)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"] == {"code": "BAD_REQUEST"}
    assert "Batching" in response.json()["errors"][0]["message"]
    assert entry_count(database) == before


def test_introspection_is_on_by_default_with_suggestions(defaults: TestClient) -> None:
    response = defaults.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})
    assert response.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    typo = refusal(
        defaults.post("/graphql", json={"query": '{ balanc(ownerId: "a") { balance } }'}),
        "GRAPHQL_VALIDATION_FAILED",
    )
    assert "Did you mean 'balance'" in typo


def test_introspection_off_refuses_schema_queries_and_hides_suggestions(database: str) -> None:
    with app_with(database, introspection=False) as client:
        for query in (
            "{ __schema { queryType { name } } }",
            '{ __type(name: "Balance") { name } }',
        ):
            body = client.post("/graphql", json={"query": query}).json()
            assert body["data"] is None
            assert "introspection has been disabled" in body["errors"][0]["message"]
        typo = refusal(
            client.post("/graphql", json={"query": '{ balanc(ownerId: "a") { balance } }'}),
            "GRAPHQL_VALIDATION_FAILED",
        )
        assert typo == "Cannot query field 'balanc' on type 'Query'."
        assert client.post("/graphql", json={"query": "{ __typename }"}).json() == {
            "data": {"__typename": "Query"}
        }


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


def test_no_origin_is_allowed_by_default(defaults: TestClient) -> None:
    response = defaults.options("/graphql", headers={"Origin": "https://app.example", **PREFLIGHT})
    assert "access-control-allow-origin" not in response.headers
    posted = defaults.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": "https://app.example"}
    )
    assert "access-control-allow-origin" not in posted.headers


def test_configured_origins_may_call_with_a_token_and_others_may_not(database: str) -> None:
    with app_with(database, cors_origins=("https://app.example",)) as client:
        allowed = client.options("/graphql", headers={"Origin": "https://app.example", **PREFLIGHT})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()

        denied = client.options("/graphql", headers={"Origin": "https://evil.example", **PREFLIGHT})
        assert denied.status_code == 400
        assert "access-control-allow-origin" not in denied.headers

        posted = client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Origin": "https://app.example"}
        )
        assert posted.json() == {"data": {"__typename": "Query"}}
        assert posted.headers["access-control-allow-origin"] == "https://app.example"
