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
import jwt
import psutil
import pytest

from graphql_ledger.storage import head_revision
from tests.support import (
    CLI,
    ROOT,
    TEST_SECRET,
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
    """The header lines of the start-up summary `serve` printed for development, by app."""
    found = re.findall(r"^  (\w+): (\{\"Authorization\": \"Bearer [^\"]+\"\})$", output, re.M)
    return {app: json.loads(header) for app, header in found}


# A development log line: local time, level, message.
TEXT_LINE = re.compile(r"^\d\d:\d\d:\d\d (INFO |WARNING|ERROR) \S.*$")
SUMMARY_START = "\ngraphql-ledger is serving, in development:\n"
SUMMARY_END = "  Ctrl-C stops it.\n"


def summary_of(output: str) -> tuple[list[str], str, list[str]]:
    """The lines `serve` printed before its start-up summary, the summary, the lines after."""
    start = output.index(SUMMARY_START)
    end = output.index(SUMMARY_END, start) + len(SUMMARY_END)
    before, after = output[:start].splitlines(), output[end:].splitlines()
    return [line for line in before if line], output[start:end], [line for line in after if line]


def busy_port_message(busy: int, first: int, apps: int) -> str:
    other = first + 100
    return (
        f"graphql-ledger: port {busy} on 127.0.0.1 is already in use (another `graphql-ledger "
        f"serve`?): stop that, or serve on other ports with --port {other} (make run "
        f"PORT={other}), which takes {other}-{other + apps - 1}"
    )


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
        # Human log lines, then the summary, printed once both ports listen; after it only
        # the requests ServerProcess made to see the servers answer.
        before, summary, after = summary_of(server.output())
        assert before and all(TEXT_LINE.match(line) for line in before), before
        assert f"  healthai  http://127.0.0.1:{port}/graphql " in summary
        assert f"  travelai  http://127.0.0.1:{port + 1}/graphql " in summary
        assert f"  data folder  {data_dir.resolve()}  " in summary
        request = r"^\d\d:\d\d:\d\d INFO  (healthai|travelai) POST /graphql 401 unauthenticated "
        assert after and all(re.match(rf"{request}[\d.]+ ms$", line) for line in after), after
        headers = printed_tokens(summary)
        assert set(headers) == {"healthai", "travelai"}

        # `make run` again while this one runs: one line, before anything is announced.
        second = run_cli(*args[1:], env=env, timeout=60)
        assert (second.returncode, second.stdout) == (1, "")
        assert second.stderr.splitlines() == [busy_port_message(port, port, 2)]
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
        created = r"^\d\d:\d\d:\d\d INFO  healthai POST /graphql 200 CreateEntry [\d.]+ ms$"
        assert re.search(created, server.output(), re.M), server.output()
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
    # Not in development: JSON lines, the start-up summary one of them.
    lines = [json.loads(line) for line in server.output().splitlines() if line.strip()]
    assert f"travelai: GraphQL at http://127.0.0.1:{port}/graphql" in [
        line["message"] for line in lines
    ]
    assert "Bearer" not in server.output()


def test_a_busy_port_ends_serve_with_one_line_before_anything_starts(data_dir: Path) -> None:
    port = consecutive_free_ports()
    env = clean_environment(LEDGER_DATA_DIR=str(data_dir), LEDGER_JWT_SECRET=None)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port + 1))
        busy.listen()
        result = run_cli("serve", "--port", str(port), env=env, timeout=60)

    assert (result.returncode, result.stdout) == (1, "")  # no token, no "serving at"
    assert result.stderr.splitlines() == [busy_port_message(port + 1, port, 2)]
    assert list(data_dir.iterdir()) == []  # no PostgreSQL was started, no secret made
    assert is_free(port)  # the port it had taken first is free again


