"""Webhooks from the transactional outbox (CONTRACT.md section 6), end to end: real server
processes, real PostgreSQL, and a real receiver on 127.0.0.1 that can be told to fail, hang
or go away. Every signature is checked with the `standardwebhooks` package; afterwards every
committed change must have been delivered at least once, each owner's events in commit
order (no event sent before its owner's earlier ones were acknowledged), and nothing
dead-lettered that should not be."""

import asyncio
import base64
import http.server
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook

from graphql_ledger.config import ConfigError, Settings
from graphql_ledger.storage import EmbeddedPostgres, migrate
from healthai.operations import HealthAIOperation
from tests.support import (
    CLI,
    ROOT,
    GraphQLClient,
    ServerProcess,
    clean_environment,
    free_port,
    private_postgres,
    race_through_a_gate,
    service_headers,
    sql,
    two_servers,
    user_headers,
    verify_books,
    with_user,
)

SERVING_LOGIN = EmbeddedPostgres.serving_login
KEY = b"test-webhook-key-of-32-bytes-ok!"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
WAIT = 90.0  # seconds any eventual outcome may take at most on a loaded machine

# Short timings: retries in tens of milliseconds, a window no test reaches unless it means to.
FAST = {
    "LEDGER_WEBHOOK_TIMEOUT": "0.5",
    "LEDGER_WEBHOOK_RETRY_BASE": "0.05",
    "LEDGER_WEBHOOK_RETRY_MAX": "0.3",
    "LEDGER_WEBHOOK_RETRY_WINDOW": "3600",
    "LEDGER_WEBHOOK_POLL": "0.05",
    "LEDGER_DB_TIMEOUT": "3",
}

ENTRY = "id ownerId operation amount balanceAfter nonce createdOn quantity kind metadata expiresAt"
HOLD = "id ownerId operation quantity amount status nonce metadata createdOn expiresAt"
CREATE = f"""mutation($input: CreateEntryInput!) {{ createEntry(input: $input) {{ __typename
  ... on LedgerEntry {{ {ENTRY} }} ... on LedgerError {{ code }} }} }}"""
RESERVE = f"""mutation($input: ReserveCreditsInput!) {{ reserveCredits(input: $input) {{
  __typename ... on Hold {{ {HOLD} }} }} }}"""
CAPTURE = f"""mutation($input: CaptureHoldInput!) {{ captureHold(input: $input) {{
  __typename ... on LedgerEntry {{ {ENTRY} }} }} }}"""
RELEASE = f"""mutation($input: ReleaseHoldInput!) {{ releaseHold(input: $input) {{
  __typename ... on Hold {{ {HOLD} }} }} }}"""
REFUND = f"""mutation($input: RefundEntryInput!) {{ refundEntry(input: $input) {{
  __typename ... on LedgerEntry {{ {ENTRY} refundOf {{ id }} }} }} }}"""
SET_ALERT = """mutation($input: SetBalanceAlertInput!) { setBalanceAlert(input: $input) {
  __typename ... on BalanceAlert { ownerId below belowInForce available }
  ... on LedgerError { code message } ... on InvalidInput { field } } }"""


@dataclass
class Received:
    """One POST the receiver got, and how it answered (None: it hung or went away)."""

    headers: dict[str, str]
    body: bytes
    status: int | None

    @property
    def event(self) -> dict[str, Any]:
        found: dict[str, Any] = orjson.loads(self.body)
        return found


