"""A database the serving processes cannot corrupt: they log in as a member of
ledger_serving, which may read the ledger's tables and write only by calling create_entry();
the identifier rules hold as CHECK constraints for every writer, the owner too. And the
functions come from one source: a fresh database and one upgraded from the previous
release's 0005 end with the same ones."""

import asyncio
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from graphql_ledger import Settings, create_app
from graphql_ledger.storage import EmbeddedPostgres, head_revision, migrate
from graphql_ledger.storage.migrations import MIGRATIONS_DIR, SERVING_ROLE
from healthai.operations import HealthAIOperation
from tests.support import (
    CLI,
    ROOT,
    TEST_SECRET,
    GraphQLClient,
    clean_environment,
    service_headers,
    sql,
    verify_books,
    with_user,
)

# The login the test suite's apps serve as (conftest.py), a member of ledger_serving.
SERVING_LOGIN = EmbeddedPostgres.serving_login

TABLES = (
    "entries",
    "balances",
    "holds",
    "operation_rules",
    "alembic_version",
    "events",
    "ledger_settings",
    "balance_alerts",
    "grants",
    "grant_uses",
    "ledger_watches",
    "ledger_watchers",
)

# A statement of each kind on each table that the owner could run.
WRITES = {
    "entries": {
        "INSERT": "INSERT INTO entries (owner_id, operation, amount, balance_after, nonce,"
        " created_on) VALUES ('forger', 'CREDIT_ADD', 1000, 1000, 'f', now())",
        "UPDATE": "UPDATE entries SET amount = amount * 100",
    },
    "balances": {
        "INSERT": "INSERT INTO balances VALUES ('forger', 1000, now())",
        "UPDATE": "UPDATE balances SET balance = balance + 1000",
    },
    "holds": {
        "INSERT": "INSERT INTO holds (owner_id, operation, quantity, amount, nonce, created_on,"
        " expires_at) VALUES ('forger', 'CREDIT_SPEND', 1, -1, 'f', now(), now() + '1h')",
        "UPDATE": "UPDATE holds SET status = 'released', ended_on = now()",
    },
    "operation_rules": {
        "INSERT": "INSERT INTO operation_rules VALUES ('CREDIT_ADD', 1000, NULL, now())",
        "UPDATE": "UPDATE operation_rules SET amount = 1000",
    },
    "alembic_version": {
        "INSERT": "INSERT INTO alembic_version VALUES ('9999')",
        "UPDATE": "UPDATE alembic_version SET version_num = '0001'",
    },
    "events": {
        "INSERT": "INSERT INTO events (owner_id, owner_seq, type, created_on, data)"
        " VALUES ('forger', 1, 'entry.created', now(), '{}')",
        "UPDATE": "UPDATE events SET status = 'delivered'",
    },
    "ledger_settings": {
        "INSERT": "INSERT INTO ledger_settings DEFAULT VALUES",
        "UPDATE": "UPDATE ledger_settings SET webhooks = false",
    },
    "balance_alerts": {
        "INSERT": "INSERT INTO balance_alerts VALUES ('forger', 1, true)",
        "UPDATE": "UPDATE balance_alerts SET armed = false",
    },
    "grants": {
        "INSERT": "INSERT INTO grants VALUES ('forger', 1, 'CREDIT_ADD', 'f', 1000, now(),"
        " now() + '1h', true, 1000)",
        "UPDATE": "UPDATE grants SET remaining = amount",
    },
    "ledger_watches": {
        "INSERT": "INSERT INTO ledger_watches VALUES ('forger', 'w')",
        "UPDATE": "UPDATE ledger_watches SET watcher = 'x'",
    },
    "ledger_watchers": {
        "INSERT": "INSERT INTO ledger_watchers VALUES ('w', now())",
        "UPDATE": "UPDATE ledger_watchers SET seen_at = now()",
    },
    "grant_uses": {
        "INSERT": "INSERT INTO grant_uses (owner_id, grant_id, entry_id, credits, taken_on,"
        " moved_on, expires_at) VALUES ('forger', 1, 2, -1000, now(), now(), now())",
        "UPDATE": "UPDATE grant_uses SET credits = -credits",
    },
}
STATEMENTS = [
    (table, statement)
    for table in TABLES
    for statement in (
        WRITES[table]["INSERT"],
        WRITES[table]["UPDATE"],
        f"DELETE FROM {table}",
        f"TRUNCATE {table}",
    )
]

