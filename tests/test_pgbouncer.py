"""Behind PgBouncer in transaction-pooling mode (Debian's pgbouncer, when installed) the
ledger keeps every promise: with LEDGER_DB_STATEMENT_CACHE=0 no prepared statement is
looked for on the wrong server connection, and the balance feed listens directly."""

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy.engine import make_url

from tests.support import (
    GraphQLClient,
    ServerProcess,
    clean_environment,
    create_entry_async,
    free_port,
    service_headers,
    sql,
)

pytestmark = pytest.mark.skipif(
    shutil.which("pgbouncer") is None, reason="PgBouncer is not installed (Debian: pgbouncer)"
)

SERVICE = service_headers("healthai")


@pytest.fixture(scope="module")
def bouncer(postgres_url: str) -> Iterator[tuple[str, int]]:
    """PgBouncer in transaction mode in front of the test server, with fewer server
    connections than the apps' pools, so that clients really share them."""
    target = make_url(postgres_url)
    host = target.query.get("host") or target.host or "127.0.0.1"
    user = target.username or "postgres"
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    (directory / "users.txt").write_text(f'"{user}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"""
[databases]
* = host={host} port={target.port or 5432}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory / "users.txt"}
pool_mode = transaction
default_pool_size = 4
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
logfile = {directory / "pgbouncer.log"}
"""
    )
    command = ["pgbouncer", str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root: run it as the user who may
        # open the server's socket directory (the embedded server's own), or as nobody.
        os.chmod(directory, 0o777)
        runner = pwd.getpwuid(os.stat(host).st_uid).pw_name if host.startswith("/") else "nobody"
        command[1:1] = ["-u", runner]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(
            ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"], capture_output=True
        ).returncode:
            assert process.poll() is None, (directory / "pgbouncer.log").read_text()
            assert time.monotonic() < deadline, "PgBouncer did not start"
            time.sleep(0.1)
        yield user, port
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def through_bouncer(
    bouncer: tuple[str, int], new_database: Callable[..., str]
) -> Iterator[tuple[str, tuple[str, str]]]:
    """Two server processes whose database URL goes through PgBouncer."""
    direct = new_database("pgbouncer")
    user, port = bouncer
    name = make_url(direct).database
    pooled = f"postgresql://{user}@127.0.0.1:{port}/{name}"
    env = clean_environment(
        HEALTHAI_DATABASE_URL=pooled,
        HEALTHAI_LISTEN_DATABASE_URL=direct,
        LEDGER_DB_STATEMENT_CACHE="0",
        LEDGER_DB_POOL_SIZE="10",
    )
    with ExitStack() as stack:
        first = stack.enter_context(ServerProcess.uvicorn("healthai", env))
        second = stack.enter_context(ServerProcess.uvicorn("healthai", env))
        yield direct, (first.url(), second.url())


def test_create_entry_replay_and_balance_through_pgbouncer(
    through_bouncer: tuple[str, tuple[str, str]], owner: str
) -> None:
    direct, (first, second) = through_bouncer
    with (
        httpx.Client(base_url=first, headers=SERVICE) as a,
        httpx.Client(base_url=second, headers=SERVICE) as b,
    ):
        entry = GraphQLClient(a).create_entry(owner, "CREDIT_ADD", "n1")
        assert entry["balanceAfter"] == 10
        assert GraphQLClient(b).create_entry(owner, "CREDIT_ADD", "n1") == entry
        assert GraphQLClient(b).create_entry(owner, "CONTENT_CREATION", "n2")["balanceAfter"] == 5
        assert GraphQLClient(a).balance(owner) == 5
    assert sql(direct, "SELECT count(*) FROM entries WHERE owner_id = :o", o=owner) == [(2,)]


def test_races_through_pgbouncer_keep_every_rule(
    through_bouncer: tuple[str, tuple[str, str]], owner: str
) -> None:
    direct, servers = through_bouncer
    spender, copier = f"{owner}-spender", f"{owner}-copier"

    async def run() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        limits = httpx.Limits(max_connections=100)
        async with (
            httpx.AsyncClient(base_url=servers[0], headers=SERVICE, limits=limits, timeout=60) as a,
            httpx.AsyncClient(base_url=servers[1], headers=SERVICE, limits=limits, timeout=60) as b,
        ):
            for n in range(3):
                await create_entry_async(a, spender, "CREDIT_ADD", f"top-up-{n}")
            spends = await asyncio.gather(
                *(
                    create_entry_async((a, b)[n % 2], spender, "CREDIT_SPEND", f"spend-{n}")
                    for n in range(100)
                )
            )
            copies = await asyncio.gather(
                *(
                    create_entry_async((a, b)[n % 2], copier, "CREDIT_ADD", "once")
                    for n in range(50)
                )
            )
            return spends, copies

    spends, copies = asyncio.run(run())

    assert [s["__typename"] for s in spends].count("LedgerEntry") == 30
    assert [s["__typename"] for s in spends].count("InsufficientCredits") == 70
    [(balance,)] = sql(direct, "SELECT balance FROM balances WHERE owner_id = :o", o=spender)
    assert balance == 0
    assert {c["id"] for c in copies} == {copies[0]["id"]} and copies[0][
        "__typename"
    ] == "LedgerEntry"
    assert sql(direct, "SELECT count(*) FROM entries WHERE owner_id = :o", o=copier) == [(1,)]
