"""Refunds (contract section 4): refundEntry reverses an OPERATION or CAPTURE entry once,
with the opposite amount and links both ways; refusals (AlreadyRefunded, NotRefundable,
InsufficientCredits, nonce conflicts, NotFound, end users) write nothing."""

from collections.abc import Callable
from typing import Any

import pytest

from tests.support import (
    LEDGER_ENTRY_LINKED,
    GraphQLClient,
    Ledger,
    count_rows,
    entry_of,
    rows_of,
    verify_books,
    wait_for_database_clock,
)

ENTRY_BY_NONCE = (
    "query($o: ID!) { entries(ownerId: $o, first: 100)"
    f" {{ edges {{ node {{ {LEDGER_ENTRY_LINKED} }} }} }} }}"
)


@pytest.fixture
def ledger(healthai: GraphQLClient) -> Ledger:
    return Ledger(healthai)


@pytest.fixture
def url(app_urls: dict[str, str]) -> str:
    return app_urls["healthai"]


def assert_error(result: dict[str, Any], typename: str, code: str) -> None:
    assert (result["__typename"], result.get("code")) == (typename, code), result
    assert result["message"], result


def stored_entry(ledger: Ledger, owner_id: str, nonce: str) -> dict[str, Any]:
    """The owner's entry of `nonce` as history reads it, refund links included."""
    edges = ledger.client.data(ENTRY_BY_NONCE, o=owner_id)["entries"]["edges"]
    [node] = [edge["node"] for edge in edges if edge["node"]["nonce"] == nonce]
    return dict(node)


def test_refunding_a_spend_books_the_opposite_amount_and_links_both_entries(
    ledger: Ledger, owner: str, url: str
) -> None:
    ledger.create(owner, "CREDIT_ADD", "funding", quantity=3)
    spend = ledger.create(owner, "CONTENT_CREATION", "spend", quantity=2, metadata={"job": "1"})
    assert spend["balanceAfter"] == 20

    refund = ledger.refund(spend["id"], "refund-1", metadata={"ticket": "T-1"})

    assert refund["__typename"] == "LedgerEntry", refund
    assert {
        k: refund[k] for k in ("ownerId", "operation", "quantity", "amount", "balanceAfter")
    } == {
        "ownerId": owner,
        "operation": "CONTENT_CREATION",
        "quantity": 2,
        "amount": 10,
        "balanceAfter": 30,
    }
    assert (refund["kind"], refund["nonce"], refund["metadata"]) == (
        "REFUND",
        "refund-1",
        {"ticket": "T-1"},
    )
    assert refund["refundOf"] == entry_of(spend)
    assert refund["refundedBy"] is None
    assert int(refund["id"]) > int(spend["id"])
    original = stored_entry(ledger, owner, "spend")
    assert original["refundedBy"] == entry_of(refund)
    assert (original["refundOf"], original["kind"], original["amount"]) == (None, "OPERATION", -10)
    assert stored_entry(ledger, owner, "refund-1") == {
        k: v for k, v in refund.items() if k != "__typename"
    }
    assert ledger.books(owner) == (30, 0, 30)
    assert count_rows(url, owner) == (3, 0, 1)


def test_refunding_a_credit_takes_it_back_and_zero_amount_entries_refund_to_zero(
    ledger: Ledger, owner: str
) -> None:
    credit = ledger.create(owner, "CREDIT_ADD", "credit", quantity=2)
    free = ledger.create(owner, "CONTENT_ACCESS", "free", quantity=4)

    taken = ledger.refund(credit["id"], "take-back")
    zero = ledger.refund(free["id"], "zero")

    assert (taken["kind"], taken["quantity"], taken["amount"], taken["balanceAfter"]) == (
        "REFUND",
        2,
        -20,
        0,
    )
    assert (zero["kind"], zero["quantity"], zero["amount"], zero["balanceAfter"]) == (
        "REFUND",
        4,
        0,
        0,
    )
    assert ledger.books(owner) == (0, 0, 0)


def test_refunding_a_capture_reverses_what_was_captured_and_leaves_the_hold_captured(
    ledger: Ledger, owner: str, url: str
) -> None:
    ledger.create(owner, "CREDIT_ADD", "funding", quantity=3)
    hold = ledger.reserve(owner, "CONTENT_CREATION", "job", quantity=3, metadata={"job": "7"})
    capture = ledger.capture(hold["id"], quantity=2)
    assert (capture["kind"], capture["amount"], capture["balanceAfter"]) == ("CAPTURE", -10, 20)

    refund = ledger.refund(capture["id"], "refund-job")

    assert (refund["kind"], refund["operation"], refund["quantity"]) == (
        "REFUND",
        "CONTENT_CREATION",
        2,
    )
    assert (refund["amount"], refund["balanceAfter"], refund["nonce"]) == (10, 30, "refund-job")
    assert refund["refundOf"] == entry_of(capture)
    assert refund["metadata"] is None
    assert stored_entry(ledger, owner, "job")["refundedBy"] == entry_of(refund)
    found = ledger.hold(hold["id"])
    assert found is not None and found["status"] == "CAPTURED"
    assert ledger.books(owner) == (30, 0, 30)
    assert count_rows(url, owner) == (3, 1, 1)


