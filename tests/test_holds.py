"""Holds (contract section 4): reserveCredits, captureHold and releaseHold through HTTP on a
real PostgreSQL; held and available, one nonce space, expiry at expiresAt with no job
running, the hold queries, balances as of an instant, who may do what, and balanceChanged."""

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from graphql_ledger import LedgerOperation, Settings, create_app, credits, shared
from tests.support import (
    CAPTURE_HOLD,
    CREATE_ENTRY_FULL,
    HOLDS_PAGE,
    RELEASE_HOLD,
    RESERVE_CREDITS,
    TEST_SECRET,
    GraphQLClient,
    Ledger,
    ServerProcess,
    clean_environment,
    count_rows,
    database_now,
    entry_of,
    mutate_async,
    rows_of,
    service_headers,
    sql,
    user_headers,
    wait_for_database_clock,
)


@pytest.fixture
def ledger(healthai: GraphQLClient) -> Ledger:
    return Ledger(healthai)


@pytest.fixture
def url(app_urls: dict[str, str]) -> str:
    return app_urls["healthai"]


def funded(ledger: Ledger, owner_id: str, credits: int = 30) -> None:
    """Gives the owner `credits` (a multiple of 10) through CREDIT_ADD."""
    added = ledger.create(owner_id, "CREDIT_ADD", "funding", quantity=credits // 10)
    assert added["balanceAfter"] == credits, added


def reserved(ledger: Ledger, owner_id: str, nonce: str, **options: Any) -> dict[str, Any]:
    """A hold that must be granted."""
    options.setdefault("operation", "CONTENT_CREATION")
    hold = ledger.reserve(owner_id, nonce=nonce, **options)
    assert hold["__typename"] == "Hold", hold
    return hold


def plain(result: dict[str, Any]) -> dict[str, Any]:
    """A Hold result as the hold query returns it (no __typename)."""
    return entry_of(result)


def assert_error(result: dict[str, Any], typename: str, code: str) -> None:
    assert (result["__typename"], result.get("code")) == (typename, code), result
    assert result["message"], result


def assert_invalid(result: dict[str, Any], field: str) -> None:
    assert_error(result, "InvalidInput", "INVALID_INPUT")
    assert result["field"] == field, result


def booked(url: str, owner_id: str) -> tuple[list[Any], int, list[Any]]:
    """The owner's entries, number of holds and balance: what a refusal that finds an
    expired hold leaves as it was."""
    rows = rows_of(url, owner_id)
    balance = sql(url, "SELECT balance FROM balances WHERE owner_id = :o", o=owner_id)
    return rows["entries"], len(rows["holds"]), [row[0] for row in balance]


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


# -- reserving --------------------------------------------------------------------------


def test_a_hold_reserves_credits_books_nothing_and_lowers_available(
    ledger: Ledger, owner: str, url: str
) -> None:
    funded(ledger, owner)
    before = booked(url, owner)

    hold = reserved(ledger, owner, "job-1", quantity=3, metadata={"jobId": "1"})

    assert {k: hold[k] for k in ("ownerId", "operation", "quantity", "amount", "status")} == {
        "ownerId": owner,
        "operation": "CONTENT_CREATION",
        "quantity": 3,
        "amount": -15,
        "status": "OPEN",
    }
    assert (hold["nonce"], hold["metadata"], hold["capture"]) == ("job-1", {"jobId": "1"}, None)
    assert instant(hold["expiresAt"]) - instant(hold["createdOn"]) == timedelta(seconds=900)
    assert instant(hold["createdOn"]).utcoffset() == timedelta(0)
    assert ledger.books(owner) == (30, 15, 15)
    entries, holds, balance = booked(url, owner)
    assert (entries, holds, balance) == (before[0], 1, before[2])
    assert ledger.hold(hold["id"]) == plain(hold)
    assert int(hold["id"]) > 0  # ids are decimal strings

    second = reserved(ledger, owner, "job-2", operation="CREDIT_SPEND", expires_in=60)
    assert (second["amount"], second["quantity"], second["metadata"]) == (-1, 1, None)
    assert instant(second["expiresAt"]) - instant(second["createdOn"]) == timedelta(seconds=60)
    assert ledger.books(owner) == (30, 16, 14)


def test_a_reserve_or_a_spend_beyond_available_is_insufficient_credits_against_available(
    ledger: Ledger, owner: str, url: str
) -> None:
    funded(ledger, owner)
    reserved(ledger, owner, "job", quantity=3)
    before = rows_of(url, owner)

    too_big = ledger.reserve(owner, "CONTENT_CREATION", "more", quantity=4)
    spend = ledger.create(owner, "CONTENT_CREATION", "spend", quantity=4)
    single = ledger.create(owner, "CREDIT_SPEND", "single", quantity=16)

    for result, required in ((too_big, 20), (spend, 20), (single, 16)):
        assert result == {
            "__typename": "InsufficientCredits",
            "code": "INSUFFICIENT_CREDITS",
            "message": result["message"],
            "balance": 15,
            "required": required,
        }
    assert rows_of(url, owner) == before

    last = ledger.create(owner, "CREDIT_SPEND", "last", quantity=15)
    assert (last["amount"], last["balanceAfter"]) == (-15, 15)
    assert ledger.books(owner) == (15, 15, 0)
    for refused in (
        ledger.create(owner, "CREDIT_SPEND", "one-more"),
        ledger.reserve(owner, "CREDIT_SPEND", "one-more-hold"),
    ):
        assert (refused["__typename"], refused["balance"], refused["required"]) == (
            "InsufficientCredits",
            0,
            1,
        )
    # Adding credits and zero-amount operations need nothing available.
    assert ledger.create(owner, "CONTENT_ACCESS", "free")["balanceAfter"] == 15
    assert ledger.create(owner, "CREDIT_ADD", "top-up")["balanceAfter"] == 25
    assert ledger.books(owner) == (25, 15, 10)


@pytest.mark.parametrize(
    "operation", ["CREDIT_ADD", "CONTENT_ACCESS", "DAILY_REWARD", "SIGNUP_CREDIT"]
)
def test_reserving_an_operation_that_is_not_an_unlimited_spend_is_invalid_operation(
    ledger: Ledger, owner: str, url: str, operation: str
) -> None:
    funded(ledger, owner)
    before = rows_of(url, owner)

    assert_invalid(ledger.reserve(owner, operation, "bad"), "operation")

    assert rows_of(url, owner) == before


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"expires_in": 0}, "expiresIn"),
        ({"expires_in": -5}, "expiresIn"),
        ({"expires_in": 86_401}, "expiresIn"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": -1}, "quantity"),
        ({"quantity": 1_000_001}, "quantity"),
        ({"owner_id": ""}, "ownerId"),
        ({"owner_id": "x" * 256}, "ownerId"),
        ({"nonce": ""}, "nonce"),
        ({"nonce": "a\u0000b"}, "nonce"),
    ],
)
def test_a_reserve_with_a_bad_input_field_is_invalid_input_naming_it_and_writes_nothing(
    ledger: Ledger, owner: str, url: str, options: dict[str, Any], field: str
) -> None:
    funded(ledger, owner)
    before = rows_of(url, owner)
    owner_id = options.pop("owner_id", owner)
    nonce = options.pop("nonce", "n")

    assert_invalid(ledger.reserve(owner_id, "CREDIT_SPEND", nonce, **options), field)

    assert rows_of(url, owner) == before
    if owner_id != owner:
        assert count_rows(url, owner_id) == (0, 0, 0)


