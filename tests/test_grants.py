"""Expiring grants (contract section 5) through HTTP on a real PostgreSQL: spends take
credits soonest-expiring first, then those that never expire; lifetimes declared in code;
expiry at expiresAt (reads at once, an EXPIRY booked before the next write or by the
pass); refunds, holds and balances as of an instant across an expiry; refused inputs.

The apps here run their expiry pass once at start and then every 60 s (expiry_interval), on
a database of this module's own, so that what a test finds unbooked is unbooked because no
write came yet. Two tests run the pass every fraction of a second, to see it book expiries
by itself, from two servers at once."""

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from starlette.testclient import TestClient

from graphql_ledger import LedgerOperation, Settings, create_app, credits, shared
from graphql_ledger.storage import EmbeddedPostgres
from healthai.operations import HealthAIOperation
from tests.support import (
    LEDGER_ENTRY,
    PAGE_INFO,
    TEST_SECRET,
    GraphQLClient,
    Ledger,
    database_now,
    rows_of,
    service_headers,
    sql,
    user_headers,
    verify_books,
    wait_for_database_clock,
    with_user,
)

# -- documents --------------------------------------------------------------------------

ENTRY = (
    f"{LEDGER_ENTRY} expiresAt remaining"
    " expiryOf { id nonce operation amount } refundOf { id nonce }"
)
_ERRORS = (
    "... on LedgerError { code message } ... on InsufficientCredits { balance required }"
    " ... on InvalidInput { field }"
)
CREATE = (
    "mutation C($input: CreateEntryInput!) { createEntry(input: $input) {"
    f" __typename ... on LedgerEntry {{ {ENTRY} }} {_ERRORS} }} }}"
)
REFUND = (
    "mutation R($input: RefundEntryInput!) { refundEntry(input: $input) {"
    f" __typename ... on LedgerEntry {{ {ENTRY} }} {_ERRORS} }} }}"
)
CAPTURE = (
    "mutation K($input: CaptureHoldInput!) { captureHold(input: $input) {"
    f" __typename ... on LedgerEntry {{ {ENTRY} }} ... on LedgerError {{ code message }} }} }}"
)
HISTORY = (
    "query H($ownerId: ID!) { entries(ownerId: $ownerId, first: 100)"
    f" {{ edges {{ node {{ {ENTRY} }} }} }} }}"
)
GRANTS = (
    "query G($id: ID!, $first: Int, $after: String) { owner(id: $id) {"
    " balance held available grants(first: $first, after: $after) {"
    f" edges {{ cursor node {{ id nonce amount remaining expiresAt kind }} }} {PAGE_INFO} }} }} }}"
)
BALANCE = (
    "query B($ownerId: ID!, $at: DateTime, $within: Int!) { balance(ownerId: $ownerId, at: $at)"
    " { balance held available expiringWithin(seconds: $within) } }"
)

SERVING_LOGIN = EmbeddedPostgres.serving_login

# How far ahead of the database clock a grant that a test lets expire expires.
SHORT = timedelta(seconds=1.5)


# -- apps -------------------------------------------------------------------------------


class GrantAIOperation(LedgerOperation):
    """An app whose promotional and signup credits last 30 days, a trial 36 hours and a
    daily reward one day."""

    DAILY_REWARD = shared(expires_after=timedelta(days=1))
    SIGNUP_CREDIT = shared(expires_after=timedelta(days=30))
    CREDIT_SPEND = shared()
    CREDIT_ADD = shared()
    PROMO_CREDIT = credits(5, expires_after=timedelta(days=30))
    TRIAL_CREDIT = credits(2, expires_after=timedelta(hours=36, milliseconds=250))


def serving(app: str, url: str, operations: type[LedgerOperation], interval: float) -> TestClient:
    settings = Settings(
        app_database_urls={app: with_user(url, SERVING_LOGIN)},
        jwt_secret=TEST_SECRET,
        expiry_interval=interval,
    )
    return TestClient(create_app(app, operations, settings))


@pytest.fixture(scope="module")
def url(new_database: Callable[..., str]) -> str:
    """healthai's database of this module: no other server's pass books anything in it."""
    return new_database("grants")


@pytest.fixture
def http(url: str) -> Iterator[TestClient]:
    """healthai whose expiry pass ran at start and waits 60 s before the next."""
    with serving("healthai", url, HealthAIOperation, 60) as client:
        yield client


@pytest.fixture
def ledger(http: TestClient) -> Ledger:
    return Ledger(GraphQLClient(http, headers=service_headers("healthai")))


@pytest.fixture(scope="module")
def grantai_url(new_database: Callable[..., str]) -> str:
    return new_database("grantai", operations=GrantAIOperation)


@pytest.fixture
def grantai(grantai_url: str) -> Iterator[Ledger]:
    with serving("grantai", grantai_url, GrantAIOperation, 60) as client:
        yield Ledger(GraphQLClient(client, headers=service_headers("grantai")))


# -- helpers ----------------------------------------------------------------------------


def verify_grantai(url: str) -> None:
    """`graphql-ledger verify` on grantai's database: the command knows only the installed
    apps, but what it checks is all in the database (the rules with their lifetimes
    included), so healthai's name with grantai's URL checks grantai's books."""
    verify_books("healthai", url)


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def now(url: str) -> datetime:
    return instant(database_now(url))


def ahead(url: str, delta: timedelta) -> str:
    """An expiresAt `delta` after the database's clock."""
    return (now(url) + delta).isoformat()


def create(
    ledger: Ledger,
    owner_id: str,
    operation: str,
    nonce: str,
    quantity: int = 1,
    expires_at: str | None = None,
) -> dict[str, Any]:
    input_: dict[str, Any] = {"ownerId": owner_id, "operation": operation, "nonce": nonce}
    input_["quantity"] = quantity
    if expires_at is not None:
        input_["expiresAt"] = expires_at
    return ledger.mutate(CREATE, "createEntry", **input_)


def written(result: dict[str, Any]) -> dict[str, Any]:
    assert result["__typename"] == "LedgerEntry", result
    return result


def grant(
    ledger: Ledger, owner_id: str, nonce: str, expires_at: str | None, quantity: int = 1
) -> dict[str, Any]:
    """A CREDIT_ADD of 10 x quantity credits, expiring at `expires_at` (None: never)."""
    return written(create(ledger, owner_id, "CREDIT_ADD", nonce, quantity, expires_at))