def test_serve_on_one_busy_port_says_so_in_one_line(postgres_url: str) -> None:
    port = free_port()
    env = clean_environment(TRAVELAI_DATABASE_URL=with_database(postgres_url, "unused"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        result = run_cli("serve", "travelai", "--port", str(port), env=env, timeout=60)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"graphql-ledger: port {port} on 127.0.0.1 is already in use (another `graphql-ledger "
        f"serve`?): stop that, or serve on another port with --port {port + 100}\n"
    )


def test_no_arguments_print_the_help_naming_the_commands_and_the_apps() -> None:
    result = run_cli(env=clean_environment())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: graphql-ledger")
    for command in ("serve", "migrate", "verify", "export-schema", "token"):
        assert re.search(rf"^    {command}\b", result.stdout, re.M), result.stdout
    assert "apps: healthai, travelai" in result.stdout
    assert "names the variables each command reads" in result.stdout


@pytest.mark.parametrize(
    ("command", "variables"),
    [
        (
            "serve",
            [
                "<APP>_DATABASE_URL",
                "DATABASE_URL",
                "LEDGER_DATA_DIR",
                "LEDGER_JWT_SECRET",
                "LEDGER_JWT_PUBLIC_KEY",
                "LEDGER_AUTH",
                "LEDGER_LOG_FORMAT",
            ],
        ),
        ("migrate", ["<APP>_DATABASE_URL", "DATABASE_URL", "LEDGER_DATA_DIR"]),
        ("verify", ["<APP>_DATABASE_URL", "DATABASE_URL", "LEDGER_DATA_DIR"]),
        ("token", ["LEDGER_JWT_SECRET", "<APP>_DATABASE_URL", "LEDGER_DATA_DIR"]),
    ],
)
def test_each_commands_help_names_the_apps_and_the_variables_it_reads(
    command: str, variables: list[str]
) -> None:
    result = run_cli(command, "--help", env=clean_environment())
    assert result.returncode == 0, result.stderr
    assert "apps: healthai, travelai" in result.stdout
    read = result.stdout.split("environment variables read:\n")[1]
    for variable in variables:
        assert re.search(rf"^  (\S+, )?{re.escape(variable)}\b", read, re.M), (variable, read)


def test_export_schema_help_says_it_reads_no_variable() -> None:
    result = run_cli("export-schema", "--help", env=clean_environment())
    assert "apps: healthai, travelai" in result.stdout
    assert "reads no variable" in result.stdout


def test_a_service_token_needs_no_sub_and_a_user_token_says_it_needs_one() -> None:
    service = run_cli("token", "--app", "healthai", "--service", env=clean_environment())
    assert service.returncode == 0, service.stderr
    claims = jwt.decode(service.stdout.strip(), TEST_SECRET, ["HS256"], audience="healthai")
    assert (claims["sub"], claims["scope"]) == ("service", "ledger:service")
    assert claims["exp"] - claims["iat"] == 3600

    user = run_cli("token", "--app", "healthai", env=clean_environment())
    assert (user.returncode, user.stdout) == (1, "")
    assert user.stderr == (
        "graphql-ledger: --sub OWNER is required: the owner the token acts as (or --service, "
        "for a backend service acting for any owner)\n"
    )


def test_the_token_help_says_why_its_lifetime_differs_from_the_development_tokens() -> None:
    result = run_cli("token", "--help", env=clean_environment())
    text = " ".join(result.stdout.split())
    assert "lifetime (3600: an hour, short as a real token's should be;" in text
    assert "the development tokens `serve` prints last 30 days, for a month of restarts)" in text
    assert "with --service, only the name the service goes by ('service' if omitted)" in text


@pytest.mark.slow
def test_development_logs_are_human_lines_unless_ledger_log_format_says_json(
    data_dir: Path,
) -> None:
    env = clean_environment(LEDGER_DATA_DIR=str(data_dir), LEDGER_JWT_SECRET=None)
    text = run_cli("migrate", "healthai", env=env)
    assert text.returncode == 0, text.stderr
    lines = text.stderr.splitlines()
    assert lines and all(TEXT_LINE.match(line) for line in lines), lines
    assert any(line.endswith(f"is at revision {head_revision()}") for line in lines), lines

    as_json = run_cli("migrate", "healthai", env={**env, "LEDGER_LOG_FORMAT": "json"})
    assert as_json.returncode == 0, as_json.stderr
    records = [json.loads(line) for line in as_json.stderr.splitlines()]
    assert {"time", "level", "logger", "message"} <= set(records[-1])
    assert records[-1]["message"].endswith(f"is at revision {head_revision()}")