def test_expires_in_of_a_day_is_accepted(ledger: Ledger, owner: str) -> None:
    funded(ledger, owner)
    hold = reserved(ledger, owner, "day", expires_in=86_400)
    assert instant(hold["expiresAt"]) - instant(hold["createdOn"]) == timedelta(days=1)


# -- replays and the one nonce space ---------------------------------------------------


def test_a_replayed_reserve_is_the_same_hold_and_another_operation_or_quantity_conflicts(
    ledger: Ledger, owner: str, url: str
) -> None:
    funded(ledger, owner)
    hold = reserved(ledger, owner, "job", quantity=2)
    before = rows_of(url, owner)

    assert ledger.reserve(owner, "CONTENT_CREATION", "job", quantity=2) == hold
    assert ledger.reserve(owner, "CONTENT_CREATION", "job", quantity=2, expires_in=30) == hold
    for operation, quantity in (("CREDIT_SPEND", 2), ("CONTENT_CREATION", 1)):
        conflict = ledger.reserve(owner, operation, "job", quantity=quantity)
        assert_error(conflict, "HoldNonceConflict", "NONCE_CONFLICT")
        assert conflict["existingHold"] == plain(hold)
    assert rows_of(url, owner) == before
    assert ledger.books(owner) == (30, 10, 20)

    # A replay still finds its hold once it is captured; another owner's nonce is its own.
    capture = ledger.capture(hold["id"])
    again = ledger.reserve(owner, "CONTENT_CREATION", "job", quantity=2)
    assert (again["id"], again["status"], again["capture"]) == (
        hold["id"],
        "CAPTURED",
        entry_of(capture),
    )
    funded(ledger, f"{owner}-b")
    theirs = reserved(ledger, f"{owner}-b", "job", operation="CREDIT_SPEND")
    assert theirs["id"] != hold["id"]
    assert count_rows(url, owner) == (2, 1, 1)