def spend(ledger: Ledger, owner_id: str, nonce: str, quantity: int) -> dict[str, Any]:
    return written(create(ledger, owner_id, "CREDIT_SPEND", nonce, quantity))


def refund(ledger: Ledger, entry_id: str, nonce: str) -> dict[str, Any]:
    result: dict[str, Any] = ledger.mutate(REFUND, "refundEntry", entryId=entry_id, nonce=nonce)
    return result


def capture(ledger: Ledger, hold_id: str, quantity: int) -> dict[str, Any]:
    result: dict[str, Any] = ledger.mutate(
        CAPTURE, "captureHold", holdId=hold_id, quantity=quantity
    )
    return result


def reserve(ledger: Ledger, owner_id: str, nonce: str, quantity: int, **options: Any) -> str:
    """A hold of CREDIT_SPEND x quantity that must be granted; its id."""
    hold = ledger.reserve(owner_id, "CREDIT_SPEND", nonce, quantity=quantity, **options)
    assert (hold["__typename"], hold["status"]) == ("Hold", "OPEN"), hold
    hold_id: str = hold["id"]
    return hold_id


def history(ledger: Ledger, owner_id: str) -> list[dict[str, Any]]:
    """The owner's entries, oldest first."""
    edges = ledger.client.data(HISTORY, ownerId=owner_id)["entries"]["edges"]
    return [edge["node"] for edge in reversed(edges)]


def lines(ledger: Ledger, owner_id: str) -> list[tuple[str, str, int, int]]:
    """(kind, nonce, amount, balanceAfter) of each entry, oldest first."""
    return [
        (e["kind"], e["nonce"], e["amount"], e["balanceAfter"]) for e in history(ledger, owner_id)
    ]


def remaining(ledger: Ledger, owner_id: str) -> dict[str, int | None]:
    """remaining of each of the owner's entries by nonce (OPERATION entries only: the others
    share their nonce with the entry they follow)."""
    return {
        e["nonce"]: e["remaining"] for e in history(ledger, owner_id) if e["kind"] == "OPERATION"
    }


def expiries(ledger: Ledger, owner_id: str) -> list[dict[str, Any]]:
    return [e for e in history(ledger, owner_id) if e["kind"] == "EXPIRY"]


def grants_page(
    ledger: Ledger, owner_id: str, first: int | None = None, after: str | None = None
) -> dict[str, Any]:
    variables: dict[str, Any] = {"id": owner_id}
    if first is not None:
        variables["first"] = first
    if after is not None:
        variables["after"] = after
    owner: dict[str, Any] = ledger.client.data(GRANTS, **variables)["owner"]
    page: dict[str, Any] = owner["grants"]
    return page


def grants(ledger: Ledger, owner_id: str) -> list[tuple[str, int]]:
    """(nonce, remaining) of the owner's grants in the order spends take them."""
    page = grants_page(ledger, owner_id, first=100)
    return [(edge["node"]["nonce"], edge["node"]["remaining"]) for edge in page["edges"]]


def books(
    ledger: Ledger, owner_id: str, within: int = 0, at: str | None = None
) -> tuple[int, int, int, int]:
    """(balance, held, available, expiringWithin(within)) now, or as of `at`."""
    variables: dict[str, Any] = {"ownerId": owner_id, "within": within}
    if at is not None:
        variables["at"] = at
    value = ledger.client.data(BALANCE, **variables)["balance"]
    return value["balance"], value["held"], value["available"], value["expiringWithin"]


def figures(ledger: Ledger, owner_id: str) -> tuple[int, int, int]:
    """(balance, held, available) as Owner reads them."""
    owner = ledger.client.data(GRANTS, id=owner_id)["owner"]
    return owner["balance"], owner["held"], owner["available"]


def assert_invalid(result: dict[str, Any], field: str) -> None:
    assert (result["__typename"], result.get("code"), result.get("field")) == (
        "InvalidInput",
        "INVALID_INPUT",
        field,
    ), result
    assert result["message"], result


def assert_expiry_of(entry: dict[str, Any], grant_entry: dict[str, Any], amount: int) -> None:
    """An EXPIRY entry that booked out `amount` credits of `grant_entry`."""
    assert entry["kind"] == "EXPIRY", entry
    assert (entry["operation"], entry["amount"], entry["nonce"]) == (
        grant_entry["operation"],
        amount,
        grant_entry["nonce"],
    ), entry
    assert entry["expiryOf"]["id"] == grant_entry["id"], entry
    assert (entry["remaining"], entry["expiresAt"], entry["refundOf"]) == (None, None, None)


def assert_chain(ledger: Ledger, owner_id: str) -> None:
    """Each entry's balanceAfter is the previous one's plus its amount."""
    balance = 0
    for entry in history(ledger, owner_id):
        balance += entry["amount"]
        assert entry["balanceAfter"] == balance, entry


def expire(url: str, *entries: dict[str, Any]) -> None:
    """Waits until the database clock has passed each entry's expiresAt."""
    for entry in entries:
        wait_for_database_clock(url, entry["expiresAt"], timeout=10)


# -- consumption order ------------------------------------------------------------------