# Functions only the owner may call: rule registration, and the write functions' steps.
OWNER_ONLY = [
    "SELECT record_operation_rules(ARRAY['CREDIT_ADD'], ARRAY[1000], ARRAY[NULL::text],"
    " ARRAY[NULL::interval])",
    "SELECT * FROM ledger_move_balance('forger', 1000)",
    "SELECT ledger_append_entry('forger', 'CREDIT_ADD', 1000, 1000, 'f', now(), NULL)",
    "SELECT * FROM ledger_settle_holds('forger')",
    "SELECT * FROM ledger_hold_for_write(1, NULL, NULL)",
    "SELECT ledger_book_expiries('forger', now())",
    "SELECT ledger_take_grants('forger', 1, now(), 1, NULL)",
    "SELECT ledger_give_back('forger', 1, 2, now())",
]


def driver_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def run_as(url: str, statement: str) -> Any:
    connection = await asyncpg.connect(driver_url(url))
    try:
        return await connection.fetch(statement)
    finally:
        await connection.close()


async def run_script(url: str, script: str) -> None:
    """Statements of a script, in one simple-query round trip."""
    connection = await asyncpg.connect(driver_url(url))
    try:
        await connection.execute(script)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def ledger_url(new_database: Callable[..., str]) -> str:
    """A migrated healthai database with an owner who has entries."""
    url = new_database("serving_role")
    sql(url, "SELECT * FROM create_entry('payer', 'CREDIT_ADD', 'n1')")
    return url


@pytest.mark.parametrize(("table", "statement"), STATEMENTS)
def test_the_serving_role_may_not_write_a_ledger_table_directly(
    ledger_url: str, table: str, statement: str
) -> None:
    before = sql(ledger_url, f"SELECT * FROM {table} ORDER BY 1")
    with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
        asyncio.run(run_as(with_user(ledger_url, SERVING_LOGIN), statement))
    assert str(refused.value) == f"permission denied for table {table}"
    assert sql(ledger_url, f"SELECT * FROM {table} ORDER BY 1") == before


