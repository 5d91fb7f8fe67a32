"""The README's examples work as printed: each GraphQL and curl example runs, in order, on
a fresh database and answers what the README shows; the third-app recipe builds an app."""

import asyncio
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from graphql_ledger import Settings, create_app
from graphql_ledger.storage import migrate
from healthai.operations import HealthAIOperation
from tests.support import (
    ROOT,
    TEST_SECRET,
    GraphQLClient,
    ServerProcess,
    clean_environment,
    service_headers,
    user_headers,
)

BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
README_URL = "http://127.0.0.1:8000/graphql"


def readme_blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer((ROOT / "README.md").read_text())]


def examples() -> list[tuple[str, str, Any]]:
    """(language, code, expected answer) for each example followed by its answer."""
    blocks = readme_blocks()
    return [
        (language, code, json.loads(blocks[n + 1][1]))
        for n, (language, code) in enumerate(blocks[:-1])
        if language in ("graphql", "sh") and blocks[n + 1][0] == "json"
    ]


CURSORS = ("cursor", "startCursor", "endCursor")


def without_times(value: Any) -> Any:
    """The value with each ISO timestamp and cursor replaced by a marker (they differ from
    run to run), checking timestamps are UTC."""
    if isinstance(value, dict):
        return {
            key: "<cursor>" if key in CURSORS and item else without_times(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [without_times(item) for item in value]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT.*", value):
        assert datetime.fromisoformat(value).utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        return "<time>"
    return value


@pytest.fixture(scope="module")
def readme_database(new_database: Callable[..., str]) -> str:
    return new_database("readme")


@pytest.fixture(scope="module")
def readme_server(readme_database: str) -> Iterator[ServerProcess]:
    env = clean_environment(HEALTHAI_DATABASE_URL=readme_database)
    with ServerProcess.uvicorn("healthai", env) as server:
        yield server


def test_the_readme_has_the_examples_it_promises() -> None:
    languages = [language for language, _, _ in examples()]
    assert languages.count("graphql") >= 5 and languages.count("sh") >= 1
    codes = " ".join(code for _, code, _ in examples())
    assert "createEntry" in codes and "balance(ownerId" in codes and "balances(" in codes


def test_every_example_answers_what_the_readme_shows(
    readme_database: str, readme_server: ServerProcess
) -> None:
    settings = Settings(app_database_urls={"healthai": readme_database}, jwt_secret=TEST_SECRET)
    app = create_app("healthai", HealthAIOperation, settings)
    # What a developer pastes into GraphiQL's headers editor.
    with TestClient(app, headers=service_headers("healthai")) as http:
        client = GraphQLClient(http)
        for language, code, expected in examples():
            if language == "graphql":
                answer = client.execute(code)
                if code.lstrip().startswith("mutation"):
                    assert client.execute(code) == answer, "a replay answers the same"
            else:
                if shutil.which("curl") is None:
                    if "mutation" in code:  # the examples after it build on what it wrote
                        pytest.skip("curl is not installed: the README's curl writes need it")
                    continue  # a read: the examples after it do not need it
                command = code.replace(README_URL, f"{readme_server.url()}/graphql")
                run = subprocess.run(
                    ["bash", "-c", command],
                    cwd=ROOT,
                    env=clean_environment(),  # the token command signs with TEST_SECRET
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                assert run.returncode == 0, run.stderr
                answer = json.loads(run.stdout)
            assert without_times(answer) == without_times(expected), code


def test_the_add_an_app_walkthrough_builds_a_working_app(
    tmp_path: Path, new_database: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/adding-an-app.md, followed literally: each python block goes to the file its
    preceding line names, and the app it wires serves its own operations."""
    walkthrough = (ROOT / "docs" / "adding-an-app.md").read_text()
    files = re.findall(r"^`([\w/]+\.py)`:\n\n```python\n(.*?)^```$", walkthrough, re.M | re.S)
    assert [name for name, _ in files] == ["zooai/operations.py", "zooai/app.py"]
    for name, code in files:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(code)
    (tmp_path / "zooai" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    database = new_database("zooai", migrated=False)
    monkeypatch.setenv("ZOOAI_DATABASE_URL", database)
    monkeypatch.setenv("LEDGER_JWT_SECRET", TEST_SECRET)

    from zooai.app import app  # type: ignore[import-not-found]
    from zooai.operations import ZooAIOperation  # type: ignore[import-not-found]

    asyncio.run(migrate(database, ZooAIOperation))  # what `graphql-ledger migrate zooai` does

    try:
        with TestClient(app, headers=service_headers("zooai")) as http:
            client = GraphQLClient(http)
            assert client.data("{ operations { operation amount } }")["operations"][-2:] == [
                {"operation": "FEEDING", "amount": -2},
                {"operation": "KEEPER_BONUS", "amount": 4},
            ]
            assert client.create_entry("keeper", "FEEDING", "f1")["__typename"] == (
                "InsufficientCredits"
            )
            assert client.create_entry("keeper", "KEEPER_BONUS", "b1")["balanceAfter"] == 4
            assert client.create_entry("keeper", "KEEPER_BONUS", "b2")["code"] == "LIMIT_REACHED"
            assert client.create_entry("keeper", "FEEDING", "f1")["balanceAfter"] == 2
            user = GraphQLClient(http)
            http.headers.update(user_headers("zooai", "keeper"))
            assert user.create_entry("keeper", "KEEPER_BONUS", "b3")["code"] == (
                "OPERATION_NOT_ALLOWED"
            )
    finally:
        for module in ("zooai.app", "zooai.operations", "zooai"):
            sys.modules.pop(module, None)
