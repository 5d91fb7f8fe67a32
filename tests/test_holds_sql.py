"""The edges of the holds' SQL: a refusal writes nothing even when it finds an expired hold
to settle, the write that goes ahead settles it, and an amount at the edge of the integer
range is refused in the user's terms rather than overflowing."""

import time
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from graphql_ledger import Settings, create_app
from healthai.operations import HealthAIOperation
from tests.support import CREATE_ENTRY, TEST_SECRET, GraphQLClient, service_headers, sql

RESERVE = """
mutation($input: ReserveCreditsInput!) {
  reserveCredits(input: $input) {
    __typename
    ... on Hold { id status expiresAt }
    ... on InvalidInput { field }
    ... on LedgerError { code }
  }
}
"""


def create(
    client: GraphQLClient, owner: str, operation: str, nonce: str, quantity: int = 1
) -> dict[str, Any]:
    input_ = {"ownerId": owner, "operation": operation, "nonce": nonce, "quantity": quantity}
    result: dict[str, Any] = client.data(CREATE_ENTRY, input=input_)["createEntry"]
    return result


def wait_until_passed(url: str, instant: str, timeout: float = 5.0) -> None:
    """Until the database's clock is past `instant` (a hold's expiresAt)."""
    deadline = time.monotonic() + timeout
    passed = "SELECT clock_timestamp() > CAST(CAST(:at AS text) AS timestamptz)"
    while not sql(url, passed, at=instant)[0][0]:
        assert time.monotonic() < deadline, f"the database clock never passed {instant}"
        time.sleep(0.05)


def stored(url: str, owner: str) -> tuple[object, ...]:
    [row] = sql(
        url,
        "SELECT b.balance, b.held, b.version, array_agg(h.status ORDER BY h.id)"
        " FROM balances b JOIN holds h USING (owner_id) WHERE b.owner_id = :owner"
        " GROUP BY b.balance, b.held, b.version",
        owner=owner,
    )
    return tuple(row)


def test_a_refusal_that_finds_an_expired_hold_writes_nothing_and_a_write_that_fits_settles_it(
    healthai: GraphQLClient, app_urls: dict[str, str], owner: str
) -> None:
    url = app_urls["healthai"]
    assert create(healthai, owner, "CREDIT_ADD", "purchase")["balanceAfter"] == 10
    hold = healthai.data(
        RESERVE,
        input={
            "ownerId": owner,
            "operation": "CREDIT_SPEND",
            "nonce": "h",
            "quantity": 3,
            "expiresIn": 1,
        },
    )["reserveCredits"]
    assert hold["status"] == "OPEN"
    wait_until_passed(url, hold["expiresAt"])
    before = stored(url, owner)
    assert before[:2] == (10, 3) and before[3] == ["open"]  # expired, not settled yet

    refused = create(healthai, owner, "CONTENT_CREATION", "big", quantity=3)
    assert (refused["__typename"], refused["balance"], refused["required"]) == (
        "InsufficientCredits",
        10,
        15,
    )
    assert stored(url, owner) == before  # not even the hold's settling was written

    spent = create(healthai, owner, "CREDIT_SPEND", "small", quantity=2)
    assert spent["balanceAfter"] == 8
    balance, held, version, statuses = stored(url, owner)
    assert (balance, held, statuses) == (8, 0, ["expired"])
    assert version == before[2] + 1


def test_an_amount_past_the_integer_range_is_invalid_input_on_quantity(
    new_database: Callable[..., str], owner: str
) -> None:
    url = new_database("holds_range")
    # A rule of -4,096 a unit: 524,288 units make exactly -2**31, which no balance covers.
    sql(
        url,
        "SELECT record_operation_rules(ARRAY['CONTENT_CREATION'], ARRAY[-4096], ARRAY[NULL::text],"
        " ARRAY[NULL::interval])",
    )
    settings = Settings(app_database_urls={"healthai": url}, jwt_secret=TEST_SECRET)
    with TestClient(
        create_app("healthai", HealthAIOperation, settings), headers=service_headers("healthai")
    ) as http:
        client = GraphQLClient(http)
        spend = create(client, owner, "CONTENT_CREATION", "huge", quantity=524_288)
        reserve = client.data(
            RESERVE,
            input={
                "ownerId": owner,
                "operation": "CONTENT_CREATION",
                "nonce": "huge-hold",
                "quantity": 524_288,
            },
        )["reserveCredits"]
    assert (spend["__typename"], spend["field"]) == ("InvalidInput", "quantity")
    assert (reserve["__typename"], reserve["field"]) == ("InvalidInput", "quantity")
    assert sql(url, "SELECT count(*) FROM entries") == [(0,)]
    assert sql(url, "SELECT count(*) FROM holds") == [(0,)]
