"""Races on holds and refunds: many reserveCredits, captureHold, releaseHold and refundEntry
requests at once, split between two real uvicorn processes of healthai (each with its own
connection pool) on one database. The database alone must keep the books."""

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from graphql_ledger.storage import create_engine
from tests.support import (
    CAPTURE_HOLD,
    CREATE_ENTRY_FULL,
    REFUND_ENTRY,
    RELEASE_HOLD,
    RESERVE_CREDITS,
    GraphQLClient,
    Ledger,
    ServerProcess,
    clean_environment,
    entry_of,
    mutate_async,
    rows_of,
    service_headers,
    sql,
    verify_books,
)

pytestmark = pytest.mark.slow

SERVICE = service_headers("healthai")
POOL_SIZE = 10  # each process's pool, set explicitly: the gate below counts on it


@dataclass(frozen=True)
class Cluster:
    database_url: str
    server_urls: tuple[str, str]


@pytest.fixture(scope="module")
def cluster(new_database: Callable[..., str]) -> Iterator[Cluster]:
    """Two healthai server processes on one fresh database."""
    url = new_database("holdraces")
    env = clean_environment(
        HEALTHAI_DATABASE_URL=url,
        LEDGER_DB_POOL_SIZE=str(POOL_SIZE),
        LEDGER_DB_POOL_TIMEOUT="60",
        LEDGER_DB_TIMEOUT="60",
    )
    with ExitStack() as stack:
        first = stack.enter_context(ServerProcess.uvicorn("healthai", env))
        second = stack.enter_context(ServerProcess.uvicorn("healthai", env))
        yield Cluster(url, (first.url(), second.url()))
    verify_books("healthai", url)


Call = tuple[str, str, dict[str, Any]]  # document, mutation field, input

# Backends of this database waiting for a lock, whatever lock the write takes first (a
# table, a row, an advisory lock): each request of the race is one of them.
WAITERS = """
SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE NOT l.granted AND a.datname = current_database() AND l.pid <> pg_backend_pid()
"""


def race(cluster: Cluster, calls: list[Call]) -> list[dict[str, Any]]:
    """Sends all `calls` at once, alternating between the two servers, and returns the
    answers in the order of `calls`.

    A gate makes the race certain rather than likely: the test locks the ledger's tables
    against writes until every connection of both pools is blocked inside a mutation, and
    then lets them all go at once."""
    expected = min(len(calls), 2 * POOL_SIZE)

    async def run() -> list[dict[str, Any]]:
        limits = httpx.Limits(max_connections=len(calls), max_keepalive_connections=len(calls))
        engine = create_engine(cluster.database_url, autocommit=False, poolclass=NullPool)
        try:
            async with (
                engine.connect() as gate,
                httpx.AsyncClient(
                    base_url=cluster.server_urls[0], limits=limits, timeout=90, headers=SERVICE
                ) as a,
                httpx.AsyncClient(
                    base_url=cluster.server_urls[1], limits=limits, timeout=90, headers=SERVICE
                ) as b,
            ):
                await gate.execute(text("LOCK TABLE balances, entries, holds IN EXCLUSIVE MODE"))
                requests = asyncio.gather(
                    *(
                        mutate_async((a, b)[number % 2], document, field, **input_)
                        for number, (document, field, input_) in enumerate(calls)
                    )
                )
                waiters, loop = 0, asyncio.get_running_loop()
                deadline = loop.time() + 30
                while waiters < expected and not requests.done() and loop.time() < deadline:
                    await asyncio.sleep(0.01)
                    # pg_stat_activity is read once per transaction unless told again.
                    await gate.execute(text("SELECT pg_stat_clear_snapshot()"))
                    waiters = await gate.scalar(text(WAITERS))
                await gate.commit()
                results = await requests
        finally:
            await engine.dispose()
        assert waiters == expected, f"{waiters} requests reached the gate"
        return results

    return asyncio.run(run())


def ledgers(cluster: Cluster) -> Iterator[Ledger]:
    for server_url in cluster.server_urls:
        with httpx.Client(base_url=server_url, timeout=30, headers=SERVICE) as http:
            yield Ledger(GraphQLClient(http))


def books(cluster: Cluster, owner_id: str) -> list[tuple[int, int, int]]:
    """(balance, held, available) as each of the two servers reports it."""
    return [ledger.books(owner_id) for ledger in ledgers(cluster)]