def test_one_nonce_space_a_write_with_a_hold_s_nonce_and_a_reserve_with_an_entry_s(
    ledger: Ledger, owner: str, url: str
) -> None:
    funded(ledger, owner)
    hold = reserved(ledger, owner, "held-nonce")
    spend = ledger.create(owner, "CREDIT_SPEND", "entry-nonce")
    before = rows_of(url, owner)

    for operation in ("CONTENT_CREATION", "CREDIT_ADD"):
        conflict = ledger.create(owner, operation, "held-nonce")
        assert_error(conflict, "HoldNonceConflict", "NONCE_CONFLICT")
        assert conflict["existingHold"] == plain(hold)
    for operation in ("CREDIT_SPEND", "CONTENT_CREATION"):
        conflict = ledger.reserve(owner, operation, "entry-nonce")
        assert_error(conflict, "NonceConflict", "NONCE_CONFLICT")
        assert entry_of(conflict["existing"]) == entry_of(spend)
    # The funding entry's nonce too.
    assert ledger.reserve(owner, "CREDIT_SPEND", "funding")["__typename"] == "NonceConflict"

    assert rows_of(url, owner) == before
    assert ledger.books(owner) == (29, 5, 24)


# -- capturing --------------------------------------------------------------------------


def test_capturing_a_whole_hold_books_one_capture_entry_and_frees_nothing_more(
    ledger: Ledger, owner: str, url: str
) -> None:
    funded(ledger, owner)
    hold = reserved(ledger, owner, "job", quantity=3, metadata={"jobId": "9"})

    capture = ledger.capture(hold["id"])

    assert {
        k: capture[k]
        for k in ("__typename", "ownerId", "operation", "quantity", "amount", "balanceAfter")
    } == {
        "__typename": "LedgerEntry",
        "ownerId": owner,
        "operation": "CONTENT_CREATION",
        "quantity": 3,
        "amount": -15,
        "balanceAfter": 15,
    }
    assert (capture["kind"], capture["nonce"], capture["metadata"]) == (
        "CAPTURE",
        "job",
        {"jobId": "9"},
    )
    assert (capture["refundOf"], capture["refundedBy"]) == (None, None)
    assert ledger.books(owner) == (15, 0, 15)
    now = ledger.hold(hold["id"])
    assert now == plain(hold) | {"status": "CAPTURED", "capture": entry_of(capture)}
    stored = sql(
        url,
        "SELECT id, amount, balance_after FROM entries WHERE owner_id = :o ORDER BY id",
        o=owner,
    )
    assert [(str(r[0]), r[1], r[2]) for r in stored][-1] == (capture["id"], -15, 15)
    assert count_rows(url, owner) == (2, 1, 1)


def test_a_partial_capture_books_what_was_used_and_releases_the_rest(
    ledger: Ledger, owner: str, url: str
) -> None:
    funded(ledger, owner)
    other = reserved(ledger, owner, "other", operation="CREDIT_SPEND", quantity=4)
    hold = reserved(ledger, owner, "job", quantity=3, metadata={"jobId": "9"})
    assert ledger.books(owner) == (30, 19, 11)

    capture = ledger.capture(hold["id"], quantity=1, metadata={"jobId": "9", "used": "1"})

    assert (capture["quantity"], capture["amount"], capture["balanceAfter"]) == (1, -5, 25)
    assert (capture["kind"], capture["nonce"]) == ("CAPTURE", "job")
    assert capture["metadata"] == {"jobId": "9", "used": "1"}
    assert ledger.books(owner) == (25, 4, 21)
    found = ledger.hold(hold["id"])
    assert found is not None
    assert (found["status"], found["quantity"], found["amount"]) == ("CAPTURED", 3, -15)
    assert found["metadata"] == {"jobId": "9"}
    assert ledger.hold(other["id"]) == plain(other)
    assert count_rows(url, owner) == (2, 2, 1)