def test_spends_take_soonest_expiring_grants_first_then_purchases_oldest_first(
    ledger: Ledger, owner: str, url: str
) -> None:
    bought = grant(ledger, owner, "bought", None)
    in_30 = grant(ledger, owner, "in-30-days", ahead(url, timedelta(days=30)))
    in_10 = grant(ledger, owner, "in-10-days", ahead(url, timedelta(days=10)))
    in_20 = grant(ledger, owner, "in-20-days", ahead(url, timedelta(days=20)))
    bought_later = grant(ledger, owner, "bought-later", None, quantity=2)
    assert bought_later["balanceAfter"] == 60
    assert [e["remaining"] for e in (bought, in_30, in_10, in_20, bought_later)] == [
        10,
        10,
        10,
        10,
        20,
    ]
    assert grants(ledger, owner) == [
        ("in-10-days", 10),
        ("in-20-days", 10),
        ("in-30-days", 10),
        ("bought", 10),
        ("bought-later", 20),
    ]
    days = 24 * 3600
    assert books(ledger, owner, within=15 * days) == (60, 0, 60, 10)

    # (quantity spent, then each grant's remaining: in-10, in-20, in-30, bought, bought-later)
    steps = [
        (7, [3, 10, 10, 10, 20]),
        (5, [0, 8, 10, 10, 20]),
        (12, [0, 0, 6, 10, 20]),
        (10, [0, 0, 0, 6, 20]),
        (8, [0, 0, 0, 0, 18]),
    ]
    order = ["in-10-days", "in-20-days", "in-30-days", "bought", "bought-later"]
    balance = 60
    for number, (quantity, expected) in enumerate(steps):
        entry = spend(ledger, owner, f"spend-{number}", quantity)
        balance -= quantity
        assert (entry["amount"], entry["balanceAfter"]) == (-quantity, balance)
        assert (entry["remaining"], entry["expiresAt"], entry["kind"]) == (None, None, "OPERATION")
        left = remaining(ledger, owner)
        assert [left[nonce] for nonce in order] == expected, number
        assert grants(ledger, owner) == [
            (nonce, count) for nonce, count in zip(order, expected, strict=True) if count
        ]
    assert remaining(ledger, owner) == {
        "bought": 0,
        "in-30-days": 0,
        "in-10-days": 0,
        "in-20-days": 0,
        "bought-later": 18,
        **{f"spend-{n}": None for n in range(5)},
    }
    assert grants(ledger, owner) == [("bought-later", 18)]
    assert books(ledger, owner, within=3650 * days) == (18, 0, 18, 0)
    assert not expiries(ledger, owner)
    verify_books("healthai", url)


def test_grants_are_paged_in_spending_order(ledger: Ledger, owner: str, url: str) -> None:
    bought = grant(ledger, owner, "bought", None)
    late = grant(ledger, owner, "late", ahead(url, timedelta(days=9)))
    early = grant(ledger, owner, "early", ahead(url, timedelta(days=2)))
    spend(ledger, owner, "spend", 4)  # from early

    first = grants_page(ledger, owner, first=1)
    assert [edge["node"] for edge in first["edges"]] == [
        {
            "id": early["id"],
            "nonce": "early",
            "amount": 10,
            "remaining": 6,
            "expiresAt": early["expiresAt"],
            "kind": "OPERATION",
        }
    ]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["pageInfo"]["hasPreviousPage"] is False
    assert first["pageInfo"]["endCursor"] == first["edges"][0]["cursor"]
    assert first["pageInfo"]["startCursor"] == first["edges"][0]["cursor"]

    second = grants_page(ledger, owner, first=1, after=first["pageInfo"]["endCursor"])
    assert [(e["node"]["id"], e["node"]["remaining"]) for e in second["edges"]] == [
        (late["id"], 10)
    ]
    assert second["pageInfo"]["hasNextPage"] is True

    rest = grants_page(ledger, owner, first=5, after=second["pageInfo"]["endCursor"])
    assert [(e["node"]["id"], e["node"]["expiresAt"]) for e in rest["edges"]] == [
        (bought["id"], None)
    ]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert rest["pageInfo"]["endCursor"] == rest["edges"][0]["cursor"]

    # A cursor stays good when its grant is spent meanwhile.
    spend(ledger, owner, "all-of-early", 6)
    after_early = grants_page(ledger, owner, after=first["pageInfo"]["endCursor"])
    assert [e["node"]["nonce"] for e in after_early["edges"]] == ["late", "bought"]

    whole = grants_page(ledger, owner)
    assert [e["node"]["nonce"] for e in whole["edges"]] == ["late", "bought"]
    assert whole["pageInfo"]["hasNextPage"] is False
    assert grants_page(ledger, "owner-with-nothing")["edges"] == []
    verify_books("healthai", url)


@pytest.mark.parametrize(
    "arguments", [{"first": 0}, {"first": 101}, {"first": -1}, {"after": "not a cursor"}]
)
def test_a_grants_page_outside_its_limits_is_bad_user_input(
    ledger: Ledger, owner: str, arguments: dict[str, Any]
) -> None:
    grant(ledger, owner, "bought", None)

    body = ledger.client.execute(GRANTS, id=owner, **arguments)

    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body


def test_grants_expiring_at_the_same_instant_are_spent_older_first(
    ledger: Ledger, owner: str, url: str
) -> None:
    expires_at = ahead(url, timedelta(days=3))
    grant(ledger, owner, "older", expires_at)
    grant(ledger, owner, "newer", expires_at)

    spend(ledger, owner, "spend", 13)

    assert grants(ledger, owner) == [("newer", 7)]
    assert remaining(ledger, owner)["older"] == 0
    verify_books("healthai", url)


def test_expires_at_is_returned_in_utc_as_the_instant_given(
    ledger: Ledger, owner: str, url: str
) -> None:
    moment = now(url) + timedelta(days=5)
    given = moment.astimezone(timezone(timedelta(hours=2))).isoformat()

    entry = grant(ledger, owner, "offset", given)

    assert instant(entry["expiresAt"]) == moment
    assert instant(entry["expiresAt"]).utcoffset() == timedelta(0)
    assert grants_page(ledger, owner)["edges"][0]["node"]["expiresAt"] == entry["expiresAt"]


def test_replaying_a_grant_returns_the_original_and_writes_nothing(
    ledger: Ledger, owner: str, url: str
) -> None:
    expires_at = ahead(url, timedelta(days=4))
    first = grant(ledger, owner, "promo", expires_at)
    spend(ledger, owner, "spend", 3)
    before = rows_of(url, owner)

    again = grant(ledger, owner, "promo", expires_at)

    assert (again["id"], again["expiresAt"], again["remaining"]) == (
        first["id"],
        first["expiresAt"],
        7,
    )
    assert rows_of(url, owner) == before


# -- owners without expiring credits ----------------------------------------------------


