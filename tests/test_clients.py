"""Real GraphQL clients, none written by hand, against real server processes.

- The `gql` client fetches the live schema by introspection, validates every GraphQL code
  block of README.md and docs/*.md against it, and runs each query and mutation in file
  order on a fresh database, with a service token. A block is for healthai unless it names
  a travelai-only operation. Subscriptions are validated, not run. A block whose answer
  shown right after it (a ```json block) carries errors must fail the same way (with
  UNAUTHENTICATED or FORBIDDEN, which depend on the token, it is validated, not run); a
  ```json block after it that is not an answer is its variables. A block of type
  definitions (SDL) must agree with the live schema.
- ariadne-codegen (run from a virtualenv of its own under .cache/, pinned by
  tests/tools/ariadne-codegen.txt) generates a typed Python client from
  schema/healthai.graphql and tests/clients/healthai_operations.graphql, which credits,
  spends and reads balances against the server.
- @graphql-codegen/cli (pinned by tests/clients/typescript/package-lock.json) generates
  TypeScript types from the same files; tsc type-checks them with a frontend's use of them.
"""

import contextlib
import fcntl
import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.client import SyncClientSession
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXTransport
from graphql import (
    DirectiveDefinitionNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumTypeExtensionNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    InputObjectTypeDefinitionNode,
    InputObjectTypeExtensionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    OperationDefinitionNode,
    OperationType,
    ScalarTypeDefinitionNode,
    ScalarTypeExtensionNode,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    TypeSystemDefinitionNode,
    TypeSystemExtensionNode,
    UnionTypeDefinitionNode,
    UnionTypeExtensionNode,
    parse,
    print_ast,
    validate,
)
from graphql import build_schema as parse_sdl

from healthai.operations import HealthAIOperation
from tests.support import ROOT, ServerProcess, clean_environment, service_headers
from travelai.operations import TravelAIOperation

CACHE = ROOT / ".cache"
SCHEMA = ROOT / "schema" / "healthai.graphql"
OPERATIONS = ROOT / "tests" / "clients" / "healthai_operations.graphql"
ARIADNE_REQUIREMENTS = ROOT / "tests" / "tools" / "ariadne-codegen.txt"
TYPESCRIPT = ROOT / "tests" / "clients" / "typescript"

# First runs install the code generators (pip, npm); later runs find them cached.
INSTALL_TIMEOUT = 600
TOOL_TIMEOUT = 180