@pytest.mark.parametrize("quantity", [0, -1, 4, 1_000_001])
def test_a_capture_quantity_outside_1_to_the_reserved_quantity_is_invalid_and_writes_nothing(
    ledger: Ledger, owner: str, url: str, quantity: int
) -> None:
    funded(ledger, owner)
    hold = reserved(ledger, owner, "job", quantity=3)
    before = rows_of(url, owner)

    assert_invalid(ledger.capture(hold["id"], quantity=quantity), "quantity")

    assert rows_of(url, owner) == before
    assert ledger.hold(hold["id"]) == plain(hold)
    assert ledger.books(owner) == (30, 15, 15)
    assert ledger.capture(hold["id"], quantity=3)["amount"] == -15


def test_a_repeated_capture_is_the_same_entry_and_any_other_capture_is_hold_not_open(
    ledger: Ledger, owner: str, url: str
) -> None:
    funded(ledger, owner)
    hold = reserved(ledger, owner, "job", quantity=3)
    whole = reserved(ledger, owner, "whole", operation="CREDIT_SPEND", quantity=2)
    first = ledger.capture(hold["id"], quantity=2)
    all_of_it = ledger.capture(whole["id"])
    before = rows_of(url, owner)

    assert ledger.capture(hold["id"], quantity=2) == first
    assert ledger.capture(whole["id"]) == all_of_it
    captured = plain(hold) | {"status": "CAPTURED", "capture": entry_of(first)}
    others = {
        "fewer": ledger.capture(hold["id"], quantity=1),
        "all": ledger.capture(hold["id"], quantity=3),
        "part of a whole capture": ledger.capture(whole["id"], quantity=1),
    }
    for case, other in others.items():
        assert other["__typename"] == "HoldNotOpen", (case, other)
        assert_error(other, "HoldNotOpen", "HOLD_NOT_OPEN")
    assert ledger.capture(hold["id"], quantity=1)["hold"] == captured
    assert rows_of(url, owner) == before
    assert ledger.books(owner) == (18, 0, 18)


def test_an_unknown_or_malformed_hold_id_is_not_found_to_capture_and_release(
    ledger: Ledger, owner: str
) -> None:
    for hold_id in ("999999999999", "0", "-1", "abc", "1.5", "99999999999999999999999999"):
        assert_error(ledger.capture(hold_id), "NotFound", "NOT_FOUND")
        assert_error(ledger.capture(hold_id, quantity=1), "NotFound", "NOT_FOUND")
        assert_error(ledger.release(hold_id), "NotFound", "NOT_FOUND")
        assert ledger.hold(hold_id) is None


# -- releasing --------------------------------------------------------------------------


def test_releasing_a_hold_frees_its_credits_books_nothing_and_repeats_return_it(
    ledger: Ledger, owner: str, url: str
) -> None:
    funded(ledger, owner)
    hold = reserved(ledger, owner, "job", quantity=4)
    before = booked(url, owner)
    assert ledger.books(owner) == (30, 20, 10)

    released = ledger.release(hold["id"])

    assert released == hold | {"status": "RELEASED"}
    assert ledger.books(owner) == (30, 0, 30)
    assert booked(url, owner) == before
    after = rows_of(url, owner)
    assert ledger.release(hold["id"]) == released
    assert ledger.hold(hold["id"]) == plain(released)
    not_open = ledger.capture(hold["id"])
    assert_error(not_open, "HoldNotOpen", "HOLD_NOT_OPEN")
    assert not_open["hold"] == plain(released)
    assert rows_of(url, owner) == after


def test_releasing_a_captured_hold_is_hold_not_open_and_writes_nothing(
    ledger: Ledger, owner: str, url: str
) -> None:
    funded(ledger, owner)
    hold = reserved(ledger, owner, "job")
    capture = ledger.capture(hold["id"])
    before = rows_of(url, owner)

    refused = ledger.release(hold["id"])

    assert_error(refused, "HoldNotOpen", "HOLD_NOT_OPEN")
    assert refused["hold"] == plain(hold) | {"status": "CAPTURED", "capture": entry_of(capture)}
    assert rows_of(url, owner) == before
    assert ledger.books(owner) == (25, 0, 25)


