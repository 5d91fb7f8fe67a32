"""Faults injected into real server processes and a real PostgreSQL, each bounded in
requests and seconds, on loopback only:

- a server process SIGKILLed in the middle of a write load that two processes share,
  while clients repeat requests (same nonce) after timeouts and lost connections;
- PostgreSQL stopped at once (`pg_ctl stop -m immediate`) under load, then started again;
- one pooled connection terminated (pg_terminate_backend) in the middle of a request.

Afterwards `graphql-ledger verify` must find the books balanced, every entry a client was
given must be stored as given, and no request may have been applied twice."""

import asyncio
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx2 as httpx
import pytest

from graphql_ledger.storage import head_revision, migrate
from graphql_ledger.storage.database import asyncpg_url
from healthai.operations import HealthAIOperation
from tests.support import (
    GraphQLClient,
    PrivatePostgres,
    ServerProcess,
    clean_environment,
    create_entry_request,
    private_postgres,
    service_headers,
    sql,
    two_servers,
    verify_books,
)

SERVICE = service_headers("healthai")
BALANCE = "query($o: ID!) { balance(ownerId: $o) { ownerId balance } }"

Key = tuple[str, str]  # owner id, nonce
Request = tuple[str, str, str, float]  # owner id, operation, nonce, first attempt's timeout


@dataclass
class Tally:
    """What the clients saw: the last answer to each request, and the figures."""

    answers: dict[Key, dict[str, Any]] = field(default_factory=dict)
    retried: set[Key] = field(default_factory=set)
    # Requests repeated after a client timeout or a connection lost mid-request: an earlier
    # attempt may still have been running when a later one was answered.
    ambiguous: set[Key] = field(default_factory=set)
    figures: Counter[str] = field(default_factory=Counter)
    unavailable_latencies: list[float] = field(default_factory=list)
    # First attempts (a nonce never sent before, so they must write) sent whole to each
    # client's server and not answered yet, with a timeout longer than any test waits.
    awaiting: dict[httpx.AsyncClient, set[Key]] = field(default_factory=dict)

    def entries(self) -> dict[Key, tuple[int, str, int, int]]:
        return {
            key: (int(r["id"]), r["operation"], r["amount"], r["balanceAfter"])
            for key, r in self.answers.items()
            if r["__typename"] == "LedgerEntry"
        }


async def send_until_answered(
    clients: list[httpx.AsyncClient],
    owner_id: str,
    operation: str,
    nonce: str,
    tally: Tally,
    *,
    first_timeout: float = 30.0,
    start: int | None = None,
) -> dict[str, Any]:
    """Sends one createEntry the way a careful backend does: when no answer comes (a
    timeout, a lost connection, SERVICE_UNAVAILABLE), it repeats the same request, with
    the same nonce, on the next server, until the ledger answers. It starts on the server
    `start` names, or one at random."""
    key = (owner_id, nonce)
    body = create_entry_request(owner_id, operation, nonce)
    if start is None:
        start = random.randrange(len(clients))
    for attempt in range(200):
        client = clients[(start + attempt) % len(clients)]
        if attempt:
            tally.retried.add(key)
            tally.figures["retries"] += 1
        tally.figures["requests sent"] += 1
        sent = time.monotonic()
        timeout = first_timeout if attempt == 0 else 30.0
        try:
            response = await post(client, body, timeout, tally, key)
        except httpx.TimeoutException:
            tally.ambiguous.add(key)
            tally.figures["client timeouts"] += 1
            continue
        except httpx.ConnectError:  # nothing was sent
            tally.figures["refused connections"] += 1
            await asyncio.sleep(0.05)
            continue
        except httpx.TransportError:  # sent, then the connection broke: applied or not
            tally.ambiguous.add(key)
            tally.figures["connections lost mid-request"] += 1
            await asyncio.sleep(0.05)
            continue
        assert response.status_code == 200, response.text
        answer = response.json()
        if answer.get("errors"):
            [error] = answer["errors"]
            assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE", answer
            assert answer["data"] is None
            tally.figures["SERVICE_UNAVAILABLE"] += 1
            tally.unavailable_latencies.append(time.monotonic() - sent)
            await asyncio.sleep(0.1)
            continue
        result: dict[str, Any] = answer["data"]["createEntry"]
        tally.answers[key] = result
        tally.figures[result["__typename"]] += 1
        return result
    raise AssertionError(f"no answer to {key} after 200 attempts")


