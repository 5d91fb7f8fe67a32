"""Operation limits, enforced by the database: SIGNUP_CREDIT once per owner, DAILY_REWARD once
per owner per UTC day, an app's own limits, also when requests race on two servers."""

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy.exc import IntegrityError
from starlette.testclient import TestClient

from graphql_ledger import LedgerOperation, Limit, Settings, create_app, credits, shared
from tests.support import (
    TEST_SECRET,
    Cluster,
    GraphQLClient,
    race_through_a_gate,
    service_headers,
    sql,
    two_servers,
    user_headers,
)


def stored(url: str, owner_id: str) -> tuple[list[tuple[str, str, int, str | None]], list[int]]:
    """The owner's entries (id, nonce, balance_after, limit_key) and its balance row."""
    entries = sql(
        url,
        "SELECT id::text, nonce, balance_after, limit_key FROM entries WHERE owner_id = :o"
        " ORDER BY id",
        o=owner_id,
    )
    balance = sql(url, "SELECT balance FROM balances WHERE owner_id = :o", o=owner_id)
    return [tuple(row) for row in entries], [row[0] for row in balance]


def next_utc_midnight(instant: datetime) -> datetime:
    day = instant.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def clear_of_utc_midnight(margin: timedelta = timedelta(seconds=30)) -> None:
    """Waits past the next UTC midnight if it is near, so that a test's entries all fall on
    one UTC day and the test does not depend on when it runs."""
    now = datetime.now(UTC)
    if next_utc_midnight(now) - now < margin:
        time.sleep((next_utc_midnight(now) - now).total_seconds() + 1)


def assert_limit_reached(result: dict[str, Any], retry_after: datetime | None) -> None:
    assert (result["__typename"], result["code"]) == ("LimitReached", "LIMIT_REACHED")
    if retry_after is None:
        assert result["retryAfter"] is None
    else:
        assert datetime.fromisoformat(result["retryAfter"]) == retry_after


def test_signup_credit_is_granted_once_per_owner_whatever_the_nonce(
    healthai_app: TestClient, app_urls: dict[str, str], owner: str
) -> None:
    service = GraphQLClient(healthai_app, headers=service_headers("healthai"))
    first = service.create_entry(owner, "SIGNUP_CREDIT", "signup-1")

    second = service.create_entry(owner, "SIGNUP_CREDIT", "signup-2")

    assert (first["__typename"], first.get("balanceAfter")) == ("LedgerEntry", 3)
    assert_limit_reached(second, None)
    assert "SIGNUP_CREDIT" in second["message"]
    assert stored(app_urls["healthai"], owner) == ([(first["id"], "signup-1", 3, "once")], [3])
    # Replaying the granted request still answers it.
    assert service.create_entry(owner, "SIGNUP_CREDIT", "signup-1") == first


def test_daily_reward_is_granted_once_per_utc_day_and_retry_after_is_next_midnight(
    healthai_app: TestClient, app_urls: dict[str, str], owner: str
) -> None:
    clear_of_utc_midnight()
    me = GraphQLClient(healthai_app, headers=user_headers("healthai", owner))
    first = me.create_entry(owner, "DAILY_REWARD", "day-1")

    second = me.create_entry(owner, "DAILY_REWARD", "day-1-again")

    assert (first["__typename"], first.get("balanceAfter")) == ("LedgerEntry", 1)
    granted_on = datetime.fromisoformat(first["createdOn"])
    assert_limit_reached(second, next_utc_midnight(granted_on))
    assert "DAILY_REWARD" in second["message"]
    day = granted_on.astimezone(UTC).date().isoformat()
    assert stored(app_urls["healthai"], owner) == ([(first["id"], "day-1", 1, day)], [1])
    # The limit is per owner: another owner still gets today's reward.
    neighbour = f"{owner}-neighbour"
    theirs = GraphQLClient(healthai_app, headers=user_headers("healthai", neighbour)).create_entry(
        neighbour, "DAILY_REWARD", "day-1"
    )
    assert (theirs["__typename"], theirs.get("ownerId"), theirs.get("balanceAfter")) == (
        "LedgerEntry",
        neighbour,
        1,
    )


