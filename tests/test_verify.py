"""`graphql-ledger verify` run as a real subprocess on real PostgreSQL databases.

It proves that the audit
- checks 1,000,000 entries of 10,000 owners in bounded memory: its peak RSS on them is
  within 25 MiB of its peak RSS on an empty ledger (fetching them all would take some
  300 MiB), and the same check fails (exit 2, naming exactly that owner) once one owner's
  balance is off by one credit;
- finds every rule a tampered ledger breaks, names each broken owner once with the exact
  problem in words, and lists no owner whose books balance;
- checks each entry's amount against its operation's amount at the time it was written, so
  a ledger whose amounts changed still balances, and an amount dated on the wrong side of
  the change does not;
- exits 1 without checking or writing anything when the database is not migrated or
  cannot be reached;
- checks every configured app, one summary line each.
"""

import asyncio
import datetime
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from graphql_ledger.storage import display_url, head_revision
from tests.support import CLI, ROOT, clean_environment, free_port, sql
from travelai.operations import TravelAIOperation

# The command in-process behind a wrapper that prints its peak resident set size (KiB):
# VmHWM, the high-water mark of this process image alone. (getrusage's ru_maxrss is no
# use here: it survives exec, so in a child of pytest it reports pytest's own peak.)
MEASURED = (
    "import sys; from graphql_ledger.cli import main;"
    " status = main(sys.argv[1:]);"
    " [peak] = [line.split()[1] for line in open('/proc/self/status')"
    " if line.startswith('VmHWM:')];"
    " print('peak-rss-kib', peak);"
    " sys.exit(status)"
)

# How much more memory checking 1,000,000 entries may take than checking none.
RSS_MARGIN_KIB = 25 * 1024

SUMMARY = re.compile(
    r"(?P<app>\w+): (?:the books balance|(?P<broken>[\d,]+) owners? broken):"
    r" (?P<entries>[\d,]+) entr(?:y|ies) of (?P<owners>[\d,]+) owners? checked"
    r" in (?P<seconds>\d+\.\d) s"
)

# 1,000,000 entries of 10,000 owners (100 each, two credits of 10 then a spend of 1, over
# and over), with their running balances, one millisecond apart; then the balances.
# Inserted owner by owner, in the order of the primary key, which loads a fifth faster
# than in time order; within an owner, ids still grow with createdOn.
SEED_ENTRIES = """
    INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on)
    SELECT owner_id, operation, amount,
           sum(amount) OVER (PARTITION BY owner_id ORDER BY g), 'n-' || g,
           timestamptz '2026-01-01' + g * interval '1 ms'
      FROM (SELECT g, 'owner-' || (g % 10000) AS owner_id,
                   CASE WHEN g / 10000 % 3 = 2 THEN 'CREDIT_SPEND' ELSE 'CREDIT_ADD' END
                       AS operation,
                   CASE WHEN g / 10000 % 3 = 2 THEN -1 ELSE 10 END AS amount
              FROM generate_series(0, 999999) g) s
     ORDER BY owner_id, g
"""
SEED_BALANCES = """
    INSERT INTO balances (owner_id, balance, last_updated)
    SELECT owner_id, sum(amount), max(created_on) FROM entries GROUP BY owner_id
"""

# Appends an entry to an owner's history outside create_entry() and moves the balance to
# match, as a buggy writer would: `skew` is added to the entry's balanceAfter alone.
FORGE = """
    WITH forged AS (
        INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on)
        SELECT b.owner_id, :operation, :amount, b.balance + :amount + :skew, :nonce,
               coalesce(CAST(:created_on AS timestamptz), clock_timestamp())
          FROM balances b
         WHERE b.owner_id = :owner
        RETURNING owner_id, id, amount, created_on
    )
    UPDATE balances b SET balance = b.balance + f.amount, last_updated = f.created_on
      FROM forged f
     WHERE b.owner_id = f.owner_id
    RETURNING f.id
"""


