"""Quantities and metadata on writes (contract section 4): an entry's amount is the
operation's times its quantity, metadata is stored and returned equal, every bad shape of
either is InvalidInput and writes nothing, and history filters and pages by metadata."""

from typing import Any

import pytest

from tests.support import (
    ENTRIES_BY_METADATA,
    GraphQLClient,
    Ledger,
    count_rows,
    entry_of,
    rows_of,
    sql,
)

JOB = {"jobId": "job-7f3a", "model": "gpt-4o", "note": 'ünïcödé 🙂 and "quotes"'}


@pytest.fixture
def ledger(healthai: GraphQLClient) -> Ledger:
    return Ledger(healthai)


@pytest.fixture
def url(app_urls: dict[str, str]) -> str:
    return app_urls["healthai"]


def assert_invalid(result: dict[str, Any], field: str) -> None:
    assert result["__typename"] == "InvalidInput", result
    assert (result["code"], result["field"]) == ("INVALID_INPUT", field), result
    assert result["message"], result


def test_an_entry_s_amount_is_the_operation_s_amount_times_its_quantity(
    ledger: Ledger, owner: str, url: str
) -> None:
    added = ledger.create(owner, "CREDIT_ADD", "add", quantity=3)
    spent = ledger.create(owner, "CONTENT_CREATION", "create", quantity=2)
    spends = ledger.create(owner, "CREDIT_SPEND", "spend", quantity=7)
    free = ledger.create(owner, "CONTENT_ACCESS", "read", quantity=9)
    single = ledger.create(owner, "CREDIT_SPEND", "one")

    found = [
        (r["operation"], r["quantity"], r["amount"], r["balanceAfter"])
        for r in [added, spent, spends, free, single]
    ]
    assert found == [
        ("CREDIT_ADD", 3, 30, 30),
        ("CONTENT_CREATION", 2, -10, 20),
        ("CREDIT_SPEND", 7, -7, 13),
        ("CONTENT_ACCESS", 9, 0, 13),
        ("CREDIT_SPEND", 1, -1, 12),
    ]
    for result in (added, spent, spends, free, single):
        assert (result["__typename"], result["kind"], result["metadata"]) == (
            "LedgerEntry",
            "OPERATION",
            None,
        )
        assert (result["refundOf"], result["refundedBy"]) == (None, None)
    assert ledger.books(owner) == (12, 0, 12)
    stored = sql(
        url, "SELECT amount, balance_after FROM entries WHERE owner_id = :o ORDER BY id", o=owner
    )
    assert [tuple(row) for row in stored] == [(30, 30), (-10, 20), (-7, 13), (0, 13), (-1, 12)]


def test_a_quantity_of_a_million_is_accepted_and_multiplies_the_amount(
    ledger: Ledger, owner: str
) -> None:
    added = ledger.create(owner, "CREDIT_ADD", "big", quantity=1_000_000)
    assert (added["quantity"], added["amount"], added["balanceAfter"]) == (
        1_000_000,
        10_000_000,
        10_000_000,
    )
    spent = ledger.create(owner, "CONTENT_CREATION", "big-spend", quantity=1_000_000)
    assert (spent["amount"], spent["balanceAfter"]) == (-5_000_000, 5_000_000)
    assert ledger.books(owner) == (5_000_000, 0, 5_000_000)


@pytest.mark.parametrize("quantity", [0, -1, -1_000_000, 1_000_001, 2_147_483_647])
@pytest.mark.parametrize("operation", ["CREDIT_ADD", "CREDIT_SPEND", "CONTENT_ACCESS"])
def test_a_quantity_outside_1_to_a_million_is_invalid_input_and_writes_nothing(
    ledger: Ledger, owner: str, url: str, quantity: int, operation: str
) -> None:
    ledger.create(owner, "CREDIT_ADD", "seed")
    before = rows_of(url, owner)

    assert_invalid(ledger.create(owner, operation, "bad", quantity=quantity), "quantity")

    assert rows_of(url, owner) == before
    assert ledger.books(owner) == (10, 0, 10)


