"""Reading balances: single, batched and aliased, all through one DataLoader query per
request; the operations list; input rules on query arguments."""

import pytest

from tests.support import GraphQLClient


def test_an_owner_without_entries_has_zero_and_no_last_updated(
    healthai: GraphQLClient, owner: str
) -> None:
    data = healthai.data(
        "query($o: ID!) { balance(ownerId: $o) { ownerId balance lastUpdated } }", o=owner
    )
    assert data == {"balance": {"ownerId": owner, "balance": 0, "lastUpdated": None}}


def test_last_updated_is_the_created_on_of_the_newest_entry(
    healthai: GraphQLClient, owner: str
) -> None:
    healthai.create_entry(owner, "CREDIT_ADD", "a")
    newest = healthai.create_entry(owner, "CREDIT_SPEND", "b")
    data = healthai.data("query($o: ID!) { balance(ownerId: $o) { balance lastUpdated } }", o=owner)
    assert data["balance"] == {"balance": 9, "lastUpdated": newest["createdOn"]}


def test_balances_answer_in_the_order_asked_repeats_included(
    healthai: GraphQLClient, owner: str
) -> None:
    rich, poor, empty = f"{owner}-rich", f"{owner}-poor", f"{owner}-empty"
    healthai.create_entry(rich, "CREDIT_ADD", "n")
    healthai.create_entry(poor, "SIGNUP_CREDIT", "n")
    data = healthai.data(
        "query($ids: [ID!]!) { balances(ownerIds: $ids) { ownerId balance } }",
        ids=[poor, empty, rich, poor],
    )
    assert data["balances"] == [
        {"ownerId": poor, "balance": 3},
        {"ownerId": empty, "balance": 0},
        {"ownerId": rich, "balance": 10},
        {"ownerId": poor, "balance": 3},
    ]


def test_balances_of_no_ids_is_an_empty_list(healthai: GraphQLClient) -> None:
    assert healthai.data("{ balances(ownerIds: []) { balance } }") == {"balances": []}


def test_fifty_aliased_balance_fields_cost_one_query(
    healthai: GraphQLClient, owner: str, statements: list[str]
) -> None:
    owners = [f"{owner}-{n}" for n in range(50)]
    for n in (0, 17, 49):
        healthai.create_entry(owners[n], "CREDIT_ADD", "n")
    statements.clear()
    fields = " ".join(f'b{n}: balance(ownerId: "{o}") {{ balance }}' for n, o in enumerate(owners))

    data = healthai.data(f"{{ {fields} }}")

    assert len(statements) == 1
    assert "FROM balances" in statements[0]
    assert [data[f"b{n}"]["balance"] for n in range(50)] == [
        10 if n in (0, 17, 49) else 0 for n in range(50)
    ]


def test_balances_of_fifty_ids_cost_one_query(
    healthai: GraphQLClient, owner: str, statements: list[str]
) -> None:
    owners = [f"{owner}-{n}" for n in range(50)]
    healthai.create_entry(owners[3], "SIGNUP_CREDIT", "n")
    statements.clear()

    data = healthai.data("query($ids: [ID!]!) { balances(ownerIds: $ids) { balance } }", ids=owners)

    assert len(statements) == 1
    assert [b["balance"] for b in data["balances"]] == [3 if n == 3 else 0 for n in range(50)]


def test_balances_and_aliased_balance_fields_together_still_cost_one_query(
    healthai: GraphQLClient, owner: str, statements: list[str]
) -> None:
    data = healthai.data(
        "query($a: ID!, $ids: [ID!]!) {"
        " one: balance(ownerId: $a) { balance } many: balances(ownerIds: $ids) { ownerId } }",
        a=owner,
        ids=[f"{owner}-{n}" for n in range(10)],
    )
    assert len(statements) == 1
    assert data["one"] == {"balance": 0} and len(data["many"]) == 10


def test_more_than_a_hundred_ids_is_bad_user_input(
    healthai: GraphQLClient, statements: list[str]
) -> None:
    body = healthai.execute(
        "query($ids: [ID!]!) { balances(ownerIds: $ids) { balance } }",
        ids=[f"o{n}" for n in range(101)],
    )
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert "101" in error["message"] and "100" in error["message"]
    assert statements == []


@pytest.mark.parametrize("bad", ["", "x" * 256, "nul\x00", "tab\t"])
def test_an_invalid_owner_id_argument_is_bad_user_input(
    healthai: GraphQLClient, bad: str, statements: list[str]
) -> None:
    for query in (
        "query($o: ID!) { balance(ownerId: $o) { balance } }",
        'query($o: ID!) { balances(ownerIds: ["fine", $o]) { balance } }',
    ):
        body = healthai.execute(query, o=bad)
        assert body["data"] is None
        [error] = body["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT"}
        assert "ownerId" in error["message"]
    assert statements == []


def test_operations_list_every_operation_of_the_app_with_its_amount(
    healthai: GraphQLClient, travelai: GraphQLClient
) -> None:
    query = "{ operations { operation amount } }"
    assert healthai.data(query)["operations"] == [
        {"operation": "DAILY_REWARD", "amount": 1},
        {"operation": "SIGNUP_CREDIT", "amount": 3},
        {"operation": "CREDIT_SPEND", "amount": -1},
        {"operation": "CREDIT_ADD", "amount": 10},
        {"operation": "CONTENT_CREATION", "amount": -5},
        {"operation": "CONTENT_ACCESS", "amount": 0},
    ]
    assert [o["operation"] for o in travelai.data(query)["operations"]][4:] == [
        "BOOKING_REWARD",
        "LOYALTY_BONUS",
    ]


def test_apps_keep_separate_ledgers(
    healthai: GraphQLClient, travelai: GraphQLClient, owner: str
) -> None:
    healthai.create_entry(owner, "CREDIT_ADD", "n")
    assert (healthai.balance(owner), travelai.balance(owner)) == (10, 0)