# -- expiry -----------------------------------------------------------------------------


def test_a_hold_expires_at_expires_at_with_no_job_running_and_frees_its_credits(
    ledger: Ledger, owner: str, url: str
) -> None:
    funded(ledger, owner)
    lasting = reserved(ledger, owner, "lasting", operation="CREDIT_SPEND")
    hold = reserved(ledger, owner, "short", quantity=2, expires_in=1)
    assert instant(hold["expiresAt"]) - instant(hold["createdOn"]) == timedelta(seconds=1)
    read_early = ledger.books(owner)
    if sql(url, "SELECT clock_timestamp() < :at", at=instant(hold["expiresAt"]))[0][0]:
        assert read_early == (30, 11, 19)  # read before expiresAt: still held
    wait_for_database_clock(url, hold["expiresAt"])
    # The ledger may mark the hold expired on the row when a write first finds it past
    # expiresAt (what a reader sees does not change); entries and balance it must not touch.
    before = booked(url, owner)

    assert ledger.books(owner) == (30, 1, 29)
    expired = ledger.hold(hold["id"])
    assert expired == plain(hold) | {"status": "EXPIRED"}
    for result in (ledger.capture(hold["id"]), ledger.release(hold["id"])):
        assert_error(result, "HoldNotOpen", "HOLD_NOT_OPEN")
        assert result["hold"] == expired
    assert ledger.reserve(owner, "CONTENT_CREATION", "short", quantity=2) == hold | {
        "status": "EXPIRED"
    }
    assert booked(url, owner) == before
    open_ids = [edge["node"]["id"] for edge in ledger.holds(owner)["edges"]]
    expired_ids = [edge["node"]["id"] for edge in ledger.holds(owner, status="EXPIRED")["edges"]]
    assert (open_ids, expired_ids) == ([lasting["id"]], [hold["id"]])
    # The freed credits can be spent at once.
    spend = ledger.create(owner, "CREDIT_SPEND", "spend", quantity=29)
    assert (spend["__typename"], spend["balanceAfter"]) == ("LedgerEntry", 1)
    assert ledger.books(owner) == (1, 1, 0)


def test_when_the_soonest_hold_expires_the_others_still_count_until_they_end(
    ledger: Ledger, owner: str, url: str
) -> None:
    funded(ledger, owner, 100)
    lasting = reserved(ledger, owner, "lasting", quantity=3)
    first = reserved(ledger, owner, "first", operation="CREDIT_SPEND", quantity=2, expires_in=1)
    assert ledger.books(owner)[1] in (17, 15)  # 15 once `first` has expired
    wait_for_database_clock(url, first["expiresAt"])
    assert ledger.books(owner) == (100, 15, 85)

    second = reserved(ledger, owner, "second", operation="CREDIT_SPEND", quantity=4, expires_in=1)
    capture = ledger.capture(lasting["id"], quantity=1)
    assert capture["balanceAfter"] == 95
    wait_for_database_clock(url, second["expiresAt"])
    assert ledger.books(owner) == (95, 0, 95)
    statuses = {
        edge["node"]["nonce"]: edge["node"]["status"]
        for edge in ledger.holds(owner, status=None)["edges"]
    }
    assert statuses == {"lasting": "CAPTURED", "first": "EXPIRED", "second": "EXPIRED"}


# -- queries ----------------------------------------------------------------------------


def test_holds_pages_newest_first_by_status_and_null_status_is_every_status(
    ledger: Ledger, owner: str
) -> None:
    ledger.create(owner, "CREDIT_ADD", "funding", quantity=10)
    holds = [reserved(ledger, owner, f"h{n}", operation="CREDIT_SPEND") for n in range(8)]
    ledger.capture(holds[1]["id"])
    ledger.release(holds[2]["id"])
    ledger.release(holds[5]["id"])
    newest_first = [hold["id"] for hold in reversed(holds)]
    open_ = [i for i in newest_first if i not in (holds[1]["id"], holds[2]["id"], holds[5]["id"])]

    def walk(**arguments: Any) -> tuple[list[str], list[dict[str, Any]]]:
        pages, after = [], None
        while True:
            page = ledger.holds(owner, first=2, after=after, **arguments)
            pages.append(page)
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        return [edge["node"]["id"] for p in pages for edge in p["edges"]], pages

    seen, pages = walk()
    assert seen == open_
    assert [len(p["edges"]) for p in pages] == [2, 2, 1]
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True, True]
    assert all(p["pageInfo"]["endCursor"] == p["edges"][-1]["cursor"] for p in pages)
    assert walk(status=None)[0] == newest_first
    assert walk(status="RELEASED")[0] == [holds[5]["id"], holds[2]["id"]]
    assert walk(status="CAPTURED")[0] == [holds[1]["id"]]
    assert walk(status="EXPIRED")[0] == []
    default = ledger.holds(owner)
    assert [edge["node"]["id"] for edge in default["edges"]] == open_
    assert default["edges"][0]["node"] == plain(holds[7])
    assert ledger.holds(f"{owner}-nobody")["edges"] == []


