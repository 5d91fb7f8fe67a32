"""Races: many createEntry requests at once, split between two real uvicorn processes of
healthai (each with its own connection pool) that share one database."""

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx2 as httpx
import pytest

from tests.support import (
    Call,
    Cluster,
    GraphQLClient,
    race_through_a_gate,
    service_headers,
    sql,
    two_servers,
)

SERVICE = service_headers("healthai")

# Each process's connection pool, set explicitly: the gate below counts on it.
POOL_SIZE = 10


@pytest.fixture(scope="module")
def cluster(new_database: Callable[..., str]) -> Iterator[Cluster]:
    """Two healthai server processes on one fresh database."""
    with two_servers(
        new_database("concurrency"),
        LEDGER_DB_POOL_SIZE=str(POOL_SIZE),
        LEDGER_DB_POOL_TIMEOUT="60",
        LEDGER_DB_TIMEOUT="60",
    ) as started:
        yield started


def race(cluster: Cluster, calls: list[Call]) -> list[dict[str, Any]]:
    """Sends all `calls` at once through the gate (see race_through_a_gate), which every
    connection of both pools reaches, and returns the answers in the order of `calls`."""
    expected_waiters = min(len(calls), 2 * POOL_SIZE)
    results, waiters = race_through_a_gate(cluster, calls, expected_waiters)
    assert waiters == expected_waiters, f"{waiters} requests reached the gate"
    return results


def balances_via_api(cluster: Cluster, owner_id: str) -> list[int]:
    """The owner's balance as each of the two servers reports it."""
    found = []
    for server_url in cluster.server_urls:
        with httpx.Client(base_url=server_url, timeout=30, headers=SERVICE) as http:
            found.append(GraphQLClient(http).balance(owner_id))
    return found


def stored_entries(cluster: Cluster, owner_id: str) -> list[tuple[int, str, int, int, str]]:
    rows = sql(
        cluster.database_url,
        "SELECT id, operation, amount, balance_after, nonce FROM entries"
        " WHERE owner_id = :owner ORDER BY id",
        owner=owner_id,
    )
    return [tuple(row) for row in rows]


def stored_balance(cluster: Cluster, owner_id: str) -> int | None:
    rows = sql(cluster.database_url, "SELECT balance FROM balances WHERE owner_id = :o", o=owner_id)
    return rows[0][0] if rows else None


def without_typename(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key != "__typename"}


def test_hundred_concurrent_spends_on_thirty_credits_leave_exactly_thirty_entries(
    cluster: Cluster, owner: str
) -> None:
    race(cluster, [(owner, "CREDIT_ADD", f"add-{number}") for number in range(3)])
    assert balances_via_api(cluster, owner) == [30, 30]

    results = race(cluster, [(owner, "CREDIT_SPEND", f"spend-{number}") for number in range(100)])

    kinds = Counter(result["__typename"] for result in results)
    assert kinds == {"LedgerEntry": 30, "InsufficientCredits": 70}
    for result in results:
        if result["__typename"] == "InsufficientCredits":
            assert (result["balance"], result["required"]) == (0, 1)
        else:
            assert (result["ownerId"], result["amount"]) == (owner, -1)
    spent = [result for result in results if result["__typename"] == "LedgerEntry"]
    assert sorted(result["balanceAfter"] for result in spent) == list(range(30))
    assert balances_via_api(cluster, owner) == [0, 0]

    entries = stored_entries(cluster, owner)
    spends = [entry for entry in entries if entry[1] == "CREDIT_SPEND"]
    assert len(entries) == 33 and len(spends) == 30
    assert {entry[4] for entry in spends} == {result["nonce"] for result in spent}
    assert sorted(entry[3] for entry in spends) == list(range(30))
    assert [entry[3] for entry in spends] == list(range(29, -1, -1)), "ids follow the lock"
    assert stored_balance(cluster, owner) == sum(entry[2] for entry in entries) == 0
    assert entries[-1][3] == 0


def test_fifty_identical_concurrent_credits_write_one_entry_and_all_answer_it(
    cluster: Cluster, owner: str
) -> None:
    results = race(cluster, [(owner, "CREDIT_ADD", "same-nonce")] * 50)

    assert {result["__typename"] for result in results} == {"LedgerEntry"}
    assert len({result["id"] for result in results}) == 1
    assert all(result == results[0] for result in results)
    assert (results[0]["amount"], results[0]["balanceAfter"]) == (10, 10)
    assert balances_via_api(cluster, owner) == [10, 10]
    [(entry_id, operation, amount, balance_after, nonce)] = stored_entries(cluster, owner)
    assert (str(entry_id), operation, amount, balance_after, nonce) == (
        results[0]["id"],
        "CREDIT_ADD",
        10,
        10,
        "same-nonce",
    )
    assert stored_balance(cluster, owner) == 10


def test_fifty_identical_concurrent_spends_of_the_last_credit_all_answer_the_one_entry(
    cluster: Cluster, owner: str
) -> None:
    race(cluster, [(owner, "SIGNUP_CREDIT", "signup")])
    # SIGNUP_CREDIT gives 3; two spends leave exactly one credit.
    race(cluster, [(owner, "CREDIT_SPEND", "warm-up-1"), (owner, "CREDIT_SPEND", "warm-up-2")])
    assert balances_via_api(cluster, owner) == [1, 1]

    results = race(cluster, [(owner, "CREDIT_SPEND", "last-credit")] * 50)

    assert Counter(result["__typename"] for result in results) == {"LedgerEntry": 50}
    assert all(result == results[0] for result in results)
    assert (results[0]["amount"], results[0]["balanceAfter"]) == (-1, 0)
    assert balances_via_api(cluster, owner) == [0, 0]
    spends = [entry for entry in stored_entries(cluster, owner) if entry[4] == "last-credit"]
    assert [(str(entry[0]), entry[3]) for entry in spends] == [(results[0]["id"], 0)]
    assert stored_balance(cluster, owner) == 0


def test_hundred_concurrent_distinct_credits_lose_no_update(cluster: Cluster, owner: str) -> None:
    results = race(cluster, [(owner, "CREDIT_ADD", f"add-{number}") for number in range(100)])

    assert Counter(result["__typename"] for result in results) == {"LedgerEntry": 100}
    assert len({result["id"] for result in results}) == 100
    assert balances_via_api(cluster, owner) == [1000, 1000]
    entries = stored_entries(cluster, owner)
    assert len(entries) == 100
    assert [entry[3] for entry in entries] == list(range(10, 1001, 10))
    assert {(str(entry[0]), entry[3]) for entry in entries} == {
        (result["id"], result["balanceAfter"]) for result in results
    }
    assert stored_balance(cluster, owner) == sum(entry[2] for entry in entries) == 1000


def test_one_nonce_raced_with_two_operations_writes_one_entry_and_conflicts_name_it(
    cluster: Cluster, owner: str
) -> None:
    calls = [(owner, "CREDIT_ADD", "contested")] * 25 + [(owner, "DAILY_REWARD", "contested")] * 25
    results = race(cluster, calls)

    [(entry_id, operation, amount, balance_after, _)] = stored_entries(cluster, owner)
    winner = next(result for result in results if result["__typename"] == "LedgerEntry")
    assert (winner["id"], winner["operation"]) == (str(entry_id), operation)
    for (_, asked, _), result in zip(calls, results, strict=True):
        if asked == operation:
            assert result == winner
        else:
            assert result["__typename"] == "NonceConflict"
            assert result["existing"] == without_typename(winner)
    assert balance_after == amount > 0
    assert balances_via_api(cluster, owner) == [amount, amount]
    assert stored_balance(cluster, owner) == amount
