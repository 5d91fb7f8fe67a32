"""GraphQL over HTTP: GET and POST, GraphiQL, refusals of malformed requests in the GraphQL
error shape, and unexpected errors masked for the client but logged with their cause."""

import logging
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from graphql_ledger import Settings, create_app
from healthai.operations import HealthAIOperation
from tests.support import TEST_SECRET, GraphQLClient, service_headers


def assert_refused(response: object, status: int, code: str, message: str) -> None:
    assert response.status_code == status  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body == {"errors": [{"message": message, "extensions": {"code": code}}]}


def test_a_malformed_json_body_is_a_400_in_the_graphql_error_shape(
    healthai_http: TestClient,
) -> None:
    response = healthai_http.post(
        "/graphql", content=b'{"query": "{ operations', headers={"content-type": "application/json"}
    )
    assert_refused(response, 400, "BAD_REQUEST", "Unable to parse request body as JSON")
    assert "Traceback" not in response.text


def test_an_unsupported_content_type_is_a_400_saying_json_is_expected(
    healthai_http: TestClient,
) -> None:
    response = healthai_http.post(
        "/graphql", content=b"{ operations { amount } }", headers={"content-type": "text/plain"}
    )
    expected = "send the GraphQL request as JSON, with Content-Type: application/json"
    assert_refused(
        response, 400, "BAD_REQUEST", f"Unsupported content type 'text/plain': {expected}"
    )
    bare = healthai_http.post("/graphql", content=b"{ operations { amount } }")
    assert_refused(bare, 400, "BAD_REQUEST", f"No content type: {expected}")


def test_a_body_without_a_query_is_a_400(healthai_http: TestClient) -> None:
    response = healthai_http.post("/graphql", json={"variables": {}})
    assert_refused(response, 400, "BAD_REQUEST", "No GraphQL query found in the request")


def test_other_methods_are_a_405(healthai_http: TestClient) -> None:
    response = healthai_http.put("/graphql", json={"query": "{ operations { amount } }"})
    assert_refused(
        response, 405, "METHOD_NOT_ALLOWED", "GraphQL only supports GET and POST requests."
    )


def test_queries_work_over_get(healthai_http: TestClient) -> None:
    response = healthai_http.get(
        "/graphql",
        params={
            "query": "query($o: ID!) { balance(ownerId: $o) { balance } }",
            "variables": '{"o": "nobody-over-get"}',
        },
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"balance": {"balance": 0}}}


def test_mutations_are_refused_over_get_and_write_nothing(
    healthai_http: TestClient, healthai: GraphQLClient, owner: str
) -> None:
    mutation = (
        f'mutation {{ createEntry(input: {{ownerId: "{owner}", operation: CREDIT_ADD, '
        'nonce: "n"}) { __typename } }'
    )
    response = healthai_http.get("/graphql", params={"query": mutation})
    assert_refused(response, 400, "BAD_REQUEST", "mutations are not allowed when using GET")
    assert healthai.balance(owner) == 0


def test_a_browser_gets_graphiql(healthai_http: TestClient) -> None:
    response = healthai_http.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


def test_the_root_points_to_graphql_for_programs_and_for_browsers(
    healthai_http: TestClient,
) -> None:
    healthai_http.headers.clear()  # no token needed, as for the GraphiQL page
    answer = healthai_http.get("/", headers={"accept": "application/json"})
    assert answer.status_code == 200
    assert answer.json() == {
        "app": "healthai",
        "graphql": "/graphql",
        "message": "healthai's GraphQL API is at /graphql (GraphiQL in a browser)",
        "health": "/healthz",
        "ready": "/readyz",
        "metrics": "/metrics",
    }
    assert healthai_http.get("/").json() == answer.json()  # no Accept: a program too

    page = healthai_http.get("/", headers={"accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<a href="/graphql"><code>/graphql</code></a>' in page.text
    assert "open it in this browser for GraphiQL" in page.text
    followed = healthai_http.get("/graphql", headers={"accept": "text/html"})
    assert followed.status_code == 200 and "graphiql" in followed.text.lower()


def test_a_syntax_error_is_reported_with_its_location(healthai: GraphQLClient) -> None:
    body = healthai.execute("{ operations { amount }")
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"].startswith("Syntax Error")
    assert error["locations"] == [{"line": 1, "column": 24}]
    assert error["extensions"] == {"code": "GRAPHQL_PARSE_FAILED"}


def test_an_unknown_field_is_a_validation_error(healthai: GraphQLClient) -> None:
    body = healthai.execute('{ balance(ownerId: "a") { credits } }')
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"] == "Cannot query field 'credits' on type 'Balance'."
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}


def test_a_variable_that_does_not_fit_its_type_is_bad_user_input(healthai: GraphQLClient) -> None:
    body = healthai.execute("query($o: ID!) { balance(ownerId: $o) { balance } }", o=[1, 2])
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"].startswith("Variable '$o'")
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}


@pytest.fixture
def unmigrated_app(new_database: Callable[..., str]) -> TestClient:
    """healthai on a database that exists but was never migrated: every query fails in a
    way no client input could cause."""
    url = new_database("unmigrated", migrated=False)
    settings = Settings(app_database_urls={"healthai": url}, jwt_secret=TEST_SECRET)
    return TestClient(
        create_app("healthai", HealthAIOperation, settings), headers=service_headers("healthai")
    )


def test_an_unexpected_error_is_masked_for_the_client_and_logged_with_its_cause(
    unmigrated_app: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with unmigrated_app as http, caplog.at_level(logging.ERROR, logger="graphql_ledger"):
        response = http.post(
            "/graphql",
            json={
                "query": 'query Lookup { balance(ownerId: "a") { balance } }',
                "operationName": "Lookup",
            },
        )

    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["errors"] == [
        {
            "message": "Unexpected error.",
            "locations": [{"line": 1, "column": 16}],
            "path": ["balance"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR"},
        }
    ]
    assert "balances" not in response.text and "relation" not in response.text
    [record] = [r for r in caplog.records if r.name == "graphql_ledger.schema"]
    assert "Lookup" in record.getMessage() and "balance" in record.getMessage()
    assert record.exc_info is not None
    assert 'relation "balances" does not exist' in str(record.exc_info[1])