def test_an_entry_is_refunded_once_and_a_second_refund_is_already_refunded_carrying_it(
    ledger: Ledger, owner: str, url: str
) -> None:
    ledger.create(owner, "CREDIT_ADD", "funding")
    spend = ledger.create(owner, "CREDIT_SPEND", "spend", quantity=3)
    refund = ledger.refund(spend["id"], "first")
    before = rows_of(url, owner)

    for nonce in ("second", "third"):
        again = ledger.refund(spend["id"], nonce)
        assert_error(again, "AlreadyRefunded", "ALREADY_REFUNDED")
        assert again["refund"] == {k: v for k, v in refund.items() if k != "__typename"}

    assert rows_of(url, owner) == before
    assert ledger.books(owner) == (10, 0, 10)


def test_a_replayed_refund_is_the_same_refund_entry(ledger: Ledger, owner: str, url: str) -> None:
    ledger.create(owner, "CREDIT_ADD", "funding")
    spend = ledger.create(owner, "CREDIT_SPEND", "spend")
    refund = ledger.refund(spend["id"], "r", metadata={"ticket": "1"})
    before = rows_of(url, owner)

    assert ledger.refund(spend["id"], "r", metadata={"ticket": "1"}) == refund
    assert ledger.refund(spend["id"], "r") == refund

    assert rows_of(url, owner) == before


def test_a_refund_entry_is_not_refundable(ledger: Ledger, owner: str, url: str) -> None:
    ledger.create(owner, "CREDIT_ADD", "funding")
    spend = ledger.create(owner, "CREDIT_SPEND", "spend")
    refund = ledger.refund(spend["id"], "r")
    before = rows_of(url, owner)

    for nonce in ("rr", "rr2"):
        assert_error(ledger.refund(refund["id"], nonce), "NotRefundable", "NOT_REFUNDABLE")

    assert rows_of(url, owner) == before


def test_refunding_a_credit_no_longer_available_is_insufficient_credits(
    ledger: Ledger, owner: str, url: str
) -> None:
    credit = ledger.create(owner, "CREDIT_ADD", "credit")
    ledger.create(owner, "CREDIT_SPEND", "spent", quantity=4)
    before = rows_of(url, owner)

    spent = ledger.refund(credit["id"], "take-back")

    assert spent == {
        "__typename": "InsufficientCredits",
        "code": "INSUFFICIENT_CREDITS",
        "message": spent["message"],
        "balance": 6,
        "required": 10,
    }
    assert rows_of(url, owner) == before

    # Held credits are not available either.
    ledger.create(owner, "CREDIT_ADD", "more", quantity=1)
    hold = ledger.reserve(owner, "CREDIT_SPEND", "job", quantity=7)
    assert ledger.books(owner) == (16, 7, 9)
    held = ledger.refund(credit["id"], "take-back-2")
    assert (held["__typename"], held["balance"], held["required"]) == (
        "InsufficientCredits",
        9,
        10,
    )
    ledger.release(hold["id"])
    taken = ledger.refund(credit["id"], "take-back-3")
    assert (taken["amount"], taken["balanceAfter"]) == (-10, 6)
    assert ledger.books(owner) == (6, 0, 6)


def test_nonce_conflicts_of_a_refund(ledger: Ledger, owner: str, url: str) -> None:
    ledger.create(owner, "CREDIT_ADD", "funding")
    first = ledger.create(owner, "CREDIT_SPEND", "first")
    second = ledger.create(owner, "CREDIT_SPEND", "second")
    hold = ledger.reserve(owner, "CREDIT_SPEND", "held")
    refund = ledger.refund(first["id"], "refund-of-first")
    before = rows_of(url, owner)

    # The nonce names an entry that is not this entry's refund: the entry itself, another
    # entry, or another entry's refund.
    for entry_id, nonce, existing in (
        (second["id"], "second", second),
        (second["id"], "first", first),
        (second["id"], "refund-of-first", refund),
    ):
        conflict = ledger.refund(entry_id, nonce)
        assert_error(conflict, "NonceConflict", "NONCE_CONFLICT")
        assert entry_of(conflict["existing"]) == entry_of(existing)
    held = ledger.refund(second["id"], "held")
    assert_error(held, "HoldNonceConflict", "NONCE_CONFLICT")
    assert held["existingHold"] == entry_of(hold)
    # And a createEntry or reserve with a refund's nonce is a conflict too.
    assert ledger.create(owner, "CREDIT_SPEND", "refund-of-first")["__typename"] == (
        "NonceConflict"
    )
    assert ledger.reserve(owner, "CREDIT_SPEND", "refund-of-first")["__typename"] == (
        "NonceConflict"
    )

    assert rows_of(url, owner) == before