async def post(
    client: httpx.AsyncClient, body: dict[str, Any], timeout: float, tally: Tally, key: Key
) -> httpx.Response:
    """Posts `body`; a first attempt with a long timeout is in `tally.awaiting` from the
    moment its last byte is sent until it is answered or fails."""
    waiting = tally.awaiting.setdefault(client, set())

    async def trace(event: str, _: dict[str, Any]) -> None:
        if event == "http11.send_request_body.complete":
            waiting.add(key)

    first_attempt = key not in tally.retried
    extensions = {"trace": trace} if first_attempt and timeout >= 30 else {}
    try:
        return await client.post("/graphql", json=body, timeout=timeout, extensions=extensions)
    finally:
        waiting.discard(key)


def stored_entries(url: str) -> dict[Key, tuple[int, str, int, int]]:
    rows = sql(url, "SELECT owner_id, nonce, id, operation, amount, balance_after FROM entries")
    return {(o, n): (i, op, a, b) for o, n, i, op, a, b in rows}


def assert_nothing_acknowledged_was_lost(url: str, tally: Tally) -> None:
    """Every entry a client was given is stored exactly as given (one per (owner, nonce),
    which the database's key guarantees); every stored entry was given to its client, or
    belongs to an ambiguous request whose last answer was a refusal (an earlier attempt,
    still running then, may have written it since)."""
    stored = stored_entries(url)
    given = tally.entries()
    assert {key: stored.get(key) for key in given} == given
    unclaimed = set(stored) - set(given)
    assert unclaimed <= tally.ambiguous, sorted(unclaimed - tally.ambiguous)[:5]
    for key in set(tally.answers) - set(given) - tally.ambiguous:
        assert key not in stored, f"refused, yet stored: {key}"


# -- a server process killed mid-load ---------------------------------------------------

CRASH_REQUESTS = 2000
CRASH_OWNERS = 1000
CONCURRENCY = 16