def test_an_owner_without_expiring_grants_spends_purchases_oldest_first(
    ledger: Ledger, owner: str, url: str
) -> None:
    first = grant(ledger, owner, "first", None)
    second = grant(ledger, owner, "second", None, quantity=2)
    signup = written(create(ledger, owner, "SIGNUP_CREDIT", "signup"))
    assert [e["expiresAt"] for e in (first, second, signup)] == [None, None, None]
    assert grants(ledger, owner) == [("first", 10), ("second", 20), ("signup", 3)]

    spend(ledger, owner, "spend-1", 4)
    assert remaining(ledger, owner) == {
        "first": 6,
        "second": 20,
        "signup": 3,
        "spend-1": None,
    }
    written(create(ledger, owner, "CONTENT_CREATION", "content", 2))
    assert remaining(ledger, owner) == {
        "first": 0,
        "second": 16,
        "signup": 3,
        "spend-1": None,
        "content": None,
    }
    free = written(create(ledger, owner, "CONTENT_ACCESS", "free"))
    assert (free["amount"], free["remaining"]) == (0, None)

    assert grants(ledger, owner) == [("second", 16), ("signup", 3)]
    assert books(ledger, owner, within=315_619_200) == (19, 0, 19, 0)
    assert books(ledger, owner, within=0) == (19, 0, 19, 0)
    assert not expiries(ledger, owner)
    verify_books("healthai", url)


def test_healthai_operations_declare_no_lifetime(url: str) -> None:
    rules = sql(url, "SELECT DISTINCT operation, lifetime FROM operation_rules ORDER BY 1")
    assert [tuple(row) for row in rules] == [
        (operation, None) for operation in sorted(member.name for member in HealthAIOperation)
    ]


# -- lifetimes declared in code ---------------------------------------------------------


def test_an_operation_s_lifetime_sets_expires_at_from_created_on(
    grantai: Ledger, owner: str, grantai_url: str
) -> None:
    promo = written(create(grantai, owner, "PROMO_CREDIT", "promo", quantity=2))
    signup = written(create(grantai, owner, "SIGNUP_CREDIT", "signup"))
    trial = written(create(grantai, owner, "TRIAL_CREDIT", "trial"))
    bought = written(create(grantai, owner, "CREDIT_ADD", "bought"))

    assert (promo["amount"], promo["remaining"]) == (10, 10)
    for entry, lifetime in (
        (promo, timedelta(days=30)),
        (signup, timedelta(days=30)),
        (trial, timedelta(hours=36, milliseconds=250)),
    ):
        assert instant(entry["expiresAt"]) - instant(entry["createdOn"]) == lifetime, entry
    assert bought["expiresAt"] is None
    # Soonest first: the trial (36 h), then promo and signup (30 days, older first).
    assert grants(grantai, owner) == [
        ("trial", 2),
        ("promo", 10),
        ("signup", 3),
        ("bought", 10),
    ]
    spend(grantai, owner, "spend", 5)
    assert grants(grantai, owner) == [("promo", 7), ("signup", 3), ("bought", 10)]
    assert books(grantai, owner, within=31 * 24 * 3600) == (20, 0, 20, 10)
    assert books(grantai, owner, within=29 * 24 * 3600) == (20, 0, 20, 0)
    verify_grantai(grantai_url)


def test_an_explicit_expires_at_wins_over_the_operation_s_lifetime(
    grantai: Ledger, owner: str, grantai_url: str
) -> None:
    given = ahead(grantai_url, timedelta(days=3))
    promo = written(create(grantai, owner, "PROMO_CREDIT", "promo", expires_at=given))
    later = ahead(grantai_url, timedelta(days=400))
    signup = written(create(grantai, owner, "SIGNUP_CREDIT", "signup", expires_at=later))

    assert instant(promo["expiresAt"]) == instant(given)
    assert instant(signup["expiresAt"]) == instant(later)
    assert grants(grantai, owner) == [("promo", 5), ("signup", 3)]
    verify_grantai(grantai_url)


def test_lifetimes_are_recorded_in_the_operation_rules(grantai_url: str) -> None:
    rules = sql(grantai_url, "SELECT operation, lifetime FROM operation_rules ORDER BY 1")
    assert {row[0]: row[1] for row in rules} == {
        "CREDIT_ADD": None,
        "CREDIT_SPEND": None,
        "DAILY_REWARD": timedelta(days=1),
        "PROMO_CREDIT": timedelta(days=30),
        "SIGNUP_CREDIT": timedelta(days=30),
        "TRIAL_CREDIT": timedelta(hours=36, milliseconds=250),
    }
    assert len(rules) == 6


def test_a_lifetime_applies_to_an_end_user_s_own_entries(
    grantai: Ledger, owner: str, grantai_url: str
) -> None:
    me = Ledger(GraphQLClient(grantai.client.http, headers=user_headers("grantai", owner)))

    reward = written(create(me, owner, "DAILY_REWARD", "reward"))

    assert instant(reward["expiresAt"]) - instant(reward["createdOn"]) == timedelta(days=1)
    assert written(create(grantai, owner, "TRIAL_CREDIT", "trial"))["remaining"] == 2
    assert grants(me, owner) == [("reward", 1), ("trial", 2)]
    assert books(me, owner, within=25 * 3600) == (3, 0, 3, 1)
    verify_grantai(grantai_url)


# -- expiry -----------------------------------------------------------------------------


def test_an_expired_grant_stops_counting_in_available_at_once_and_is_booked_by_the_next_write(
    ledger: Ledger, owner: str, url: str
) -> None:
    promo = grant(ledger, owner, "promo", ahead(url, SHORT))
    grant(ledger, owner, "bought", None)
    spend(ledger, owner, "spend", 3)  # from the promo
    assert books(ledger, owner, within=60) == (17, 0, 17, 7)
    assert books(ledger, owner, within=0) == (17, 0, 17, 0)

    expire(url, promo)

    assert books(ledger, owner, within=60) == (17, 0, 10, 0)
    assert figures(ledger, owner) == (17, 0, 10)
    assert grants(ledger, owner) == [("bought", 10)]
    assert remaining(ledger, owner) == {"promo": 0, "bought": 10, "spend": None}
    assert not expiries(ledger, owner)

    refused = create(ledger, owner, "CREDIT_SPEND", "too-much", 11)
    assert (refused["__typename"], refused["balance"], refused["required"]) == (
        "InsufficientCredits",
        10,
        11,
    )

    assert lines(ledger, owner) == [
        ("OPERATION", "promo", 10, 10),
        ("OPERATION", "bought", 10, 20),
        ("OPERATION", "spend", -3, 17),
        ("EXPIRY", "promo", -7, 10),
    ]
    [expiry] = expiries(ledger, owner)
    assert_expiry_of(expiry, promo, -7)
    assert expiry["expiryOf"] == {
        "id": promo["id"],
        "nonce": "promo",
        "operation": "CREDIT_ADD",
        "amount": 10,
    }
    assert books(ledger, owner, within=60) == (10, 0, 10, 0)
    assert remaining(ledger, owner) == {"promo": 0, "bought": 10, "spend": None}

    # A later write books nothing more for the grant; a later refusal writes nothing.
    last = spend(ledger, owner, "last", 1)
    assert last["balanceAfter"] == 9
    before = rows_of(url, owner)
    assert create(ledger, owner, "CREDIT_SPEND", "refused", 10)["__typename"] == (
        "InsufficientCredits"
    )
    assert rows_of(url, owner) == before
    assert len(expiries(ledger, owner)) == 1
    assert_chain(ledger, owner)
    verify_books("healthai", url)