@pytest.mark.parametrize(
    ("operation", "amount", "limit"),
    [("SIGNUP_CREDIT", 3, "once"), ("DAILY_REWARD", 1, "utc_day")],
)
def test_the_database_refuses_a_second_limited_entry_to_a_writer_that_bypasses_the_app(
    healthai_app: TestClient,
    app_urls: dict[str, str],
    owner: str,
    operation: str,
    amount: int,
    limit: str,
) -> None:
    clear_of_utc_midnight()
    url = app_urls["healthai"]
    service = GraphQLClient(healthai_app, headers=service_headers("healthai"))
    first = service.create_entry(owner, operation, "n1")
    granted_on = datetime.fromisoformat(first["createdOn"])
    limit_key = granted_on.astimezone(UTC).date().isoformat() if limit == "utc_day" else "once"
    assert stored(url, owner) == ([(first["id"], "n1", amount, limit_key)], [amount])

    [(outcome, entry_id, retry_after)] = sql(
        url,
        "SELECT outcome, entry_id, retry_after FROM create_entry(:o, :op, 'n2')",
        o=owner,
        op=operation,
    )
    with pytest.raises(IntegrityError) as refused:
        sql(
            url,
            "INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on,"
            " limit_key) VALUES (:o, :op, :amount, :amount * 2, 'forged', now(), :key)",
            o=owner,
            op=operation,
            amount=amount,
            key=limit_key,
        )

    assert (outcome, entry_id) == ("limit_reached", None)
    assert retry_after == (next_utc_midnight(granted_on) if limit == "utc_day" else None)
    cause = refused.value.orig.__cause__ if refused.value.orig is not None else None
    assert getattr(cause, "sqlstate", None) == "23505"  # unique_violation
    assert getattr(cause, "constraint_name", None) == "entries_owner_limit_key"
    assert stored(url, owner) == ([(first["id"], "n1", amount, limit_key)], [amount])


class ParkAIOperation(LedgerOperation):
    DAILY_REWARD = shared()
    SIGNUP_CREDIT = shared()
    CREDIT_SPEND = shared()
    CREDIT_ADD = shared()
    VISIT_STREAK = credits(2, limit=Limit.ONCE_PER_UTC_DAY)
    WELCOME_GIFT = credits(5, limit=Limit.ONCE)
    TICKET = credits(2)


@pytest.mark.slow
def test_an_app_declares_its_own_daily_and_once_only_limits(
    new_database: Callable[..., str],
) -> None:
    clear_of_utc_midnight()
    url = new_database("parkai", operations=ParkAIOperation)
    settings = Settings(app_database_urls={"parkai": url}, jwt_secret=TEST_SECRET)
    owner = f"visitor-{uuid.uuid4()}"
    with TestClient(create_app("parkai", ParkAIOperation, settings)) as http:
        service = GraphQLClient(http, headers=service_headers("parkai"))
        streak = service.create_entry(owner, "VISIT_STREAK", "streak-1")
        streak_again = service.create_entry(owner, "VISIT_STREAK", "streak-2")
        gift = service.create_entry(owner, "WELCOME_GIFT", "gift-1")
        gift_again = service.create_entry(owner, "WELCOME_GIFT", "gift-2")
        tickets = [service.create_entry(owner, "TICKET", f"ticket-{n}") for n in (1, 2)]

    streak_on = datetime.fromisoformat(streak["createdOn"])
    assert [r["__typename"] for r in (streak, gift, *tickets)] == ["LedgerEntry"] * 4
    assert_limit_reached(streak_again, next_utc_midnight(streak_on))
    assert_limit_reached(gift_again, None)
    day = streak_on.astimezone(UTC).date().isoformat()
    assert stored(url, owner) == (
        [
            (streak["id"], "streak-1", 2, day),
            (gift["id"], "gift-1", 7, "once"),
            (tickets[0]["id"], "ticket-1", 9, None),
            (tickets[1]["id"], "ticket-2", 11, None),
        ],
        [11],
    )