def test_a_server_killed_mid_load_loses_nothing_and_applies_nothing_twice(
    new_database: Callable[..., str], figures: Callable[[str], None]
) -> None:
    url = new_database("crash")
    rng = random.Random(8)
    # Mixed credits and spends: purchases, spends of 1 and of 5 credits, over 1,000 owners.
    weights = {"CREDIT_ADD": 5, "CREDIT_SPEND": 3, "CONTENT_CREATION": 2}
    load = [
        (
            f"crash-owner-{rng.randrange(CRASH_OWNERS)}",
            rng.choices(list(weights), list(weights.values()))[0],
            f"crash-{number}",
            # One request in ten is first sent with a timeout too short for any answer,
            # then repeated: a client that gave up waiting.
            0.002 if rng.random() < 0.1 else 30.0,
        )
        for number in range(CRASH_REQUESTS)
    ]
    tally = Tally()
    kills: list[float] = []
    held_at_the_kill: list[int] = []
    with two_servers(url) as cluster, ExitStack() as stack:
        first, second = cluster.servers

        async def run() -> None:
            limits = httpx.Limits(max_connections=CONCURRENCY)
            async with (
                httpx.AsyncClient(base_url=first.url(), headers=SERVICE, limits=limits) as a,
                httpx.AsyncClient(base_url=second.url(), headers=SERVICE, limits=limits) as b,
            ):
                gate = asyncio.Semaphore(CONCURRENCY)
                answered = 0

                async def one(owner_id: str, operation: str, nonce: str, timeout: float) -> None:
                    nonlocal answered
                    async with gate:
                        await send_until_answered(
                            [a, b], owner_id, operation, nonce, tally, first_timeout=timeout
                        )
                        answered += 1

                async def crash(probe: Request, a_probe: httpx.AsyncClient) -> None:
                    nonlocal answered
                    while answered < CRASH_REQUESTS * 0.4:
                        await asyncio.sleep(0.01)
                    assert first.process is not None
                    async with writes_held(url) as writes_waiting:
                        # Sent after the lock was taken, a first attempt of a new nonce
                        # cannot be answered until it goes. The load's own requests may all
                        # be waiting already (their slots full), so the last request of the
                        # load is sent now, on a client of its own, to the first server: it
                        # is certainly in flight there when the kill lands.
                        tally.awaiting.setdefault(a, set()).clear()
                        tally.awaiting.setdefault(a_probe, set()).clear()
                        owner_id, operation, nonce, _ = probe
                        probed = asyncio.create_task(
                            send_until_answered(
                                [a_probe, b], owner_id, operation, nonce, tally, start=0
                            )
                        )
                        while not (await writes_waiting() and tally.awaiting[a_probe]):
                            await asyncio.sleep(0.01)
                        held_at_the_kill.append(
                            len(tally.awaiting[a_probe]) + len(tally.awaiting[a])
                        )
                        first.process.send_signal(signal.SIGKILL)
                        kills.append(time.monotonic())
                        await asyncio.to_thread(first.process.wait)
                    while answered < CRASH_REQUESTS * 0.6:
                        await asyncio.sleep(0.01)
                    # The same command, environment and port, started again (and stopped
                    # with the others).
                    again = ServerProcess(first.args, first.env, first.ports)
                    await asyncio.to_thread(stack.enter_context, again)
                    await probed
                    answered += 1

                async with httpx.AsyncClient(base_url=first.url(), headers=SERVICE) as a_probe:
                    await asyncio.gather(
                        crash(load[-1], a_probe), *(one(*request) for request in load[:-1])
                    )

        started = time.monotonic()
        asyncio.run(run())
        took = time.monotonic() - started

    assert len(kills) == 1
    assert held_at_the_kill[0] > 0
    assert len(tally.answers) == CRASH_REQUESTS
    assert tally.figures["connections lost mid-request"] > 0, "the kill interrupted nothing"
    assert tally.figures["client timeouts"] > 0
    summary = verify_books("healthai", url)
    assert_nothing_acknowledged_was_lost(url, tally)
    stored = stored_entries(url)
    retried_and_stored = [key for key in tally.retried if key in stored]
    assert retried_and_stored, "no retried request was stored"
    figures(
        f"crash: {CRASH_REQUESTS} writes over {CRASH_OWNERS} owners on 2 processes, 1 SIGKILL"
        f" mid-load while {held_at_the_kill[0]} requests to it waited on a lock the test held,"
        f" restarted; {tally.figures['requests sent']} requests sent,"
        f" {tally.figures['retries']} retries ({tally.figures['client timeouts']} after a"
        f" client timeout, {tally.figures['connections lost mid-request']} after a connection"
        f" lost mid-request, {tally.figures['refused connections']} after a refused one);"
        f" answers {dict(sorted((k, v) for k, v in tally.figures.items() if k[0].isupper()))};"
        f" {len(retried_and_stored)} retried nonces stored once each; {len(stored)} entries"
        f" stored, every acknowledged one among them; in {took:.1f} s. verify: {summary}"
    )


# -- PostgreSQL stopped at once under load ----------------------------------------------


@pytest.fixture
def outage() -> Iterator[PrivatePostgres]:
    """A PostgreSQL of the test's own, which it can stop at once and restart."""
    with private_postgres() as started:
        yield started


DB_TIMEOUT = 2.0