def test_holds_page_size_outside_1_to_100_is_bad_user_input(
    healthai: GraphQLClient, owner: str
) -> None:
    for first in (0, -1, 101):
        body = healthai.execute(HOLDS_PAGE, ownerId=owner, first=first)
        assert body["data"] is None, body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
    body = healthai.execute(HOLDS_PAGE, ownerId=owner, after="not a cursor")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body


OWNER = """
query O($id: ID!) { owner(id: $id) { id balance held available lastUpdated
  open: holds { edges { node { id status } } }
  all: holds(status: null, first: 1) { edges { node { id status } } pageInfo { hasNextPage } }
} }
"""


def test_owner_reads_held_available_and_its_holds(ledger: Ledger, owner: str) -> None:
    funded(ledger, owner)
    first = reserved(ledger, owner, "a", quantity=2)
    second = reserved(ledger, owner, "b", operation="CREDIT_SPEND", quantity=3)
    ledger.release(first["id"])

    found = ledger.client.data(OWNER, id=owner)["owner"]

    newest = ledger.entries(owner)["edges"][0]["node"]["createdOn"]
    assert found == {
        "id": owner,
        "balance": 30,
        "held": 3,
        "available": 27,
        "lastUpdated": newest,
        "open": {"edges": [{"node": {"id": second["id"], "status": "OPEN"}}]},
        "all": {
            "edges": [{"node": {"id": second["id"], "status": "OPEN"}}],
            "pageInfo": {"hasNextPage": True},
        },
    }
    nobody = ledger.client.data(OWNER, id=f"{owner}-nobody")["owner"]
    assert (nobody["balance"], nobody["held"], nobody["available"]) == (0, 0, 0)
    many = ledger.client.data(
        "query($ids: [ID!]!) { balances(ownerIds: $ids) { ownerId balance held available } }",
        ids=[owner, f"{owner}-nobody"],
    )["balances"]
    assert many == [
        {"ownerId": owner, "balance": 30, "held": 3, "available": 27},
        {"ownerId": f"{owner}-nobody", "balance": 0, "held": 0, "available": 0},
    ]


def test_a_balance_at_an_instant_reports_held_and_available_as_they_were(
    ledger: Ledger, owner: str, url: str
) -> None:
    def at(value: str, delta: timedelta = timedelta(0)) -> tuple[int, int, int]:
        found = ledger.balance(owner, at=(instant(value) + delta).isoformat())
        return found["balance"], found["held"], found["available"]

    us = timedelta(microseconds=1)
    funded(ledger, owner)
    captured = reserved(ledger, owner, "captured", quantity=2)
    released = reserved(ledger, owner, "released", operation="CREDIT_SPEND", quantity=4)
    capture = ledger.capture(captured["id"], quantity=1)
    before_release = database_now(url)
    ledger.release(released["id"])
    after_release = database_now(url)
    expiring = reserved(ledger, owner, "expiring", operation="CREDIT_SPEND", expires_in=1)
    wait_for_database_clock(url, expiring["expiresAt"])
    after_expiry = database_now(url)

    assert at(captured["createdOn"], -us) == (30, 0, 30)
    assert at(captured["createdOn"]) == (30, 10, 20)
    assert at(released["createdOn"]) == (30, 14, 16)
    assert at(capture["createdOn"], -us) == (30, 14, 16)
    assert at(capture["createdOn"]) == (25, 4, 21)
    assert at(before_release) == (25, 4, 21)
    assert at(after_release) == (25, 0, 25)
    assert at(expiring["createdOn"]) == (25, 1, 24)
    assert at(expiring["expiresAt"], -us) == (25, 1, 24)
    assert at(after_expiry) == (25, 0, 25)
    assert ledger.books(owner) == (25, 0, 25)


