"""Live balances: Subscription.balanceChanged over graphql-transport-ws, with a real WebSocket
client, against two uvicorn processes of healthai that share one database."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx2 as httpx
import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import NullPool
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from graphql_ledger.storage import create_engine
from tests.support import (
    Cluster,
    ServerProcess,
    clean_environment,
    create_entry_async,
    service_headers,
    sql,
    two_servers,
    user_headers,
    with_database,
)

pytestmark = pytest.mark.slow

SERVICE = service_headers("healthai")
SUBSCRIPTION = (
    "subscription($o: ID!) { balanceChanged(ownerId: $o) { ownerId balance lastUpdated } }"
)
LISTENERS = (
    "SELECT pid FROM pg_stat_activity"
    " WHERE datname = current_database() AND query = 'LISTEN \"ledger_balances\"'"
)
PROTOCOLS = [Subprotocol("graphql-transport-ws")]
TIMEOUT = 10.0  # seconds any awaited message may take before the test fails


@dataclass
class ListeningCluster(Cluster):
    listeners: list[int]  # the LISTEN backend of each server, by index


def listeners(url: str) -> set[int]:
    return {row[0] for row in sql(url, LISTENERS)}


def wait_for_listeners(url: str, count: int) -> set[int]:
    deadline = time.monotonic() + TIMEOUT
    while len(found := listeners(url)) != count:
        assert time.monotonic() < deadline, f"{found} listen; expected {count}"
        time.sleep(0.05)
    return found


@pytest.fixture(scope="module")
def cluster(new_database: Callable[..., str]) -> Iterator[ListeningCluster]:
    """Two healthai server processes on one fresh database, started one after the other so
    that each one's listening connection is known."""
    url = new_database("subscriptions")
    pids: list[int] = []

    def listening(_: ServerProcess) -> None:
        [new] = wait_for_listeners(url, len(pids) + 1) - set(pids)
        pids.append(new)

    with two_servers(url, started=listening) as started:
        yield ListeningCluster(url, started.servers, pids)


def balance(owner: str, amount: int, last_updated: str | None) -> dict[str, Any]:
    return {"ownerId": owner, "balance": amount, "lastUpdated": last_updated}


async def receive(ws: ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def next_balance(ws: ClientConnection, id_: str = "1") -> dict[str, Any]:
    """The Balance of the next message, which must be a result of subscription `id_`."""
    message = await receive(ws)
    assert (message["type"], message["id"]) == ("next", id_), message
    assert "errors" not in message["payload"], message
    value: dict[str, Any] = message["payload"]["data"]["balanceChanged"]
    return value


async def balances_by_id(ws: ClientConnection, count: int) -> dict[str, dict[str, Any]]:
    """The Balances of the next `count` messages, by subscription id, in whatever order."""
    messages = [await receive(ws) for _ in range(count)]
    assert {message["type"] for message in messages} == {"next"}, messages
    return {m["id"]: m["payload"]["data"]["balanceChanged"] for m in messages}


async def assert_silent(*sockets: ClientConnection) -> None:
    """Nothing more arrives on any of `sockets` for half a second."""

    async def silent(ws: ClientConnection) -> None:
        with pytest.raises(TimeoutError):
            pytest.fail(f"unexpected message {await receive(ws, 0.5)}")

    await asyncio.gather(*(silent(ws) for ws in sockets))


async def subscribe(
    ws: ClientConnection, owner: str, id_: str = "1", query: str = SUBSCRIPTION
) -> None:
    payload = {"query": query, "variables": {"o": owner}}
    await ws.send(json.dumps({"id": id_, "type": "subscribe", "payload": payload}))


async def open_socket(
    server: ServerProcess, headers: dict[str, str] = SERVICE, **options: Any
) -> ClientConnection:
    """A WebSocket to `server` whose connection_init has been acknowledged."""
    url = server.url().replace("http", "ws", 1) + "/graphql"
    ws = await connect(url, subprotocols=PROTOCOLS, open_timeout=TIMEOUT, **options)
    await ws.send(json.dumps({"type": "connection_init", "payload": headers}))
    assert await receive(ws) == {"type": "connection_ack"}
    return ws


@asynccontextmanager
async def subscribed(
    server: ServerProcess, *owners: str, query: str = SUBSCRIPTION, **options: Any
) -> AsyncIterator[list[ClientConnection]]:
    """One WebSocket per owner, each subscribed (id "1") to that owner's balance; the
    first message, the current balance, is left to the caller to read."""
    sockets: list[ClientConnection] = []

    async def one(owner: str) -> ClientConnection:
        ws = await open_socket(server, **options)
        sockets.append(ws)
        await subscribe(ws, owner, query=query)
        return ws

    try:
        yield list(await asyncio.gather(*(one(owner) for owner in owners)))
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))


