"""The `graphql-ledger` command run as a real subprocess: export-schema, migrate and serve,
on a real PostgreSQL and on the embedded server it starts itself."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import psutil
import pytest

from graphql_ledger.storage import head_revision
from tests.support import (
    CLI,
    ROOT,
    GraphQLClient,
    ServerProcess,
    clean_environment,
    free_port,
    service_headers,
    sql,
    with_database,
)
from travelai.operations import TravelAIOperation

HEALTHAI_VALUES = [
    "DAILY_REWARD",
    "SIGNUP_CREDIT",
    "CREDIT_SPEND",
    "CREDIT_ADD",
    "CONTENT_CREATION",
    "CONTENT_ACCESS",
]
TRAVELAI_VALUES = [
    "DAILY_REWARD",
    "SIGNUP_CREDIT",
    "CREDIT_SPEND",
    "CREDIT_ADD",
    "BOOKING_REWARD",
    "LOYALTY_BONUS",
]

Completed = subprocess.CompletedProcess[str]

APP_TYPE = 'query { __type(name: "%s") { enumValues { name } } }'


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> Completed:
    return subprocess.run(
        [str(CLI), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def enum_values(sdl: str, name: str) -> list[str]:
    match = re.search(rf"^enum {name} \{{\n(.*?)\n\}}", sdl, re.MULTILINE | re.DOTALL)
    assert match is not None, sdl
    return [line.strip() for line in match.group(1).splitlines()]


def database_exists(postgres_url: str, name: str) -> bool:
    rows = sql(postgres_url, "SELECT 1 FROM pg_database WHERE datname = :name", name=name)
    return bool(rows)


def drop_database(postgres_url: str, name: str) -> None:
    sql(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tables_of(url: str) -> set[str]:
    rows = sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row[0] for row in rows}


def revisions_of(url: str) -> list[str]:
    return [row[0] for row in sql(url, "SELECT version_num FROM alembic_version")]


def is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def consecutive_free_ports() -> int:
    """A port P such that P and P + 1 are both free on loopback."""
    for _ in range(100):
        port = free_port()
        if port < 65535 and is_free(port + 1):
            return port
    raise RuntimeError("no two consecutive free ports found")


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """Running processes whose command line names a path inside `data_dir`."""
    marker = f"{data_dir}/"
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if process.info["status"] != psutil.STATUS_ZOMBIE and any(
            marker in part for part in cmdline
        ):
            found.append(process)
    return found


def printed_tokens(output: str) -> dict[str, dict[str, str]]:
    """The GraphiQL header lines `serve` printed for development, by app."""
    found = re.findall(
        r"(\w+): a development service token.*\n\s*(\{\"Authorization\": \"Bearer [^\"]+\"\})",
        output,
    )
    return {app: json.loads(header) for app, header in found}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh LEDGER_DATA_DIR with a short path: the embedded server's socket lives in it."""
    path = Path(tempfile.mkdtemp(prefix="lg", dir="/tmp"))
    try:
        yield path
    finally:
        # Only after a failed test can a server of this directory still run.
        for process in postgres_processes(path):
            process.terminate()
        psutil.wait_procs(postgres_processes(path), timeout=10)
        shutil.rmtree(path, ignore_errors=True)


def test_export_schema_prints_the_apps_sdl_with_its_operation_enum() -> None:
    result = run_cli("export-schema", "healthai", env=clean_environment())

    assert result.returncode == 0, result.stderr
    assert "enum HealthAIOperation {" in result.stdout
    assert enum_values(result.stdout, "HealthAIOperation") == HEALTHAI_VALUES
    assert "createEntry(input: CreateEntryInput!): CreateEntryResult!" in result.stdout
    assert "TravelAI" not in result.stdout


def test_export_schema_of_the_two_apps_differs_only_in_the_operation_enum() -> None:
    healthai = run_cli("export-schema", "healthai", env=clean_environment())
    travelai = run_cli("export-schema", "travelai", env=clean_environment())
    assert healthai.returncode == 0, healthai.stderr
    assert travelai.returncode == 0, travelai.stderr
    assert enum_values(travelai.stdout, "TravelAIOperation") == TRAVELAI_VALUES
    assert "HealthAI" not in travelai.stdout

    def normalised(sdl: str, enum: str, values: list[str]) -> list[str]:
        """The top-level definitions, the operation enum's values hidden and its name
        made neutral; the SDL sorts definitions by name, so the enum's place differs."""
        block = "\n".join(f"  {value}" for value in values)
        sdl = sdl.replace(f"enum {enum} {{\n{block}\n}}", "enum Operation { ... }")
        definitions = re.split(r"\n\n(?=\S)", sdl.replace(enum, "Operation").strip())
        return sorted(definitions)

    healthai_definitions = normalised(healthai.stdout, "HealthAIOperation", HEALTHAI_VALUES)
    travelai_definitions = normalised(travelai.stdout, "TravelAIOperation", TRAVELAI_VALUES)
    assert "enum Operation { ... }" in healthai_definitions
    assert "enum Operation { ... }" in travelai_definitions
    assert healthai_definitions == travelai_definitions


def test_export_schema_of_an_unknown_app_fails_listing_the_known_apps() -> None:
    result = run_cli("export-schema", "shopai", env=clean_environment())

    assert result.returncode != 0
    assert result.stdout == ""
    assert "shopai" in result.stderr
    assert "healthai" in result.stderr
    assert "travelai" in result.stderr