def test_the_expiry_pass_books_an_expired_grant_with_no_write(url: str, owner: str) -> None:
    with serving("healthai", url, HealthAIOperation, 0.2) as busy:
        ledger = Ledger(GraphQLClient(busy, headers=service_headers("healthai")))
        promo = grant(ledger, owner, "promo", ahead(url, SHORT))
        grant(ledger, owner, "bought", None)
        spend(ledger, owner, "spend", 4)
        expire(url, promo)

        deadline = time.monotonic() + 10
        while not expiries(ledger, owner):
            assert time.monotonic() < deadline, lines(ledger, owner)
            time.sleep(0.05)

        [expiry] = expiries(ledger, owner)
        assert_expiry_of(expiry, promo, -6)
        assert expiry["balanceAfter"] == 10
        assert books(ledger, owner, within=60) == (10, 0, 10, 0)
        time.sleep(0.5)  # two more passes
        assert len(expiries(ledger, owner)) == 1
    verify_books("healthai", url)


def test_two_servers_passes_and_writes_book_each_expired_grant_once(url: str) -> None:
    owners = [f"owner-race-{uuid.uuid4()}" for _ in range(12)]
    with (
        serving("healthai", url, HealthAIOperation, 0.05) as one,
        serving("healthai", url, HealthAIOperation, 0.05) as two,
    ):
        ledgers = [
            Ledger(GraphQLClient(c, headers=service_headers("healthai"))) for c in (one, two)
        ]
        expires_at = ahead(url, SHORT)
        for owner_id in owners:
            grant(ledgers[0], owner_id, "bought", None)
            grant(ledgers[1], owner_id, "promo", expires_at)
            spend(ledgers[0], owner_id, "spend", 3)  # from the promo: 7 left
        wait_for_database_clock(url, expires_at, timeout=10)

        # Writes of half the owners race both servers' passes.
        for number, owner_id in enumerate(owners[::2]):
            refused = create(ledgers[number % 2], owner_id, "CREDIT_SPEND", "too-much", 11)
            assert (refused["__typename"], refused["balance"]) == ("InsufficientCredits", 10)
        deadline = time.monotonic() + 10
        while any(not expiries(ledgers[0], owner_id) for owner_id in owners):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.2)  # a few more passes of each server

        for owner_id in owners:
            assert lines(ledgers[1], owner_id) == [
                ("OPERATION", "bought", 10, 10),
                ("OPERATION", "promo", 10, 20),
                ("OPERATION", "spend", -3, 17),
                ("EXPIRY", "promo", -7, 10),
            ], owner_id
            assert books(ledgers[0], owner_id, within=60) == (10, 0, 10, 0)
    verify_books("healthai", url)


def test_an_expired_grant_replayed_returns_the_grant_not_its_expiry(
    ledger: Ledger, owner: str, url: str
) -> None:
    promo = grant(ledger, owner, "promo", ahead(url, SHORT))
    expire(url, promo)
    spend_refused = create(ledger, owner, "CREDIT_SPEND", "spend", 1)
    assert spend_refused["__typename"] == "InsufficientCredits"
    before = rows_of(url, owner)

    # The same nonce and operation is a replay, with or without the expiresAt (now past)
    # the original request carried: a client's retry answers the original entry.
    again = grant(ledger, owner, "promo", None)
    retried = grant(ledger, owner, "promo", promo["expiresAt"])
    conflict = create(ledger, owner, "CREDIT_SPEND", "promo", 1)

    assert (again["id"], again["kind"], again["remaining"]) == (promo["id"], "OPERATION", 0)
    assert (retried["id"], retried["expiresAt"]) == (promo["id"], promo["expiresAt"])
    assert conflict["__typename"] == "NonceConflict"
    assert rows_of(url, owner) == before
    [expiry] = expiries(ledger, owner)
    not_refundable = refund(ledger, expiry["id"], "refund-expiry")
    assert (not_refundable["__typename"], not_refundable["code"]) == (
        "NotRefundable",
        "NOT_REFUNDABLE",
    )
    assert rows_of(url, owner) == before
    verify_books("healthai", url)


def test_expiring_within_counts_available_credits_expiring_in_the_window(
    ledger: Ledger, owner: str, url: str
) -> None:
    grant(ledger, owner, "in-1-day", ahead(url, timedelta(days=1)))
    grant(ledger, owner, "in-5-days", ahead(url, timedelta(days=5)), quantity=2)
    grant(ledger, owner, "bought", None)
    reserve(ledger, owner, "job", 4)  # from the soonest grant: held, not available
    day = 24 * 3600

    assert [books(ledger, owner, within=s)[3] for s in (0, day - 60, day, 6 * day)] == [
        0,
        0,
        6,
        26,
    ]
    assert books(ledger, owner, within=315_619_200) == (40, 4, 36, 26)
    verify_books("healthai", url)


# -- balances as of an instant ----------------------------------------------------------


def test_a_balance_at_an_instant_excludes_credits_lapsed_by_then(
    ledger: Ledger, owner: str, url: str
) -> None:
    grant(ledger, owner, "bought", None)
    promo = grant(ledger, owner, "promo", ahead(url, SHORT))
    before_expiry = (instant(promo["expiresAt"]) - timedelta(milliseconds=200)).isoformat()
    expire(url, promo)
    after_expiry = database_now(url)

    assert books(ledger, owner, at=after_expiry, within=60) == (20, 0, 10, 0)
    assert books(ledger, owner, at=before_expiry, within=1) == (20, 0, 20, 10)
    assert books(ledger, owner, at=before_expiry, within=0) == (20, 0, 20, 0)
    assert not expiries(ledger, owner)

    spend(ledger, owner, "spend", 2)  # books the expiry first

    assert lines(ledger, owner)[2:] == [
        ("EXPIRY", "promo", -10, 10),
        ("OPERATION", "spend", -2, 8),
    ]
    assert books(ledger, owner, at=after_expiry, within=60) == (20, 0, 10, 0)
    assert books(ledger, owner, at=before_expiry, within=1) == (20, 0, 20, 10)
    assert books(ledger, owner, within=60) == (8, 0, 8, 0)
    verify_books("healthai", url)