# -- who may ----------------------------------------------------------------------------


def test_an_end_user_reserves_captures_and_releases_its_own_holds_of_its_operations(
    ledger: Ledger, as_user: Callable[[str], Ledger], owner: str, url: str
) -> None:
    funded(ledger, owner)
    me = as_user(owner)

    spend = me.reserve(owner, "CREDIT_SPEND", "mine-1", quantity=3)
    create = me.reserve(owner, "CONTENT_CREATION", "mine-2")
    assert (spend["__typename"], create["__typename"]) == ("Hold", "Hold")
    assert me.books(owner) == (30, 8, 22)
    capture = me.capture(spend["id"], quantity=2)
    assert (capture["kind"], capture["amount"], capture["balanceAfter"]) == ("CAPTURE", -2, 28)
    assert me.release(create["id"]) == create | {"status": "RELEASED"}
    assert me.hold(spend["id"]) == plain(spend) | {
        "status": "CAPTURED",
        "capture": entry_of(capture),
    }
    assert [e["node"]["id"] for e in me.holds(owner, status=None)["edges"]] == [
        create["id"],
        spend["id"],
    ]
    assert me.books(owner) == (28, 0, 28)
    # A service may settle a user's hold.
    third = me.reserve(owner, "CREDIT_SPEND", "mine-3")
    assert ledger.capture(third["id"])["balanceAfter"] == 27
    assert count_rows(url, owner) == (3, 3, 1)


def test_another_owner_s_hold_is_not_found_to_an_end_user_and_its_holds_are_forbidden(
    ledger: Ledger, as_user: Callable[[str], Ledger], owner: str, url: str
) -> None:
    theirs = f"{owner}-theirs"
    funded(ledger, theirs)
    funded(ledger, owner)
    hold = reserved(ledger, theirs, "their-job")
    before = rows_of(url, theirs)
    me = as_user(owner)

    assert_error(me.capture(hold["id"]), "NotFound", "NOT_FOUND")
    assert_error(me.capture(hold["id"], quantity=1), "NotFound", "NOT_FOUND")
    assert_error(me.release(hold["id"]), "NotFound", "NOT_FOUND")
    assert me.hold(hold["id"]) is None
    body = me.client.execute(HOLDS_PAGE, ownerId=theirs)
    assert body["data"] is None, body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
    refused = me.reserve(theirs, "CREDIT_SPEND", "for-them")
    assert_error(refused, "OperationNotAllowed", "OPERATION_NOT_ALLOWED")

    assert rows_of(url, theirs) == before
    assert ledger.hold(hold["id"]) == plain(hold)
    assert count_rows(url, owner) == (1, 0, 1)


class VetAIOperation(LedgerOperation):
    DAILY_REWARD = shared()
    SIGNUP_CREDIT = shared()
    CREDIT_SPEND = shared()
    CREDIT_ADD = shared()
    CONSULTATION = credits(-3, user_may_invoke=False)  # a spend only a service may book


@pytest.mark.slow
def test_an_end_user_may_not_reserve_capture_or_release_an_operation_it_may_not_invoke(
    new_database: Callable[..., str], owner: str
) -> None:
    url = new_database("vetai", operations=VetAIOperation)
    settings = Settings(app_database_urls={"vetai": url}, jwt_secret=TEST_SECRET)
    with TestClient(create_app("vetai", VetAIOperation, settings)) as http:
        service = Ledger(GraphQLClient(http, headers=service_headers("vetai")))
        me = Ledger(GraphQLClient(http, headers=user_headers("vetai", owner)))
        funded(service, owner)
        hold = reserved(service, owner, "by-service", operation="CONSULTATION", quantity=2)
        before = rows_of(url, owner)

        refused = me.reserve(owner, "CONSULTATION", "by-user")
        assert_error(refused, "OperationNotAllowed", "OPERATION_NOT_ALLOWED")
        for result in (me.capture(hold["id"]), me.release(hold["id"])):
            assert_error(result, "OperationNotAllowed", "OPERATION_NOT_ALLOWED")

        assert rows_of(url, owner) == before
        assert service.books(owner) == (30, 6, 24)
        assert me.hold(hold["id"]) == plain(hold)  # its own hold, which it may read
        assert service.capture(hold["id"])["amount"] == -6


