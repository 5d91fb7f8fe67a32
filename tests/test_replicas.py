"""Reads on a streaming replica (CONTRACT.md section 7), against a real primary and a real hot
standby streaming from it: reads without a position land on the standby (seen from the
standby's own statistics and activity), a client reads its own write by sending back the
write's position, a standby that is paused or stopped costs no request, and a bad position
is refused in the client's terms."""

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest
from starlette.testclient import TestClient

from graphql_ledger import Settings, create_app
from graphql_ledger.storage import EmbeddedPostgres, migrate
from graphql_ledger.storage.positions import format_position, parse_position
from healthai.operations import HealthAIOperation
from tests.support import (
    BALANCE,
    TEST_SECRET,
    GraphQLClient,
    PrivatePostgres,
    StreamingStandby,
    create_entry_request,
    private_postgres,
    service_headers,
    sql,
    streaming_standby,
    with_user,
)

SERVING = EmbeddedPostgres.serving_login
WAIT = 0.5  # LEDGER_REPLICA_WAIT of these apps: the pause test waits it out once per read

# Scans of the balances table, which only the ledger's balance reads and writes touch.
BALANCE_SCANS = """
    SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0)
      FROM pg_stat_user_tables WHERE relname = 'balances'
"""
# The apps' backends; a backend's statistics are flushed before it leaves this view.
APP_BACKENDS = f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{SERVING}'"
# An app's backend whose latest statement was a balance read.
BALANCE_READERS = APP_BACKENDS + " AND query LIKE '%FROM balances b WHERE%'"


@dataclass
class Replicated:
    primary: PrivatePostgres
    standby: StreamingStandby

    @property
    def primary_url(self) -> str:
        return self.primary.url("healthai")

    @property
    def standby_url(self) -> str:
        return self.standby.url("healthai")

    def settings(self, standby: StreamingStandby | None = None) -> Settings:
        replica = with_user((standby or self.standby).url("healthai"), SERVING)
        return Settings(
            app_database_urls={"healthai": with_user(self.primary_url, SERVING)},
            app_read_urls={"healthai": (replica,)},
            replica_wait=WAIT,
            jwt_secret=TEST_SECRET,
        )


@pytest.fixture(scope="module")
def replicated() -> Iterator[Replicated]:
    """A primary of the module's own with healthai's ledger, and a hot standby of it."""
    with private_postgres() as primary:
        asyncio.run(migrate(primary.url("healthai"), HealthAIOperation, login=SERVING))
        with streaming_standby(primary) as standby:
            yield Replicated(primary, standby)


@contextmanager
def serving(settings: Settings) -> Iterator[GraphQLClient]:
    """healthai in-process with these settings, as a backend service; once it has stopped,
    its backends are gone and their statistics flushed."""
    try:
        with TestClient(create_app("healthai", HealthAIOperation, settings)) as http:
            http.headers.update(service_headers("healthai"))
            yield GraphQLClient(http)
    finally:
        for url in settings.app_database_urls.values():
            eventually(lambda url=url: scalar(url, APP_BACKENDS) == 0)
        for urls in settings.app_read_urls.values():
            for url in urls:
                eventually(lambda url=url: _reachable_count(url) == 0)


def _reachable_count(url: str) -> int:
    try:
        return scalar(url, APP_BACKENDS)
    except Exception:  # a stopped standby has no backends
        return 0


def scalar(url: str, statement: str) -> int:
    [(value,)] = sql(_superuser(url), statement)
    return int(value)


def _superuser(url: str) -> str:
    return with_user(url, "postgres")


def eventually(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Waits, bounded, for a condition another process makes true (replay, statistics)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.05)


def replayed_everything(replicated: Replicated) -> bool:
    [(primary,)] = sql(replicated.primary_url, "SELECT pg_current_wal_lsn()::text")
    [(standby,)] = sql(replicated.standby_url, "SELECT pg_last_wal_replay_lsn()::text")
    return bool(parse_position(standby) >= parse_position(primary))


def write(client: GraphQLClient, owner: str) -> str:
    """A CREDIT_ADD for `owner`; the position its response carries."""
    response = client.http.post(
        "/graphql", json=create_entry_request(owner, "CREDIT_ADD", str(uuid.uuid4()))
    )
    body = response.json()
    assert body["data"]["createEntry"]["__typename"] == "LedgerEntry", body
    token: str = body["extensions"]["ledgerPosition"]
    assert response.headers["X-Ledger-Position"] == token
    return token