def test_expiring_within_as_of_an_instant_counts_the_credits_left_then(
    ledger: Ledger, owner: str, url: str
) -> None:
    grant(ledger, owner, "bought", None)
    before_promo = database_now(url)
    grant(ledger, owner, "promo", ahead(url, timedelta(days=5)))
    then = database_now(url)
    window = 6 * 24 * 3600
    assert books(ledger, owner, at=then, within=window) == (20, 0, 20, 10)

    spend(ledger, owner, "spend", 4)  # from the promo

    assert books(ledger, owner, within=window) == (16, 0, 16, 6)
    assert books(ledger, owner, at=then, within=window) == (20, 0, 20, 10)
    assert books(ledger, owner, at=before_promo, within=window) == (10, 0, 10, 0)
    verify_books("healthai", url)


# -- refunds ----------------------------------------------------------------------------


def test_a_refund_gives_credits_back_to_the_grants_they_came_from(
    ledger: Ledger, owner: str, url: str
) -> None:
    grant(ledger, owner, "bought", None)
    grant(ledger, owner, "soon", ahead(url, timedelta(days=2)))
    grant(ledger, owner, "later", ahead(url, timedelta(days=6)))
    job = spend(ledger, owner, "job", 14)  # soon 10, later 4
    spend(ledger, owner, "other", 3)  # later 3
    assert grants(ledger, owner) == [("later", 3), ("bought", 10)]

    back = written(refund(ledger, job["id"], "refund-job"))

    assert (back["kind"], back["amount"], back["balanceAfter"], back["remaining"]) == (
        "REFUND",
        14,
        27,
        None,
    )
    assert grants(ledger, owner) == [("soon", 10), ("later", 7), ("bought", 10)]
    assert books(ledger, owner, within=3 * 24 * 3600) == (27, 0, 27, 10)
    verify_books("healthai", url)


def test_a_refund_after_its_grant_expired_books_the_refund_then_expires_it_at_once(
    ledger: Ledger, owner: str, url: str
) -> None:
    grant(ledger, owner, "bought", None)
    promo = grant(ledger, owner, "promo", ahead(url, SHORT))
    job = spend(ledger, owner, "job", 4)  # from the promo
    assert remaining(ledger, owner) == {"bought": 10, "promo": 6, "job": None}
    expire(url, promo)
    assert books(ledger, owner) == (16, 0, 10, 0)

    back = written(refund(ledger, job["id"], "refund-job"))

    assert (back["kind"], back["amount"], back["refundOf"]["id"]) == ("REFUND", 4, job["id"])
    assert lines(ledger, owner) == [
        ("OPERATION", "bought", 10, 10),
        ("OPERATION", "promo", 10, 20),
        ("OPERATION", "job", -4, 16),
        ("EXPIRY", "promo", -6, 10),
        ("REFUND", "refund-job", 4, 14),
        ("EXPIRY", "promo", -4, 10),
    ]
    assert back["balanceAfter"] == 14
    first, second = expiries(ledger, owner)
    assert_expiry_of(first, promo, -6)
    assert_expiry_of(second, promo, -4)
    assert books(ledger, owner, within=60) == (10, 0, 10, 0)
    assert figures(ledger, owner) == (10, 0, 10)
    assert remaining(ledger, owner) == {"bought": 10, "promo": 0, "job": None}
    assert grants(ledger, owner) == [("bought", 10)]
    assert_chain(ledger, owner)
    verify_books("healthai", url)


def test_a_refund_of_a_grant_takes_its_own_remaining_first(
    ledger: Ledger, owner: str, url: str
) -> None:
    grant(ledger, owner, "bought", None)
    grant(ledger, owner, "first-promo", ahead(url, timedelta(days=5)))
    promo = grant(ledger, owner, "promo", ahead(url, timedelta(days=30)))
    spend(ledger, owner, "spend", 13)  # first-promo 10, promo 3
    grant(ledger, owner, "sooner", ahead(url, timedelta(days=10)))
    assert grants(ledger, owner) == [("sooner", 10), ("promo", 7), ("bought", 10)]

    back = written(refund(ledger, promo["id"], "refund-promo"))

    # Its own 7 first, then 3 as a spend takes them: from the soonest grant.
    assert (back["kind"], back["amount"], back["balanceAfter"]) == ("REFUND", -10, 17)
    assert grants(ledger, owner) == [("sooner", 7), ("bought", 10)]
    assert remaining(ledger, owner)["promo"] == 0
    assert books(ledger, owner, within=11 * 24 * 3600) == (17, 0, 17, 7)
    verify_books("healthai", url)


def test_a_refund_of_a_purchase_takes_credits_that_never_expire_first(
    ledger: Ledger, owner: str, url: str
) -> None:
    """Found by review: the refund of a credit that never expires took an expiring grant's
    credits first, leaving the promo spent and 10 credits belonging to no entry."""
    bought = grant(ledger, owner, "bought", None)
    grant(ledger, owner, "older-purchase", None, quantity=2)
    grant(ledger, owner, "promo", ahead(url, timedelta(days=30)))

    back = written(refund(ledger, bought["id"], "refund-bought"))

    assert (back["kind"], back["amount"], back["balanceAfter"]) == ("REFUND", -10, 30)
    assert grants(ledger, owner) == [("promo", 10), ("older-purchase", 20)]
    assert books(ledger, owner, within=31 * 24 * 3600) == (30, 0, 30, 10)
    # Once the purchases are short, the rest comes from the grant.
    spend(ledger, owner, "spend", 15)  # promo 10, older-purchase 5
    assert grants(ledger, owner) == [("older-purchase", 15)]
    verify_books("healthai", url)