class Receiver:
    """A webhook receiver on 127.0.0.1. `mode`: 'ok' (204), 'fail' (500), 'hang' (answers
    nothing until `release` is set). `stop()` makes it go away (connections refused),
    `start()` brings it back on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = "ok"
        self.hang_next = 0  # the next N requests hang whatever the mode
        self.fail_next = 0  # the next N requests fail whatever the mode
        self.received: list[Received] = []
        self.changed = threading.Condition()
        self.release = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.answer(self, body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self.changed:
            if self.hang_next > 0:
                self.hang_next -= 1
                mode = "hang"
            elif self.fail_next > 0:
                self.fail_next -= 1
                mode = "fail"
            else:
                mode = self.mode
            status = {"ok": 204, "fail": 500, "hang": None}[mode]
            # Recorded before the answer leaves: a later event of the owner may come only
            # after the worker has read this answer and committed.
            self.received.append(Received(headers, body, status))
            self.changed.notify_all()
        if status is None:
            self.release.wait(60)
            return
        handler.send_response(status)
        handler.send_header("content-length", "0")
        handler.end_headers()

    def wait_for(self, check: Callable[[list[Received]], bool], timeout: float = WAIT) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: check(self.received), timeout), (
                f"receiver: {len(self.received)} requests, condition not met"
            )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.release.set()
    started.stop()


def webhook_env(url: str, receiver: Receiver, **overrides: str) -> dict[str, str]:
    return {
        "HEALTHAI_DATABASE_URL": with_user(url, SERVING_LOGIN),
        "HEALTHAI_WEBHOOK_URL": receiver.url,
        "HEALTHAI_WEBHOOK_SECRET": SECRET,
        **FAST,
        **overrides,
    }


def server(env: dict[str, str]) -> ServerProcess:
    return ServerProcess.uvicorn("healthai", clean_environment(**env))


def client(process: ServerProcess) -> GraphQLClient:
    return GraphQLClient(
        httpx.Client(base_url=process.url(), timeout=30), headers=service_headers("healthai")
    )


def entry(graphql: GraphQLClient, owner: str, operation: str, nonce: str) -> dict[str, Any]:
    """createEntry, repeated with the same nonce while the database is unavailable."""
    deadline = time.monotonic() + WAIT
    while True:
        body = graphql.execute(
            CREATE, input={"ownerId": owner, "operation": operation, "nonce": nonce}
        )
        if "errors" not in body:
            result: dict[str, Any] = body["data"]["createEntry"]
            return result
        assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE", body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def outbox(url: str) -> list[tuple[Any, ...]]:
    """Every event: (id, owner, owner_seq, type, status, data), in each owner's order."""
    rows = sql(
        url,
        "SELECT id, owner_id, owner_seq, type, status, data::text FROM events"
        " ORDER BY owner_id, owner_seq, id",
    )
    return [(*row[:5], orjson.loads(row[5])) for row in rows]


def wait_delivered(url: str, minimum: int = 1) -> list[tuple[Any, ...]]:
    """The outbox once at least `minimum` events exist and every one is delivered."""
    deadline = time.monotonic() + WAIT
    while True:
        events = outbox(url)
        if len(events) >= minimum and all(e[4] == "delivered" for e in events):
            return events
        assert time.monotonic() < deadline, [e[:5] for e in events if e[4] != "delivered"]
        time.sleep(0.05)


def check_deliveries(url: str, receiver: Receiver) -> dict[str, int]:
    """Every event delivered at least once, each request signed, its body the same at every
    attempt, and none sent before its owner's earlier events were acknowledged."""
    events = outbox(url)
    assert events and all(e[4] == "delivered" for e in events), [e[:5] for e in events]
    order = {str(e[0]): (e[1], e[2], e[0]) for e in events}
    verifier = StandardWebhook(SECRET)
    acknowledged: dict[str, set[tuple[int, int]]] = defaultdict(set)
    bodies: dict[str, bytes] = {}
    with receiver.changed:
        received = list(receiver.received)
    for request in received:
        verified = verifier.verify(request.body, request.headers)
        event_id = request.headers["webhook-id"]
        assert verified["id"] == event_id and event_id in order
        assert bodies.setdefault(event_id, request.body) == request.body
        owner, seq, number = order[event_id]
        earlier = {(s, n) for o, s, n in order.values() if o == owner and (s, n) < (seq, number)}
        assert earlier <= acknowledged[owner], f"event {event_id} overtook one of {owner}'s"
        if request.status is not None and 200 <= request.status < 300:
            acknowledged[owner].add((seq, number))
    delivered = {(o, (s, n)) for o, s, n in order.values()}
    assert delivered == {(o, key) for o, keys in acknowledged.items() for key in keys}
    return {"events": len(events), "requests": len(received)}