def test_a_database_outage_fails_fast_with_service_unavailable_and_recovers_by_itself(
    outage: PrivatePostgres, figures: Callable[[str], None]
) -> None:
    url = outage.url("outage")
    asyncio.run(migrate(url, HealthAIOperation))
    env = clean_environment(HEALTHAI_DATABASE_URL=url, LEDGER_DB_TIMEOUT=str(DB_TIMEOUT))
    tally = Tally()
    timeline: dict[str, float] = {}
    readiness: dict[str, tuple[int, dict[str, Any]]] = {}
    with ServerProcess.uvicorn("healthai", env) as server:
        assert server.process is not None
        pid = server.process.pid

        async def run() -> None:
            async with httpx.AsyncClient(base_url=server.url(), headers=SERVICE) as http:
                stop = asyncio.Event()
                first_success_after_restart = asyncio.Event()

                async def writer(number: int) -> None:
                    sequence = 0
                    while not stop.is_set():
                        sequence += 1
                        await send_until_answered(
                            [http],
                            f"outage-owner-{number}",
                            "CREDIT_ADD",
                            f"outage-{number}-{sequence}",
                            tally,
                        )
                        if "restarted" in timeline:
                            timeline.setdefault("first success", time.monotonic())
                            first_success_after_restart.set()

                async def ready() -> tuple[int, dict[str, Any]]:
                    response = await http.get("/readyz", timeout=30)
                    return response.status_code, response.json()

                writers = [asyncio.create_task(writer(n)) for n in range(4)]
                await asyncio.sleep(2)
                readiness["before"] = await ready()
                before = tally.figures["LedgerEntry"]
                await asyncio.to_thread(outage.stop_immediately)
                timeline["stopped"] = time.monotonic()
                await asyncio.sleep(1)
                readiness["during"] = await ready()
                during = tally.figures["LedgerEntry"]
                await asyncio.sleep(2)
                assert tally.figures["LedgerEntry"] == during, "written while stopped"
                await asyncio.to_thread(outage.start_again)
                timeline["restarted"] = time.monotonic()
                recovered = asyncio.create_task(first_success_after_restart.wait())
                done, _ = await asyncio.wait(
                    [recovered, *writers], timeout=10, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done - {recovered}:
                    task.result()  # a writer that failed says why
                assert recovered in done, "no write succeeded within 10 s of the restart"
                readiness["after"] = await ready()
                await asyncio.sleep(1)
                stop.set()
                await asyncio.gather(*writers)
                assert before > 0

        asyncio.run(run())
        output = server.output()
        assert '"level":"ERROR"' not in output, output  # an outage is no unexpected error
        assert server.process.poll() is None and server.process.pid == pid, "restarted"

    assert readiness["before"] == (200, {"status": "ready", "revision": head_revision()})
    assert readiness["during"] == (
        503,
        {"status": "unavailable", "reason": "the database does not answer"},
    )
    assert readiness["after"][0] == 200
    unavailable = tally.figures["SERVICE_UNAVAILABLE"]
    assert unavailable > 0
    slowest = max(tally.unavailable_latencies)
    assert slowest < DB_TIMEOUT + 1.5, f"an answer took {slowest:.1f} s"
    recovery = timeline["first success"] - timeline["restarted"]
    summary = verify_books("healthai", url)
    assert_nothing_acknowledged_was_lost(url, tally)
    figures(
        f"outage: PostgreSQL stopped (immediate) for"
        f" {timeline['restarted'] - timeline['stopped']:.1f} s under 4 writers;"
        f" {tally.figures['requests sent']} requests, {unavailable} answered"
        f" SERVICE_UNAVAILABLE (slowest in {slowest * 1000:.0f} ms, timeout {DB_TIMEOUT:g} s),"
        f" /readyz 503 meanwhile; first write {recovery:.2f} s after the restart, no restart"
        f" of the app; {tally.figures['LedgerEntry']} entries acknowledged, all stored."
        f" verify: {summary}"
    )


# -- one pooled connection terminated mid-request ---------------------------------------

BLOCKED = """
    SELECT pid FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()
       AND wait_event_type = 'Lock'
"""


@dataclass
class Gate:
    """A lock the test holds in a transaction of its own, so that the server's statement
    waits, in PostgreSQL, until the test lets it go."""

    url: str
    statement: str
    released: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)

    def hold(self) -> None:
        async def run() -> None:
            connection = await connect(self.url)
            try:
                async with connection.transaction():
                    await connection.execute(self.statement)
                    self.holding.set()
                    await asyncio.to_thread(self.released.wait, 60)
            finally:
                await connection.close()

        asyncio.run(run())


async def connect(url: str) -> asyncpg.Connection:
    """A connection of the test's own, outside any server's pool."""
    target = asyncpg_url(url).set(drivername="postgresql")
    return await asyncpg.connect(target.render_as_string(hide_password=False))


WAITING_FOR_WRITES = """
    SELECT count(*) FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event_type = 'Lock'
       AND wait_event = 'advisory'
"""


@asynccontextmanager
async def writes_held(url: str) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """Holds the rules' advisory lock exclusively, as a rule change does, for the block:
    create_entry() takes it shared before it writes, so every write waits in PostgreSQL
    meanwhile. Yields a count of the backends waiting on it."""
    connection = await connect(url)
    try:
        await connection.execute("SELECT pg_advisory_lock(ledger_rules_lock())")

        async def waiting() -> int:
            count: int = await connection.fetchval(WAITING_FOR_WRITES)
            return count

        yield waiting
    finally:
        await connection.close()  # which releases the lock