def test_travelai_does_not_see_healthai_s_holds(
    ledger: Ledger, travelai: GraphQLClient, owner: str
) -> None:
    funded(ledger, owner)
    hold = reserved(ledger, owner, "job")
    other_app = Ledger(travelai)

    assert other_app.holds(owner, status=None)["edges"] == []
    assert other_app.books(owner) == (0, 0, 0)
    assert ledger.hold(hold["id"]) == plain(hold)


# -- balanceChanged ---------------------------------------------------------------------

SUBSCRIPTION = (
    "subscription($o: ID!) { balanceChanged(ownerId: $o)"
    " { ownerId balance held available lastUpdated } }"
)
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def server(app_urls: dict[str, str]) -> Iterator[ServerProcess]:
    """A real healthai process, for a real WebSocket client."""
    env = clean_environment(HEALTHAI_DATABASE_URL=app_urls["healthai"])
    with ServerProcess.uvicorn("healthai", env) as process:
        yield process


async def receive(ws: ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def next_balance(ws: ClientConnection) -> dict[str, Any]:
    message = await receive(ws)
    assert (message["type"], message["id"]) == ("next", "1"), message
    assert "errors" not in message["payload"], message
    value: dict[str, Any] = message["payload"]["data"]["balanceChanged"]
    return value


@pytest.mark.slow
def test_balance_changed_fires_on_reserve_capture_and_release_with_held_and_available(
    server: ServerProcess, owner: str
) -> None:
    headers = service_headers("healthai")

    def value(balance: int, held: int, last: str | None) -> dict[str, Any]:
        return {
            "ownerId": owner,
            "balance": balance,
            "held": held,
            "available": balance - held,
            "lastUpdated": last,
        }

    async def scenario() -> None:
        url = server.url().replace("http", "ws", 1) + "/graphql"
        protocols = [Subprotocol("graphql-transport-ws")]
        async with (
            connect(url, subprotocols=protocols, open_timeout=TIMEOUT) as ws,
            httpx.AsyncClient(base_url=server.url(), headers=headers, timeout=TIMEOUT) as http,
        ):
            await ws.send(json.dumps({"type": "connection_init", "payload": headers}))
            assert await receive(ws) == {"type": "connection_ack"}
            payload = {"query": SUBSCRIPTION, "variables": {"o": owner}}
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            assert await next_balance(ws) == value(0, 0, None)

            async def mutate(document: str, field: str, **input_: Any) -> dict[str, Any]:
                return await mutate_async(http, document, field, **input_)

            add = await mutate(
                CREATE_ENTRY_FULL,
                "createEntry",
                ownerId=owner,
                operation="CREDIT_ADD",
                nonce="add",
                quantity=3,
            )
            assert await next_balance(ws) == value(30, 0, add["createdOn"])
            hold = await mutate(
                RESERVE_CREDITS,
                "reserveCredits",
                ownerId=owner,
                operation="CONTENT_CREATION",
                nonce="job",
                quantity=3,
            )
            assert await next_balance(ws) == value(30, 15, add["createdOn"])
            capture = await mutate(CAPTURE_HOLD, "captureHold", holdId=hold["id"], quantity=1)
            assert await next_balance(ws) == value(25, 0, capture["createdOn"])
            other = await mutate(
                RESERVE_CREDITS,
                "reserveCredits",
                ownerId=owner,
                operation="CREDIT_SPEND",
                nonce="other",
                quantity=4,
            )
            assert await next_balance(ws) == value(25, 4, capture["createdOn"])
            released = await mutate(RELEASE_HOLD, "releaseHold", holdId=other["id"])
            assert released["status"] == "RELEASED"
            assert await next_balance(ws) == value(25, 0, capture["createdOn"])
            # Refusals and replays change nothing and send nothing.
            again = await mutate(RELEASE_HOLD, "releaseHold", holdId=other["id"])
            assert again == released
            refused = await mutate(
                RESERVE_CREDITS,
                "reserveCredits",
                ownerId=owner,
                operation="CONTENT_CREATION",
                nonce="too-big",
                quantity=6,
            )
            assert refused["__typename"] == "InsufficientCredits"
            with pytest.raises(TimeoutError):
                pytest.fail(f"unexpected message {await receive(ws, 0.5)}")

    asyncio.run(scenario())