def metric(process: ServerProcess, name: str, **labels: str) -> float:
    text = httpx.get(f"{process.url()}/metrics", timeout=10).text
    wanted = ",".join(f'{k}="{v}"' for k, v in {"app": "healthai", **labels}.items())
    found = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def assert_secret_not_in(*outputs: str) -> None:
    for output in outputs:
        assert SECRET not in output and SECRET[6:] not in output and KEY.decode() not in output


def test_every_committed_change_has_its_event_and_a_refused_write_none(
    new_database: Callable[..., str], receiver: Receiver, figures: Callable[[str], None]
) -> None:
    url = new_database("webhooks_every")
    with server(webhook_env(url, receiver)) as process:
        graphql = client(process)
        added = entry(graphql, "ann", "CREDIT_ADD", "a1")
        spent = entry(graphql, "ann", "CREDIT_SPEND", "a2")
        refused = graphql.data(
            CREATE, input={"ownerId": "bob", "operation": "CREDIT_SPEND", "nonce": "b1"}
        )["createEntry"]
        assert refused["__typename"] == "InsufficientCredits"
        entry(graphql, "ann", "CREDIT_SPEND", "a2")  # a replay writes nothing either
        reserve = {"ownerId": "ann", "operation": "CREDIT_SPEND", "nonce": "h1", "quantity": 3}
        hold = graphql.data(RESERVE, input=reserve)["reserveCredits"]
        capture = graphql.data(CAPTURE, input={"holdId": hold["id"], "quantity": 2})
        captured = capture["captureHold"]
        second = graphql.data(RESERVE, input={**reserve, "nonce": "h2", "quantity": 1})
        released = graphql.data(RELEASE, input={"holdId": second["reserveCredits"]["id"]})
        refund = graphql.data(REFUND, input={"entryId": spent["id"], "nonce": "r1"})
        events = wait_delivered(url, 8)
        receiver.wait_for(lambda got: len(got) >= 8)
        output = process.output()
    assert [(e[1], e[3]) for e in events] == [
        ("ann", t)
        for t in (
            "entry.created",
            "entry.created",
            "hold.reserved",
            "entry.created",
            "hold.captured",
            "hold.reserved",
            "hold.released",
            "entry.created",
        )
    ]
    data = [e[5] for e in events]
    shown = {k: v for k, v in added.items() if k != "__typename"}
    assert data[0] == {**shown, "refundOf": None, "expiryOf": None}
    assert data[1]["balanceAfter"] == spent["balanceAfter"] == 9
    assert data[2] == {**{k: v for k, v in hold.items() if k != "__typename"}, "capture": None}
    assert data[3]["id"] == captured["id"] and data[3]["kind"] == "CAPTURE"
    assert data[3]["createdOn"] == captured["createdOn"]
    assert data[4]["status"] == "CAPTURED" and data[4]["capture"] == {"id": captured["id"]}
    assert data[6]["status"] == "RELEASED" and data[6]["id"] == released["releaseHold"]["id"]
    assert data[7]["kind"] == "REFUND" and data[7]["refundOf"] == {"id": spent["id"]}
    assert data[7]["id"] == refund["refundEntry"]["id"]
    first = receiver.received[0].event
    assert first == {
        "id": str(events[0][0]),
        "type": "entry.created",
        "createdOn": added["createdOn"],
        "data": data[0],
    }
    entries = sql(url, "SELECT count(*) FROM entries")[0][0]
    assert entries == sum(e[3] == "entry.created" for e in events) == 4
    assert_secret_not_in(output)
    verify_books("healthai", url)
    figures(
        f"webhooks: {len(events)} events for {entries} entries and 4 hold changes, "
        "none for a refusal or a replay"
    )


