"""Module hygiene: the pure domain an app imports loads no web, GraphQL or database library,
and the package's public names are exactly those meant."""

import subprocess
import sys

import graphql_ledger

HEAVY = ("starlette", "sqlalchemy", "strawberry", "asyncpg", "uvicorn", "graphql")


def loaded_after(statement: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after running `statement`."""
    done = subprocess.run(
        [sys.executable, "-c", f"{statement}; import sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {name.partition(".")[0] for name in done.stdout.split()}


def test_importing_an_apps_operations_loads_no_web_or_database_library() -> None:
    for statement in ("import graphql_ledger.operations", "import healthai.operations"):
        assert loaded_after(statement).isdisjoint(HEAVY), statement


def test_the_package_exports_what_an_app_needs() -> None:
    assert sorted(graphql_ledger.__all__) == [
        "LedgerOperation",
        "Limit",
        "SHARED_AMOUNTS",
        "Settings",
        "build_schema",
        "create_app",
        "credits",
        "shared",
    ]
    for name in graphql_ledger.__all__:
        assert getattr(graphql_ledger, name) is not None
    assert "starlette" in loaded_after("from graphql_ledger import create_app")
