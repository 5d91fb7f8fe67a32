"""Only `graphql-ledger migrate` records operation rules: `serve` on a configured database
migrates nothing and records nothing, so an older release restarted with `serve` cannot put
its old amounts back; where the rules differ, /readyz says so."""

from collections.abc import Callable
from typing import Any

import httpx2 as httpx

from tests.support import (
    CLI,
    GraphQLClient,
    ServerProcess,
    clean_environment,
    free_port,
    service_headers,
    sql,
    with_user,
)

RULES = "SELECT operation, amount, limit_kind, valid_from FROM operation_rules ORDER BY 1, 4"


def rules_of(url: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in sql(url, RULES)]


def serve_healthai(url: str) -> ServerProcess:
    port = free_port()
    env = clean_environment(HEALTHAI_DATABASE_URL=url)
    return ServerProcess([str(CLI), "serve", "healthai", "--port", str(port)], env, [port])


def test_serve_leaves_rules_that_differ_from_the_codes_unchanged_and_is_not_ready(
    new_database: Callable[..., str], owner: str
) -> None:
    """The database says CREDIT_ADD is worth 12 (a newer release's `migrate`, say); this
    code says 10. `serve`, even with the owner's rights, keeps the database's rule, writes
    with it, and answers /readyz 503 naming the difference."""
    url = new_database("serve_rules")
    sql(url, "UPDATE operation_rules SET amount = 12 WHERE operation = 'CREDIT_ADD'")
    before = rules_of(url)

    with (
        serve_healthai(url) as server,
        httpx.Client(base_url=server.url(), headers=service_headers("healthai")) as http,
    ):
        ready = http.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.json() == {
            "status": "unavailable",
            "reason": "the database's operation rules are not this app's"
            " (run graphql-ledger migrate): CREDIT_ADD: +10 credits here,"
            " +12 credits in the database",
        }
        entry = GraphQLClient(http).create_entry(owner, "CREDIT_ADD", "n1")
        assert (entry["amount"], entry["balanceAfter"]) == (12, 12)

    assert rules_of(url) == before


def test_serve_runs_as_the_serving_role_without_migrating(
    new_database: Callable[..., str], owner: str
) -> None:
    """`serve` with a login that may only read and call the ledger's functions: it needs no
    right to migrate, is ready, and writes."""
    url = new_database("serve_serving")
    before = rules_of(url)

    with (
        serve_healthai(with_user(url, "ledger_app")) as server,
        httpx.Client(base_url=server.url(), headers=service_headers("healthai")) as http,
    ):
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        entry = GraphQLClient(http).create_entry(owner, "CREDIT_ADD", "n1")
        assert (entry["amount"], entry["balanceAfter"]) == (10, 10)
        assert "is at revision" not in server.output()  # what a migration logs

    assert rules_of(url) == before
    assert sql(url, "SELECT balance FROM balances WHERE owner_id = :o", o=owner) == [(10,)]