@pytest.mark.parametrize("statement", OWNER_ONLY)
def test_the_serving_role_may_not_call_the_owners_functions(
    ledger_url: str, statement: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
        asyncio.run(run_as(with_user(ledger_url, SERVING_LOGIN), statement))
    assert str(refused.value).startswith("permission denied for function ")
    assert sql(ledger_url, "SELECT count(*) FROM entries WHERE owner_id = 'forger'") == [(0,)]


def test_the_serving_role_reads_every_table_and_writes_through_create_entry(
    ledger_url: str,
) -> None:
    serving = with_user(ledger_url, SERVING_LOGIN)
    for table in TABLES:
        counted = asyncio.run(run_as(serving, f"SELECT count(*) FROM {table}"))[0][0]
        empty_here = (
            "holds",
            "events",
            "balance_alerts",
            "grants",
            "grant_uses",
            "ledger_watches",
            "ledger_watchers",
        )
        assert counted >= (0 if table in empty_here else 1), table
    [row] = asyncio.run(run_as(serving, "SELECT * FROM create_entry('payer', 'CREDIT_ADD', 'n2')"))
    assert (row["outcome"], row["entry_amount"], row["entry_balance_after"]) == ("created", 10, 20)
    # The previous release's signature too, with the rules' amount.
    [row] = asyncio.run(
        run_as(serving, "SELECT * FROM create_entry('payer', 'CREDIT_ADD', 99, 'n3')")
    )
    assert (row["outcome"], row["entry_amount"], row["entry_balance_after"]) == ("created", 10, 30)


def test_the_in_process_app_serves_as_the_serving_role(
    healthai_http: TestClient, healthai: GraphQLClient, app_urls: dict[str, str], owner: str
) -> None:
    engine = healthai_http.app.state.repository.engine  # type: ignore[attr-defined]
    assert engine.url.username == SERVING_LOGIN
    entry = healthai.create_entry(owner, "CREDIT_ADD", "n1")
    assert (entry["__typename"], entry["balanceAfter"]) == ("LedgerEntry", 10)
    rows = sql(app_urls["healthai"], "SELECT amount FROM entries WHERE owner_id = :o", o=owner)
    assert rows == [(10,)]
    member = sql(
        app_urls["healthai"],
        "SELECT pg_has_role(:login, :role, 'MEMBER')",
        login=SERVING_LOGIN,
        role=SERVING_ROLE,
    )
    assert member == [(True,)]


@pytest.mark.parametrize(
    ("owner_id", "nonce", "constraint"),
    [
        ("", "n", "entries_owner_id_is_identifier"),
        ("x" * 256, "n", "entries_owner_id_is_identifier"),
        ("tab\tbed", "n", "entries_owner_id_is_identifier"),
        ("zero\u200bwidth", "n", "entries_owner_id_is_identifier"),
        ("tag\U000e0041", "n", "entries_owner_id_is_identifier"),
        ("fine", "bell\x07", "entries_nonce_is_identifier"),
        ("fine", "bidi\u202e", "entries_nonce_is_identifier"),
        ("fine", "", "entries_nonce_is_identifier"),
    ],
)
def test_a_check_refuses_a_bad_identifier_written_by_the_owner(
    ledger_url: str, owner_id: str, nonce: str, constraint: str
) -> None:
    insert = (
        "INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on)"
        " VALUES ($1, 'CREDIT_ADD', 10, 10, $2, now())"
    )

    async def write() -> None:
        connection = await asyncpg.connect(driver_url(ledger_url))
        try:
            await connection.execute(insert, owner_id, nonce)
        finally:
            await connection.close()

    with pytest.raises(asyncpg.CheckViolationError) as refused:
        asyncio.run(write())
    assert refused.value.constraint_name == constraint


def test_a_check_refuses_a_bad_owner_id_in_balances(ledger_url: str) -> None:
    async def write() -> None:
        connection = await asyncpg.connect(driver_url(ledger_url))
        try:
            await connection.execute("INSERT INTO balances VALUES ($1, 1, now())", "soft\u00adhy")
        finally:
            await connection.close()

    with pytest.raises(asyncpg.CheckViolationError) as refused:
        asyncio.run(write())
    assert refused.value.constraint_name == "balances_owner_id_is_identifier"


def test_the_longest_and_most_unusual_good_identifiers_pass_the_check(ledger_url: str) -> None:
    owner_id = "é" * 254 + "\U0001f600"  # 255 characters, far more bytes
    [row] = sql(ledger_url, "SELECT * FROM create_entry(:o, 'CREDIT_ADD', 'ünïcode')", o=owner_id)
    assert (row.outcome, row.entry_balance_after) == ("created", 10)


def refused_class() -> str:
    """The character class the constraint spells out, as Python's unicodedata gives it."""
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) in ("Cc", "Cf", "Cs"):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])

    def escape(code: int) -> str:
        return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"

    return "".join(escape(a) if a == b else f"{escape(a)}-{escape(b)}" for a, b in ranges)


@pytest.mark.skipif(
    unicodedata.unidata_version != "14.0.0", reason="the class was generated from Unicode 14.0.0"
)
def test_the_checks_character_class_is_the_one_unicodedata_gives() -> None:
    source = (MIGRATIONS_DIR / "sql" / "ledger_is_identifier.sql").read_text()
    assert f"!~ '[{refused_class()}]'" in source