def balance(client: GraphQLClient, owner: str, position: str | None = None) -> int:
    headers = {"X-Ledger-Position": position} if position else {}
    response = client.http.post(
        "/graphql", json={"query": BALANCE, "variables": {"ownerId": owner}}, headers=headers
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    value: int = body["data"]["balance"]["balance"]
    return value


def test_reads_without_a_position_are_served_by_the_standby(
    replicated: Replicated, figures: Callable[[str], None]
) -> None:
    owner = f"owner-{uuid.uuid4()}"
    standby_before = scalar(replicated.standby_url, BALANCE_SCANS)
    primary_before = scalar(replicated.primary_url, BALANCE_SCANS)
    with serving(replicated.settings()) as client:
        write(client, owner)
        eventually(lambda: replayed_everything(replicated))
        warming = 0  # reads until the standby is seen serving one
        while not scalar(replicated.standby_url, BALANCE_READERS):
            assert balance(client, owner) == 10
            warming += 1
            assert warming < 1000, "no read reached the standby"
        for _ in range(200):
            assert balance(client, owner) == 10
    standby_scans = scalar(replicated.standby_url, BALANCE_SCANS) - standby_before
    primary_scans = scalar(replicated.primary_url, BALANCE_SCANS) - primary_before
    figures(
        f"replicas: 200 reads without a position: the standby scanned balances "
        f"{standby_scans} times, the primary {primary_scans} ({warming} warm-up reads)"
    )
    assert standby_scans >= 200
    assert primary_scans <= warming + 5  # the write's own, and reads before the first sample


def test_a_read_with_the_position_of_a_write_sees_it_1000_times_in_a_row(
    replicated: Replicated, figures: Callable[[str], None]
) -> None:
    owner = f"owner-{uuid.uuid4()}"
    standby_before = scalar(replicated.standby_url, BALANCE_SCANS)
    started = time.monotonic()
    with serving(replicated.settings()) as client:
        for n in range(1, 1001):
            position = write(client, owner)
            assert balance(client, owner, position) == 10 * n
    elapsed = time.monotonic() - started
    on_standby = scalar(replicated.standby_url, BALANCE_SCANS) - standby_before
    figures(
        f"replicas: 1,000 writes each read back at once with its position, all fresh, in "
        f"{elapsed:.1f} s; {on_standby} of the reads served by the standby"
    )
    assert on_standby > 0


def test_with_replay_paused_reads_with_a_position_are_answered_by_the_primary(
    replicated: Replicated, figures: Callable[[str], None]
) -> None:
    owner = f"owner-{uuid.uuid4()}"
    standby_before = scalar(replicated.standby_url, BALANCE_SCANS)
    primary_before = scalar(replicated.primary_url, BALANCE_SCANS)
    sql(replicated.standby_url, "SELECT pg_wal_replay_pause()")
    slowest = 0.0
    try:
        with serving(replicated.settings()) as client:
            for n in range(1, 11):
                position = write(client, owner)
                asked = time.monotonic()
                assert balance(client, owner, position) == 10 * n
                slowest = max(slowest, time.monotonic() - asked)
                assert slowest <= WAIT + 2.0  # the wait, and a margin for a loaded machine
    finally:
        sql(replicated.standby_url, "SELECT pg_wal_replay_resume()")
    on_standby = scalar(replicated.standby_url, BALANCE_SCANS) - standby_before
    on_primary = scalar(replicated.primary_url, BALANCE_SCANS) - primary_before
    figures(
        f"replicas: replay paused: 10 reads with a position, all fresh, slowest "
        f"{slowest:.2f} s (wait {WAIT} s); balance scans: primary {on_primary}, standby "
        f"{on_standby}"
    )
    assert on_standby == 0
    assert on_primary >= 10 + 10  # each write's, and each read


def over_websocket(client: GraphQLClient, payload: dict[str, Any]) -> dict[str, Any]:
    """The one message answering a subscribe of `payload` on a new WebSocket."""
    with client.http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": service_headers("healthai")})
        assert ws.receive_json() == {"type": "connection_ack"}
        ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
        message: dict[str, Any] = ws.receive_json()
        return message


def test_a_websocket_query_naming_a_position_reads_at_it(replicated: Replicated) -> None:
    """With replay paused, the standby would answer a read that names no position with
    what it had; one that names the write's is answered with the write."""
    owner = f"owner-{uuid.uuid4()}"
    query = {"query": BALANCE, "variables": {"ownerId": owner}}
    sql(replicated.standby_url, "SELECT pg_wal_replay_pause()")
    try:
        with serving(replicated.settings()) as client:
            position = write(client, owner)
            answer = over_websocket(client, {**query, "extensions": {"ledgerPosition": position}})
            assert answer["type"] == "next", answer
            assert answer["payload"]["data"]["balance"]["balance"] == 10
            refused = over_websocket(client, {**query, "extensions": {"ledgerPosition": "now"}})
            assert refused["type"] == "error"
            [error] = refused["payload"]
            assert error["extensions"]["code"] == "BAD_REQUEST"
            assert "'now' is not a ledger position" in error["message"]
    finally:
        sql(replicated.standby_url, "SELECT pg_wal_replay_resume()")


def test_stopping_the_standby_mid_load_loses_no_request_and_it_serves_again_once_back(
    replicated: Replicated, figures: Callable[[str], None]
) -> None:
    owner = f"owner-{uuid.uuid4()}"
    with (
        streaming_standby(replicated.primary) as standby,
        serving(replicated.settings(standby)) as client,
    ):
        position = write(client, owner)
        standby_url = standby.url("healthai")

        def served_by_the_standby() -> bool:
            return (
                balance(client, owner, position) == 10 and scalar(standby_url, BALANCE_READERS) > 0
            )

        eventually(served_by_the_standby)
        answered: list[int] = []

        def read(n: int) -> int:
            if n == 200:
                standby.stop_immediately()
            value = balance(client, owner, position if n % 2 else None)
            answered.append(value)
            return value

        with ThreadPoolExecutor(4) as pool:
            values = list(pool.map(read, range(600)))
        assert not (standby.data_dir / "postmaster.pid").exists()
        assert values == [10] * 600
        # Back, the standby is asked again (after its backoff) and serves reads again.
        standby.start()
        eventually(served_by_the_standby)
    figures(
        "replicas: 600 reads from 4 threads, the standby stopped (immediate) after 200: "
        f"{len(answered)} answered, all correct; started again, it serves reads again"
    )


def test_a_write_without_replicas_carries_no_position_and_one_sent_comes_back(
    healthai: GraphQLClient, owner: str
) -> None:
    response = healthai.http.post("/graphql", json=create_entry_request(owner, "CREDIT_ADD", "n-1"))
    assert "X-Ledger-Position" not in response.headers
    assert "extensions" not in response.json()
    sent = format_position(0x16B3748)
    assert sent == "0/16B3748"
    response = healthai.http.post(
        "/graphql",
        json={"query": BALANCE, "variables": {"ownerId": owner}},
        headers={"X-Ledger-Position": sent},
    )
    assert response.json()["data"]["balance"]["balance"] == 10
    assert response.json()["extensions"] == {"ledgerPosition": sent}
    assert response.headers["X-Ledger-Position"] == sent


@pytest.mark.parametrize("sent", ["latest", "0/", "1/2/3", "G/0", "123456789/0", ""])
def test_a_position_that_is_not_one_is_refused_in_the_clients_terms(
    healthai: GraphQLClient, owner: str, sent: str
) -> None:
    response = healthai.http.post(
        "/graphql",
        json={"query": BALANCE, "variables": {"ownerId": owner}, "extensions": {
            "ledgerPosition": sent}},
    )  # fmt: skip
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "is not a ledger position" in error["message"]
    assert "X-Ledger-Position" in error["message"]


def test_read_urls_are_read_per_app_and_name_no_app() -> None:
    settings = Settings.from_env(
        {
            "HEALTHAI_DATABASE_URL": "postgresql://a@primary/healthai",
            "HEALTHAI_READ_DATABASE_URL": "postgresql://a@r1/healthai, postgresql://a@r2/healthai",
            "LEDGER_REPLICA_WAIT": "0.25",
            "LEDGER_MAX_REPLICA_LAG": "2",
        }
    )
    assert settings.app_database_urls == {"healthai": "postgresql://a@primary/healthai"}
    assert settings.read_database_urls("healthai") == (
        "postgresql://a@r1/healthai",
        "postgresql://a@r2/healthai",
    )
    assert settings.read_database_urls("travelai") == ()
    assert (settings.replica_wait, settings.max_replica_lag) == (0.25, 2.0)
    assert replace(Settings(), app_read_urls={}).read_database_urls("healthai") == ()
