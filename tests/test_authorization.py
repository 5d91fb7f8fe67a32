"""Authorization through HTTP: an end user reads and writes only its own owner, and only the
operations users may invoke; a backend service may do anything for any owner."""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from graphql_ledger import LedgerOperation, Settings, create_app, credits, shared
from tests.support import TEST_SECRET, GraphQLClient, service_headers, sql, user_headers


@pytest.fixture
def apps(healthai_app: TestClient, travelai_app: TestClient) -> dict[str, TestClient]:
    return {"healthai": healthai_app, "travelai": travelai_app}


def service(apps: dict[str, TestClient], app: str) -> GraphQLClient:
    """One app's in-process client with a service's token, sent on each request only."""
    return GraphQLClient(apps[app], headers=service_headers(app))


def user(apps: dict[str, TestClient], app: str, owner_id: str) -> GraphQLClient:
    return GraphQLClient(apps[app], headers=user_headers(app, owner_id))


def stored(url: str, owner_id: str) -> tuple[list[tuple[str, int, int]], list[int]]:
    """The owner's entries (operation, amount, balance_after) and its balance row, if any."""
    entries = sql(
        url,
        "SELECT operation, amount, balance_after FROM entries WHERE owner_id = :o ORDER BY id",
        o=owner_id,
    )
    balance = sql(url, "SELECT balance FROM balances WHERE owner_id = :o", o=owner_id)
    return [tuple(row) for row in entries], [row[0] for row in balance]


ENTRY_NODES = "edges { node { ownerId operation amount balanceAfter } }"

# Every read of one owner, by name; each takes $ownerId.
READS = {
    "balance": "query($ownerId: ID!) { balance(ownerId: $ownerId)"
    " { ownerId balance lastUpdated } }",
    "balanceAt": 'query($ownerId: ID!) { balance(ownerId: $ownerId, at: "2999-01-01T00:00:00Z")'
    " { ownerId balance lastUpdated } }",
    "balances": "query($ownerId: ID!) { balances(ownerIds: [$ownerId]) { ownerId balance } }",
    "entries": f"query($ownerId: ID!) {{ entries(ownerId: $ownerId) {{ {ENTRY_NODES} }} }}",
    "owner": "query($ownerId: ID!) { owner(id: $ownerId) { id balance lastUpdated"
    f" entries {{ {ENTRY_NODES} }} }} }}",
}


@pytest.fixture
def other(apps: dict[str, TestClient], owner: str) -> str:
    """Another owner of healthai, with two entries and a balance of 13."""
    other_id = f"{owner}-other"
    service(apps, "healthai").create_entry(other_id, "CREDIT_ADD", "purchase")
    service(apps, "healthai").create_entry(other_id, "SIGNUP_CREDIT", "signup")
    return other_id


def assert_forbidden(body: dict[str, Any], *hidden: str) -> None:
    """A FORBIDDEN error with no data, whose message names none of `hidden`."""
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "FORBIDDEN"}
    for secret in hidden:
        assert secret not in error["message"]


def test_an_end_user_reads_its_own_balance_balances_entries_and_owner(
    apps: dict[str, TestClient], owner: str
) -> None:
    service(apps, "healthai").create_entry(owner, "CREDIT_ADD", "purchase")
    entry = user(apps, "healthai", owner).create_entry(owner, "DAILY_REWARD", "daily")
    me = user(apps, "healthai", owner)
    newest = {"ownerId": owner, "operation": "DAILY_REWARD", "amount": 1, "balanceAfter": 11}
    oldest = {"ownerId": owner, "operation": "CREDIT_ADD", "amount": 10, "balanceAfter": 10}
    edges = [{"node": newest}, {"node": oldest}]
    balance = {"ownerId": owner, "balance": 11, "lastUpdated": entry["createdOn"]}

    answers = {name: me.data(query, ownerId=owner) for name, query in READS.items()}

    assert answers == {
        "balance": {"balance": balance},
        "balanceAt": {"balance": balance},
        "balances": {"balances": [{"ownerId": owner, "balance": 11}]},
        "entries": {"entries": {"edges": edges}},
        "owner": {
            "owner": {
                "id": owner,
                "balance": 11,
                "lastUpdated": entry["createdOn"],
                "entries": {"edges": edges},
            }
        },
    }