def test_migrate_creates_a_missing_app_database_and_a_second_run_changes_nothing(
    postgres_url: str,
) -> None:
    name = f"test_cli_{uuid.uuid4().hex[:10]}"
    url = with_database(postgres_url, name)
    env = clean_environment(HEALTHAI_DATABASE_URL=url)
    assert not database_exists(postgres_url, name)
    try:
        first = run_cli("migrate", "healthai", env=env)
        assert first.returncode == 0, first.stderr
        assert database_exists(postgres_url, name)
        assert {"balances", "entries"} <= tables_of(url)
        assert revisions_of(url) == [head_revision()]

        second = run_cli("migrate", "healthai", env=env)
        assert second.returncode == 0, second.stderr
        assert {"balances", "entries"} <= tables_of(url)
        assert revisions_of(url) == [head_revision()]
    finally:
        drop_database(postgres_url, name)


@pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")),
    reason="creates databases named healthai and travelai, which a shared server may hold",
)
def test_migrate_with_a_server_url_creates_and_migrates_a_database_named_after_each_app(
    postgres_url: str,
) -> None:
    assert not database_exists(postgres_url, "healthai")
    assert not database_exists(postgres_url, "travelai")
    try:
        result = run_cli("migrate", env=clean_environment(DATABASE_URL=postgres_url))

        assert result.returncode == 0, result.stderr
        for app in ("healthai", "travelai"):
            url = with_database(postgres_url, app)
            assert database_exists(postgres_url, app)
            assert {"balances", "entries"} <= tables_of(url)
            assert revisions_of(url) == [head_revision()]
    finally:
        drop_database(postgres_url, "healthai")
        drop_database(postgres_url, "travelai")


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_command_given_an_unreachable_database_exits_with_one_line_naming_the_masked_url(
    command: str,
) -> None:
    url = "postgresql://ledger:s3cret@127.0.0.1:1/healthai"
    started = time.monotonic()
    result = run_cli(command, "healthai", env=clean_environment(HEALTHAI_DATABASE_URL=url))
    elapsed = time.monotonic() - started

    assert result.returncode != 0
    assert elapsed < 10
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "127.0.0.1:1" in lines[0]
    assert "***" in lines[0]
    assert "s3cret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_serve_without_a_database_keeps_both_ledgers_in_an_embedded_server_across_restarts(
    data_dir: Path, owner: str
) -> None:
    port = consecutive_free_ports()
    args = [str(CLI), "serve", "--port", str(port)]
    env = clean_environment(LEDGER_DATA_DIR=str(data_dir), LEDGER_JWT_SECRET=None)
    assert postgres_processes(data_dir) == []

    server = ServerProcess(args, env, [port, port + 1]).start()
    try:
        assert (data_dir / "postgres" / "PG_VERSION").is_file()
        assert postgres_processes(data_dir) != []
        headers = printed_tokens(server.output())
        assert set(headers) == {"healthai", "travelai"}
        with (
            httpx.Client(base_url=server.url(0), headers=headers["healthai"]) as healthai_http,
            httpx.Client(base_url=server.url(1), headers=headers["travelai"]) as travelai_http,
        ):
            healthai, travelai = GraphQLClient(healthai_http), GraphQLClient(travelai_http)
            assert healthai.data(APP_TYPE % "HealthAIOperation")["__type"] is not None
            assert travelai.data(APP_TYPE % "TravelAIOperation")["__type"] is not None
            assert healthai.create_entry(owner, "CREDIT_ADD", "n1")["balanceAfter"] == 10
            assert healthai.balance(owner) == 10
            assert travelai.balance(owner) == 0
    finally:
        exit_code = server.stop()
    assert exit_code == 0, server.output()
    assert postgres_processes(data_dir) == [], server.output()

    restarted = ServerProcess(args, env, [port, port + 1]).start()
    try:
        # The token printed before the restart still works: the secret is kept too.
        with httpx.Client(base_url=restarted.url(0), headers=headers["healthai"]) as http:
            assert GraphQLClient(http).balance(owner) == 10
    finally:
        exit_code = restarted.stop()
    assert exit_code == 0, restarted.output()
    assert postgres_processes(data_dir) == [], restarted.output()


def test_serve_of_one_app_serves_only_that_app_on_the_given_port(
    new_database: Callable[..., str], owner: str
) -> None:
    url = new_database("cli_travelai", operations=TravelAIOperation)
    port = consecutive_free_ports()
    env = clean_environment(TRAVELAI_DATABASE_URL=url)
    args = [str(CLI), "serve", "travelai", "--port", str(port)]

    with (
        ServerProcess(args, env, [port]) as server,
        httpx.Client(base_url=server.url(), headers=service_headers("travelai")) as http,
    ):
        travelai = GraphQLClient(http)
        values = travelai.data(APP_TYPE % "TravelAIOperation")["__type"]["enumValues"]
        assert [value["name"] for value in values] == TRAVELAI_VALUES
        assert travelai.data(APP_TYPE % "HealthAIOperation")["__type"] is None
        assert travelai.create_entry(owner, "BOOKING_REWARD", "n1")["balanceAfter"] == 5
        assert sql(url, "SELECT count(*) FROM entries WHERE owner_id = :o", o=owner) == [(1,)]
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"http://127.0.0.1:{port + 1}/graphql", json={"query": "{ __typename }"})