def functions_and_constraints(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    functions = sql(
        url,
        "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), p.prosecdef,"
        " p.proconfig, p.proacl::text[] FROM pg_proc p"
        " WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1",
    )
    constraints = sql(
        url,
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated"
        " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    )
    return [tuple(row) for row in functions], [tuple(row) for row in constraints]


def test_a_database_at_the_previous_releases_0005_upgrades_to_the_fresh_ones_functions(
    new_database: Callable[..., str], postgres_url: str
) -> None:
    """A database the previous release made (migrated to 0005, written to by its
    create_entry()) upgrades to head, keeps its books, and ends with exactly the functions,
    rights and constraints of a fresh database."""
    fresh = new_database("fresh_head")
    upgraded = new_database("from_0005", migrated=False)
    dump = (ROOT / "tests" / "data" / "ledger_0005.sql").read_text()
    asyncio.run(run_script(upgraded, dump))
    assert sql(upgraded, "SELECT version_num FROM alembic_version") == [("0005",)]

    asyncio.run(migrate(upgraded, HealthAIOperation, login=SERVING_LOGIN))

    assert sql(upgraded, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
    assert functions_and_constraints(upgraded) == functions_and_constraints(fresh)
    assert sql(upgraded, "SELECT owner_id, balance FROM balances ORDER BY 1") == [
        ("alice", 12),
        ("bob", 6),
    ]
    verify_books("healthai", upgraded)
    serving = with_user(upgraded, SERVING_LOGIN)
    [row] = asyncio.run(run_as(serving, "SELECT * FROM create_entry('alice', 'CREDIT_ADD', 'a1')"))
    assert (row["outcome"], row["entry_id"]) == ("replayed", 1)
    [row] = asyncio.run(run_as(serving, "SELECT * FROM create_entry('bob', 'CREDIT_SPEND', 'b3')"))
    assert (row["outcome"], row["entry_id"], row["entry_balance_after"]) == ("created", 6, 5)
    # The dump's DAILY_REWARD is of the day it was made: today's is either that one or a
    # new one, and a second today is refused whatever the date (the assertion that bob's
    # was refused held only on 2026-12-01, the dump's day).
    asyncio.run(run_as(serving, "SELECT * FROM create_entry('bob', 'DAILY_REWARD', 'b9')"))
    [row] = asyncio.run(run_as(serving, "SELECT * FROM create_entry('bob', 'DAILY_REWARD', 'b10')"))
    assert row["outcome"] == "limit_reached"
    verify_books("healthai", upgraded)


def grants(url: str) -> list[tuple[Any, ...]]:
    rows = sql(
        url,
        "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
        " WHERE grantee = :role ORDER BY 1, 2",
        role=SERVING_ROLE,
    )
    return [tuple(row) for row in rows]


def test_migrate_sets_the_serving_roles_rights_again_and_again_the_same(
    new_database: Callable[..., str],
) -> None:
    """A second migrate changes nothing; a right granted by hand is taken back."""
    url = new_database("serving_grants")
    expected = [(table, "SELECT") for table in sorted(TABLES)]
    assert grants(url) == expected
    sql(url, f"GRANT INSERT, UPDATE ON balances TO {SERVING_ROLE}")
    asyncio.run(migrate(url, HealthAIOperation, login=SERVING_LOGIN))
    asyncio.run(migrate(url, HealthAIOperation, login=SERVING_LOGIN))
    assert grants(url) == expected


@pytest.mark.slow
def test_on_a_server_where_migrate_may_not_create_roles_it_says_what_to_run() -> None:
    """A managed PostgreSQL, as docs/security.md sets it up: the migrating role has
    CREATEDB but not CREATEROLE. Without ledger_serving, `migrate` fails with one line
    naming the statement; once an administrator ran it and made the apps' login, `migrate`
    succeeds and an app serving as that login writes."""
    data_dir = Path(tempfile.mkdtemp(prefix="lgr", dir="/tmp"))  # the socket lives in it
    embedded = EmbeddedPostgres(data_dir).start()
    try:
        admin = embedded.url("postgres")
        sql(admin, "CREATE ROLE ledger_owner LOGIN CREATEDB")
        owner_url = with_user(embedded.url("healthai"), "ledger_owner")
        env = clean_environment(HEALTHAI_DATABASE_URL=owner_url)

        refused = run_cli("migrate", "healthai", env=env)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert refused.stderr.splitlines() == [
            "graphql-ledger: the role ledger_serving does not exist and ledger_owner may not"
            " create it: have an administrator run `CREATE ROLE ledger_serving NOLOGIN;`,"
            " then run graphql-ledger migrate again"
        ]

        sql(admin, "CREATE ROLE ledger_serving NOLOGIN")
        sql(admin, "CREATE ROLE shop_app LOGIN IN ROLE ledger_serving")
        done = run_cli("migrate", "healthai", env=env)
        assert done.returncode == 0, done.stdout + done.stderr

        settings = Settings(
            app_database_urls={"healthai": with_user(owner_url, "shop_app")},
            jwt_secret=TEST_SECRET,
        )
        with TestClient(create_app("healthai", HealthAIOperation, settings)) as client:
            client.headers.update(service_headers("healthai"))
            assert client.get("/readyz").json()["status"] == "ready"
            entry = GraphQLClient(client).create_entry("shopper", "CREDIT_ADD", "n1")
            assert entry["balanceAfter"] == 10
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            asyncio.run(run_as(with_user(owner_url, "shop_app"), "DELETE FROM balances"))
        assert sql(owner_url, "SELECT owner_id, balance FROM balances") == [("shopper", 10)]
    finally:
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