def fund(cluster: Cluster, owner_id: str, credits: int) -> dict[str, Any]:
    with httpx.Client(base_url=cluster.server_urls[0], timeout=30, headers=SERVICE) as http:
        ledger = Ledger(GraphQLClient(http))
        added = ledger.create(owner_id, "CREDIT_ADD", "funding", quantity=credits // 10)
    assert added["balanceAfter"] == credits, added
    return added


def reserve(owner_id: str, nonce: str, quantity: int = 1, **more: Any) -> Call:
    input_ = {"ownerId": owner_id, "operation": "CONTENT_CREATION", "nonce": nonce}
    return RESERVE_CREDITS, "reserveCredits", input_ | {"quantity": quantity} | more


def capture(hold_id: str, **more: Any) -> Call:
    return CAPTURE_HOLD, "captureHold", {"holdId": hold_id} | more


def release(hold_id: str) -> Call:
    return RELEASE_HOLD, "releaseHold", {"holdId": hold_id}


def refund(entry_id: str, nonce: str) -> Call:
    return REFUND_ENTRY, "refundEntry", {"entryId": entry_id, "nonce": nonce}


def stored(cluster: Cluster, owner_id: str) -> list[tuple[int, str, int, int, str]]:
    rows = sql(
        cluster.database_url,
        "SELECT id, operation, amount, balance_after, nonce FROM entries"
        " WHERE owner_id = :owner ORDER BY id",
        owner=owner_id,
    )
    return [tuple(row) for row in rows]


def stored_balance(cluster: Cluster, owner_id: str) -> int:
    [(balance,)] = sql(
        cluster.database_url, "SELECT balance FROM balances WHERE owner_id = :o", o=owner_id
    )
    value: int = balance
    return value


def without_typename(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key != "__typename"}


def test_hundred_concurrent_reserves_of_5_on_30_available_grant_exactly_6_holds(
    cluster: Cluster, owner: str, figures: Callable[[str], None]
) -> None:
    fund(cluster, owner, 30)

    results = race(cluster, [reserve(owner, f"job-{n}") for n in range(100)])

    kinds = Counter(result["__typename"] for result in results)
    assert kinds == {"Hold": 6, "InsufficientCredits": 94}
    for result in results:
        if result["__typename"] == "InsufficientCredits":
            assert (result["balance"], result["required"]) == (0, 5), result
        else:
            assert (result["ownerId"], result["amount"], result["status"]) == (owner, -5, "OPEN")
    assert books(cluster, owner) == [(30, 30, 0), (30, 30, 0)]
    rows = rows_of(cluster.database_url, owner)
    assert (len(rows["entries"]), len(rows["holds"])) == (1, 6)
    assert stored_balance(cluster, owner) == 30
    figures("holds race: 100 reserves of 5 on 30 available over 2 processes -> 6 holds")


def test_a_capture_and_a_release_racing_on_one_hold_exactly_one_wins(
    cluster: Cluster, owner: str, figures: Callable[[str], None]
) -> None:
    fund(cluster, owner, 100)
    holds = race(cluster, [reserve(owner, f"job-{n}") for n in range(10)])
    assert {hold["__typename"] for hold in holds} == {"Hold"}
    calls = []
    for n, hold in enumerate(holds):  # half with the capture first, half the release
        pair = [capture(hold["id"]), release(hold["id"])]
        calls += pair if n % 2 else pair[::-1]

    results = race(cluster, calls)

    captured = 0
    for hold in holds:
        answers = [
            result
            for (_, _, input_), result in zip(calls, results, strict=True)
            if input_["holdId"] == hold["id"]
        ]
        kinds = sorted(answer["__typename"] for answer in answers)
        assert kinds in (["HoldNotOpen", "LedgerEntry"], ["Hold", "HoldNotOpen"]), answers
        [loser] = [answer for answer in answers if answer["__typename"] == "HoldNotOpen"]
        [winner] = [answer for answer in answers if answer["__typename"] != "HoldNotOpen"]
        if winner["__typename"] == "LedgerEntry":
            captured += 1
            assert (winner["kind"], winner["amount"]) == ("CAPTURE", -5)
            assert loser["hold"]["status"] == "CAPTURED"
            assert loser["hold"]["capture"] == entry_of(winner)
        else:
            assert winner["status"] == "RELEASED" == loser["hold"]["status"]
            assert loser["hold"]["capture"] is None
    balance = 100 - 5 * captured
    assert books(cluster, owner) == [(balance, 0, balance)] * 2
    entries = stored(cluster, owner)
    assert len(entries) == 1 + captured
    assert [entry[3] for entry in entries] == list(range(100, balance - 1, -5))
    assert stored_balance(cluster, owner) == balance
    figures(f"holds race: capture vs release on 10 holds -> {captured} captured, rest released")


def test_fifty_identical_captures_racing_book_one_entry_and_all_answer_it(
    cluster: Cluster, owner: str
) -> None:
    fund(cluster, owner, 30)
    [hold] = race(cluster, [reserve(owner, "job", quantity=3)])

    results = race(cluster, [capture(hold["id"], quantity=2)] * 50)

    assert {result["__typename"] for result in results} == {"LedgerEntry"}
    assert all(result == results[0] for result in results)
    assert (results[0]["kind"], results[0]["amount"], results[0]["balanceAfter"]) == (
        "CAPTURE",
        -10,
        20,
    )
    assert books(cluster, owner) == [(20, 0, 20)] * 2
    entries = stored(cluster, owner)
    assert [(str(e[0]), e[2], e[3], e[4]) for e in entries[1:]] == [
        (results[0]["id"], -10, 20, "job")
    ]


def test_fifty_refunds_of_one_entry_racing_book_one_refund_the_rest_already_refunded(
    cluster: Cluster, owner: str
) -> None:
    fund(cluster, owner, 30)
    [spend] = race(
        cluster,
        [
            (
                CREATE_ENTRY_FULL,
                "createEntry",
                {"ownerId": owner, "operation": "CONTENT_CREATION", "nonce": "s", "quantity": 2},
            )
        ],
    )
    assert spend["balanceAfter"] == 20

    results = race(cluster, [refund(spend["id"], f"refund-{n}") for n in range(50)])

    kinds = Counter(result["__typename"] for result in results)
    assert kinds == {"LedgerEntry": 1, "AlreadyRefunded": 49}
    [winner] = [result for result in results if result["__typename"] == "LedgerEntry"]
    assert (winner["kind"], winner["amount"], winner["balanceAfter"]) == ("REFUND", 10, 30)
    for result in results:
        if result["__typename"] == "AlreadyRefunded":
            assert result["refund"] == without_typename(winner)
    assert books(cluster, owner) == [(30, 0, 30)] * 2
    refunds = [
        entry for entry in stored(cluster, owner) if entry[2] == 10 and entry[4] != "funding"
    ]
    assert [(str(e[0]), e[4]) for e in refunds] == [(winner["id"], winner["nonce"])]


def test_replays_of_each_new_mutation_across_processes_are_idempotent(
    cluster: Cluster, owner: str
) -> None:
    fund(cluster, owner, 30)
    metadata = {"jobId": "j"}
    create = (
        CREATE_ENTRY_FULL,
        "createEntry",
        {
            "ownerId": owner,
            "operation": "CREDIT_SPEND",
            "nonce": "c",
            "quantity": 3,
            "metadata": metadata,
        },
    )
    created = race(cluster, [create] * 30)
    holds = race(cluster, [reserve(owner, "job", quantity=2, metadata=metadata)] * 30)
    other = race(cluster, [reserve(owner, "other")] * 30)
    releases = race(cluster, [release(other[0]["id"])] * 30)
    refunds = race(cluster, [refund(created[0]["id"], "r")] * 30)

    for answers in (created, holds, other, releases, refunds):
        assert all(answer == answers[0] for answer in answers), answers
    assert (created[0]["amount"], created[0]["metadata"]) == (-3, metadata)
    assert (holds[0]["status"], holds[0]["amount"], holds[0]["metadata"]) == ("OPEN", -10, metadata)
    assert releases[0] == other[0] | {"status": "RELEASED"}
    assert (refunds[0]["kind"], refunds[0]["amount"], refunds[0]["balanceAfter"]) == (
        "REFUND",
        3,
        30,
    )
    assert books(cluster, owner) == [(30, 10, 20)] * 2
    rows = rows_of(cluster.database_url, owner)
    assert (len(rows["entries"]), len(rows["holds"])) == (3, 2)


def test_one_nonce_raced_by_a_reserve_and_a_create_entry_is_claimed_once(
    cluster: Cluster, owner: str
) -> None:
    fund(cluster, owner, 100)
    create = (
        CREATE_ENTRY_FULL,
        "createEntry",
        {"ownerId": owner, "operation": "CREDIT_SPEND", "nonce": "contested"},
    )
    calls = [create, reserve(owner, "contested")] * 20

    results = race(cluster, calls)

    rows = rows_of(cluster.database_url, owner)
    claimed = len(rows["entries"]) - 1 + len(rows["holds"])
    assert claimed == 1, rows
    if rows["holds"]:  # the hold won: reserves replay it, creates conflict with it
        hold = next(r for r in results if r["__typename"] == "Hold")
        for (_, field, _), result in zip(calls, results, strict=True):
            if field == "reserveCredits":
                assert result == hold
            else:
                assert result["__typename"] == "HoldNonceConflict", result
                assert result["existingHold"] == without_typename(hold)
        expected = (100, 5, 95)
    else:
        entry = next(r for r in results if r["__typename"] == "LedgerEntry")
        for (_, field, _), result in zip(calls, results, strict=True):
            if field == "createEntry":
                assert result == entry
            else:
                assert result["__typename"] == "NonceConflict", result
                assert result["existing"] == without_typename(entry)
        expected = (99, 0, 99)
    assert books(cluster, owner) == [expected] * 2