@pytest.mark.parametrize("read", READS)
def test_an_end_user_reading_another_owner_is_forbidden_and_learns_nothing_of_it(
    apps: dict[str, TestClient], owner: str, other: str, read: str
) -> None:
    body = user(apps, "healthai", owner).execute(READS[read], ownerId=other)

    assert_forbidden(body, other, "13")
    assert other not in str(body)
    assert body["errors"][0]["path"] == [read.removesuffix("At")]


@pytest.mark.parametrize("order", ["mine first", "theirs first"])
def test_balances_mixing_the_users_own_owner_and_another_are_forbidden_as_a_whole(
    apps: dict[str, TestClient], owner: str, other: str, order: str
) -> None:
    service(apps, "healthai").create_entry(owner, "CREDIT_ADD", "purchase")
    ids = [owner, other] if order == "mine first" else [other, owner]

    body = user(apps, "healthai", owner).execute(
        "query($ids: [ID!]!) { balances(ownerIds: $ids) { ownerId balance } }", ids=ids
    )

    assert_forbidden(body, other, "13", "10")
    assert other not in str(body)


@pytest.mark.parametrize(
    ("operation", "nonce"),
    [
        ("DAILY_REWARD", "forged"),
        ("CONTENT_ACCESS", "forged"),
        ("CREDIT_ADD", "forged"),
        ("CREDIT_ADD", "purchase"),  # a replay would hand over the other owner's entry
        ("DAILY_REWARD", "signup"),  # a NonceConflict would carry the other owner's entry
    ],
)
def test_an_end_user_creating_an_entry_for_another_owner_is_not_allowed_and_writes_nothing(
    apps: dict[str, TestClient],
    app_urls: dict[str, str],
    owner: str,
    other: str,
    operation: str,
    nonce: str,
) -> None:
    before = stored(app_urls["healthai"], other)

    refused = user(apps, "healthai", owner).create_entry(other, operation, nonce)

    assert refused["__typename"] == "OperationNotAllowed"
    assert refused["code"] == "OPERATION_NOT_ALLOWED"
    assert other not in refused["message"] and "13" not in refused["message"]
    assert before == ([("CREDIT_ADD", 10, 10), ("SIGNUP_CREDIT", 3, 13)], [13])
    assert stored(app_urls["healthai"], other) == before
    assert stored(app_urls["healthai"], owner) == ([], [])


@pytest.mark.parametrize(
    ("app", "operation"),
    [
        ("healthai", "CREDIT_ADD"),
        ("healthai", "SIGNUP_CREDIT"),
        ("travelai", "CREDIT_ADD"),
        ("travelai", "SIGNUP_CREDIT"),
        ("travelai", "BOOKING_REWARD"),
        ("travelai", "LOYALTY_BONUS"),
    ],
)
def test_an_end_user_may_not_create_a_service_only_operation_even_for_itself(
    apps: dict[str, TestClient], app_urls: dict[str, str], owner: str, app: str, operation: str
) -> None:
    refused = user(apps, app, owner).create_entry(owner, operation, "n")

    assert refused["__typename"] == "OperationNotAllowed"
    assert refused["code"] == "OPERATION_NOT_ALLOWED"
    assert operation in refused["message"]
    assert stored(app_urls[app], owner) == ([], [])
    # The refusal used up nothing: a service may create it with the same nonce.
    created = service(apps, app).create_entry(owner, operation, "n")
    assert (created["__typename"], created.get("ownerId"), created.get("operation")) == (
        "LedgerEntry",
        owner,
        operation,
    )


def test_an_end_user_may_create_rewards_spends_and_non_positive_app_operations_for_itself(
    apps: dict[str, TestClient], app_urls: dict[str, str], owner: str
) -> None:
    service(apps, "healthai").create_entry(owner, "CREDIT_ADD", "purchase")
    me = user(apps, "healthai", owner)
    steps = [
        ("DAILY_REWARD", 1, 11),
        ("CREDIT_SPEND", -1, 10),
        ("CONTENT_CREATION", -5, 5),
        ("CONTENT_ACCESS", 0, 5),
    ]

    for operation, amount, balance_after in steps:
        entry = me.create_entry(owner, operation, f"user-{operation}")
        assert (entry["__typename"], entry.get("ownerId"), entry.get("operation")) == (
            "LedgerEntry",
            owner,
            operation,
        )
        assert (entry["amount"], entry["balanceAfter"]) == (amount, balance_after)

    assert stored(app_urls["healthai"], owner) == ([("CREDIT_ADD", 10, 10), *steps], [5])