def test_an_unknown_or_malformed_entry_id_is_not_found(
    ledger: Ledger, owner: str, url: str
) -> None:
    for entry_id in ("999999999999", "0", "-3", "abc", "", "99999999999999999999999999"):
        assert_error(ledger.refund(entry_id, f"r-{entry_id}"), "NotFound", "NOT_FOUND")
    assert count_rows(url, owner) == (0, 0, 0)


def test_a_refund_with_a_bad_nonce_is_invalid_input(ledger: Ledger, owner: str, url: str) -> None:
    ledger.create(owner, "CREDIT_ADD", "funding")
    spend = ledger.create(owner, "CREDIT_SPEND", "spend")
    before = rows_of(url, owner)

    for nonce in ("", "x" * 256, "a\u0000b"):
        result = ledger.refund(spend["id"], nonce)
        assert_error(result, "InvalidInput", "INVALID_INPUT")
        assert result["field"] == "nonce"

    assert rows_of(url, owner) == before


def test_refunds_are_for_services_an_end_user_may_not_refund_even_its_own_entry(
    ledger: Ledger, as_user: Callable[[str], Ledger], owner: str, url: str
) -> None:
    ledger.create(owner, "CREDIT_ADD", "funding")
    mine = as_user(owner).create(owner, "CREDIT_SPEND", "mine")
    assert mine["__typename"] == "LedgerEntry", mine
    theirs = ledger.create(f"{owner}-theirs", "CREDIT_ADD", "theirs")
    before = rows_of(url, owner)

    # The same answer whoever's entry it is, or if there is none: no hint that it exists.
    for entry_id in (mine["id"], theirs["id"], "999999999999"):
        refused = as_user(owner).refund(entry_id, "by-user")
        assert_error(refused, "OperationNotAllowed", "OPERATION_NOT_ALLOWED")

    assert rows_of(url, owner) == before
    assert count_rows(url, f"{owner}-theirs") == (1, 0, 1)


def test_travelai_refunds_and_settles_holds_with_its_own_operations(
    travelai: GraphQLClient, owner: str
) -> None:
    ledger = Ledger(travelai)
    bonus = ledger.create(owner, "LOYALTY_BONUS", "bonus", quantity=5)
    assert (bonus["amount"], bonus["balanceAfter"], bonus["kind"]) == (10, 10, "OPERATION")
    hold = ledger.reserve(owner, "CREDIT_SPEND", "job", quantity=4)
    assert (hold["__typename"], hold["amount"], hold["operation"]) == ("Hold", -4, "CREDIT_SPEND")
    capture = ledger.capture(hold["id"], quantity=3)
    assert (capture["amount"], capture["balanceAfter"]) == (-3, 7)
    refund = ledger.refund(capture["id"], "refund")
    assert (refund["operation"], refund["amount"], refund["balanceAfter"]) == (
        "CREDIT_SPEND",
        3,
        10,
    )
    assert_error(ledger.reserve(owner, "BOOKING_REWARD", "bad"), "InvalidInput", "INVALID_INPUT")
    assert ledger.books(owner) == (10, 0, 10)


def test_the_books_verify_with_partial_captures_refunds_releases_and_expired_holds(
    ledger: Ledger, owner: str, url: str
) -> None:
    ledger.create(owner, "CREDIT_ADD", "funding", quantity=5)
    partial = ledger.reserve(owner, "CONTENT_CREATION", "partial", quantity=4)
    capture = ledger.capture(partial["id"], quantity=3)
    ledger.refund(capture["id"], "refund-capture")
    ledger.release(ledger.reserve(owner, "CREDIT_SPEND", "released", quantity=2)["id"])
    expiring = ledger.reserve(owner, "CREDIT_SPEND", "expiring", expires_in=1)
    spend = ledger.create(owner, "CREDIT_SPEND", "spend", quantity=3)
    ledger.refund(spend["id"], "refund-spend")
    wait_for_database_clock(url, expiring["expiresAt"])
    ledger.create(owner, "CREDIT_SPEND", "after-expiry")  # a write that finds it expired
    open_ = ledger.reserve(owner, "CREDIT_SPEND", "open", quantity=7)
    assert open_["status"] == "OPEN"
    assert ledger.books(owner) == (49, 7, 42)

    summary = verify_books("healthai", url)

    assert summary.startswith("healthai: the books balance: "), summary