@pytest.mark.parametrize("operation", ["DAILY_REWARD", "SIGNUP_CREDIT"])
def test_a_limited_operation_takes_quantity_1_only(
    ledger: Ledger, owner: str, url: str, operation: str
) -> None:
    assert_invalid(ledger.create(owner, operation, "two", quantity=2), "quantity")
    assert count_rows(url, owner) == (0, 0, 0)

    once = ledger.create(owner, operation, "one", quantity=1)
    amount = {"DAILY_REWARD": 1, "SIGNUP_CREDIT": 3}[operation]
    assert (once["__typename"], once["quantity"], once["amount"]) == ("LedgerEntry", 1, amount)
    # Refused on quantity even once the limit is used up, and still nothing written.
    assert_invalid(ledger.create(owner, operation, "three", quantity=3), "quantity")
    assert count_rows(url, owner) == (1, 0, 1)


def test_a_replay_with_the_same_quantity_is_the_entry_and_another_quantity_a_nonce_conflict(
    ledger: Ledger, owner: str, url: str
) -> None:
    first = ledger.create(owner, "CREDIT_ADD", "n", quantity=2)
    assert (first["amount"], first["balanceAfter"]) == (20, 20)
    before = rows_of(url, owner)

    assert ledger.create(owner, "CREDIT_ADD", "n", quantity=2) == first
    for quantity in (1, 3):
        conflict = ledger.create(owner, "CREDIT_ADD", "n", quantity=quantity)
        assert (conflict["__typename"], conflict["code"]) == ("NonceConflict", "NONCE_CONFLICT")
        assert conflict["existing"] == entry_of(first) | {
            "refundOf": None,
            "refundedBy": None,
        }
    # Leaving quantity out is quantity 1: not the entry of quantity 2.
    omitted = ledger.create(owner, "CREDIT_ADD", "n")
    assert omitted["__typename"] == "NonceConflict", omitted
    assert rows_of(url, owner) == before

    single = ledger.create(owner, "CREDIT_ADD", "single")
    assert ledger.create(owner, "CREDIT_ADD", "single", quantity=1) == single
    assert ledger.create(owner, "CREDIT_ADD", "single", quantity=2)["__typename"] == (
        "NonceConflict"
    )
    assert count_rows(url, owner) == (2, 0, 1)
    assert ledger.books(owner) == (30, 0, 30)


def test_insufficient_credits_requires_the_whole_amount_times_the_quantity(
    ledger: Ledger, owner: str, url: str
) -> None:
    ledger.create(owner, "CREDIT_ADD", "seed")
    before = rows_of(url, owner)

    refused = ledger.create(owner, "CONTENT_CREATION", "too-much", quantity=3)

    assert refused == {
        "__typename": "InsufficientCredits",
        "code": "INSUFFICIENT_CREDITS",
        "message": refused["message"],
        "balance": 10,
        "required": 15,
    }
    assert rows_of(url, owner) == before
    exact = ledger.create(owner, "CREDIT_SPEND", "exact", quantity=10)
    assert (exact["amount"], exact["balanceAfter"]) == (-10, 0)


def test_metadata_is_stored_and_returned_as_an_equal_object_and_null_when_none(
    ledger: Ledger, owner: str, url: str
) -> None:
    with_metadata = ledger.create(owner, "CREDIT_ADD", "with", metadata=JOB)
    without = ledger.create(owner, "CREDIT_ADD", "without")
    explicit_null = ledger.create(owner, "CREDIT_ADD", "null", metadata=None)

    assert with_metadata["metadata"] == JOB
    assert (without["metadata"], explicit_null["metadata"]) == (None, None)
    # Read back through history, and replayed: still equal.
    page = ledger.entries(owner)
    by_nonce = {edge["node"]["nonce"]: edge["node"] for edge in page["edges"]}
    assert by_nonce["with"]["metadata"] == JOB
    assert entry_of(by_nonce["with"]) == entry_of(with_metadata)
    assert (by_nonce["without"]["metadata"], by_nonce["null"]["metadata"]) == (None, None)
    assert ledger.create(owner, "CREDIT_ADD", "with", metadata=JOB)["metadata"] == JOB
    assert count_rows(url, owner) == (3, 0, 1)


