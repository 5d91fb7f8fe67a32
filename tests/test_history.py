"""History: cursor pagination of an owner's entries (newest first, keyset, filters), balances
as of a past instant, and the owner field that reads both, on a real PostgreSQL."""

import base64
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.support import GraphQLClient, sql

ENTRY = "id operation amount balanceAfter nonce createdOn"
ENTRIES = f"""
query Entries($o: ID!, $first: Int, $after: String, $op: HealthAIOperation,
              $since: DateTime, $until: DateTime) {{
  entries(ownerId: $o, first: $first, after: $after, operation: $op, since: $since,
          until: $until) {{
    edges {{ cursor node {{ {ENTRY} }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }}
}}
"""
BALANCE_AT = (
    "query($o: ID!, $at: DateTime) { balance(ownerId: $o, at: $at) { balance lastUpdated } }"
)


def fill(url: str, owner_id: str, operations: list[str]) -> None:
    """Appends entries through the ledger's own create_entry(), nonces n1, n2, ..."""
    sql(
        url,
        """
        SELECT create_entry(:owner, op.name, 'n' || op.n)
          FROM unnest(CAST(:operations AS text[])) WITH ORDINALITY AS op(name, n)
         ORDER BY op.n
        """,
        owner=owner_id,
        operations=operations,
    )


def page(client: GraphQLClient, owner_id: str, **arguments: Any) -> dict[str, Any]:
    result: dict[str, Any] = client.data(ENTRIES, o=owner_id, **arguments)["entries"]
    return result


def walk(client: GraphQLClient, owner_id: str, **arguments: Any) -> Iterator[dict[str, Any]]:
    """Every page, following endCursor until hasNextPage is false."""
    after = None
    while True:
        current = page(client, owner_id, after=after, **arguments)
        yield current
        if not current["pageInfo"]["hasNextPage"]:
            return
        after = current["pageInfo"]["endCursor"]


def stored(url: str, owner_id: str) -> list[dict[str, Any]]:
    """The owner's entries straight from the table, newest first."""
    rows = sql(
        url,
        "SELECT id, operation, created_on FROM entries WHERE owner_id = :o"
        " ORDER BY created_on DESC, id DESC",
        o=owner_id,
    )
    return [{"id": str(r.id), "operation": r.operation, "createdOn": r.created_on} for r in rows]


def test_paging_through_1000_entries_in_pages_of_7_returns_each_once_newest_first(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    fill(app_urls["healthai"], owner, ["CREDIT_ADD"] * 1000)

    pages = list(walk(healthai, owner, first=7))

    seen = [edge["node"]["id"] for p in pages for edge in p["edges"]]
    assert seen == [e["id"] for e in stored(app_urls["healthai"], owner)]
    assert len(seen) == len(set(seen)) == 1000
    assert len(pages) == 143 and [len(p["edges"]) for p in pages[-2:]] == [7, 6]
    assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True] * 142 + [False]
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False] + [True] * 142
    balances = [edge["node"]["balanceAfter"] for p in pages for edge in p["edges"]]
    assert balances == list(range(10000, 0, -10))