@dataclass(frozen=True)
class Summary:
    app: str
    balanced: bool
    broken: int
    entries: int
    owners: int
    seconds: float


@dataclass(frozen=True)
class Verified:
    """What one `verify` run did: its exit status and what it printed."""

    status: int
    stdout: str
    stderr: str
    wall: float

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def broken_owners(self, app: str) -> list[str]:
        """The lines that name a broken owner of `app`, in the order printed."""
        return [line for line in self.lines if line.startswith(f"{app}: owner ")]

    def summaries(self) -> list[Summary]:
        found = []
        for line in self.lines:
            match = SUMMARY.fullmatch(line)
            if match is None:
                continue
            broken = int(match["broken"].replace(",", "")) if match["broken"] else 0
            found.append(
                Summary(
                    app=match["app"],
                    balanced=match["broken"] is None,
                    broken=broken,
                    entries=int(match["entries"].replace(",", "")),
                    owners=int(match["owners"].replace(",", "")),
                    seconds=float(match["seconds"]),
                )
            )
        return found

    def summary(self, app: str) -> Summary:
        [summary] = [s for s in self.summaries() if s.app == app]
        return summary


def verify(*apps: str, env: dict[str, str], timeout: float = 60) -> Verified:
    """`graphql-ledger verify APP...` as a subprocess."""
    started = time.perf_counter()
    done = subprocess.run(
        [str(CLI), "verify", *apps],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    wall = time.perf_counter() - started
    return Verified(done.returncode, done.stdout, done.stderr, wall)


def verify_measured(url: str, timeout: float = 120) -> tuple[Verified, int]:
    """`verify healthai` on `url` run through MEASURED; the run (without the RSS line) and
    its peak RSS in KiB."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, "verify", "healthai"],
        env=clean_environment(HEALTHAI_DATABASE_URL=url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    wall = time.perf_counter() - started
    *printed, last = done.stdout.splitlines()
    name, rss = last.split()
    assert name == "peak-rss-kib", done.stdout
    stdout = "".join(f"{line}\n" for line in printed)
    return Verified(done.returncode, stdout, done.stderr, wall), int(rss)


def healthai_env(url: str) -> dict[str, str]:
    return clean_environment(HEALTHAI_DATABASE_URL=url)


def write(url: str, owner: str, *operations: str) -> list[str]:
    """Writes through create_entry() as the app does; returns each call's outcome."""
    outcomes = []
    for operation in operations:
        nonce = uuid.uuid4().hex
        [row] = sql(url, "SELECT * FROM create_entry(:o, :op, :n)", o=owner, op=operation, n=nonce)
        outcomes.append(row.outcome)
    return outcomes


def forge(
    url: str,
    owner: str,
    operation: str,
    amount: int,
    *,
    skew: int = 0,
    created_on: datetime.datetime | None = None,
) -> int:
    """Appends a forged entry (see FORGE); returns its id."""
    [row] = sql(
        url,
        FORGE,
        owner=owner,
        operation=operation,
        amount=amount,
        skew=skew,
        nonce=f"forged-{owner}-{amount}-{skew}",
        created_on=created_on,
    )
    entry_id: int = row.id
    return entry_id


def entry_ids(url: str, owner: str) -> list[int]:
    """The owner's entry ids in the order of their history."""
    rows = sql(url, "SELECT id FROM entries WHERE owner_id = :o ORDER BY created_on, id", o=owner)
    return [row.id for row in rows]


def balance_of(url: str, owner: str) -> int:
    [row] = sql(url, "SELECT balance FROM balances WHERE owner_id = :o", o=owner)
    value: int = row.balance
    return value


def counts(url: str) -> tuple[int, int]:
    """Entries, and owners with entries or a balance."""
    [row] = sql(
        url,
        "SELECT (SELECT count(*) FROM entries) AS entries,"
        " (SELECT count(*) FROM (SELECT owner_id FROM balances"
        "  UNION SELECT owner_id FROM entries) o) AS owners",
    )
    return row.entries, row.owners


def wrong_amount(count: int, position: int, entry_id: int) -> str:
    return (
        f"{count} entr{'y' if count == 1 else 'ies'} with an amount not its operation's at the"
        f" time (the first: entry {position} of its history, id {entry_id})"
    )


@pytest.mark.slow
def test_a_million_entries_are_verified_in_bounded_memory(
    new_database: Callable[..., str], figures: Callable[[str], None]
) -> None:
    empty = new_database("verify_empty")
    url = new_database("verify_million")
    # The baseline on an empty ledger runs while PostgreSQL loads the big one.
    with ThreadPoolExecutor(1) as background:
        measured_empty = background.submit(verify_measured, empty)
        sql(url, SEED_ENTRIES)
        sql(url, SEED_BALANCES)
        # sql() autocommits, so VACUUM runs outside a transaction as it must.
        sql(url, "VACUUM ANALYZE entries")
        sql(url, "VACUUM ANALYZE balances")
        baseline, empty_rss = measured_empty.result()

    assert baseline.status == 0, baseline.stderr
    assert baseline.lines == [
        f"healthai: the books balance: 0 entries of 0 owners checked in"
        f" {baseline.summary('healthai').seconds:.1f} s"
    ]

    run, rss = verify_measured(url)
    assert run.status == 0, run.stdout[-2000:] + run.stderr
    [line] = run.lines
    assert line.startswith("healthai: the books balance: 1,000,000 entries of 10,000 owners"), line
    summary = run.summary("healthai")
    assert (summary.entries, summary.owners, summary.balanced) == (1_000_000, 10_000, True)
    figures(
        f"verify: {summary.entries:,} entries of {summary.owners:,} owners in"
        f" {summary.seconds:.1f} s (wall {run.wall:.1f} s), peak RSS {rss / 1024:.0f} MiB vs"
        f" {empty_rss / 1024:.0f} MiB on an empty ledger"
    )
    assert rss - empty_rss < RSS_MARGIN_KIB, (rss, empty_rss)

    # The same run fails on the same ledger with one owner a credit off.
    balance = balance_of(url, "owner-42")
    sql(url, "UPDATE balances SET balance = balance + 1 WHERE owner_id = 'owner-42'")
    broken = verify("healthai", env=healthai_env(url), timeout=120)
    assert broken.status == 2, broken.stderr
    assert broken.broken_owners("healthai") == [
        f"healthai: owner 'owner-42': balance {balance + 1} but its entries sum to {balance};"
        f" balance {balance + 1} but the newest entry's balanceAfter is {balance}"
    ]
    summary = broken.summary("healthai")
    assert (summary.broken, summary.entries, summary.owners) == (1, 1_000_000, 10_000)
    figures(
        f"verify with owner-42 a credit off: exit 2, that owner alone, in {summary.seconds:.1f} s"
    )


def test_each_broken_rule_is_found_and_named(new_database: Callable[..., str]) -> None:
    url = new_database("verify_tampered")
    history = ("CREDIT_ADD", "CREDIT_ADD", "CREDIT_SPEND")  # balance 19
    clean = ["c-daily", "c-plain", "c-refused"]
    assert write(url, "c-plain", *history, "CREDIT_SPEND") == ["created"] * 4
    assert write(
        url, "c-daily", "SIGNUP_CREDIT", "DAILY_REWARD", "CONTENT_ACCESS", "CONTENT_CREATION"
    ) == ["created", "created", "created", "insufficient_credits"]
    assert write(url, "c-refused", "CREDIT_SPEND", "CREDIT_ADD", "CONTENT_CREATION") == [
        "insufficient_credits",
        "created",
        "created",
    ]
    for owner in ("t-balance", "t-orphan", "t-run", "t-amount", "t-order", "t-updated"):
        assert write(url, owner, *history) == ["created"] * 3
    before = verify("healthai", env=healthai_env(url))
    assert before.status == 0, before.stdout + before.stderr
    assert before.summary("healthai").balanced

    expected: dict[str, list[str]] = {}

    # The stored balance moved without an entry.
    sql(url, "UPDATE balances SET balance = balance + 1 WHERE owner_id = 't-balance'")
    expected["t-balance"] = [
        "balance 20 but its entries sum to 19",
        "balance 20 but the newest entry's balanceAfter is 19",
    ]

    # A balance nothing wrote, and entries whose balance is gone.
    sql(url, "INSERT INTO balances VALUES ('t-ghost', 5, clock_timestamp())")
    expected["t-ghost"] = ["a balance of 5 but no entries"]
    sql(url, "DELETE FROM balances WHERE owner_id = 't-orphan'")
    expected["t-orphan"] = ["3 entries but no balance"]

    # An entry whose balanceAfter is not the running sum, followed by a correct write.
    run_id = forge(url, "t-run", "CREDIT_ADD", 10, skew=5)
    assert write(url, "t-run", "CREDIT_SPEND") == ["created"]
    expected["t-run"] = [
        "1 entry with a balanceAfter that is not the running sum"
        f" (the first: entry 4 of its history, id {run_id})"
    ]

    # An amount that is not its operation's: CREDIT_ADD of 7, balance moved to match.
    amount_id = forge(url, "t-amount", "CREDIT_ADD", 7)
    expected["t-amount"] = [wrong_amount(1, 4, amount_id)]

    # An entry dated between the first two (a writer with a slow clock): written last, its
    # id is the highest, so the id of the entry after it is lower than its own.
    first, second, _ = entry_ids(url, "t-order")
    sql(
        url,
        """
        INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on)
        SELECT 't-order', 'CONTENT_ACCESS', 0, 10, 'late-clock',
               a.created_on + (b.created_on - a.created_on) / 2
          FROM entries a, entries b
         WHERE a.owner_id = 't-order' AND a.id = :first
           AND b.owner_id = 't-order' AND b.id = :second
        """,
        first=first,
        second=second,
    )
    assert entry_ids(url, "t-order")[2] == second
    expected["t-order"] = [
        "1 entry with an id lower than the entry's before it"
        f" (the first: entry 3 of its history, id {second})"
    ]

    # lastUpdated is not the newest entry's createdOn.
    [row] = sql(
        url,
        "UPDATE balances SET last_updated = last_updated + interval '1 second'"
        " WHERE owner_id = 't-updated' RETURNING last_updated",
    )
    [newest] = sql(url, "SELECT max(created_on) AS at FROM entries WHERE owner_id = 't-updated'")
    expected["t-updated"] = [
        f"lastUpdated {row.last_updated.isoformat()} but the newest entry was created on"
        f" {newest.at.isoformat()}"
    ]

    # Negative balances, which the database's CHECK constraints otherwise refuse.
    sql(url, "ALTER TABLE entries DROP CONSTRAINT entries_are_well_formed")
    sql(url, "ALTER TABLE balances DROP CONSTRAINT balances_held_within_balance")
    sql(url, "INSERT INTO balances VALUES ('t-negative', 0, '2026-01-01')")
    negative_id = forge(url, "t-negative", "CREDIT_SPEND", -1)
    expected["t-negative"] = [
        "negative balance -1",
        "1 entry with a negative balanceAfter"
        f" (the first: entry 1 of its history, id {negative_id})",
    ]

    entries, owners = counts(url)
    run = verify("healthai", env=healthai_env(url))
    assert run.status == 2, run.stdout + run.stderr
    assert run.broken_owners("healthai") == [
        f"healthai: owner {owner!r}: " + "; ".join(problems)
        for owner, problems in sorted(expected.items())
    ]
    assert not any(f"'{owner}'" in run.stdout for owner in clean)
    summary = run.summary("healthai")
    assert (summary.broken, summary.entries, summary.owners) == (len(expected), entries, owners)
    assert run.lines[-1].startswith(f"healthai: {len(expected)} owners broken: "), run.lines
    assert len(run.lines) == len(expected) + 1


def test_amounts_are_checked_against_the_rule_in_force_when_written(
    new_database: Callable[..., str],
) -> None:
    url = new_database("verify_rules")
    for owner in ("early", "boundary", "before", "stale"):
        assert write(url, owner, "CREDIT_ADD", "CREDIT_ADD") == ["created"] * 2

    # CREDIT_ADD becomes 12 from now on.
    [rule] = sql(
        url,
        "INSERT INTO operation_rules VALUES ('CREDIT_ADD', 12, NULL, clock_timestamp())"
        " RETURNING valid_from",
    )
    changed: datetime.datetime = rule.valid_from
    assert write(url, "late", "CREDIT_ADD", "CREDIT_SPEND", "CREDIT_ADD") == ["created"] * 3
    assert write(url, "early", "CREDIT_ADD") == ["created"]
    rows = sql(url, "SELECT DISTINCT amount FROM entries WHERE operation = 'CREDIT_ADD'")
    assert {row.amount for row in rows} == {10, 12}
    rows = sql(url, "SELECT amount FROM entries WHERE owner_id = 'early' ORDER BY created_on, id")
    assert [row.amount for row in rows] == [10, 10, 12]

    run = verify("healthai", env=healthai_env(url))
    assert run.status == 0, run.stdout + run.stderr
    assert run.lines == [
        f"healthai: the books balance: 12 entries of 5 owners checked in"
        f" {run.summary('healthai').seconds:.1f} s"
    ]

    # 12 from the instant of the change on is right; 12 a microsecond before it is not, nor
    # is the old 10 after it.
    forge(url, "boundary", "CREDIT_ADD", 12, created_on=changed)
    before_id = forge(
        url, "before", "CREDIT_ADD", 12, created_on=changed - datetime.timedelta(microseconds=1)
    )
    stale_id = forge(url, "stale", "CREDIT_ADD", 10)
    run = verify("healthai", env=healthai_env(url))
    assert run.status == 2, run.stdout + run.stderr
    assert run.broken_owners("healthai") == [
        f"healthai: owner 'before': {wrong_amount(1, 3, before_id)}",
        f"healthai: owner 'stale': {wrong_amount(1, 3, stale_id)}",
    ]
    summary = run.summary("healthai")
    assert (summary.broken, summary.entries, summary.owners) == (2, 15, 5)


def test_a_rule_change_waits_for_the_writes_in_flight(new_database: Callable[..., str]) -> None:
    """A write waiting for its owner's lock when a rule change arrives: the change waits
    for it (create_entry() holds the rules' lock shared), so the entry, written with the
    old amount, is dated before the new rule takes effect, and the books balance."""
    url = new_database("verify_rule_race")
    assert write(url, "waiting", "CREDIT_ADD") == ["created"]
    target = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def scenario() -> tuple[int, datetime.datetime, datetime.datetime]:
        holder, writer, registrar = [await asyncpg.connect(target) for _ in range(3)]
        try:
            hold = holder.transaction()
            await hold.start()
            await holder.execute("SELECT 1 FROM balances WHERE owner_id = 'waiting' FOR UPDATE")
            written = asyncio.create_task(
                writer.fetchrow("SELECT * FROM create_entry('waiting', 'CREDIT_ADD', 'second')")
            )
            await until_waiting(holder, "Lock")

            registered = asyncio.create_task(
                registrar.execute(
                    "SELECT record_operation_rules($1, $2, $3, $4)",
                    ["CREDIT_ADD"],
                    [12],
                    [None],
                    [None],
                )
            )
            await until_waiting(holder, "Lock", count=2)  # the change waits for the write
            await hold.commit()
            entry = await written
            await registered
            valid_from = await holder.fetchval(
                "SELECT max(valid_from) FROM operation_rules WHERE operation = 'CREDIT_ADD'"
            )
            return entry["entry_amount"], entry["entry_created_on"], valid_from
        finally:
            for connection in (holder, writer, registrar):
                await connection.close()

    amount, created_on, valid_from = asyncio.run(scenario())
    assert amount == 10
    assert created_on < valid_from
    assert write(url, "waiting", "CREDIT_ADD") == ["created"]  # now with 12
    run = verify("healthai", env=healthai_env(url))
    assert run.status == 0, run.stdout + run.stderr
    rows = sql(url, "SELECT amount FROM entries WHERE owner_id = 'waiting' ORDER BY id")
    assert [row.amount for row in rows] == [10, 10, 12]


async def until_waiting(connection: asyncpg.Connection, event: str, count: int = 1) -> None:
    """Waits until `count` other backends of the database wait on a lock."""
    for _ in range(1000):
        waiting = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = $1 AND pid <> pg_backend_pid()",
            event,
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {count} backends waited on a lock")


def test_it_cannot_check_a_database_that_is_not_migrated(
    new_database: Callable[..., str], postgres_url: str
) -> None:
    url = new_database("verify_unmigrated", migrated=False)
    run = verify("healthai", env=healthai_env(url))
    assert run.status == 1, run.stdout + run.stderr
    assert run.stdout == ""
    assert run.stderr == (
        f"graphql-ledger: {display_url(url)} is at revision None, not {head_revision()}:"
        " run `graphql-ledger migrate` first\n"
    )
    # Nothing written: still no table at all.
    assert sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []

    # Nothing listens on a free port.
    nowhere = (
        make_url(postgres_url)
        .set(host="127.0.0.1", port=free_port(), database="ledger")
        .render_as_string(hide_password=False)
    )
    run = verify("healthai", env=healthai_env(nowhere))
    assert run.status == 1, run.stdout + run.stderr
    assert run.stdout == ""
    assert run.stderr.startswith(
        f"graphql-ledger: cannot reach the database at {display_url(nowhere)}: "
    ), run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1, run.stderr


def test_every_configured_app_is_checked(new_database: Callable[..., str]) -> None:
    healthai = new_database("verify_healthai")
    travelai = new_database("verify_travelai", operations=TravelAIOperation)
    assert write(healthai, "h-1", "CREDIT_ADD", "CONTENT_CREATION") == ["created"] * 2
    assert write(travelai, "t-1", "BOOKING_REWARD", "LOYALTY_BONUS") == ["created"] * 2
    assert write(travelai, "t-2", "CREDIT_ADD") == ["created"]
    env = clean_environment(HEALTHAI_DATABASE_URL=healthai, TRAVELAI_DATABASE_URL=travelai)

    run = verify(env=env)
    assert run.status == 0, run.stdout + run.stderr
    assert [(s.app, s.balanced, s.entries, s.owners) for s in run.summaries()] == [
        ("healthai", True, 2, 1),
        ("travelai", True, 3, 2),
    ]
    assert len(run.lines) == 2, run.lines

    # One app broken: the status says so, and the other is still checked and reported.
    sql(travelai, "UPDATE balances SET balance = balance - 1 WHERE owner_id = 't-2'")
    run = verify(env=env)
    assert run.status == 2, run.stdout + run.stderr
    assert run.broken_owners("healthai") == []
    assert run.broken_owners("travelai") == [
        "travelai: owner 't-2': balance 9 but its entries sum to 10;"
        " balance 9 but the newest entry's balanceAfter is 10"
    ]
    assert [(s.app, s.balanced, s.broken) for s in run.summaries()] == [
        ("healthai", True, 0),
        ("travelai", False, 1),
    ]

    # Naming an app checks that app alone.
    run = verify("healthai", env=env)
    assert run.status == 0, run.stdout + run.stderr
    assert [s.app for s in run.summaries()] == ["healthai"]
