"""createEntry: appending entries, replays, nonce conflicts, overdrafts and input rules,
driven through the ASGI app on a real PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.support import GraphQLClient, sql


def entries_of(url: str, owner_id: str) -> list[tuple[str, int, int, str]]:
    rows = sql(
        url,
        "SELECT operation, amount, balance_after, nonce FROM entries"
        " WHERE owner_id = :owner ORDER BY id",
        owner=owner_id,
    )
    return [tuple(row) for row in rows]


def test_credit_appends_an_entry_and_moves_the_balance(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    before = datetime.now(UTC)
    entry = healthai.create_entry(owner, "CREDIT_ADD", "purchase-1")

    assert entry["__typename"] == "LedgerEntry"
    assert entry["ownerId"] == owner
    assert entry["operation"] == "CREDIT_ADD"
    assert entry["amount"] == 10
    assert entry["balanceAfter"] == 10
    assert entry["nonce"] == "purchase-1"
    created_on = datetime.fromisoformat(entry["createdOn"])
    assert created_on.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=5) < created_on < before + timedelta(seconds=5)
    assert healthai.balance(owner) == 10
    assert entries_of(app_urls["healthai"], owner) == [("CREDIT_ADD", 10, 10, "purchase-1")]


def test_each_entry_records_the_balance_right_after_it(healthai: GraphQLClient, owner: str) -> None:
    steps = [("SIGNUP_CREDIT", 3), ("DAILY_REWARD", 4), ("CREDIT_SPEND", 3), ("CREDIT_ADD", 13)]
    for number, (operation, expected) in enumerate(steps):
        assert healthai.create_entry(owner, operation, f"n{number}")["balanceAfter"] == expected
    assert healthai.balance(owner) == 13


def test_replay_returns_the_original_entry(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    first = healthai.create_entry(owner, "CREDIT_ADD", "nonce-1")
    again = healthai.create_entry(owner, "CREDIT_ADD", "nonce-1")

    assert again == first
    assert healthai.balance(owner) == 10
    assert len(entries_of(app_urls["healthai"], owner)) == 1


def test_replay_of_a_spend_after_the_balance_ran_out_still_returns_the_entry(
    healthai: GraphQLClient, owner: str
) -> None:
    healthai.create_entry(owner, "SIGNUP_CREDIT", "signup")
    spend = healthai.create_entry(owner, "CREDIT_SPEND", "spend-1")
    healthai.create_entry(owner, "CREDIT_SPEND", "spend-2")
    healthai.create_entry(owner, "CREDIT_SPEND", "spend-3")
    assert healthai.balance(owner) == 0

    assert healthai.create_entry(owner, "CREDIT_SPEND", "spend-1") == spend


def test_same_nonce_with_another_operation_is_a_nonce_conflict_carrying_the_existing_entry(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    original = healthai.create_entry(owner, "CREDIT_ADD", "shared-nonce")
    conflict = healthai.create_entry(owner, "CONTENT_CREATION", "shared-nonce")

    assert conflict["__typename"] == "NonceConflict"
    assert conflict["code"] == "NONCE_CONFLICT"
    assert "CREDIT_ADD" in conflict["message"]
    assert conflict["existing"] == {k: v for k, v in original.items() if k != "__typename"}
    assert healthai.balance(owner) == 10
    assert len(entries_of(app_urls["healthai"], owner)) == 1


def test_same_nonce_for_another_owner_is_another_entry(healthai: GraphQLClient, owner: str) -> None:
    other = f"{owner}-other"
    mine = healthai.create_entry(owner, "CREDIT_ADD", "n")
    theirs = healthai.create_entry(other, "CREDIT_ADD", "n")

    assert theirs["__typename"] == "LedgerEntry"
    assert theirs["id"] != mine["id"]
    assert (healthai.balance(owner), healthai.balance(other)) == (10, 10)


def test_overdraft_is_refused_and_writes_nothing(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    healthai.create_entry(owner, "SIGNUP_CREDIT", "signup")
    refused = healthai.create_entry(owner, "CONTENT_CREATION", "too-much")

    assert refused["__typename"] == "InsufficientCredits"
    assert refused["code"] == "INSUFFICIENT_CREDITS"
    assert (refused["balance"], refused["required"]) == (3, 5)
    assert "5" in refused["message"] and "3" in refused["message"]
    assert healthai.balance(owner) == 3
    assert entries_of(app_urls["healthai"], owner) == [("SIGNUP_CREDIT", 3, 3, "signup")]


def test_a_refused_nonce_stays_free_for_a_later_write(healthai: GraphQLClient, owner: str) -> None:
    assert healthai.create_entry(owner, "CREDIT_SPEND", "n")["__typename"] == "InsufficientCredits"
    healthai.create_entry(owner, "CREDIT_ADD", "topup")

    assert healthai.create_entry(owner, "CREDIT_SPEND", "n")["balanceAfter"] == 9


def test_overdraft_of_an_owner_without_entries_reports_a_zero_balance(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    refused = healthai.create_entry(owner, "CREDIT_SPEND", "n")

    assert (refused["__typename"], refused["balance"], refused["required"]) == (
        "InsufficientCredits",
        0,
        1,
    )
    assert sql(app_urls["healthai"], "SELECT 1 FROM balances WHERE owner_id = :o", o=owner) == []


def test_spending_down_to_exactly_zero_succeeds(healthai: GraphQLClient, owner: str) -> None:
    healthai.create_entry(owner, "CREDIT_ADD", "add")
    assert healthai.create_entry(owner, "CONTENT_CREATION", "a")["balanceAfter"] == 5
    assert healthai.create_entry(owner, "CONTENT_CREATION", "b")["balanceAfter"] == 0
    assert healthai.create_entry(owner, "CONTENT_CREATION", "c")["__typename"] == (
        "InsufficientCredits"
    )


def test_amount_zero_operation_succeeds_on_an_empty_balance_and_is_recorded(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    entry = healthai.create_entry(owner, "CONTENT_ACCESS", "view-1")

    assert (entry["__typename"], entry["amount"], entry["balanceAfter"]) == ("LedgerEntry", 0, 0)
    balance = healthai.data(
        "query($o: ID!) { balance(ownerId: $o) { balance lastUpdated } }", o=owner
    )["balance"]
    assert balance == {"balance": 0, "lastUpdated": entry["createdOn"]}
    assert entries_of(app_urls["healthai"], owner) == [("CONTENT_ACCESS", 0, 0, "view-1")]


def test_app_operations_apply_their_own_amounts(travelai: GraphQLClient, owner: str) -> None:
    assert travelai.create_entry(owner, "BOOKING_REWARD", "b")["amount"] == 5
    assert travelai.create_entry(owner, "LOYALTY_BONUS", "l")["amount"] == 2
    assert travelai.balance(owner) == 7


BAD_IDENTIFIERS = {
    "empty": "",
    "256 characters": "x" * 256,
    "NUL": "a\x00b",
    "newline": "a\nb",
    "DEL": "a\x7fb",
    "C1 control": "a\x85b",
    "RTL mark": "a\u200fb",
    "zero-width joiner": "a\u200db",
}


@pytest.mark.parametrize("field", ["ownerId", "nonce"])
@pytest.mark.parametrize("bad", BAD_IDENTIFIERS.values(), ids=BAD_IDENTIFIERS.keys())
def test_invalid_owner_id_or_nonce_is_invalid_input_and_writes_nothing(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str], field: str, bad: str
) -> None:
    unique_nonce = f"nonce-of-{owner}"
    owner_id, nonce = (bad, unique_nonce) if field == "ownerId" else (owner, bad)
    refused = healthai.create_entry(owner_id, "CREDIT_ADD", nonce)

    assert refused["__typename"] == "InvalidInput"
    assert (refused["code"], refused["field"]) == ("INVALID_INPUT", field)
    assert field in refused["message"]
    rows = sql(
        app_urls["healthai"],
        "SELECT count(*) FROM entries WHERE owner_id = :owner OR nonce = :nonce",
        owner=owner,
        nonce=unique_nonce,
    )
    assert rows[0][0] == 0


def test_a_lone_surrogate_is_refused_and_writes_nothing(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    # JSON can spell an unpaired surrogate, which is no character at all (PostgreSQL could
    # not store it as UTF-8); the body is refused as invalid JSON before any GraphQL runs.
    body = (
        '{"query": "mutation($i: CreateEntryInput!) { createEntry(input: $i) '
        '{ ... on InvalidInput { field } } }", "variables": {"i": {"ownerId": "'
        + owner
        + '", "operation": "CREDIT_ADD", "nonce": "a\\ud800b"}}}'
    )
    response = healthai.http.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "message": "Unable to parse request body as JSON",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
    }
    assert entries_of(app_urls["healthai"], owner) == []


def test_limits_are_inclusive_and_four_byte_characters_count_once(
    healthai: GraphQLClient,
) -> None:
    owner_id = "\U0001f600" * 255  # 255 characters, 1,020 bytes of UTF-8
    nonce = "n" * 255
    entry = healthai.create_entry(owner_id, "CREDIT_ADD", nonce)

    assert (entry["ownerId"], entry["nonce"]) == (owner_id, nonce)
    assert healthai.balance(owner_id) == 10


def test_unknown_operation_is_a_validation_error_and_writes_nothing(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    body = healthai.create_entry_answer(owner, "BOOKING_REWARD", "n")

    assert body.get("data") is None
    assert len(body["errors"]) == 1
    assert "BOOKING_REWARD" in body["errors"][0]["message"]
    assert "HealthAIOperation" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT"}  # a variable's value

    literal = healthai.execute(
        f'mutation {{ createEntry(input: {{ownerId: "{owner}", operation: BOOKING_REWARD,'
        ' nonce: "n"}) { __typename } }'
    )
    assert literal.get("data") is None
    assert "BOOKING_REWARD" in literal["errors"][0]["message"]
    assert literal["errors"][0]["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert entries_of(app_urls["healthai"], owner) == []


def test_stored_balance_always_equals_the_sum_of_entries_and_the_newest_balance_after(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    for number, operation in enumerate(
        ["CREDIT_ADD", "CONTENT_CREATION", "CONTENT_CREATION", "CREDIT_SPEND", "DAILY_REWARD"]
    ):
        healthai.create_entry(owner, operation, f"n{number}")

    [(stored, total, newest)] = sql(
        app_urls["healthai"],
        """
        SELECT b.balance,
               (SELECT sum(amount) FROM entries WHERE owner_id = :o),
               (SELECT balance_after FROM entries WHERE owner_id = :o ORDER BY id DESC LIMIT 1)
          FROM balances b WHERE b.owner_id = :o
        """,
        o=owner,
    )
    assert stored == total == newest == 1