def test_a_refund_of_a_grant_whose_credits_are_gone_is_insufficient_credits(
    ledger: Ledger, owner: str, url: str
) -> None:
    promo = grant(ledger, owner, "promo", ahead(url, timedelta(days=30)))
    spend(ledger, owner, "spend", 4)
    before = rows_of(url, owner)

    refused = refund(ledger, promo["id"], "refund-promo")

    assert (refused["__typename"], refused["balance"], refused["required"]) == (
        "InsufficientCredits",
        6,
        10,
    )
    assert rows_of(url, owner) == before
    assert grants(ledger, owner) == [("promo", 6)]


# -- holds ------------------------------------------------------------------------------


def test_a_hold_takes_soonest_expiring_credits_and_its_release_gives_them_back(
    ledger: Ledger, owner: str, url: str
) -> None:
    grant(ledger, owner, "bought", None)
    grant(ledger, owner, "later", ahead(url, timedelta(days=8)))
    grant(ledger, owner, "soon", ahead(url, timedelta(days=1)))
    hold_id = reserve(ledger, owner, "job", 15)

    assert grants(ledger, owner) == [("later", 5), ("bought", 10)]
    assert remaining(ledger, owner) == {"bought": 10, "later": 5, "soon": 0}
    assert books(ledger, owner, within=10 * 24 * 3600) == (30, 15, 15, 5)

    released = ledger.release(hold_id)

    assert (released["__typename"], released["status"]) == ("Hold", "RELEASED")
    assert grants(ledger, owner) == [("soon", 10), ("later", 10), ("bought", 10)]
    assert books(ledger, owner, within=10 * 24 * 3600) == (30, 0, 30, 20)
    assert not expiries(ledger, owner)
    verify_books("healthai", url)


def test_a_capture_spends_the_held_credits_soonest_expiring_first(
    ledger: Ledger, owner: str, url: str
) -> None:
    grant(ledger, owner, "bought", None)
    grant(ledger, owner, "soon", ahead(url, timedelta(days=1)))
    grant(ledger, owner, "later", ahead(url, timedelta(days=8)))
    hold_id = reserve(ledger, owner, "job", 15)  # soon 10, later 5

    booked = written(capture(ledger, hold_id, 12))

    assert (booked["kind"], booked["amount"], booked["balanceAfter"], booked["remaining"]) == (
        "CAPTURE",
        -12,
        18,
        None,
    )
    assert grants(ledger, owner) == [("later", 8), ("bought", 10)]
    assert books(ledger, owner) == (18, 0, 18, 0)
    verify_books("healthai", url)


def test_a_hold_that_expires_gives_its_credits_back_to_their_grant(
    ledger: Ledger, owner: str, url: str
) -> None:
    grant(ledger, owner, "promo", ahead(url, timedelta(days=3)))
    hold = ledger.reserve(owner, "CREDIT_SPEND", "job", quantity=4, expires_in=1)
    assert grants(ledger, owner) == [("promo", 6)]

    wait_for_database_clock(url, hold["expiresAt"], timeout=10)

    assert grants(ledger, owner) == [("promo", 10)]
    assert books(ledger, owner, within=4 * 24 * 3600) == (10, 0, 10, 10)
    assert written(spend(ledger, owner, "spend", 10))["balanceAfter"] == 0
    verify_books("healthai", url)


def test_credits_held_by_an_open_hold_do_not_expire_and_a_capture_lets_the_rest_lapse(
    ledger: Ledger, owner: str, url: str
) -> None:
    grant(ledger, owner, "bought", None)
    promo = grant(ledger, owner, "promo", ahead(url, SHORT))
    hold_id = reserve(ledger, owner, "job", 5)  # from the promo
    assert books(ledger, owner) == (20, 5, 15, 0)
    expire(url, promo)

    # The promo's 5 unheld credits lapse; the 5 held do not.
    assert books(ledger, owner, within=60) == (20, 5, 10, 0)
    spend(ledger, owner, "spend", 1)  # books the unheld part, then spends from bought
    assert lines(ledger, owner)[2:] == [
        ("EXPIRY", "promo", -5, 15),
        ("OPERATION", "spend", -1, 14),
    ]
    assert books(ledger, owner) == (14, 5, 9, 0)
    assert ledger.hold(hold_id)["status"] == "OPEN"  # type: ignore[index]

    booked = written(capture(ledger, hold_id, 2))

    assert (booked["kind"], booked["amount"], booked["balanceAfter"]) == ("CAPTURE", -2, 12)
    assert lines(ledger, owner)[4:] == [
        ("CAPTURE", "job", -2, 12),
        ("EXPIRY", "promo", -3, 9),
    ]
    first, second = expiries(ledger, owner)
    assert_expiry_of(first, promo, -5)
    assert_expiry_of(second, promo, -3)
    assert books(ledger, owner) == (9, 0, 9, 0)
    assert grants(ledger, owner) == [("bought", 9)]
    assert_chain(ledger, owner)
    verify_books("healthai", url)


def test_a_capture_after_a_held_grant_expired_spends_it_first_and_gives_the_rest_back(
    ledger: Ledger, owner: str, url: str
) -> None:
    promo = grant(ledger, owner, "promo", ahead(url, SHORT))
    grant(ledger, owner, "later", ahead(url, timedelta(days=30)))
    hold_id = reserve(ledger, owner, "job", 15)  # promo 10, later 5
    expire(url, promo)
    assert books(ledger, owner, within=60) == (20, 15, 5, 0)

    booked = written(capture(ledger, hold_id, 12))  # promo's 10, then 2 of later

    assert (booked["kind"], booked["amount"], booked["balanceAfter"]) == ("CAPTURE", -12, 8)
    assert not expiries(ledger, owner)
    assert grants(ledger, owner) == [("later", 8)]
    assert remaining(ledger, owner) == {"promo": 0, "later": 8}
    assert books(ledger, owner) == (8, 0, 8, 0)
    verify_books("healthai", url)


