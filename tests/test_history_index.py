"""History and as-of reads are index scans on a table of 120,000 entries, and a deep page
costs what the first page costs: measured in buffers and rows, never in seconds."""

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from graphql_ledger.history import HistoryQuery, Position
from graphql_ledger.storage.repository import (
    BALANCES,
    BALANCES_AT,
    ENTRY_PAGES,
    entry_page_parameters,
)
from tests.support import sql

BIG = "big-owner"
ENTRIES_OF_BIG = 100_000
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def big_ledger(new_database: Callable[..., str]) -> str:
    """100,000 entries of one owner (one a second from START) among 20,000 of 1,000
    others, analysed as a production table would be."""
    url = new_database("history_index")
    sql(
        url,
        """
        INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on)
        SELECT :big, 'CREDIT_ADD', 10, 10 * g, 'n' || g,
               CAST(:start AS timestamptz) + g * interval '1 second'
          FROM generate_series(1, :count) g
        """,
        big=BIG,
        start=START,
        count=ENTRIES_OF_BIG,
    )
    sql(
        url,
        """
        INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on)
        SELECT 'owner-' || (g % 1000), 'DAILY_REWARD', 1, g / 1000 + 1, 'n' || g,
               CAST(:start AS timestamptz) + g * interval '1 second'
          FROM generate_series(0, 19999) g
        """,
        start=START,
    )
    sql(
        url,
        "INSERT INTO balances"
        " SELECT owner_id, sum(amount), max(created_on) FROM entries GROUP BY owner_id",
    )
    sql(url, "ANALYZE entries")
    sql(url, "ANALYZE balances")
    return url


def explain(url: str, statement: str, parameters: list[Any]) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of the repository's own statement, as it runs it."""

    async def run() -> dict[str, Any]:
        connection = await asyncpg.connect(make_url(url).render_as_string(hide_password=False))
        try:
            plan = await connection.fetchval(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, *parameters
            )
        finally:
            await connection.close()
        result: dict[str, Any] = json.loads(plan)[0]["Plan"]
        return result

    return asyncio.run(run())


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in nodes(child))]


def scans_of(plan: dict[str, Any], table: str) -> list[dict[str, Any]]:
    return [node for node in nodes(plan) if node.get("Relation Name") == table]


def page_parameters(query: HistoryQuery) -> list[Any]:
    """The parameters LedgerRepository.entry_pages binds for `query`."""
    return entry_page_parameters([query])


def buffers(plan: dict[str, Any]) -> int:
    return int(plan["Shared Hit Blocks"] + plan["Shared Read Blocks"])


# A page may straddle one more index leaf and a heap page or two than another; a scan that
# walked the skipped entries would read a hundred pages more.
SAME_COST = 5


def assert_ordered_by_the_index(plan: dict[str, Any]) -> None:
    """The LIMIT takes its rows straight from the index, in order: nothing sorts them."""
    [limit] = [node for node in nodes(plan) if node["Node Type"] == "Limit"]
    [child] = limit["Plans"]
    assert child["Node Type"] == "Index Scan", child["Node Type"]
    assert child["Index Name"] == "entries_pkey"
    assert not [n for n in nodes(plan) if n["Node Type"] == "Seq Scan"]


def id_at_depth(url: str, depth: int) -> Position:
    [row] = sql(
        url,
        "SELECT created_on, id FROM entries WHERE owner_id = :big"
        " ORDER BY created_on DESC, id DESC OFFSET :depth LIMIT 1",
        big=BIG,
        depth=depth,
    )
    return Position(row.created_on, row.id)


def test_a_history_page_is_one_index_scan(big_ledger: str) -> None:
    plan = explain(big_ledger, ENTRY_PAGES, page_parameters(HistoryQuery(BIG, first=20)))
    [scan] = scans_of(plan, "entries")
    assert_ordered_by_the_index(plan)
    assert scan["Scan Direction"] == "Backward"
    assert scan["Actual Rows"] == 21  # the page and one more, to know a next page exists


def test_page_1000_costs_what_page_1_costs(big_ledger: str) -> None:
    first_page = explain(big_ledger, ENTRY_PAGES, page_parameters(HistoryQuery(BIG)))
    deep = HistoryQuery(BIG, after=id_at_depth(big_ledger, 999 * 20 - 1))
    deep_page = explain(big_ledger, ENTRY_PAGES, page_parameters(deep))

    [first_scan], [deep_scan] = scans_of(first_page, "entries"), scans_of(deep_page, "entries")
    assert first_scan["Actual Rows"] == deep_scan["Actual Rows"] == 21
    assert_ordered_by_the_index(deep_page)
    assert buffers(deep_scan) <= buffers(first_scan) + SAME_COST, (
        buffers(first_scan),
        buffers(deep_scan),
    )


def test_a_time_window_deep_in_the_past_seeks_straight_to_it(big_ledger: str) -> None:
    window = HistoryQuery(
        BIG,
        since=START + timedelta(seconds=1_000),
        until=START + timedelta(seconds=1_050),
    )
    plan = explain(big_ledger, ENTRY_PAGES, page_parameters(window))
    [scan] = scans_of(plan, "entries")
    assert_ordered_by_the_index(plan)
    assert scan["Actual Rows"] == 21
    [first_scan] = scans_of(
        explain(big_ledger, ENTRY_PAGES, page_parameters(HistoryQuery(BIG))), "entries"
    )
    assert buffers(scan) <= buffers(first_scan) + SAME_COST


def test_a_balance_as_of_an_instant_is_one_index_lookup(big_ledger: str) -> None:
    at = START + timedelta(seconds=50_000, milliseconds=500)
    plan = explain(big_ledger, BALANCES_AT, [[BIG], [at]])
    [scan] = scans_of(plan, "entries")
    assert scan["Node Type"] == "Index Scan" and scan["Index Name"] == "entries_pkey"
    assert scan["Actual Rows"] == 1
    [row] = sql(
        big_ledger,
        "SELECT balance_after FROM entries WHERE owner_id = :big AND created_on <= :at"
        " ORDER BY created_on DESC LIMIT 1",
        big=BIG,
        at=at,
    )
    assert row.balance_after == 500_000


def test_current_balances_are_an_index_lookup(big_ledger: str) -> None:
    plan = explain(big_ledger, BALANCES, [[BIG, "owner-7"]])
    [scan] = scans_of(plan, "balances")
    assert scan["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan")