def test_page_info_cursors_are_those_of_the_first_and_last_edges(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    fill(app_urls["healthai"], owner, ["CREDIT_ADD"] * 3)
    result = page(healthai, owner, first=2)
    info, edges = result["pageInfo"], result["edges"]
    assert (info["startCursor"], info["endCursor"]) == (edges[0]["cursor"], edges[1]["cursor"])

    empty = page(healthai, f"{owner}-nobody")
    assert empty == {
        "edges": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
    }


def test_entries_appended_while_a_client_pages_are_never_seen_twice_or_push_others_out(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    fill(app_urls["healthai"], owner, ["CREDIT_ADD"] * 50)
    before = [e["id"] for e in stored(app_urls["healthai"], owner)]

    seen, after, number = [], None, 0
    while True:
        current = page(healthai, owner, first=6, after=after)
        seen += [edge["node"]["id"] for edge in current["edges"]]
        for _ in range(3):  # other writers keep appending between the client's pages
            number += 1
            healthai.create_entry(owner, "CONTENT_ACCESS", f"meanwhile-{number}")
        if not current["pageInfo"]["hasNextPage"]:
            break
        after = current["pageInfo"]["endCursor"]

    assert seen == before
    fresh = [edge["node"] for edge in page(healthai, owner, first=100)["edges"]]
    assert [n["nonce"] for n in fresh[:number]] == [f"meanwhile-{n}" for n in range(number, 0, -1)]


def test_a_writer_appending_concurrently_never_disturbs_a_client_paging(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    url = app_urls["healthai"]
    fill(url, owner, ["CREDIT_ADD"] * 200)
    before = [e["id"] for e in stored(url, owner)]
    stop = threading.Event()

    def append_until_stopped() -> None:
        batch = 0
        while not stop.is_set():
            batch += 1
            sql(
                url,
                "SELECT create_entry(:o, 'CONTENT_ACCESS', concat('w', CAST(:b AS text), '-', g))"
                " FROM generate_series(1, 5) g",
                o=owner,
                b=str(batch),
            )

    writer = threading.Thread(target=append_until_stopped)
    writer.start()
    try:
        seen = [edge["node"]["id"] for p in walk(healthai, owner, first=9) for edge in p["edges"]]
    finally:
        stop.set()
        writer.join()

    after_all = [e["id"] for e in stored(url, owner)]
    # Everything older than the first entry the client saw, each once, in order; whatever
    # the writer appended after the first page was read stays out.
    newest_seen = after_all.index(seen[0])
    assert seen == after_all[newest_seen:]
    assert seen[-len(before) :] == before
    assert newest_seen > 0, "the writer appended while the client paged"


def test_filters_combine_with_paging(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    url = app_urls["healthai"]
    fill(url, owner, ["CREDIT_ADD", "CREDIT_SPEND", "CONTENT_ACCESS"] * 20)
    everything = stored(url, owner)
    since = everything[45]["createdOn"]  # the 15th-oldest entry onwards...
    until = everything[10]["createdOn"]  # ...up to the 11th-newest, both inclusive
    expected = [
        e["id"]
        for e in everything
        if e["operation"] == "CREDIT_SPEND" and since <= e["createdOn"] <= until
    ]

    pages = list(
        walk(
            healthai,
            owner,
            first=4,
            op="CREDIT_SPEND",
            since=since.isoformat(),
            until=until.isoformat(),
        )
    )

    got = [edge["node"] for p in pages for edge in p["edges"]]
    assert [n["id"] for n in got] == expected
    assert {n["operation"] for n in got} == {"CREDIT_SPEND"}
    assert len(expected) == 12 and len(pages) == 3


def test_a_time_window_seeks_without_the_newer_entries(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    url = app_urls["healthai"]
    fill(url, owner, ["CREDIT_ADD"] * 30)
    everything = stored(url, owner)
    window = page(
        healthai,
        owner,
        first=5,
        since=everything[29]["createdOn"].isoformat(),
        until=everything[25]["createdOn"].isoformat(),
    )
    assert [edge["node"]["id"] for edge in window["edges"]] == [e["id"] for e in everything[25:30]]
    assert window["pageInfo"]["hasNextPage"] is False


def test_balance_as_of_an_instant_at_before_and_between_entries(
    healthai: GraphQLClient, owner: str
) -> None:
    first = healthai.create_entry(owner, "CREDIT_ADD", "a")
    second = healthai.create_entry(owner, "CREDIT_SPEND", "b")
    third = healthai.create_entry(owner, "CREDIT_ADD", "c")
    instant = [datetime.fromisoformat(e["createdOn"]) for e in (first, second, third)]
    micro = timedelta(microseconds=1)

    def as_of(at: datetime) -> dict[str, Any]:
        result: dict[str, Any] = healthai.data(BALANCE_AT, o=owner, at=at.isoformat())["balance"]
        return result

    assert as_of(instant[0] - micro) == {"balance": 0, "lastUpdated": None}
    assert as_of(instant[0]) == {"balance": 10, "lastUpdated": first["createdOn"]}
    assert as_of(instant[1] - micro) == {"balance": 10, "lastUpdated": first["createdOn"]}
    assert as_of(instant[1]) == {"balance": 9, "lastUpdated": second["createdOn"]}
    assert as_of(instant[2]) == {"balance": 19, "lastUpdated": third["createdOn"]}
    assert as_of(instant[2] + timedelta(days=365)) == {
        "balance": 19,
        "lastUpdated": third["createdOn"],
    }
    india = timezone(timedelta(hours=5, minutes=30))
    assert as_of(instant[1].astimezone(india)) == as_of(instant[1])


def test_aliased_as_of_balances_cost_one_query(
    healthai: GraphQLClient, owner: str, statements: list[str]
) -> None:
    healthai.create_entry(owner, "CREDIT_ADD", "a")
    statements.clear()
    now = datetime.now(UTC)
    fields = " ".join(
        f'b{n}: balance(ownerId: "{owner}", at: "{(now - timedelta(days=n)).isoformat()}")'
        " { balance }"
        for n in range(5)
    )
    data = healthai.data(f"{{ {fields} }}")
    assert [data[f"b{n}"]["balance"] for n in range(5)] == [10, 0, 0, 0, 0]
    assert len(statements) == 1


def test_owner_reads_balance_and_a_page_of_history_at_once(
    healthai: GraphQLClient, owner: str
) -> None:
    entries = [healthai.create_entry(owner, "CREDIT_ADD", f"n{n}") for n in range(3)]
    data = healthai.data(
        "query($o: ID!) { owner(id: $o) { id balance lastUpdated"
        f" entries(first: 2) {{ edges {{ node {{ {ENTRY} }} }} pageInfo {{ hasNextPage }} }} }} }}",
        o=owner,
    )
    assert data["owner"] == {
        "id": owner,
        "balance": 30,
        "lastUpdated": entries[-1]["createdOn"],
        "entries": {
            "edges": [
                {"node": {k: v for k, v in e.items() if k != "__typename" and k != "ownerId"}}
                for e in reversed(entries[1:])
            ],
            "pageInfo": {"hasNextPage": True},
        },
    }


@pytest.mark.parametrize("owners", [1, 10, 50])
def test_any_number_of_aliased_owners_costs_two_queries(
    healthai: GraphQLClient, owner: str, statements: list[str], owners: int
) -> None:
    ids = [f"{owner}-{n}" for n in range(owners)]
    for n, owner_id in enumerate(ids):
        if n % 3 == 0:
            healthai.create_entry(owner_id, "CREDIT_ADD", "n")
    statements.clear()
    fields = " ".join(
        f'o{n}: owner(id: "{owner_id}") {{ balance lastUpdated'
        " entries(first: 5) { edges { node { amount } } } }"
        for n, owner_id in enumerate(ids)
    )

    data = healthai.data(f"{{ {fields} }}")

    assert len(statements) == 2  # one for the balances, one for every first page
    assert [data[f"o{n}"]["balance"] for n in range(owners)] == [
        10 if n % 3 == 0 else 0 for n in range(owners)
    ]
    assert [len(data[f"o{n}"]["entries"]["edges"]) for n in range(owners)] == [
        1 if n % 3 == 0 else 0 for n in range(owners)
    ]


def bad_user_input(body: dict[str, Any]) -> str:
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    message: str = error["message"]
    return message


@pytest.mark.parametrize("first", [0, -1, 101, 10**6])
def test_first_outside_1_to_100_is_bad_user_input(
    healthai: GraphQLClient, owner: str, first: int, statements: list[str]
) -> None:
    message = bad_user_input(healthai.execute(ENTRIES, o=owner, first=first))
    assert "first" in message and "100" in message
    assert statements == []


def test_first_of_100_and_the_default_of_20_are_accepted(
    healthai: GraphQLClient, owner: str, app_urls: dict[str, str]
) -> None:
    fill(app_urls["healthai"], owner, ["CONTENT_ACCESS"] * 120)
    assert len(page(healthai, owner, first=100)["edges"]) == 100
    assert (
        len(
            healthai.data("query($o: ID!) { entries(ownerId: $o) { edges { cursor } } }", o=owner)[
                "entries"
            ]["edges"]
        )
        == 20
    )


def cursor_of(healthai: GraphQLClient, owner_id: str, **filters: Any) -> str:
    healthai.create_entry(owner_id, "CREDIT_ADD", "c1")
    healthai.create_entry(owner_id, "CREDIT_ADD", "c2")
    cursor: str = page(healthai, owner_id, first=1, **filters)["pageInfo"]["endCursor"]
    return cursor


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "!!!!",
        base64.urlsafe_b64encode(b"e1:x:y:z").decode(),
        base64.urlsafe_b64encode(b"e1:1:2").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"e1:99999999999999999999999:1:abc").decode(),
        "x" * 10_000,
    ],
)
def test_a_malformed_cursor_is_bad_user_input(
    healthai: GraphQLClient, owner: str, cursor: str
) -> None:
    message = bad_user_input(healthai.execute(ENTRIES, o=owner, after=cursor))
    assert "after" in message


def test_a_cursor_of_another_owner_is_bad_user_input(healthai: GraphQLClient, owner: str) -> None:
    foreign = cursor_of(healthai, f"{owner}-other")
    message = bad_user_input(healthai.execute(ENTRIES, o=owner, after=foreign))
    assert "another owner" in message


def test_a_cursor_of_other_filters_is_bad_user_input(healthai: GraphQLClient, owner: str) -> None:
    cursor = cursor_of(healthai, owner, op="CREDIT_ADD")
    assert bad_user_input(healthai.execute(ENTRIES, o=owner, after=cursor))
    assert page(healthai, owner, after=cursor, op="CREDIT_ADD")["edges"][0]["node"]["nonce"] == "c1"


def test_a_cursor_stays_valid_with_another_page_size(healthai: GraphQLClient, owner: str) -> None:
    cursor = cursor_of(healthai, owner)
    assert [e["node"]["nonce"] for e in page(healthai, owner, first=50, after=cursor)["edges"]] == [
        "c1"
    ]


def test_instants_without_an_offset_are_bad_user_input(healthai: GraphQLClient, owner: str) -> None:
    assert "offset" in bad_user_input(
        healthai.execute(BALANCE_AT, o=owner, at="2026-01-01T00:00:00")
    )
    assert "since" in bad_user_input(
        healthai.execute(ENTRIES, o=owner, since="2026-01-01T00:00:00")
    )


def test_a_window_ending_before_it_starts_is_bad_user_input(
    healthai: GraphQLClient, owner: str
) -> None:
    message = bad_user_input(
        healthai.execute(
            ENTRIES, o=owner, since="2026-02-01T00:00:00Z", until="2026-01-01T00:00:00Z"
        )
    )
    assert "since" in message and "until" in message


def test_an_unparseable_instant_is_bad_user_input(healthai: GraphQLClient, owner: str) -> None:
    assert "DateTime" in bad_user_input(healthai.execute(BALANCE_AT, o=owner, at="yesterday"))


@pytest.mark.parametrize("argument", ["ownerId", "id"])
def test_an_invalid_owner_is_bad_user_input(healthai: GraphQLClient, argument: str) -> None:
    query = ENTRIES if argument == "ownerId" else "query($o: ID!) { owner(id: $o) { balance } }"
    assert argument in bad_user_input(healthai.execute(query, o="bad\x00id"))