# The race: two real server processes on one database.

POOL_SIZE = 10  # each server's connection pool; the gate below counts on it
RACERS = 2 * POOL_SIZE


@pytest.fixture(scope="module")
def cluster(new_database: Callable[..., str]) -> Iterator[Cluster]:
    """Two healthai server processes on one fresh database."""
    with two_servers(
        new_database("limits_race"),
        LEDGER_DB_POOL_SIZE=str(POOL_SIZE),
        LEDGER_DB_POOL_TIMEOUT="60",
        LEDGER_DB_TIMEOUT="60",
    ) as started:
        yield started


IDS_DRAWN = "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('entries', 'id')), 0)"


def race(cluster: Cluster, owner_id: str, operation: str) -> tuple[list[dict[str, Any]], int]:
    """Sends RACERS requests for `operation` with distinct nonces at once, alternating
    between the two servers; returns the answers and how many entry ids they drew.

    The gate (see race_through_a_gate) is taken after the limit pre-check, but while it is
    held nobody can write, so no entry exists yet when each request runs the pre-check:
    every one of them passes it and then blocks. After the release the 20 run into each
    other on the owner's balance row; all but one find the limit taken only through
    entries_owner_limit_key (unique_violation, then the repository's retry answers
    LimitReached). The proof that they really overlapped: all RACERS were waiting at
    once, and the entry id sequence moved by RACERS (every request got as far as the
    INSERT) for one row."""
    calls = [(owner_id, operation, f"{operation}-{n}") for n in range(RACERS)]
    [(ids_before,)] = sql(cluster.database_url, IDS_DRAWN)
    results, waiters = race_through_a_gate(cluster, calls, RACERS)
    [(ids_after,)] = sql(cluster.database_url, IDS_DRAWN)
    assert waiters == RACERS, f"only {waiters} requests reached the gate together"
    return results, ids_after - ids_before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("operation", "amount", "limit"),
    [("SIGNUP_CREDIT", 3, "once"), ("DAILY_REWARD", 1, "utc_day")],
)
def test_twenty_racing_limited_requests_on_two_servers_grant_exactly_one(
    cluster: Cluster, owner: str, operation: str, amount: int, limit: str
) -> None:
    """All 20 requests are held together past the limit pre-check (see race()), so the
    pre-check cannot decide: only the database's unique index on the limit can."""
    clear_of_utc_midnight()

    results, ids_drawn = race(cluster, owner, operation)

    assert Counter(r["__typename"] for r in results) == {"LedgerEntry": 1, "LimitReached": 19}
    [granted] = [r for r in results if r["__typename"] == "LedgerEntry"]
    assert (granted["ownerId"], granted["amount"], granted["balanceAfter"]) == (
        owner,
        amount,
        amount,
    )
    granted_on = datetime.fromisoformat(granted["createdOn"])
    retry_after = next_utc_midnight(granted_on) if limit == "utc_day" else None
    for refused in (r for r in results if r["__typename"] == "LimitReached"):
        assert_limit_reached(refused, retry_after)
    key = granted_on.astimezone(UTC).date().isoformat() if limit == "utc_day" else "once"
    assert stored(cluster.database_url, owner) == (
        [(granted["id"], granted["nonce"], amount, key)],
        [amount],
    )
    assert ids_drawn == RACERS, "every request got past the pre-check into the INSERT"
    # Both servers answer the one balance.
    for server_url in cluster.server_urls:
        with httpx.Client(base_url=server_url, headers=service_headers("healthai")) as http:
            body = http.post(
                "/graphql",
                json={
                    "query": "query($o: ID!) { balance(ownerId: $o) { balance } }",
                    "variables": {"o": owner},
                },
            ).json()
        assert body == {"data": {"balance": {"balance": amount}}}