def test_a_refund_of_a_capture_after_its_grant_expired_lets_the_credits_lapse(
    ledger: Ledger, owner: str, url: str
) -> None:
    grant(ledger, owner, "bought", None)
    promo = grant(ledger, owner, "promo", ahead(url, SHORT))
    hold_id = reserve(ledger, owner, "job", 10)
    booked = written(capture(ledger, hold_id, 6))  # 4 go back to the promo
    assert grants(ledger, owner) == [("promo", 4), ("bought", 10)]
    expire(url, promo)

    back = written(refund(ledger, booked["id"], "refund-job"))

    assert (back["kind"], back["amount"], back["refundOf"]["id"]) == ("REFUND", 6, booked["id"])
    assert lines(ledger, owner) == [
        ("OPERATION", "bought", 10, 10),
        ("OPERATION", "promo", 10, 20),
        ("CAPTURE", "job", -6, 14),
        ("EXPIRY", "promo", -4, 10),
        ("REFUND", "refund-job", 6, 16),
        ("EXPIRY", "promo", -6, 10),
    ]
    for expiry, amount in zip(expiries(ledger, owner), (-4, -6), strict=True):
        assert_expiry_of(expiry, promo, amount)
    assert books(ledger, owner) == (10, 0, 10, 0)
    verify_books("healthai", url)


def test_a_release_after_the_grant_expired_lets_all_the_held_credits_lapse(
    ledger: Ledger, owner: str, url: str
) -> None:
    grant(ledger, owner, "bought", None)
    promo = grant(ledger, owner, "promo", ahead(url, SHORT))
    hold_id = reserve(ledger, owner, "job", 10)  # the whole promo
    expire(url, promo)

    assert books(ledger, owner, within=60) == (20, 10, 10, 0)
    assert remaining(ledger, owner) == {"bought": 10, "promo": 0}

    released = ledger.release(hold_id)

    assert (released["__typename"], released["status"]) == ("Hold", "RELEASED")
    assert lines(ledger, owner) == [
        ("OPERATION", "bought", 10, 10),
        ("OPERATION", "promo", 10, 20),
        ("EXPIRY", "promo", -10, 10),
    ]
    assert_expiry_of(expiries(ledger, owner)[0], promo, -10)
    assert books(ledger, owner) == (10, 0, 10, 0)
    verify_books("healthai", url)


def test_a_hold_that_expires_after_its_grant_lets_its_credits_lapse(
    ledger: Ledger, owner: str, url: str
) -> None:
    grant(ledger, owner, "bought", None)
    promo = grant(ledger, owner, "promo", ahead(url, SHORT))
    hold = ledger.reserve(owner, "CREDIT_SPEND", "job", quantity=10, expires_in=2)
    assert hold["status"] == "OPEN"
    assert instant(hold["expiresAt"]) > instant(promo["expiresAt"])
    expire(url, promo)
    assert books(ledger, owner, within=60) == (20, 10, 10, 0)

    wait_for_database_clock(url, hold["expiresAt"], timeout=10)

    assert ledger.hold(hold["id"])["status"] == "EXPIRED"  # type: ignore[index]
    assert books(ledger, owner, within=60) == (20, 0, 10, 0)
    assert figures(ledger, owner) == (20, 0, 10)
    assert not expiries(ledger, owner)

    spend(ledger, owner, "spend", 1)

    assert lines(ledger, owner) == [
        ("OPERATION", "bought", 10, 10),
        ("OPERATION", "promo", 10, 20),
        ("EXPIRY", "promo", -10, 10),
        ("OPERATION", "spend", -1, 9),
    ]
    assert_expiry_of(expiries(ledger, owner)[0], promo, -10)
    assert books(ledger, owner) == (9, 0, 9, 0)
    verify_books("healthai", url)


def test_a_reserve_never_takes_credits_of_an_expired_grant(
    ledger: Ledger, owner: str, url: str
) -> None:
    promo = grant(ledger, owner, "promo", ahead(url, SHORT))
    expire(url, promo)

    refused = ledger.reserve(owner, "CREDIT_SPEND", "job", quantity=1)

    assert (refused["__typename"], refused["balance"], refused["required"]) == (
        "InsufficientCredits",
        0,
        1,
    )
    assert lines(ledger, owner) == [
        ("OPERATION", "promo", 10, 10),
        ("EXPIRY", "promo", -10, 0),
    ]
    verify_books("healthai", url)


# -- refused input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "expires_at"),
    [
        ("CREDIT_ADD", lambda url: ahead(url, -timedelta(hours=1))),
        ("CREDIT_ADD", lambda url: database_now(url)),
        ("CREDIT_ADD", lambda url: ahead(url, timedelta(days=3654))),
        ("CREDIT_ADD", lambda url: "2031-01-01T00:00:00"),
        ("CREDIT_SPEND", lambda url: ahead(url, timedelta(days=3))),
        ("CONTENT_CREATION", lambda url: ahead(url, timedelta(days=3))),
        ("CONTENT_ACCESS", lambda url: ahead(url, timedelta(days=3))),
    ],
    ids=["past", "now", "over-10-years", "no-offset", "spend", "content-spend", "zero-amount"],
)
def test_a_bad_expires_at_is_invalid_input_and_writes_nothing(
    ledger: Ledger, owner: str, url: str, operation: str, expires_at: Callable[[str], str]
) -> None:
    grant(ledger, owner, "bought", None)
    before = rows_of(url, owner)

    refused = create(ledger, owner, operation, "bad", expires_at=expires_at(url))

    assert_invalid(refused, "expiresAt")
    assert rows_of(url, owner) == before


def test_an_expires_at_just_under_ten_years_ahead_is_accepted(
    ledger: Ledger, owner: str, url: str
) -> None:
    given = ahead(url, timedelta(days=3652))

    entry = grant(ledger, owner, "long", given)

    assert instant(entry["expiresAt"]) == instant(given)


def test_an_end_user_may_not_give_expires_at(ledger: Ledger, owner: str, url: str) -> None:
    me = Ledger(GraphQLClient(ledger.client.http, headers=user_headers("healthai", owner)))
    grant(ledger, owner, "bought", None)
    before = rows_of(url, owner)

    refused = create(me, owner, "DAILY_REWARD", "reward", expires_at=ahead(url, timedelta(days=1)))

    assert (refused["__typename"], refused["code"]) == (
        "OperationNotAllowed",
        "OPERATION_NOT_ALLOWED",
    )
    assert refused["message"]
    assert rows_of(url, owner) == before
    assert written(create(me, owner, "DAILY_REWARD", "reward"))["expiresAt"] is None


@pytest.mark.parametrize("seconds", [-1, 315_619_201, -(2**31)])
def test_expiring_within_outside_its_range_is_bad_user_input(
    ledger: Ledger, owner: str, seconds: int
) -> None:
    body = ledger.client.execute(BALANCE, ownerId=owner, within=seconds)

    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["message"]