def blocked_backends(
    url: str, count: int, timeout: float = 20, *, besides: tuple[int, ...] = ()
) -> list[int]:
    """The pids of `count` backends waiting on a lock (none of `besides`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [pid for (pid,) in sql(url, BLOCKED) if pid not in besides]
        if len(pids) >= count:
            return pids
        time.sleep(0.02)
    raise AssertionError(f"no {count} statements waited on the test's lock")


@contextmanager
def holding(url: str, statement: str) -> Iterator[None]:
    """Holds the lock `statement` takes, in a transaction of the test's own, for the block."""
    gate = Gate(url, statement)
    holder = threading.Thread(target=gate.hold)
    holder.start()
    assert gate.holding.wait(30)
    try:
        yield
    finally:
        gate.released.set()
        holder.join(60)


def test_a_connection_terminated_mid_request_fails_a_write_cleanly_and_repeats_a_read(
    new_database: Callable[..., str], owner: str, figures: Callable[[str], None]
) -> None:
    url = new_database("terminate")
    env = clean_environment(HEALTHAI_DATABASE_URL=url, LEDGER_DB_TIMEOUT="30")
    with (
        ServerProcess.uvicorn("healthai", env) as server,
        httpx.Client(base_url=server.url(), headers=SERVICE, timeout=60) as http,
    ):

        def create(nonce: str) -> dict[str, Any]:
            return GraphQLClient(http).create_entry_answer(owner, "CREDIT_SPEND", nonce)

        def in_thread(call: Callable[[], dict[str, Any]]) -> tuple[threading.Thread, list[Any]]:
            out: list[Any] = []
            thread = threading.Thread(target=lambda: out.append(call()))
            thread.start()
            return thread, out

        GraphQLClient(http).create_entry(owner, "CREDIT_ADD", "credit")

        # A write: its statement waits on the owner's balance row, the test terminates
        # its backend. The client is told SERVICE_UNAVAILABLE; nothing was applied.
        with holding(url, f"SELECT 1 FROM balances WHERE owner_id = '{owner}' FOR UPDATE"):
            writer, answers = in_thread(lambda: create("spend"))
            [pid] = blocked_backends(url, 1)
            sql(url, f"SELECT pg_terminate_backend({pid})")
            writer.join(60)
        [answer] = answers
        assert answer["data"] is None
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["SERVICE_UNAVAILABLE"]
        assert sql(url, "SELECT count(*) FROM entries WHERE nonce = 'spend'") == [(0,)]
        assert sql(url, f"SELECT balance FROM balances WHERE owner_id = '{owner}'") == [(10,)]

        # The client repeats it with the same nonce: applied once, then replayed.
        first = create("spend")["data"]["createEntry"]
        again = create("spend")["data"]["createEntry"]
        assert (first["__typename"], first["balanceAfter"]) == ("LedgerEntry", 9)
        assert again == first
        assert sql(url, "SELECT count(*) FROM entries WHERE nonce = 'spend'") == [(1,)]

        # A read: it waits on a table lock, the test terminates its backend, and the
        # server repeats it once on another connection, which answers once the lock goes.
        with holding(url, "LOCK TABLE balances IN ACCESS EXCLUSIVE MODE"):
            reader, answers = in_thread(
                lambda: http.post(
                    "/graphql", json={"query": BALANCE, "variables": {"o": owner}}
                ).json()
            )
            [pid] = blocked_backends(url, 1)
            sql(url, f"SELECT pg_terminate_backend({pid})")
            blocked_backends(url, 1, besides=(pid,))  # the repeat, on another connection
        reader.join(60)
        assert answers == [{"data": {"balance": {"ownerId": owner, "balance": 9}}}]

        # Idle pooled connections the server closed meanwhile are dropped, not used.
        terminated = sql(
            url,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'",
        )
        time.sleep(0.2)
        after = http.post("/graphql", json={"query": BALANCE, "variables": {"o": owner}}).json()
        assert after == {"data": {"balance": {"ownerId": owner, "balance": 9}}}
        output = server.output()
    assert "a read lost its connection" in output
    assert "Traceback" not in output
    summary = verify_books("healthai", url)
    figures(
        "terminate: a write's backend terminated mid-statement: SERVICE_UNAVAILABLE, nothing"
        " applied, the same nonce then applied once; a read's backend terminated: repeated"
        f" once, answered; {terminated[0][0]} idle pooled connections terminated, skipped."
        f" verify: {summary}"
    )