def test_an_end_user_of_travelai_may_claim_its_daily_reward_and_spend(
    apps: dict[str, TestClient], app_urls: dict[str, str], owner: str
) -> None:
    me = user(apps, "travelai", owner)

    assert me.create_entry(owner, "DAILY_REWARD", "daily")["balanceAfter"] == 1
    assert me.create_entry(owner, "CREDIT_SPEND", "spend")["balanceAfter"] == 0
    assert stored(app_urls["travelai"], owner) == (
        [("DAILY_REWARD", 1, 1), ("CREDIT_SPEND", -1, 0)],
        [0],
    )


@pytest.mark.parametrize("app", ["healthai", "travelai"])
def test_a_service_creates_every_operation_for_any_owner_and_reads_it(
    apps: dict[str, TestClient], app_urls: dict[str, str], owner: str, app: str
) -> None:
    backend = service(apps, app)
    operations = backend.data("{ operations { operation amount } }")["operations"]
    # Credits first, so that the spends are covered.
    ordered = sorted(operations, key=lambda info: -info["amount"])
    balance = 0
    for info in ordered:
        balance += info["amount"]
        entry = backend.create_entry(owner, info["operation"], f"svc-{info['operation']}")
        assert (entry["__typename"], entry.get("ownerId"), entry.get("operation")) == (
            "LedgerEntry",
            owner,
            info["operation"],
        )
        assert entry["balanceAfter"] == balance

    answers = {name: backend.data(query, ownerId=owner) for name, query in READS.items()}

    assert answers["balance"]["balance"]["balance"] == balance
    assert answers["balanceAt"]["balance"]["balance"] == balance
    assert answers["balances"]["balances"] == [{"ownerId": owner, "balance": balance}]
    nodes = [edge["node"]["operation"] for edge in answers["entries"]["entries"]["edges"]]
    assert nodes == [info["operation"] for info in reversed(ordered)]
    assert answers["owner"]["owner"]["entries"] == answers["entries"]["entries"]
    assert answers["owner"]["owner"]["balance"] == balance
    entries, stored_balance = stored(app_urls[app], owner)
    assert [row[0] for row in entries] == [info["operation"] for info in ordered]
    assert stored_balance == [balance] == [sum(row[1] for row in entries)]


class ZooAIOperation(LedgerOperation):
    DAILY_REWARD = shared()
    SIGNUP_CREDIT = shared()
    CREDIT_SPEND = shared()
    CREDIT_ADD = shared()
    FEEDING_BONUS = credits(4, user_may_invoke=True)
    ZOO_PASS = credits(7)


@dataclass(frozen=True)
class ZooAI:
    http: TestClient
    database_url: str


@pytest.fixture(scope="module")
def zooai(new_database: Callable[..., str]) -> Iterator[ZooAI]:
    """An app of the test's own, on a fresh database, served in-process."""
    url = new_database("zooai", operations=ZooAIOperation)
    settings = Settings(app_database_urls={"zooai": url}, jwt_secret=TEST_SECRET)
    with TestClient(create_app("zooai", ZooAIOperation, settings)) as http:
        yield ZooAI(http, url)


@pytest.mark.slow
def test_an_app_may_let_end_users_invoke_one_of_its_positive_operations(zooai: ZooAI) -> None:
    owner = f"visitor-{uuid.uuid4()}"
    me = GraphQLClient(zooai.http, headers=user_headers("zooai", owner))

    bonus = me.create_entry(owner, "FEEDING_BONUS", "bonus")
    refused = me.create_entry(owner, "ZOO_PASS", "pass")

    assert (bonus["__typename"], bonus.get("amount"), bonus.get("balanceAfter")) == (
        "LedgerEntry",
        4,
        4,
    )
    assert (refused["__typename"], refused["code"]) == (
        "OperationNotAllowed",
        "OPERATION_NOT_ALLOWED",
    )
    assert "ZOO_PASS" in refused["message"]
    assert stored(zooai.database_url, owner) == ([("FEEDING_BONUS", 4, 4)], [4])
    # What a user may not create, a service may.
    granted = GraphQLClient(zooai.http, headers=service_headers("zooai")).create_entry(
        owner, "ZOO_PASS", "pass"
    )
    assert (granted["__typename"], granted["balanceAfter"]) == ("LedgerEntry", 11)