# --- Every GraphQL example of the documentation, through gql ------------------------------

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GRAPHQL_LANGUAGES = {"graphql", "gql"}
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<language>[\w+-]*)[^\n]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
# A block naming one of these is a travelai example; any other is healthai's.
TRAVELAI_ONLY = {op.name for op in TravelAIOperation} - {op.name for op in HealthAIOperation}
TRAVELAI_NAMES = TRAVELAI_ONLY | {TravelAIOperation.__name__}
# Errors that depend on who calls: a block does not say which token it is sent with, so
# an example showing one is validated but not run (the test calls as a backend service).
CALLER_DEPENDENT = {"UNAUTHENTICATED", "FORBIDDEN"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    code: str

    @property
    def where(self) -> str:
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{shown}:{self.line}"


@dataclass(frozen=True)
class Example:
    block: Block
    answer: dict[str, Any] | None  # the answer the document shows for it
    variables: dict[str, Any] | None

    @property
    def app(self) -> str:
        names = set(re.findall(r"[_A-Za-z]\w*", self.block.code))
        return "travelai" if names & TRAVELAI_NAMES else "healthai"

    @property
    def shows_errors(self) -> bool:
        return bool((self.answer or {}).get("errors"))

    @property
    def shown_error_codes(self) -> set[str]:
        return error_codes((self.answer or {}).get("errors") or [])


def error_codes(errors: list[Any]) -> set[str]:
    """The extensions.code of each GraphQL error that has one."""
    codes = ((error.get("extensions") or {}).get("code") for error in errors)
    return {str(code) for code in codes if code}


def code_blocks(path: Path) -> list[Block]:
    text = path.read_text()
    return [
        Block(
            path,
            text.count("\n", 0, match.start()) + 1,
            match.group("language").lower(),
            textwrap.dedent(match.group("code")),
        )
        for match in FENCE.finditer(text)
    ]


def graphql_examples(path: Path) -> list[Example]:
    """The GraphQL blocks of a document in order, each with the JSON block after it."""
    blocks = code_blocks(path)
    examples = []
    for n, block in enumerate(blocks):
        if block.language not in GRAPHQL_LANGUAGES:
            continue
        shown = None
        if n + 1 < len(blocks) and blocks[n + 1].language == "json":
            with contextlib.suppress(ValueError):
                shown = json.loads(blocks[n + 1].code)
        is_answer = isinstance(shown, dict) and ("data" in shown or "errors" in shown)
        examples.append(
            Example(
                block,
                shown if is_answer else None,
                shown if isinstance(shown, dict) and not is_answer else None,
            )
        )
    return examples


class LiveApps:
    """Per document: each app it needs served by uvicorn on a fresh database, and a gql
    client of it holding the schema it fetched from the server."""

    def __init__(self, stack: contextlib.ExitStack, new_database: Callable[..., str]) -> None:
        self.stack = stack
        self.new_database = new_database
        self.sessions: dict[str, tuple[Client, SyncClientSession]] = {}

    def __getitem__(self, app: str) -> tuple[Client, SyncClientSession]:
        if app not in self.sessions:
            operations = {"healthai": HealthAIOperation, "travelai": TravelAIOperation}[app]
            database = self.new_database(f"docs_{app}", operations=operations)
            env = clean_environment(**{f"{app.upper()}_DATABASE_URL": database})
            server = self.stack.enter_context(ServerProcess.uvicorn(app, env))
            transport = HTTPXTransport(
                url=f"{server.url()}/graphql", headers=service_headers(app), timeout=30
            )
            client = Client(transport=transport, fetch_schema_from_transport=True)
            session = self.stack.enter_context(client)
            assert client.schema is not None
            self.sessions[app] = (client, session)
        return self.sessions[app]


SDL_KINDS: dict[type, type] = {
    ObjectTypeDefinitionNode: GraphQLObjectType,
    ObjectTypeExtensionNode: GraphQLObjectType,
    InterfaceTypeDefinitionNode: GraphQLInterfaceType,
    InterfaceTypeExtensionNode: GraphQLInterfaceType,
    InputObjectTypeDefinitionNode: GraphQLInputObjectType,
    InputObjectTypeExtensionNode: GraphQLInputObjectType,
    EnumTypeDefinitionNode: GraphQLEnumType,
    EnumTypeExtensionNode: GraphQLEnumType,
    UnionTypeDefinitionNode: GraphQLUnionType,
    UnionTypeExtensionNode: GraphQLUnionType,
    ScalarTypeDefinitionNode: GraphQLScalarType,
    ScalarTypeExtensionNode: GraphQLScalarType,
}


def sdl_disagreements(document: DocumentNode, schema: GraphQLSchema) -> list[str]:
    """Where a block of type definitions (possibly an excerpt: fewer fields, arguments and
    enum values than the schema has) says something the live schema does not."""
    found = []
    for node in document.definitions:
        if isinstance(node, SchemaDefinitionNode | SchemaExtensionNode):
            continue
        if isinstance(node, DirectiveDefinitionNode):
            if schema.get_directive(node.name.value) is None:
                found.append(f"directive @{node.name.value} is not in the schema")
            continue
        name = node.name.value  # type: ignore[attr-defined]
        live = schema.get_type(name)
        kind = SDL_KINDS[type(node)]
        if not isinstance(live, kind):
            found.append(f"{name} is not a {kind.__name__} of the schema")
            continue
        for field in getattr(node, "fields", None) or ():
            live_field = live.fields.get(field.name.value)  # type: ignore[union-attr]
            shown = print_ast(field.type)
            if live_field is None:
                found.append(f"{name}.{field.name.value} is not in the schema")
            elif shown != str(live_field.type):
                found.append(f"{name}.{field.name.value} is {live_field.type}, not {shown}")
            for argument in getattr(field, "arguments", None) or ():
                live_argument = live_field.args.get(argument.name.value) if live_field else None
                where = f"{name}.{field.name.value}({argument.name.value}:)"
                if live_argument is None:
                    found.append(f"{where} is not in the schema")
                elif print_ast(argument.type) != str(live_argument.type):
                    found.append(f"{where} is {live_argument.type}")
        for value in getattr(node, "values", None) or ():
            if value.name.value not in live.values:  # type: ignore[union-attr]
                found.append(f"{value.name.value} is not a value of enum {name}")
        if isinstance(live, GraphQLUnionType):
            shown_members = {member.name.value for member in node.types or ()}  # type: ignore[attr-defined]
            live_members = {member.name for member in live.types}
            if shown_members != live_members:
                found.append(f"union {name} is {' | '.join(sorted(live_members))}")
    return found


def document_problems(path: Path, new_database: Callable[..., str]) -> list[str]:
    """What is wrong with each GraphQL example of a document, run in order on fresh
    databases: "file:line (app) what", then the example."""
    failures = []
    with contextlib.ExitStack() as stack:
        live = LiveApps(stack, new_database)
        for example in graphql_examples(path):
            for problem in problems_of(example, live):
                code = textwrap.indent(example.block.code.rstrip(), "    ")
                failures.append(f"{example.block.where} ({example.app}) {problem}\n{code}")
    return failures


def problems_of(example: Example, live: LiveApps) -> list[str]:
    """What is wrong with one example; runs it (on the document's databases) if it may."""
    codes = example.shown_error_codes
    try:
        document = parse(example.block.code)
    except GraphQLError as error:
        if "GRAPHQL_PARSE_FAILED" in codes:
            return []
        return [f"is not a GraphQL document: {error.message}"]
    client, session = live[example.app]
    assert client.schema is not None
    definitions = document.definitions
    if all(isinstance(d, TypeSystemDefinitionNode | TypeSystemExtensionNode) for d in definitions):
        return sdl_disagreements(document, client.schema)
    errors = validate(client.schema, document)
    if "GRAPHQL_VALIDATION_FAILED" in codes:
        return [] if errors else ["is valid, but the answer shown is a validation error"]
    if errors:
        return [f"is invalid against the live {example.app} schema: {e.message}" for e in errors]
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    if not operations or codes & CALLER_DEPENDENT:
        return []
    found = []
    for operation in operations:
        if operation.operation == OperationType.SUBSCRIPTION:
            continue  # validated above; a subscription needs a WebSocket (test_subscriptions)
        request = GraphQLRequest(
            document,
            variable_values=example.variables,
            operation_name=operation.name.value if operation.name else None,
        )
        try:
            session.execute(request)
        except TransportQueryError as error:
            got = error_codes(error.errors or [])
            if not example.shows_errors:
                found.append(f"answered errors: {error.errors}")
            elif codes and got != codes:
                found.append(f"answered {sorted(got)}, not the errors shown {sorted(codes)}")
            continue
        if example.shows_errors:
            found.append("answered without the errors the document shows")
    return found


def test_the_documentation_has_graphql_examples_for_the_gql_client() -> None:
    examples = [example for path in DOCUMENTS for example in graphql_examples(path)]
    assert len(examples) >= 5, [str(path) for path in DOCUMENTS]
    assert examples[0].block.path == ROOT / "README.md"
    assert {example.app for example in examples} >= {"healthai"}


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_graphql_example_in_the_docs_is_valid_against_the_live_schema_and_runs(
    path: Path, new_database: Callable[..., str]
) -> None:
    if not graphql_examples(path):
        pytest.skip(f"{path.relative_to(ROOT)} has no GraphQL code block")
    failures = document_problems(path, new_database)
    assert not failures, "\n\n".join(failures)


BROKEN_DOCUMENT = """
Fine, and run:

```graphql
mutation { createEntry(input: {ownerId: "ann", operation: CREDIT_ADD, nonce: "n1"}) {
  __typename } }
```

A misspelt field:

```graphql
{ balance(ownerId: "ann") { total } }
```

An error the document shows, and the server gives:

```graphql
{ entries(ownerId: "ann", first: 500) { edges { cursor } } }
```

```json
{"errors": [{"message": "...", "extensions": {"code": "BAD_USER_INPUT"}}], "data": null}
```

The same without the error shown:

```graphql
{ entries(ownerId: "ann", first: 500) { edges { cursor } } }
```

An error shown that the server does not give:

```graphql
{ balance(ownerId: "ann") { balance } }
```

```json
{"errors": [{"message": "...", "extensions": {"code": "BAD_USER_INPUT"}}]}
```

Variables, then a subscription (not run), then travelai's operation:

```graphql
query Balance($ownerId: ID!) { balance(ownerId: $ownerId) { balance } }
```

```json
{"ownerId": "ann"}
```

```graphql
subscription { balanceChanged(ownerId: "ann") { balance } }
```

  ```graphql
  mutation { createEntry(input: {ownerId: "ann", operation: LOYALTY_BONUS, nonce: "n1"}) {
    __typename ... on LedgerEntry { balanceAfter } } }
  ```

Not a document, and an SDL excerpt that is wrong:

```graphql
balance(ownerId: "ann") { balance }
```

```graphql
type LedgerEntry { amount: Float! }
```
"""


@pytest.mark.slow
def test_a_broken_example_is_reported_with_its_file_line_and_what_is_wrong(
    tmp_path: Path, new_database: Callable[..., str]
) -> None:
    document = tmp_path / "broken.md"
    document.write_text(BROKEN_DOCUMENT)

    reported = [problem.split("\n")[0] for problem in document_problems(document, new_database)]

    assert reported == [
        f"{document}:11 (healthai) is invalid against the live healthai schema: "
        "Cannot query field 'total' on type 'Balance'.",
        f"{document}:27 (healthai) answered errors: ["
        + reported[1].partition("answered errors: [")[2],
        f"{document}:33 (healthai) answered without the errors the document shows",
        f"{document}:62 (healthai) is not a GraphQL document: "
        + reported[3].partition("is not a GraphQL document: ")[2],
        f"{document}:66 (healthai) LedgerEntry.amount is Int!, not Float!",
    ]
    assert "BAD_USER_INPUT" in reported[1]


def test_a_travelai_operation_makes_an_example_travelai_s() -> None:
    def app(code: str) -> str:
        return Example(Block(ROOT / "README.md", 1, "graphql", code), None, None).app

    assert app("mutation { createEntry(input: {operation: LOYALTY_BONUS}) { __typename } }") == (
        "travelai"
    )
    assert app("{ operations { operation amount } }") == "healthai"
    assert app("query($op: TravelAIOperation) { operations { amount } }") == "travelai"
    assert sorted(TRAVELAI_ONLY) == ["BOOKING_REWARD", "LOYALTY_BONUS"]


def test_an_sdl_excerpt_is_checked_against_the_schema_not_run() -> None:
    schema = parse_sdl(SCHEMA.read_text())
    agreeing = "type Balance { ownerId: ID!  balance: Int! }\nenum HealthAIOperation { CREDIT_ADD }"
    wrong = (
        "type Balance { balance: String!  total: Int! }\n"
        "union CreateEntryResult = LedgerEntry | InsufficientCredits\n"
        "type Query { balance(ownerId: String!): Balance! }"
    )

    assert sdl_disagreements(parse(agreeing), schema) == []
    assert sdl_disagreements(parse(wrong), schema) == [
        "Balance.balance is Int!, not String!",
        "Balance.total is not in the schema",
        "union CreateEntryResult is " + " | ".join(sorted(t.name for t in union_members())),
        "Query.balance(ownerId:) is ID!",
    ]


# --- Code generators, installed on first use ----------------------------------------------


@contextlib.contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Holds an exclusive lock: sessions sharing the tree install a tool once, not at once."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run(
    args: Sequence[str | Path],
    *,
    timeout: float,
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
) -> str:
    """Runs a command to completion; its output, or the test fails showing it."""
    try:
        done = subprocess.run(
            [str(arg) for arg in args],
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(map(str, args))} took more than {timeout}s", pytrace=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-4000:]
        pytest.fail(
            f"{' '.join(map(str, args))} exited with {done.returncode}:\n{output}", pytrace=False
        )
    return done.stdout


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ariadne_codegen() -> Path:
    """The ariadne-codegen command, from .cache/ariadne-codegen/venv: a virtualenv of its
    own, since it requires graphql-core<3.3 and Strawberry 3.3. Remade when the pinned
    requirements change."""
    home = CACHE / "ariadne-codegen"
    venv = home / "venv"
    stamp = venv / "requirements.sha256"
    wanted = digest(ARIADNE_REQUIREMENTS)
    with exclusive(home / "install.lock"):
        if not (stamp.exists() and stamp.read_text() == wanted):
            shutil.rmtree(venv, ignore_errors=True)
            run([sys.executable, "-m", "venv", venv], timeout=INSTALL_TIMEOUT)
            pip: list[str | Path] = [venv / "bin" / "python", "-m", "pip"]
            pip += ["--disable-pip-version-check", "install", "--quiet"]
            run([*pip, "-r", ARIADNE_REQUIREMENTS], timeout=INSTALL_TIMEOUT)
            stamp.write_text(wanted)
    return venv / "bin" / "ariadne-codegen"