def test_metadata_at_its_limits_is_accepted(ledger: Ledger, owner: str) -> None:
    widest = {f"{n:02d}" + "k" * 62: "v" * 1000 for n in range(16)}
    assert all(len(key) == 64 for key in widest)
    odd = {"k": "", "🙂": "é\u0301", "with space": "line\nbreak\tand tab"}

    first = ledger.create(owner, "CREDIT_ADD", "widest", metadata=widest)
    second = ledger.create(owner, "CREDIT_ADD", "odd", metadata=odd)

    assert first["metadata"] == widest
    assert second["metadata"] == odd


# Every shape the contract refuses: not an object, too many keys, a bad key, a value that
# is not a string or is too long.
BAD_METADATA: dict[str, Any] = {
    "a list": [{"jobId": "1"}],
    "a string": '{"jobId": "1"}',
    "a number": 7,
    "a boolean": True,
    "17 keys": {f"k{n}": "v" for n in range(17)},
    "an empty key": {"": "v"},
    "a key of 65 characters": {"k" * 65: "v"},
    "a key with a newline": {"job\nid": "v"},
    "a key with NUL": {"job\u0000id": "v"},
    "a key with DEL": {"job\u007fid": "v"},
    "a key with a C1 control": {"job\u0085id": "v"},
    "a number value": {"jobId": 7},
    "a boolean value": {"jobId": False},
    "a null value": {"jobId": None},
    "an object value": {"jobId": {"nested": "v"}},
    "a list value": {"jobId": ["v"]},
    "a value of 1001 characters": {"jobId": "v" * 1001},
}


@pytest.mark.parametrize("metadata", BAD_METADATA.values(), ids=BAD_METADATA.keys())
def test_every_bad_shape_of_metadata_on_create_entry_is_invalid_input_and_writes_nothing(
    ledger: Ledger, owner: str, url: str, metadata: Any
) -> None:
    ledger.create(owner, "CREDIT_ADD", "seed")
    before = rows_of(url, owner)

    for operation in ("CREDIT_ADD", "CREDIT_SPEND"):
        assert_invalid(ledger.create(owner, operation, "bad", metadata=metadata), "metadata")

    assert rows_of(url, owner) == before


@pytest.mark.parametrize("metadata", BAD_METADATA.values(), ids=BAD_METADATA.keys())
def test_every_bad_shape_of_metadata_on_reserve_capture_and_refund_is_invalid_input(
    ledger: Ledger, owner: str, url: str, metadata: Any
) -> None:
    ledger.create(owner, "CREDIT_ADD", "seed")
    spend = ledger.create(owner, "CREDIT_SPEND", "spend")
    hold = ledger.reserve(owner, "CONTENT_CREATION", "hold")
    assert hold["__typename"] == "Hold", hold
    before = rows_of(url, owner)

    assert_invalid(ledger.reserve(owner, "CREDIT_SPEND", "bad", metadata=metadata), "metadata")
    assert_invalid(ledger.capture(hold["id"], metadata=metadata), "metadata")
    assert_invalid(ledger.refund(spend["id"], "bad-refund", metadata=metadata), "metadata")

    assert rows_of(url, owner) == before
    assert ledger.hold(hold["id"]) == entry_of(hold)
    assert ledger.books(owner) == (9, 5, 4)


def test_reserve_capture_and_refund_keep_their_metadata(ledger: Ledger, owner: str) -> None:
    ledger.create(owner, "CREDIT_ADD", "seed")
    job = {"jobId": "j1"}
    hold = ledger.reserve(owner, "CREDIT_SPEND", "h", quantity=2, metadata=job)
    assert hold["metadata"] == job
    capture = ledger.capture(hold["id"], quantity=1, metadata={"jobId": "j1", "used": "1"})
    assert capture["metadata"] == {"jobId": "j1", "used": "1"}
    refund = ledger.refund(capture["id"], "r", metadata={"ticket": "T-9"})
    assert refund["metadata"] == {"ticket": "T-9"}
    plain = ledger.refund(ledger.create(owner, "CREDIT_SPEND", "s")["id"], "r2")
    assert plain["metadata"] is None