def test_without_a_webhook_nothing_is_written_to_the_outbox(
    new_database: Callable[..., str], receiver: Receiver
) -> None:
    url = new_database("webhooks_none")
    env = webhook_env(url, receiver, HEALTHAI_LOW_BALANCE="5")
    with server(env) as process:  # a webhook first: then a server without one
        entry(client(process), "ann", "CREDIT_ADD", "a1")
        wait_delivered(url, 1)
    del env["HEALTHAI_WEBHOOK_URL"], env["HEALTHAI_WEBHOOK_SECRET"]
    with server(env) as process:
        graphql = client(process)
        entry(graphql, "ann", "CREDIT_ADD", "a2")
        for n in range(8):
            entry(graphql, "ann", "CREDIT_SPEND", f"s{n}")  # crosses the threshold, too
        hold = graphql.data(
            RESERVE, input={"ownerId": "ann", "operation": "CREDIT_SPEND", "nonce": "h1"}
        )
        graphql.data(RELEASE, input={"holdId": hold["reserveCredits"]["id"]})
    assert sql(url, "SELECT webhooks FROM ledger_settings") == [(False,)]
    assert sql(url, "SELECT count(*) FROM events") == [(1,)]
    assert len(receiver.received) == 1


def test_an_owners_events_keep_their_order_across_two_processes_and_failures(
    new_database: Callable[..., str], receiver: Receiver, figures: Callable[[str], None]
) -> None:
    url = new_database("webhooks_order")
    receiver.fail_next = 40  # the first 40 requests fail: retries interleave with new events
    env = webhook_env(url, receiver)
    del env["HEALTHAI_DATABASE_URL"]
    owners = [f"owner-{n}" for n in range(6)]
    with two_servers(with_user(url, SERVING_LOGIN), **{**env, "LEDGER_LOG_FORMAT": "json"}) as c:
        graphqls = [client(process) for process in c.servers]

        async def write(owner: str) -> None:
            await asyncio.to_thread(entry, graphqls[0], owner, "CREDIT_ADD", "add")
            for n in range(10):
                await asyncio.to_thread(entry, graphqls[n % 2], owner, "CREDIT_SPEND", f"s{n}")

        async def write_all() -> None:
            await asyncio.gather(*(write(owner) for owner in owners))

        asyncio.run(write_all())
        events = wait_delivered(url, 66)
        counted = check_deliveries(url, receiver)
        retried = sum(
            metric(p, "ledger_webhook_deliveries_total", outcome="retry") for p in c.servers
        )
        outputs = [p.output() for p in c.servers]
    assert retried >= 40
    entries = {str(row[0]) for row in sql(url, "SELECT id FROM entries")}
    assert len(entries) == 66 and {e[5]["id"] for e in events} == entries
    for owner in owners:
        after = [e[5]["balanceAfter"] for e in events if e[1] == owner]
        assert after == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert sql(url, "SELECT count(*) FROM events WHERE status = 'dead'") == [(0,)]
    assert_secret_not_in(*outputs)
    figures(
        f"webhooks order: {counted['events']} events of {len(owners)} owners written "
        f"through 2 processes, {counted['requests']} POSTs ({int(retried)} retried), "
        "each owner's in commit order"
    )