def typescript_tools() -> Path:
    """node_modules/.bin of tests/clients/typescript, installed by `npm ci` from its lock
    file; again when the lock file changes."""
    modules = TYPESCRIPT / "node_modules"
    stamp = modules / ".package-lock.sha256"
    wanted = digest(TYPESCRIPT / "package-lock.json")
    with exclusive(CACHE / "typescript-client" / "install.lock"):
        if not (stamp.exists() and stamp.read_text() == wanted):
            npm = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
            run(npm, cwd=TYPESCRIPT, timeout=INSTALL_TIMEOUT)
            stamp.write_text(wanted)
    return modules / ".bin"


def union_members() -> list[Any]:
    union = parse_sdl(SCHEMA.read_text()).get_type("CreateEntryResult")
    assert isinstance(union, GraphQLUnionType)
    return list(union.types)


@pytest.fixture(scope="module")
def healthai_server(new_database: Callable[..., str]) -> Iterator[ServerProcess]:
    env = clean_environment(HEALTHAI_DATABASE_URL=new_database("clients"))
    with ServerProcess.uvicorn("healthai", env) as server:
        yield server


@pytest.fixture
def healthai_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The package ariadne-codegen generates (into a temporary directory), imported."""
    config = tmp_path / "ariadne-codegen.toml"
    config.write_text(
        "[tool.ariadne-codegen]\n"
        f"schema_path = {json.dumps(str(SCHEMA))}\n"
        f"queries_path = {json.dumps(str(OPERATIONS))}\n"
        'target_package_name = "healthai_client"\n'
        f"target_package_path = {json.dumps(str(tmp_path))}\n"
        "async_client = false\n\n"
        "[tool.ariadne-codegen.scalars.DateTime]\n"
        'type = "datetime.datetime"\n'
    )
    run([ariadne_codegen(), "--config", config, "client"], timeout=TOOL_TIMEOUT)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield importlib.import_module("healthai_client")
    finally:
        for name in [m for m in sys.modules if m.partition(".")[0] == "healthai_client"]:
            del sys.modules[name]


@pytest.mark.slow
def test_a_python_client_generated_by_ariadne_codegen_credits_spends_and_reads_balances(
    healthai_client: Any, healthai_server: ServerProcess
) -> None:
    generated = healthai_client
    credit_types = importlib.import_module("healthai_client.credit")
    spend_types = importlib.import_module("healthai_client.spend")
    enums = importlib.import_module("healthai_client.enums")
    exceptions = importlib.import_module("healthai_client.exceptions")
    owner = f"codegen-{uuid.uuid4()}"
    url = f"{healthai_server.url()}/graphql"

    with generated.Client(url=url, headers=service_headers("healthai")) as client:
        credit = client.credit(owner_id=owner, nonce="purchase-1").create_entry
        assert isinstance(credit, credit_types.CreditCreateEntryLedgerEntry)
        assert credit.operation is enums.HealthAIOperation.CREDIT_ADD
        assert (credit.owner_id, credit.amount, credit.balance_after) == (owner, 10, 10)
        assert isinstance(credit.created_on, datetime)
        assert credit.created_on.utcoffset() == timedelta(0)
        balance = client.balance(owner_id=owner).balance
        assert (balance.owner_id, balance.balance) == (owner, 10)
        assert balance.last_updated == credit.created_on

        spend = client.spend(owner_id=owner, nonce="spend-1").create_entry
        assert isinstance(spend, spend_types.SpendCreateEntryLedgerEntry)
        assert spend.operation is enums.HealthAIOperation.CREDIT_SPEND
        assert (spend.amount, spend.balance_after) == (-1, 9)
        assert client.balance(owner_id=owner).balance.balance == 9
        replay = client.spend(owner_id=owner, nonce="spend-1").create_entry
        assert isinstance(replay, spend_types.SpendCreateEntryLedgerEntry)
        assert (replay.id, replay.balance_after) == (spend.id, 9)

        for n in range(2, 11):
            client.spend(owner_id=owner, nonce=f"spend-{n}")
        refused = client.spend(owner_id=owner, nonce="spend-11").create_entry
        assert isinstance(refused, spend_types.SpendCreateEntryInsufficientCredits)
        assert refused.code is enums.LedgerErrorCode.INSUFFICIENT_CREDITS
        assert (refused.balance, refused.required) == (0, 1)
        assert client.balance(owner_id=owner).balance.balance == 0

        with pytest.raises(exceptions.GraphQLClientGraphQLMultiError) as raised:
            client.balance(owner_id="")
        assert [error.extensions["code"] for error in raised.value.errors] == ["BAD_USER_INPUT"]


requires_node = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js and npm are not installed: no @graphql-codegen/cli TypeScript client",
)


@pytest.mark.slow
@requires_node
def test_a_typescript_client_generated_by_graphql_codegen_types_operations_and_union_members(
    tmp_path: Path,
) -> None:
    tools = typescript_tools()
    generated = tmp_path / "healthai.ts"
    env = {**os.environ, "CODEGEN_OUTPUT": str(generated)}
    run(
        [tools / "graphql-codegen", "--config", "codegen.js"],
        cwd=TYPESCRIPT,
        env=env,
        timeout=TOOL_TIMEOUT,
    )
    source = generated.read_text()

    enum = re.search(r"export enum HealthA[Ii]Operation \{(.*?)\}", source, re.DOTALL)
    assert enum is not None, source[:2000]
    assert set(re.findall(r"= '(\w+)'", enum.group(1))) == {op.name for op in HealthAIOperation}
    union = re.search(r"export type CreateEntryResult = (.*?);", source)
    assert union is not None
    assert set(union.group(1).split(" | ")) == {member.name for member in union_members()}
    for operation in ("CreditMutation", "SpendMutation", "BalanceQuery"):
        assert f"export type {operation} = " in source
        assert f"export type {operation}Variables = " in source

    shutil.copy(TYPESCRIPT / "usage.ts", tmp_path / "usage.ts")
    tsc: list[str | Path] = [tools / "tsc", "--noEmit", "--strict", "--target", "es2022"]
    tsc += ["--module", "esnext", "--moduleResolution", "bundler"]
    run(
        [*tsc, generated, tmp_path / "usage.ts"],
        cwd=TYPESCRIPT,
        timeout=TOOL_TIMEOUT,
    )