def test_the_metadata_filter_returns_the_entries_containing_every_given_pair(
    ledger: Ledger, owner: str
) -> None:
    a1 = ledger.create(owner, "CREDIT_ADD", "a1", metadata={"jobId": "a", "step": "1"})
    b1 = ledger.create(owner, "CREDIT_ADD", "b1", metadata={"jobId": "b", "step": "1"})
    a2 = ledger.create(owner, "CREDIT_SPEND", "a2", metadata={"jobId": "a", "step": "2"})
    ledger.create(owner, "CREDIT_ADD", "none")
    ledger.create(f"{owner}-other", "CREDIT_ADD", "a1", metadata={"jobId": "a", "step": "1"})

    def ids(metadata: Any, **arguments: Any) -> list[str]:
        page = ledger.entries(owner, metadata=metadata, **arguments)
        return [edge["node"]["id"] for edge in page["edges"]]

    assert ids({"jobId": "a"}) == [a2["id"], a1["id"]]
    assert ids({"jobId": "a", "step": "2"}) == [a2["id"]]
    assert ids({"step": "1"}) == [b1["id"], a1["id"]]
    assert ids({"jobId": "a", "step": "3"}) == []
    assert ids({"jobId": "A"}) == []
    assert ids({"jobId": "a"}, operation="CREDIT_ADD") == [a1["id"]]
    assert len(ids(None)) == 4
    nodes = ledger.entries(owner, metadata={"jobId": "a"})["edges"]
    assert [edge["node"]["metadata"] for edge in nodes] == [
        {"jobId": "a", "step": "2"},
        {"jobId": "a", "step": "1"},
    ]


def test_the_metadata_filter_pages_with_its_cursor_each_match_once_newest_first(
    ledger: Ledger, owner: str
) -> None:
    matching = []
    for n in range(23):
        entry = ledger.create(owner, "CONTENT_ACCESS", f"m{n}", metadata={"jobId": "paged"})
        matching.append(entry["id"])
        ledger.create(owner, "CONTENT_ACCESS", f"x{n}", metadata={"jobId": "other"})
        ledger.create(owner, "CONTENT_ACCESS", f"y{n}")

    seen, pages, after = [], [], None
    while True:
        page = ledger.entries(owner, metadata={"jobId": "paged"}, first=5, after=after)
        pages.append(page)
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == matching[::-1]
    assert [len(page["edges"]) for page in pages] == [5, 5, 5, 5, 3]
    assert [page["pageInfo"]["hasPreviousPage"] for page in pages] == [False] + [True] * 4
    for page in pages:
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]


def test_a_metadata_filter_that_is_not_an_object_of_strings_is_bad_user_input(
    healthai: GraphQLClient, owner: str
) -> None:
    for metadata in (["jobId"], "jobId", 3):
        body = healthai.execute(ENTRIES_BY_METADATA, ownerId=owner, metadata=metadata)
        assert body.get("data") is None, body
        codes = [error["extensions"]["code"] for error in body["errors"]]
        assert codes == ["BAD_USER_INPUT"], body


def test_a_quantity_that_would_take_the_balance_past_the_int_range_is_invalid_quantity(
    ledger: Ledger, owner: str, url: str
) -> None:
    # GraphQL's Int is 32-bit: 214 credits of 10,000,000 reach 2,140,000,000, and one more
    # would pass 2,147,483,647.
    for n in range(214):
        added = ledger.create(owner, "CREDIT_ADD", f"n{n}", quantity=1_000_000)
        assert added["__typename"] == "LedgerEntry", added
    assert ledger.books(owner) == (2_140_000_000, 0, 2_140_000_000)
    before = rows_of(url, owner)

    assert_invalid(ledger.create(owner, "CREDIT_ADD", "past", quantity=1_000_000), "quantity")

    assert rows_of(url, owner) == before
    small = ledger.create(owner, "CREDIT_ADD", "fits", quantity=700_000)
    assert small["balanceAfter"] == 2_147_000_000
