"""The database enforces the ledger's rules for every writer (append-only entries, no negative
balance, keys led by owner_id), and migrate() is idempotent, concurrent-safe and discreet."""

import asyncio
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool

from graphql_ledger.storage import (
    DatabaseUnreachable,
    create_engine,
    ensure_database,
    head_revision,
    migrate,
)
from graphql_ledger.storage.migrations import _MIGRATION_LOCK
from healthai.operations import HealthAIOperation
from tests.support import sql, with_database

UNREACHABLE_URL = "postgresql://u:secret@127.0.0.1:1/x"
ADVISORY_WAITERS = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"


@pytest.fixture(scope="module")
def ledger_url(new_database: Callable[..., str]) -> str:
    return new_database("storage")


@pytest.fixture
def missing_database(postgres_url: str) -> Iterator[str]:
    """The URL of a database that does not exist yet on the test server; dropped after."""
    name = f"test_missing_{uuid.uuid4().hex[:10]}"
    try:
        yield with_database(postgres_url, name)
    finally:
        sql(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def add_entries(url: str, owner_id: str, count: int) -> None:
    """`count` CREDIT_ADD entries of 10 credits, through the database's create_entry()."""
    for number in range(count):
        sql(
            url,
            "SELECT outcome FROM create_entry(:owner, 'CREDIT_ADD', :nonce)",
            owner=owner_id,
            nonce=f"n{number}",
        )


def entry_rows(url: str) -> list[tuple[object, ...]]:
    rows = sql(url, "SELECT * FROM entries ORDER BY owner_id, id")
    return [tuple(row) for row in rows]


def stored_revision(url: str) -> list[str]:
    return [row[0] for row in sql(url, "SELECT version_num FROM alembic_version")]


def database_exists(postgres_url: str, url: str) -> bool:
    name = url.rsplit("/", 1)[-1].split("?", 1)[0]
    rows = sql(postgres_url, "SELECT 1 FROM pg_database WHERE datname = :name", name=name)
    return bool(rows)


@pytest.mark.parametrize(
    ("operation", "statement"),
    [
        pytest.param(
            "UPDATE",
            "UPDATE entries SET amount = amount + 1, balance_after = balance_after + 1",
            id="UPDATE",
        ),
        pytest.param("DELETE", "DELETE FROM entries WHERE owner_id = :owner", id="DELETE"),
        pytest.param("TRUNCATE", "TRUNCATE entries", id="TRUNCATE"),
    ],
)
def test_entries_refuse_update_delete_and_truncate_and_stay_unchanged(
    ledger_url: str, owner: str, operation: str, statement: str
) -> None:
    add_entries(ledger_url, owner, 2)
    before = entry_rows(ledger_url)

    with pytest.raises(DBAPIError, match=f"append-only: {operation} is refused"):
        sql(ledger_url, statement, owner=owner)

    assert entry_rows(ledger_url) == before
    assert len([row for row in before if row[0] == owner]) == 2


def test_a_direct_update_to_a_negative_balance_is_refused_by_a_check_constraint(
    ledger_url: str, owner: str
) -> None:
    add_entries(ledger_url, owner, 1)

    with pytest.raises(IntegrityError, match='check constraint "balances_held_within_balance"'):
        sql(ledger_url, "UPDATE balances SET balance = balance - 11 WHERE owner_id = :o", o=owner)

    assert sql(ledger_url, "SELECT balance FROM balances WHERE owner_id = :o", o=owner) == [(10,)]


def test_every_primary_key_and_unique_key_of_the_ledger_starts_with_owner_id(
    ledger_url: str,
) -> None:
    indexes = sql(
        ledger_url,
        """
        SELECT t.relname, i.indexrelid::regclass::text, a.attname
          FROM pg_index i
          JOIN pg_class t ON t.oid = i.indrelid
          LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE t.relname IN ('balances', 'entries')
           AND t.relnamespace = 'public'::regnamespace
           AND (i.indisunique OR i.indisprimary)
        """,
    )
    constraints = sql(
        ledger_url,
        """
        SELECT t.relname, c.conname, a.attname
          FROM pg_constraint c
          JOIN pg_class t ON t.oid = c.conrelid
          LEFT JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
         WHERE t.relname IN ('balances', 'entries')
           AND t.relnamespace = 'public'::regnamespace
           AND c.contype IN ('p', 'u', 'x')
        """,
    )

    expected = {"balances_pkey", "entries_pkey", "entries_owner_nonce_key"}
    assert {name for _, name, _ in indexes} >= expected
    assert {name for _, name, _ in constraints} >= expected
    leading = {(table, name): column for table, name, column in [*indexes, *constraints]}
    assert {key: "owner_id" for key in leading} == leading


def test_migrate_twice_keeps_the_data_and_stays_at_the_head_revision(
    new_database: Callable[..., str], owner: str
) -> None:
    url = new_database("remigrate", migrated=False)
    asyncio.run(migrate(url, HealthAIOperation))
    add_entries(url, owner, 1)
    before = entry_rows(url)
    rules = sql(url, "SELECT * FROM operation_rules ORDER BY operation")

    asyncio.run(migrate(url, HealthAIOperation))

    assert head_revision() is not None
    assert stored_revision(url) == [head_revision()]
    assert entry_rows(url) == before and len(before) == 1
    assert sql(url, "SELECT * FROM operation_rules ORDER BY operation") == rules
    assert len(rules) == len(HealthAIOperation)  # unchanged rules are not recorded again


def test_every_writer_applies_the_database_rules_whatever_it_passes(
    ledger_url: str, owner: str
) -> None:
    # A process of the previous release still passes an amount and a limit: ignored.
    [old] = sql(
        ledger_url,
        "SELECT * FROM create_entry(:owner, 'CREDIT_ADD', 1000, 'old', NULL)",
        owner=owner,
    )
    assert (old.outcome, old.entry_amount, old.entry_balance_after) == ("created", 10, 10)
    [again] = sql(
        ledger_url,
        "SELECT * FROM create_entry(:owner, 'SIGNUP_CREDIT', 3, 'signup-1', NULL)",
        owner=owner,
    )
    [twice] = sql(
        ledger_url,
        "SELECT * FROM create_entry(:owner, 'SIGNUP_CREDIT', 3, 'signup-2', NULL)",
        owner=owner,
    )
    assert (again.outcome, twice.outcome) == ("created", "limit_reached")  # limit "once"
    # An operation the database has no rule for is refused, whoever asks.
    with pytest.raises(DBAPIError, match="operation NO_SUCH_OPERATION has no rules"):
        sql(ledger_url, "SELECT * FROM create_entry(:owner, 'NO_SUCH_OPERATION', 'x')", owner=owner)
    [(balance,)] = sql(ledger_url, "SELECT balance FROM balances WHERE owner_id = :o", o=owner)
    assert balance == 13


def test_migrate_creates_a_database_that_does_not_exist_yet(
    postgres_url: str, missing_database: str
) -> None:
    assert not database_exists(postgres_url, missing_database)

    asyncio.run(migrate(missing_database))

    assert database_exists(postgres_url, missing_database)
    assert stored_revision(missing_database) == [head_revision()]
    assert sql(missing_database, "SELECT count(*) FROM entries") == [(0,)]


def test_two_concurrent_migrations_of_one_new_database_both_succeed(
    new_database: Callable[..., str],
) -> None:
    url = new_database("concurrent_migrate", migrated=False)

    async def run() -> int:
        # Hold the migrators' advisory lock until both wait for it, so they surely overlap.
        gate = create_engine(url, poolclass=NullPool)
        try:
            async with gate.connect() as connection:
                await connection.execute(
                    text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
                migrations = asyncio.gather(migrate(url), migrate(url))
                waiting = 0
                for _ in range(3000):
                    if waiting == 2 or migrations.done():
                        break
                    await asyncio.sleep(0.01)
                    waiting = await connection.scalar(text(ADVISORY_WAITERS))
                await connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK}
                )
                await migrations
        finally:
            await gate.dispose()
        return waiting

    assert asyncio.run(run()) == 2, "both migrations waited for the lock"
    assert stored_revision(url) == [head_revision()]


def test_two_concurrent_migrations_of_a_missing_database_both_succeed(
    postgres_url: str, missing_database: str
) -> None:
    async def run() -> None:
        await asyncio.gather(migrate(missing_database), migrate(missing_database))

    asyncio.run(run())

    assert database_exists(postgres_url, missing_database)
    assert stored_revision(missing_database) == [head_revision()]


@pytest.mark.parametrize("function", [ensure_database, migrate], ids=["ensure_database", "migrate"])
def test_an_unreachable_server_is_reported_with_its_address_and_the_password_masked(
    function: Callable[[str], object],
) -> None:
    with pytest.raises(DatabaseUnreachable) as raised:
        asyncio.run(function(UNREACHABLE_URL))  # type: ignore[arg-type]

    message = str(raised.value)
    assert "127.0.0.1:1" in message
    assert "***" in message
    assert "secret" not in message
