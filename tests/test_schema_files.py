"""The schema is a published artifact: schema/<app>.graphql is exactly what
`graphql-ledger export-schema <app>` prints, and a change that breaks the clients of the
committed schema (a removed or retyped field, argument, enum value, union member or type) fails
unless schema/deliberate-breaking-changes.txt lists it."""

import contextlib
import difflib
import io
import os
import shutil
import subprocess

import pytest
from graphql import build_schema as parse_sdl
from graphql import find_breaking_changes

from graphql_ledger import build_schema
from graphql_ledger.cli import main
from graphql_ledger.registry import registered_apps
from healthai.operations import HealthAIOperation
from tests.support import ROOT

SCHEMA_DIR = ROOT / "schema"
DELIBERATE = SCHEMA_DIR / "deliberate-breaking-changes.txt"
APPS = list(registered_apps())


def exported_schema(app: str) -> str:
    """What `graphql-ledger export-schema APP > schema/APP.graphql` writes."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["export-schema", app]) == 0
    return out.getvalue()


def export_command(app: str) -> str:
    return f".venv/bin/graphql-ledger export-schema {app} > schema/{app}.graphql"


def deliberate_changes(text: str) -> set[str]:
    """The change descriptions a deliberate-changes file lists (no comments, no blanks)."""
    lines = (line.strip() for line in text.splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def unlisted_breaking_changes(old_sdl: str, new_sdl: str, deliberate: set[str]) -> list[str]:
    """graphql-core's description of each change from old_sdl to new_sdl that breaks a
    client of old_sdl, but those listed as deliberate."""
    changes = find_breaking_changes(parse_sdl(old_sdl), parse_sdl(new_sdl))
    return [change.description for change in changes if change.description not in deliberate]


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )


def committed_schema(app: str) -> tuple[str, str]:
    """(git ref, schema/APP.graphql at that ref): HEAD, or TEST_SCHEMA_BASELINE when set
    (e.g. the last release tag). Skips where there is nothing committed to compare with."""
    ref = os.environ.get("TEST_SCHEMA_BASELINE") or "HEAD"
    if shutil.which("git") is None:
        pytest.skip("git is not installed: no committed schema to compare the code's with")
    inside = git("rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        pytest.skip(f"{ROOT} is not a git checkout (e.g. a source tarball): no committed schema")
    if git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode != 0:
        if ref == "HEAD":
            pytest.skip("the repository has no commit yet: no committed schema")
        pytest.fail(f"TEST_SCHEMA_BASELINE={ref} names no commit of this repository")
    path = f"schema/{app}.graphql"
    shown = git("show", f"{ref}:{path}")
    if shown.returncode != 0:
        pytest.skip(f"{path} is not committed at {ref}: the commit that adds it publishes it")
    return ref, shown.stdout


@pytest.mark.parametrize("app", APPS)
def test_each_committed_schema_file_is_exactly_what_export_schema_prints(app: str) -> None:
    path = SCHEMA_DIR / f"{app}.graphql"
    expected = exported_schema(app)
    committed = path.read_text() if path.exists() else ""
    if committed != expected:
        diff = difflib.unified_diff(
            committed.splitlines(),
            expected.splitlines(),
            f"schema/{app}.graphql (committed)",
            f"export-schema {app} (the code)",
            lineterm="",
        )
        shown = "\n".join(list(diff)[:60])
        pytest.fail(
            f"schema/{app}.graphql differs from the code's schema. Regenerate it with\n\n"
            f"    {export_command(app)}\n\n"
            "then review the diff (test_no_unlisted_breaking_change_since_the_committed_schema "
            f"says whether it breaks clients) and commit it.\n\n{shown}",
            pytrace=False,
        )


def test_every_schema_file_belongs_to_a_registered_app() -> None:
    files = {path.stem for path in SCHEMA_DIR.glob("*.graphql")}
    assert files == set(APPS), (
        f"schema/ has files for {sorted(files)}; the registered apps are {APPS}: "
        "export the missing ones, delete those of apps no longer registered"
    )


@pytest.mark.parametrize("app", APPS)
def test_no_unlisted_breaking_change_since_the_committed_schema(app: str) -> None:
    ref, committed = committed_schema(app)
    unlisted = unlisted_breaking_changes(
        committed, exported_schema(app), deliberate_changes(DELIBERATE.read_text())
    )
    if unlisted:
        listing = "\n".join(f"    {description}" for description in unlisted)
        pytest.fail(
            f"{app}: the code's schema breaks clients of schema/{app}.graphql at {ref}:\n\n"
            f"{listing}\n\nIf that is deliberate, add those lines to "
            "schema/deliberate-breaking-changes.txt (its header says how); otherwise bring "
            "back what the change removed or retyped.",
            pytrace=False,
        )


# The detection itself, on the healthai schema and changes of each kind.

SDL = build_schema(HealthAIOperation).as_str()


def changed(sdl: str, old: str, new: str) -> str:
    assert sdl.count(old) == 1, f"{old!r} is not in the schema exactly once"
    return sdl.replace(old, new)


BREAKING = {
    "a removed field": (
        changed(SDL, '\n\n  """Credits the operation takes."""\n  required: Int!', ""),
        "Field InsufficientCredits.required was removed.",
    ),
    "a retyped field": (
        changed(SDL, "  balanceAfter: Int!", "  balanceAfter: String!"),
        "Field LedgerEntry.balanceAfter changed type from Int! to String!.",
    ),
    "a removed argument": (
        changed(SDL, "balance(ownerId: ID!, at: DateTime)", "balance(ownerId: ID!)"),
        "Argument Query.balance(at:) was removed.",
    ),
    "a retyped argument": (
        changed(SDL, "balance(ownerId: ID!, at: DateTime)", "balance(ownerId: ID!, at: String)"),
        "Argument Query.balance(at:) has changed type from DateTime to String.",
    ),
    "a removed enum value": (
        changed(SDL, "  CONTENT_ACCESS\n", ""),
        "Enum value HealthAIOperation.CONTENT_ACCESS was removed.",
    ),
    "a removed union member": (
        changed(
            SDL,
            "OperationNotAllowed | LimitReached | HoldNonceConflict",
            "OperationNotAllowed | HoldNonceConflict",
        ),
        "LimitReached was removed from union type CreateEntryResult.",
    ),
}


@pytest.mark.parametrize("kind", BREAKING)
def test_a_breaking_change_fails_unless_listed_as_deliberate(kind: str) -> None:
    new_sdl, description = BREAKING[kind]

    assert unlisted_breaking_changes(SDL, new_sdl, set()) == [description]
    assert unlisted_breaking_changes(SDL, new_sdl, {description}) == []
    assert unlisted_breaking_changes(SDL, new_sdl, {"Field Balance.balance was removed."}) == [
        description
    ]


def test_adding_a_field_an_argument_or_an_enum_value_is_not_breaking() -> None:
    grown = changed(SDL, "  required: Int!\n", "  required: Int!\n  shortfall: Int\n")
    grown = changed(grown, "  CONTENT_ACCESS\n", "  CONTENT_ACCESS\n  CONTENT_SHARING\n")
    grown = changed(grown, "balances(ownerIds: [ID!]!)", "balances(ownerIds: [ID!]!, at: DateTime)")

    assert unlisted_breaking_changes(SDL, grown, set()) == []


def test_the_deliberate_changes_file_ignores_comments_and_blank_lines() -> None:
    listed = "# header\n\n  Field Balance.balance was removed.  \n# Field Owner.id was removed.\n"

    assert deliberate_changes(listed) == {"Field Balance.balance was removed."}
    assert DELIBERATE.read_text().startswith("# Breaking schema changes made on purpose.")