def test_a_receiver_down_failing_or_hanging_gets_every_event_in_the_end(
    new_database: Callable[..., str], receiver: Receiver, figures: Callable[[str], None]
) -> None:
    url = new_database("webhooks_faults")
    with server(webhook_env(url, receiver)) as process:
        graphql = client(process)
        receiver.stop()  # down: connections refused
        for n in range(3):
            entry(graphql, "ann", "CREDIT_ADD", f"down{n}")
        deadline = time.monotonic() + WAIT
        while (
            metric(process, "ledger_webhook_deliveries_total", outcome="retry") < 3
            or metric(process, "ledger_webhook_events_pending") < 1  # read about once a second
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        receiver.mode = "fail"
        receiver.start()
        receiver.wait_for(lambda got: sum(r.status == 500 for r in got) >= 3)
        receiver.hang_next = 1  # one attempt hangs past the 0.5 s timeout
        receiver.mode = "ok"
        receiver.wait_for(lambda got: any(r.status is None for r in got))
        for n in range(3):
            entry(graphql, "bob", "CREDIT_ADD", f"later{n}")
        events = wait_delivered(url, 6)
        receiver.release.set()
        counted = check_deliveries(url, receiver)
        deadline = time.monotonic() + WAIT
        while metric(process, "ledger_webhook_events_pending") != 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        retried = metric(process, "ledger_webhook_deliveries_total", outcome="retry")
        assert metric(process, "ledger_webhook_deliveries_total", outcome="delivered") == 6
        assert metric(process, "ledger_webhook_events_dead_lettered") == 0
        output = process.output()
    assert len(events) == 6
    assert_secret_not_in(output)
    figures(
        f"webhooks faults: receiver down, 500s, a hang past the timeout: "
        f"{counted['events']} events delivered after {counted['requests']} POSTs, "
        f"{int(retried)} retries, 0 dead-lettered"
    )


def test_a_server_killed_mid_delivery_leaves_the_event_to_another(
    new_database: Callable[..., str], receiver: Receiver, figures: Callable[[str], None]
) -> None:
    url = new_database("webhooks_kill")
    receiver.hang_next = 1
    slow = webhook_env(url, receiver, LEDGER_WEBHOOK_TIMEOUT="60")
    with server(slow) as first:
        graphql = client(first)
        for n in range(4):
            entry(graphql, "ann", "CREDIT_ADD", f"a{n}")
        receiver.wait_for(lambda got: len(got) == 1 and got[0].status is None)
        assert first.stop(9) == -9  # SIGKILL while the receiver holds the first event
    receiver.release.set()
    assert outbox(url)[0][4] == "pending"
    with server(webhook_env(url, receiver)) as second:
        events = wait_delivered(url, 4)
        counted = check_deliveries(url, receiver)
        output = second.output()
    hung = receiver.received[0]
    again = [
        r for r in receiver.received[1:] if r.headers["webhook-id"] == hung.headers["webhook-id"]
    ]
    assert again and again[0].body == hung.body and again[0].status == 204
    assert [e[5]["balanceAfter"] for e in events] == [10, 20, 30, 40]
    assert_secret_not_in(output, first.output())
    figures(
        f"webhooks kill: server SIGKILLed mid-delivery; another delivered all "
        f"{counted['events']} events ({counted['requests']} POSTs, the held one twice)"
    )


def test_postgresql_restarted_loses_no_event(
    receiver: Receiver, figures: Callable[[str], None]
) -> None:
    with private_postgres() as postgres:
        owner_url = postgres.url("webhooks_restart")
        asyncio.run(migrate(owner_url, HealthAIOperation, login=postgres.embedded.serving_login))
        env = {
            **webhook_env(owner_url, receiver),
            "HEALTHAI_DATABASE_URL": postgres.embedded.serving_url("webhooks_restart"),
        }
        receiver.mode = "fail"
        with server(env) as process:
            graphql = client(process)
            for n in range(4):
                entry(graphql, "ann", "CREDIT_ADD", f"before{n}")
            receiver.wait_for(lambda got: len(got) >= 2)
            postgres.stop_immediately()
            receiver.mode = "ok"
            postgres.start_again()
            for n in range(4):
                entry(graphql, "ann", "CREDIT_SPEND", f"after{n}")
            events = wait_delivered(owner_url, 8)
            counted = check_deliveries(owner_url, receiver)
            output = process.output()
        verify_books("healthai", owner_url)
    assert [e[5]["balanceAfter"] for e in events] == [10, 20, 30, 40, 39, 38, 37, 36]
    assert_secret_not_in(output)
    figures(
        f"webhooks restart: PostgreSQL stopped at once mid-retries and restarted: "
        f"{counted['events']} events delivered in order ({counted['requests']} POSTs)"
    )


def test_past_the_retry_window_an_event_is_dead_lettered_and_can_be_sent_again(
    new_database: Callable[..., str], receiver: Receiver
) -> None:
    url = new_database("webhooks_dead")
    receiver.mode = "fail"
    env = webhook_env(url, receiver, LEDGER_WEBHOOK_RETRY_WINDOW="1")
    with server(env) as process:
        entry(client(process), "ann", "CREDIT_ADD", "a1")
        deadline = time.monotonic() + WAIT
        while sql(url, "SELECT status FROM events") != [("dead",)]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        while metric(process, "ledger_webhook_events_dead_lettered") != 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert metric(process, "ledger_webhook_deliveries_total", outcome="dead") == 1
        [(attempts, error)] = sql(url, "SELECT attempts, last_error FROM events")
        assert attempts >= 2 and error.startswith("HTTP 500 from http://127.0.0.1:")
        listed = _events_command(url, "--status", "dead")
        assert [(e["status"], e["type"], e["data"]["nonce"]) for e in listed] == [
            ("dead", "entry.created", "a1")
        ]
        receiver.mode = "ok"
        _events_command(url, "--resend-dead")
        wait_delivered(url, 1)
    assert receiver.received[-1].status == 204
    assert [e["status"] for e in _events_command(url, "--since", "0")] == ["delivered"]


def _events_command(url: str, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(CLI), "events", "healthai", *args],
        env=clean_environment(HEALTHAI_DATABASE_URL=url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def _low_alerts(url: str) -> list[dict[str, Any]]:
    return [e[5] for e in outbox(url) if e[3] == "balance.low"]


def test_balance_low_fires_once_per_crossing_and_rearms_at_the_threshold(
    new_database: Callable[..., str], receiver: Receiver
) -> None:
    url = new_database("webhooks_low")
    with server(webhook_env(url, receiver, HEALTHAI_LOW_BALANCE="5")) as process:
        graphql = client(process)
        entry(graphql, "ann", "CREDIT_ADD", "a1")  # 10: at or above 5, armed
        for n in range(7):
            entry(graphql, "ann", "CREDIT_SPEND", f"s{n}")  # 9 .. 3: one alert, at 4
        entry(graphql, "ann", "CREDIT_ADD", "a2")  # 13: re-armed
        for n in range(9):
            entry(graphql, "ann", "CREDIT_SPEND", f"t{n}")  # 12 .. 4: again, at 4
        entry(graphql, "new", "CREDIT_SPEND", "n0")  # refused: no balance, no alert
        # A hold takes what is available below, and its release re-arms.
        entry(graphql, "hol", "CREDIT_ADD", "a1")
        reserve = {"ownerId": "hol", "operation": "CREDIT_SPEND", "nonce": "h1", "quantity": 6}
        hold = graphql.data(RESERVE, input=reserve)["reserveCredits"]
        graphql.data(RELEASE, input={"holdId": hold["id"]})
        graphql.data(RESERVE, input={**reserve, "nonce": "h2"})
        # An owner's own threshold, and its removal.
        answer = graphql.data(SET_ALERT, input={"ownerId": "own", "below": 50})
        assert answer["setBalanceAlert"] == {
            "__typename": "BalanceAlert",
            "ownerId": "own",
            "below": 50,
            "belowInForce": 50,
            "available": 0,
        }
        for n in range(6):
            entry(graphql, "own", "CREDIT_ADD", f"a{n}")  # 10 .. 60: armed at 50
        entry(graphql, "own", "CREDIT_SPEND", "s0")  # 59
        for n in range(10):
            entry(graphql, "own", "CREDIT_SPEND", f"t{n}")  # 58 .. 49: alert at 49
        removed = graphql.data(SET_ALERT, input={"ownerId": "own", "below": None})
        assert removed["setBalanceAlert"]["belowInForce"] == 5
        wait_delivered(url, 1)
    alerts = _low_alerts(url)
    assert alerts == [
        {"ownerId": "ann", "balance": 4, "held": 0, "available": 4, "below": 5},
        {"ownerId": "ann", "balance": 4, "held": 0, "available": 4, "below": 5},
        {"ownerId": "hol", "balance": 10, "held": 6, "available": 4, "below": 5},
        {"ownerId": "hol", "balance": 10, "held": 6, "available": 4, "below": 5},
        {"ownerId": "own", "balance": 49, "held": 0, "available": 49, "below": 50},
    ]
    kinds = [e[3] for e in outbox(url) if e[1] == "ann"]
    assert kinds.index("balance.low") == 7  # right after the entry that crossed (5 -> 4)


def test_racing_spends_produce_one_alert(
    new_database: Callable[..., str], receiver: Receiver, figures: Callable[[str], None]
) -> None:
    url = new_database("webhooks_race")
    env = webhook_env(url, receiver)
    del env["HEALTHAI_DATABASE_URL"]
    with two_servers(url, **env) as cluster:  # the owner's URL: the gate locks balances
        graphql = client(cluster.servers[0])
        entry(graphql, "racer", "CREDIT_ADD", "a1")
        graphql.data(SET_ALERT, input={"ownerId": "racer", "below": 8})
        calls = [("racer", "CREDIT_SPEND", f"s{n}") for n in range(6)]
        answers, waited = race_through_a_gate(cluster, calls, waiters=6)
        assert waited == 6
        assert sorted(a["balanceAfter"] for a in answers) == [4, 5, 6, 7, 8, 9]
        wait_delivered(url, 8)
        check_deliveries(url, receiver)
    assert _low_alerts(url) == [
        {"ownerId": "racer", "balance": 7, "held": 0, "available": 7, "below": 8}
    ]
    figures(
        "webhooks alert race: 6 spends at once through 2 processes cross the threshold; "
        "1 balance.low"
    )


def test_set_balance_alert_is_for_services_and_checks_its_input(
    healthai: GraphQLClient, healthai_http: Any
) -> None:
    invalid = healthai.data(SET_ALERT, input={"ownerId": "x", "below": 0})["setBalanceAlert"]
    assert (invalid["__typename"], invalid["field"]) == ("InvalidInput", "below")
    bad_owner = healthai.data(SET_ALERT, input={"ownerId": "a\nb", "below": 3})
    assert bad_owner["setBalanceAlert"]["field"] == "ownerId", bad_owner
    user = GraphQLClient(healthai_http, headers=user_headers("healthai", "x"))
    refused = user.data(SET_ALERT, input={"ownerId": "x", "below": 3})["setBalanceAlert"]
    assert refused["__typename"] == "OperationNotAllowed"
    assert refused["message"] == "only a backend service may set a balance alert"


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("not-a-secret", "does not start with whsec_"),
        ("whsec_***not-base64***", "is not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "its key is 5 bytes"),
    ],
)
def test_a_malformed_secret_is_refused_without_showing_it(secret: str, problem: str) -> None:
    environ = {"HEALTHAI_WEBHOOK_URL": "https://example.com/h", "HEALTHAI_WEBHOOK_SECRET": secret}
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(environ)
    assert problem in str(refused.value) and secret not in str(refused.value)
    assert "HEALTHAI_WEBHOOK_SECRET must be whsec_" in str(refused.value)
    good = Settings.from_env({**environ, "HEALTHAI_WEBHOOK_SECRET": SECRET})
    assert SECRET[6:] not in repr(good) and good.webhooks["healthai"].key == KEY
    with pytest.raises(ConfigError, match="HEALTHAI_WEBHOOK_SECRET must be set too"):
        Settings.from_env({"HEALTHAI_WEBHOOK_URL": "https://example.com/h"})


def test_delivered_events_are_pruned_after_the_retention_in_bounded_batches(
    new_database: Callable[..., str], receiver: Receiver
) -> None:
    url = new_database("webhooks_prune")
    env = webhook_env(url, receiver)
    with server(env) as process:
        graphql = client(process)
        for n in range(5):
            entry(graphql, "ann", "CREDIT_ADD", f"a{n}")
        wait_delivered(url, 5)
    # A batch deletes at most its limit, and only delivered events older than the cut.
    assert sql(url, "SELECT ledger_prune_events(now() - interval '1 hour', 10)") == [(0,)]
    assert sql(url, "SELECT ledger_prune_events(clock_timestamp(), 2)") == [(2,)]
    assert sql(url, "SELECT count(*) FROM events") == [(3,)]
    receiver.mode = "fail"  # a pending event is never pruned
    with server({**env, "LEDGER_WEBHOOK_RETENTION": "0.2"}) as process:
        entry(client(process), "bob", "CREDIT_ADD", "b1")
        deadline = time.monotonic() + WAIT
        while sql(url, "SELECT owner_id, status FROM events") != [("bob", "pending")]:
            assert time.monotonic() < deadline
            time.sleep(0.05)


README_RECEIVER = re.compile(r"^`receiver\.py`:\n\n```python\n(.*?)^```$", re.M | re.S)


def test_the_readmes_receiver_verifies_and_handles_the_events(
    new_database: Callable[..., str], tmp_path: Any
) -> None:
    """README's webhook section: its receiver, run as printed, gets and verifies events."""
    [code] = README_RECEIVER.findall((ROOT / "README.md").read_text())
    (tmp_path / "receiver.py").write_text(code)
    port = free_port()
    receiver_env = clean_environment(WEBHOOK_SECRET=SECRET, PORT=str(port), PYTHONUNBUFFERED="1")
    url = new_database("webhooks_readme")
    readme = subprocess.Popen(
        [sys.executable, str(tmp_path / "receiver.py")],
        env=receiver_env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        env = {
            "HEALTHAI_DATABASE_URL": with_user(url, SERVING_LOGIN),
            "HEALTHAI_WEBHOOK_URL": f"http://127.0.0.1:{port}/webhooks",
            "HEALTHAI_WEBHOOK_SECRET": SECRET,
            "HEALTHAI_LOW_BALANCE": "10",
            **FAST,
        }
        with server(env) as process:
            graphql = client(process)
            entry(graphql, "alice", "CREDIT_ADD", "a1")
            entry(graphql, "alice", "CREDIT_SPEND", "a2")
            wait_delivered(url, 3)
    finally:
        readme.terminate()
        printed, _ = readme.communicate(timeout=30)
    ids = [str(e[0]) for e in outbox(url)]
    assert printed.splitlines() == [
        f"entry.created {ids[0]}: alice's balance is 10",
        f"entry.created {ids[1]}: alice's balance is 9",
        "balance.low: alice has 9 credits available",
    ]


def test_a_deliver_process_delivers_for_servers_that_do_not(
    new_database: Callable[..., str], receiver: Receiver
) -> None:
    """LEDGER_WEBHOOK_WORKER=off: the servers write events, `graphql-ledger deliver` sends
    them (the servers' CPU goes to requests alone)."""
    url = new_database("webhooks_deliver")
    env = webhook_env(url, receiver, LEDGER_WEBHOOK_WORKER="off")
    with server(env) as process:
        graphql = client(process)
        for n in range(3):
            entry(graphql, "ann", "CREDIT_ADD", f"a{n}")
        assert [e[4] for e in outbox(url)] == ["pending"] * 3  # no worker in the server
        deliver = ServerProcess([str(CLI), "deliver", "healthai"], clean_environment(**env), [])
        deliver.start()
        try:
            entry(graphql, "ann", "CREDIT_SPEND", "s1")
            events = wait_delivered(url, 4)
            check_deliveries(url, receiver)
        finally:
            assert deliver.stop() == 0  # SIGTERM: a clean stop
        output = deliver.output()
    assert [e[5]["balanceAfter"] for e in events] == [10, 20, 30, 29]
    assert "healthai delivers events to http://127.0.0.1:" in output
    assert_secret_not_in(output, process.output())