def test_a_write_past_the_deadline_is_cancelled_in_postgresql_not_left_to_commit(
    new_database: Callable[..., str], owner: str, figures: Callable[[str], None]
) -> None:
    url = new_database("deadline")
    env = clean_environment(HEALTHAI_DATABASE_URL=url, LEDGER_DB_TIMEOUT="1")
    with (
        ServerProcess.uvicorn("healthai", env) as server,
        httpx.Client(base_url=server.url(), headers=SERVICE, timeout=30) as http,
    ):

        def create(operation: str, nonce: str) -> dict[str, Any]:
            return GraphQLClient(http).create_entry_answer(owner, operation, nonce)

        assert create("CREDIT_ADD", "credit")["data"]["createEntry"]["balanceAfter"] == 10
        with holding(url, f"SELECT 1 FROM balances WHERE owner_id = '{owner}' FOR UPDATE"):
            sent = time.monotonic()
            answer = create("CREDIT_SPEND", "late")  # waits on the test's lock, past 1 s
            took = time.monotonic() - sent
            assert answer["data"] is None
            assert [e["extensions"]["code"] for e in answer["errors"]] == ["SERVICE_UNAVAILABLE"]
            assert took < 1 + 2, f"answered after {took:.1f} s"
            # The server had PostgreSQL cancel the statement: nothing waits on the lock.
            deadline = time.monotonic() + 10
            while sql(url, BLOCKED) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sql(url, BLOCKED) == []
        time.sleep(0.5)  # a statement left running would commit now
        assert sql(url, "SELECT count(*) FROM entries WHERE nonce = 'late'") == [(0,)]
        # The client repeats it: applied once; the connection is back in service.
        again = create("CREDIT_SPEND", "late")["data"]["createEntry"]
        assert (again["__typename"], again["balanceAfter"]) == ("LedgerEntry", 9)
        answer_again = create("CREDIT_SPEND", "late")["data"]["createEntry"]
        assert answer_again == again
        output = server.output()
    assert '"level":"ERROR"' not in output, output
    summary = verify_books("healthai", url)
    figures(
        f"deadline: a write held on a lock past LEDGER_DB_TIMEOUT=1: SERVICE_UNAVAILABLE after"
        f" {took:.2f} s, its statement cancelled in PostgreSQL (nothing committed once the"
        f" lock went), the same nonce then applied once. verify: {summary}"
    )


def test_a_statement_the_database_refuses_for_now_is_service_unavailable_not_masked(
    new_database: Callable[..., str], owner: str
) -> None:
    """A lock timeout an operator set on the database (SQLSTATE 55P03), like a statement
    timeout or a deadlock, rolls the call back whole: the client may retry it."""
    url = new_database("lock_timeout")
    [(name,)] = sql(url, "SELECT current_database()")
    sql(url, f"ALTER DATABASE \"{name}\" SET lock_timeout = '200ms'")
    env = clean_environment(HEALTHAI_DATABASE_URL=url)
    with (
        ServerProcess.uvicorn("healthai", env) as server,
        httpx.Client(base_url=server.url(), headers=SERVICE, timeout=30) as http,
    ):

        def create(nonce: str) -> dict[str, Any]:
            return GraphQLClient(http).create_entry_answer(owner, "CREDIT_ADD", nonce)

        assert create("first")["data"]["createEntry"]["balanceAfter"] == 10
        with holding(url, f"SELECT 1 FROM balances WHERE owner_id = '{owner}' FOR UPDATE"):
            refused = create("second")
        assert refused["data"] is None
        assert [e["extensions"]["code"] for e in refused["errors"]] == ["SERVICE_UNAVAILABLE"]
        again = create("second")["data"]["createEntry"]
        assert (again["__typename"], again["balanceAfter"]) == ("LedgerEntry", 20)
        output = server.output()
    assert "lock timeout" in output
    assert '"level":"ERROR"' not in output, output