async def credit(
    server: ServerProcess,
    owner: str,
    nonce: str,
    operation: str = "CREDIT_ADD",
    headers: dict[str, str] = SERVICE,
) -> dict[str, Any]:
    """createEntry over HTTP on `server`; the result (LedgerEntry or LedgerError)."""
    async with httpx.AsyncClient(base_url=server.url(), headers=headers, timeout=TIMEOUT) as http:
        return await create_entry_async(http, owner, operation, nonce)


@asynccontextmanager
async def database(url: str, *, autocommit: bool) -> AsyncIterator[AsyncConnection]:
    """A connection of the test's own; without autocommit the caller ends the transaction."""
    engine = create_engine(url, autocommit=autocommit, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            yield connection
    finally:
        await engine.dispose()


def server_with(cluster: ListeningCluster, **settings: str) -> ServerProcess:
    """A third server process on the cluster's database, configured with `settings`."""
    env = clean_environment(HEALTHAI_DATABASE_URL=cluster.database_url, **settings)
    return ServerProcess.uvicorn("healthai", env)


CREDIT_SQL = text("SELECT * FROM create_entry(:o, 'CREDIT_ADD', :nonce)")


def test_the_first_message_is_the_current_balance(cluster: ListeningCluster, owner: str) -> None:
    a, b = cluster.servers
    other = f"{owner}-with-entries"

    async def scenario() -> None:
        async with subscribed(a, owner) as [ws]:
            assert await next_balance(ws) == balance(owner, 0, None)
            await assert_silent(ws)
        await credit(a, other, "first")
        last = await credit(b, other, "second")
        async with subscribed(b, other) as [ws]:
            assert await next_balance(ws) == balance(other, 20, last["createdOn"])
            await assert_silent(ws)

    asyncio.run(scenario())


def test_each_committed_entry_reaches_subscribers_of_every_process_once_in_commit_order(
    cluster: ListeningCluster, owner: str
) -> None:
    a, b = cluster.servers

    async def scenario() -> None:
        async with subscribed(a, owner) as [on_a], subscribed(b, owner) as [on_b]:
            for ws in (on_a, on_b):
                assert await next_balance(ws) == balance(owner, 0, None)
            # One after the other, alternating between the processes...
            written = [await credit((a, b)[n % 2], owner, f"seq-{n}") for n in range(20)]
            # ...and then twenty at once: the row lock orders their commits.
            written += await asyncio.gather(
                *(credit((a, b)[n % 2], owner, f"race-{n}") for n in range(20))
            )
            expected = sorted(
                (balance(owner, e["balanceAfter"], e["createdOn"]) for e in written),
                key=lambda value: value["balance"],
            )
            assert [value["balance"] for value in expected] == list(range(10, 401, 10))
            instants = [datetime.fromisoformat(value["lastUpdated"]) for value in expected]
            assert instants == sorted(set(instants))
            for ws in (on_a, on_b):
                assert [await next_balance(ws) for _ in expected] == expected
            await assert_silent(on_a, on_b)

    asyncio.run(scenario())


def test_refused_replayed_and_rolled_back_entries_send_no_balance(
    cluster: ListeningCluster, owner: str
) -> None:
    a, b = cluster.servers

    async def scenario() -> None:
        async with subscribed(b, owner) as [ws]:
            assert await next_balance(ws) == balance(owner, 0, None)
            signup = await credit(a, owner, "signup", "SIGNUP_CREDIT")
            assert await next_balance(ws) == balance(owner, 3, signup["createdOn"])

            refused = [
                await credit(a, owner, "spend", "CONTENT_CREATION"),
                await credit(a, owner, "signup-again", "SIGNUP_CREDIT"),
                await credit(a, owner, "mine", headers=user_headers("healthai", owner)),
                await credit(b, owner, "signup", "SIGNUP_CREDIT"),
            ]
            kinds = [result["__typename"] for result in refused[:3]]
            assert kinds == ["InsufficientCredits", "LimitReached", "OperationNotAllowed"]
            assert refused[3] == signup  # a replayed nonce answers the original entry
            async with database(cluster.database_url, autocommit=False) as connection:
                row = (await connection.execute(CREDIT_SQL, {"o": owner, "nonce": "x"})).one()
                assert (row.outcome, row.current_balance) == ("created", 13)
                await connection.rollback()

            real = await credit(b, owner, "real")
            assert await next_balance(ws) == balance(owner, 13, real["createdOn"])
            await assert_silent(ws)

    asyncio.run(scenario())
    rows = sql(cluster.database_url, "SELECT nonce FROM entries WHERE owner_id = :o", o=owner)
    assert sorted(row[0] for row in rows) == ["real", "signup"]


def test_one_listener_per_process_which_reconnects_and_resends_the_current_balance(
    cluster: ListeningCluster, owner: str
) -> None:
    a, b = cluster.servers
    killed, survivor = cluster.listeners
    assert listeners(cluster.database_url) == {killed, survivor}

    async def scenario() -> None:
        async with subscribed(a, *[owner] * 5) as on_a, subscribed(b, *[owner] * 5) as on_b:
            for ws in on_a + on_b:
                assert await next_balance(ws) == balance(owner, 0, None)
            # Ten subscribers, still one listening connection per process.
            found = await asyncio.to_thread(listeners, cluster.database_url)
            assert found == {killed, survivor}
            # A's listener is killed while the database refuses new connections, so that A
            # cannot listen again before the entry commits: only the resend can bring it.
            name = make_url(cluster.database_url).database
            allow = f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS '
            async with (
                database(with_database(cluster.database_url, "postgres"), autocommit=True) as admin,
                database(cluster.database_url, autocommit=True) as connection,
            ):
                await admin.execute(text(allow + "false"))
                try:
                    terminate = text("SELECT pg_terminate_backend(:pid, 5000)")
                    assert await connection.scalar(terminate, {"pid": killed}) is True
                    assert list(await connection.execute(text(LISTENERS))) == [(survivor,)]
                    row = (await connection.execute(CREDIT_SQL, {"o": owner, "nonce": "d"})).one()
                    assert (row.outcome, row.current_balance) == ("created", 10)
                    ten = balance(owner, 10, row.entry_created_on.isoformat())
                    assert [await next_balance(ws) for ws in on_b] == [ten] * 5
                    await assert_silent(*on_a)
                finally:
                    await admin.execute(text(allow + "true"))
            assert [await next_balance(ws) for ws in on_a] == [ten] * 5

            # Only A's listener was replaced.
            found = await asyncio.to_thread(wait_for_listeners, cluster.database_url, 2)
            assert killed not in found and survivor in found
            cluster.listeners[0] = (found - {survivor}).pop()

            later = await credit(a, owner, "later")
            for ws in on_a + on_b:
                assert await next_balance(ws) == balance(owner, 20, later["createdOn"])
            await assert_silent(*on_a, *on_b)

    asyncio.run(scenario())


def test_two_hundred_subscribers_on_one_process_all_receive_a_write(
    cluster: ListeningCluster, owner: str, figures: Callable[[str], None]
) -> None:
    a, b = cluster.servers
    assert b.process is not None
    process = psutil.Process(b.process.pid)

    async def scenario() -> None:
        async with subscribed(b, owner) as [warm]:  # the code paths loaded before measuring
            assert await next_balance(warm) == balance(owner, 0, None)
            await asyncio.sleep(0.5)
            before = process.memory_info().rss
            async with subscribed(b, *[owner] * 200) as sockets:
                firsts = await asyncio.gather(*(next_balance(ws) for ws in sockets))
                assert firsts == [balance(owner, 0, None)] * 200
                await asyncio.sleep(1)
                per = (process.memory_info().rss - before) / 200
                figures(f"memory per idle subscriber: {per / 1024:.1f} KiB")
                assert per < 512 * 1024
                found = await asyncio.to_thread(listeners, cluster.database_url)
                assert found == set(cluster.listeners)

                written = await credit(a, owner, "to-all")
                received = await asyncio.gather(*(next_balance(ws) for ws in sockets))
                assert received == [balance(owner, 10, written["createdOn"])] * 200

    asyncio.run(scenario())


def test_a_connection_holds_at_most_max_subscriptions_operations(
    cluster: ListeningCluster, owner: str
) -> None:
    async def scenario(server: ServerProcess) -> None:
        async with subscribed(server, owner) as [ws]:
            await subscribe(ws, owner, "2")
            nothing = balance(owner, 0, None)
            assert await balances_by_id(ws, 2) == {"1": nothing, "2": nothing}
            await subscribe(ws, owner, "3")
            limit = {"message": "Subscription limit reached"}
            assert await receive(ws) == {"id": "3", "type": "error", "payload": [limit]}

            written = await credit(server, owner, "first")
            ten = balance(owner, 10, written["createdOn"])
            assert await balances_by_id(ws, 2) == {"1": ten, "2": ten}

            await ws.send(json.dumps({"id": "1", "type": "complete"}))  # frees a place
            await subscribe(ws, owner, "3")
            assert await next_balance(ws, "3") == ten
            await assert_silent(ws)

    with server_with(cluster, LEDGER_MAX_SUBSCRIPTIONS="2") as server:
        asyncio.run(scenario(server))


def test_a_websocket_beyond_max_websockets_is_refused_at_the_handshake(
    cluster: ListeningCluster, owner: str
) -> None:
    async def scenario(server: ServerProcess) -> None:
        first, second = await open_socket(server), await open_socket(server)
        try:
            with pytest.raises(InvalidStatus) as refused:
                await open_socket(server)
            assert refused.value.response.status_code == 403

            await first.close()
            deadline = time.monotonic() + 5
            while True:  # the server frees the slot once it has seen the close
                try:
                    first = await open_socket(server)
                    break
                except InvalidStatus:
                    assert time.monotonic() < deadline, "closing a WebSocket freed no slot"
                    await asyncio.sleep(0.05)
            await subscribe(first, owner)
            assert await next_balance(first) == balance(owner, 0, None)
        finally:
            await asyncio.gather(first.close(), second.close())

    with server_with(cluster, LEDGER_MAX_WEBSOCKETS="2") as server:
        asyncio.run(scenario(server))


# Uncompressed messages of ~16 KB (60 aliases of a 255-character owner id): the kernel's
# socket buffers, several MB on loopback, then hold only a few hundred of them.
LARGE_SUBSCRIPTION = (
    "subscription($o: ID!) { balanceChanged(ownerId: $o) { balance "
    + " ".join(f"o{n}: ownerId" for n in range(60))
    + " } }"
)
ENTRIES = 2000


def test_a_slow_consumer_loses_old_balances_and_holds_up_no_one(
    cluster: ListeningCluster, owner: str
) -> None:
    long_owner = f"{owner}-".ljust(255, "x")
    final = 10 * ENTRIES

    async def scenario(server: ServerProcess) -> None:
        async with (
            subscribed(server, long_owner, query=LARGE_SUBSCRIPTION, compression=None) as [slow],
            subscribed(server, long_owner) as [reader],
        ):
            assert (await next_balance(slow))["balance"] == 0
            assert await next_balance(reader) == balance(long_owner, 0, None)
            seen: list[int] = []

            async def read() -> None:
                while not seen or seen[-1] < final:
                    seen.append((await next_balance(reader))["balance"])

            reading = asyncio.create_task(read())
            async with database(cluster.database_url, autocommit=True) as connection:
                for n in range(ENTRIES):  # each statement its own transaction
                    await connection.execute(CREDIT_SQL, {"o": long_owner, "nonce": f"n{n}"})
            await asyncio.wait_for(reading, 5)
            assert seen[-1] == final and seen == sorted(set(seen))

            late: list[int] = []
            while not late or late[-1] < final:
                late.append((await next_balance(slow))["balance"])
            await assert_silent(slow)
            assert late == sorted(set(late)) and late[-1] == final
            assert len(late) < ENTRIES, "nothing was dropped: the buffer did not bound"

    with server_with(cluster, LEDGER_SUBSCRIPTION_BUFFER="4") as server:
        asyncio.run(scenario(server))


def test_an_end_user_may_follow_only_its_own_balance(cluster: ListeningCluster, owner: str) -> None:
    a, b = cluster.servers
    other = f"{owner}-other"

    async def scenario() -> None:
        ws = await open_socket(a, user_headers("healthai", owner))
        try:
            await subscribe(ws, other, "1")
            refusal = await receive(ws)
            assert (refusal["id"], refusal["type"]) == ("1", "next"), refusal
            assert refusal["payload"]["data"] is None
            codes = [error["extensions"]["code"] for error in refusal["payload"]["errors"]]
            assert codes == ["FORBIDDEN"]
            assert await receive(ws) == {"id": "1", "type": "complete"}

            await subscribe(ws, owner, "2")
            assert await next_balance(ws, "2") == balance(owner, 0, None)
            await credit(b, other, "theirs")
            mine = await credit(b, owner, "mine")
            assert await next_balance(ws, "2") == balance(owner, 10, mine["createdOn"])
            await assert_silent(ws)
        finally:
            await ws.close()

    asyncio.run(scenario())


def test_a_subscription_over_http_is_refused_as_a_client_error(
    cluster: ListeningCluster, owner: str
) -> None:
    server = cluster.servers[0]
    logged = len(server.output())
    request = {"query": SUBSCRIPTION, "variables": {"o": owner}}
    response = httpx.post(f"{server.url()}/graphql", json=request, headers=SERVICE, timeout=TIMEOUT)

    assert response.status_code == 400, response.text
    assert response.json() == {
        "errors": [
            {
                "message": "subscriptions are not allowed when using POST",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
    }
    assert "unexpected error" not in server.output()[logged:].lower()


# --- NOTIFY only for watched owners (issue 16) -------------------------------------------

WATCHES = "SELECT count(*) FROM ledger_watches WHERE owner_id = :o"


async def notifications(url: str) -> tuple[Any, list[dict[str, Any]]]:
    """A LISTEN connection of the test's own, and the list it appends every notice to."""
    import asyncpg

    connection = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    heard: list[dict[str, Any]] = []

    def notified(_: object, __: int, ___: str, payload: str) -> None:
        heard.append(json.loads(payload))

    await connection.add_listener("ledger_balances", notified)
    return connection, heard


def wait_for_watches(url: str, owner: str, count: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while sql(url, WATCHES, o=owner)[0][0] != count:
        assert time.monotonic() < deadline, f"{owner} is not watched {count} times"
        time.sleep(0.02)


def test_a_write_notifies_only_while_someone_watches_its_owner(
    cluster: ListeningCluster, owner: str
) -> None:
    """Its first write creates the owner's row and notifies; later ones notify only while a
    process has a subscriber for the owner; the watch ends with the last subscriber."""
    a, b = cluster.servers

    async def scenario() -> list[int]:
        listener, heard = await notifications(cluster.database_url)
        try:
            await credit(a, owner, "first")  # version 1: the row is new
            await credit(a, owner, "unwatched")
            async with subscribed(b, owner) as [ws], subscribed(b, owner) as [again]:
                assert (await next_balance(ws))["balance"] == 20
                assert (await next_balance(again))["balance"] == 20
                watches = await asyncio.to_thread(sql, cluster.database_url, WATCHES, o=owner)
                assert watches == [(1,)]  # one per process, however many subscribers
                watched = await credit(a, owner, "watched")
                assert await next_balance(ws) == balance(owner, 30, watched["createdOn"])
                assert (await next_balance(again))["balance"] == 30
            await asyncio.to_thread(wait_for_watches, cluster.database_url, owner, 0)
            await credit(a, owner, "unwatched-again")
            # Another owner's first write notifies: once it is heard, so would be any
            # notice of this owner's writes before it.
            marker = f"{owner}-marker"
            await credit(a, marker, "first")
            deadline = time.monotonic() + TIMEOUT
            while not any(notice["owner_id"] == marker for notice in heard):
                assert time.monotonic() < deadline, "the marker's notice never came"
                await asyncio.sleep(0.02)
            return [notice["version"] for notice in heard if notice["owner_id"] == owner]
        finally:
            await listener.close()

    assert asyncio.run(scenario()) == [1, 3]  # the first write, and the watched one


def test_a_write_in_flight_when_the_first_subscriber_arrives_reaches_it(
    cluster: ListeningCluster, owner: str
) -> None:
    """A write that checked for watchers before the subscriber's watch committed does not
    notify, so the watch reads the balance FOR SHARE: it waits for that write's commit and
    starts from it. Made deterministic by holding the write open until the watch waits."""
    a, b = cluster.servers
    waiting = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query LIKE '%ledger_watch(%'"
    )

    async def scenario() -> dict[str, Any]:
        await credit(a, owner, "first")
        async with database(cluster.database_url, autocommit=False) as connection:
            row = (await connection.execute(CREDIT_SQL, {"o": owner, "nonce": "in-flight"})).one()
            assert (row.outcome, row.current_balance) == ("created", 20)
            async with subscribed(b, owner) as [ws]:
                deadline = time.monotonic() + TIMEOUT
                while (await asyncio.to_thread(sql, cluster.database_url, waiting))[0][0] == 0:
                    assert time.monotonic() < deadline, "the watch never waited for the write"
                    await asyncio.sleep(0.02)
                await connection.commit()
                first = await next_balance(ws)
                await assert_silent(ws)
                return first

    assert asyncio.run(scenario())["balance"] == 20
