"""Fuzzing each app's live GraphQL schema with Schemathesis: the schema is read by
introspection from the running app (healthai and travelai, each on a fresh PostgreSQL
database, served in-process through its ASGI interface), and Schemathesis's GraphQL
support generates at least 1,000 requests per app from it: every query field and the
createEntry mutation (generated ownerId, nonce and operation, so entries get written),
mostly valid documents and some that break the schema's argument types, half of the
valid ones with a few known owners and nonces put in (so that owners build up balances to
spend, nonces are replayed and reads find entries), sent with a backend service's token
and some with an end user's. DateTime arguments come in Z or any offset up to +/-23:59,
often on the first or last day of years 1 to 9999 (see instants()).

It proves that no request gets a 5xx or an unexpected server error, that every response
is a GraphQL response whose data conforms to the schema (Schemathesis's
`not_a_server_error` and `response_schema_conformance` checks, and a walk of the data
against the document and the schema: every selected field present, nothing else, each
value of its declared type, null only where nullable; every error with a message and an
`extensions.code`), and that afterwards the books
balance: the stored balances and running balances agree with the entries, and
`graphql-ledger verify` passes on the app's database."""

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import graphql
import pytest
import schemathesis
from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectFieldNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
)
from httpx2 import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup, MalformedJson
from schemathesis.core.result import Ok
from schemathesis.graphql import nodes as graphql_values
from schemathesis.graphql.checks import GraphQLSchemaViolation, UnexpectedGraphQLResponse
from schemathesis.graphql.loaders import get_introspection_query
from schemathesis.specs.graphql.schemas import GraphQLSchema as FuzzedSchema
from schemathesis.specs.openapi.checks import response_schema_conformance
from starlette.testclient import TestClient

from graphql_ledger import LedgerOperation, Settings, create_app
from healthai.operations import HealthAIOperation
from tests.support import ROOT, TEST_SECRET, service_headers, sql, user_headers, verify_books
from travelai.operations import TravelAIOperation

# Hypothesis keeps its caches (the unicode tables behind st.characters) out of the tree.
set_hypothesis_home_dir(ROOT / ".cache" / "hypothesis")

APPS: dict[str, type[LedgerOperation]] = {
    "healthai": HealthAIOperation,
    "travelai": TravelAIOperation,
}

FuzzCase = Case[Any]  # a generated request of any operation of the schema


def instants() -> st.SearchStrategy[str]:
    """DateTime values as clients write them, which Schemathesis's own never are (they all
    end in Z): any date and time of years 1 to 9999, often the first or last day of that
    range, in Z or any offset up to +/-23:59. Near those days an offset can carry the
    instant out of the range in UTC, which the ledger must refuse as the client's mistake."""
    first, last = datetime.min, datetime.max
    moments = st.one_of(
        st.datetimes(),
        st.sampled_from([first, last]),
        st.datetimes(min_value=first, max_value=first + timedelta(days=1)),
        st.datetimes(min_value=last - timedelta(days=1), max_value=last),
    )
    offsets = st.one_of(
        st.just("Z"),
        st.sampled_from(["+23:59", "-23:59", "+14:00", "-12:00", "+00:00", "-00:01"]),
        st.builds(
            "{}{:02d}:{:02d}".format,
            st.sampled_from("+-"),
            st.integers(0, 23),
            st.integers(0, 59),
        ),
    )
    return st.builds(lambda moment, offset: moment.isoformat() + offset, moments, offsets)


# Every DateTime argument the fuzzer writes, in any document, is one of these.
schemathesis.graphql.scalar("DateTime", instants().map(graphql_values.String))

# Each example sends exactly one request; the test counts the requests it sent.
REQUESTS_PER_APP = 1000

SETTINGS = settings(
    max_examples=REQUESTS_PER_APP,
    deadline=None,
    database=None,  # nothing to replay between runs: every run explores afresh
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Schemathesis's own checks of a GraphQL response: no 5xx and no GraphQL error that the
# server reports as its own failure (INTERNAL_SERVER_ERROR, or an error inside a resolver
# that is not a client error); a JSON object, without null in a non-nullable field.
CHECKS = [not_a_server_error, response_schema_conformance]

# The end user some requests act as. Generated ownerIds are other owners, so many of its
# reads are FORBIDDEN and many of its writes OperationNotAllowed: refusals, which must be
# clean ones; it is also one of the known owners, whose reads and writes are allowed.
END_USER = "fuzz-end-user"

# The owners and nonces some valid documents use instead of generated ones.
KNOWN_OWNERS = [END_USER, *(f"fuzz-owner-{n}" for n in range(4))]
KNOWN_NONCES = [f"nonce-{n}" for n in range(12)]

BOOKS = """
SELECT
  (SELECT count(*) FROM entries),
  (SELECT count(*) FROM entries WHERE amount < 0),
  (SELECT count(DISTINCT owner_id) FROM entries),
  (SELECT count(*) FROM (
     SELECT owner_id, sum(amount) AS total FROM entries GROUP BY owner_id
   ) AS sums FULL JOIN balances b USING (owner_id)
   WHERE sums.total IS DISTINCT FROM b.balance),
  (SELECT count(*) FROM (
     SELECT balance_after,
            sum(amount) OVER (PARTITION BY owner_id ORDER BY id) AS running
       FROM entries
   ) AS walked
   WHERE balance_after IS DISTINCT FROM running OR balance_after < 0)
"""


# Failures of Schemathesis's checks that mean the response breaks the schema; the others
# (ServerError, GraphQLServerError) mean the server failed.
SCHEMA_FAILURES = (MalformedJson, UnexpectedGraphQLResponse, GraphQLSchemaViolation)


# -- the data of a response against the document and the schema ------------------------


def data_problems(schema: GraphQLSchema, document: DocumentNode, data: Any) -> list[str]:
    """Where `data` does not answer `document` as `schema` says: a selected field missing,
    a field not selected, a value not of its field's type, or null in a non-null field."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    if len(operations) != 1:
        return [f"{len(operations)} operations in the document"]
    root = schema.get_root_type(operations[0].operation)
    if root is None:
        return [f"no {operations[0].operation.value} type"]
    walker = _DataWalker(schema, fragments)
    return walker.object(root, [operations[0].selection_set], data, "data")


@dataclass
class _DataWalker:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]

    def applies(self, condition: str | None, concrete: GraphQLObjectType) -> bool:
        if condition is None or condition == concrete.name:
            return True
        named = self.schema.get_type(condition)
        return graphql.is_abstract_type(named) and self.schema.is_sub_type(named, concrete)

    def fields(
        self, concrete: GraphQLObjectType, selection_sets: list[SelectionSetNode]
    ) -> dict[str, list[FieldNode]]:
        """The response keys the selections ask of an object of type `concrete`."""
        keys: dict[str, list[FieldNode]] = {}
        pending = list(selection_sets)
        while pending:
            for selection in pending.pop(0).selections:
                if isinstance(selection, FieldNode):
                    key = (selection.alias or selection.name).value
                    keys.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    if self.applies(condition.name.value if condition else None, concrete):
                        pending.append(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    fragment = self.fragments[selection.name.value]
                    if self.applies(fragment.type_condition.name.value, concrete):
                        pending.append(fragment.selection_set)
        return keys

    def object(
        self,
        concrete: GraphQLObjectType,
        selection_sets: list[SelectionSetNode],
        value: Any,
        path: str,
    ) -> list[str]:
        if not isinstance(value, dict):
            return [f"{path}: {concrete.name} expected, got {value!r}"]
        keys = self.fields(concrete, selection_sets)
        problems = [f"{path}.{key}: not selected" for key in value if key not in keys]
        for key, nodes in keys.items():
            if key not in value:
                problems.append(f"{path}.{key}: selected but missing")
                continue
            name = nodes[0].name.value
            if name == "__typename":
                if value[key] != concrete.name:
                    problems.append(f"{path}.{key}: {value[key]!r} is not {concrete.name}")
                continue
            definition = concrete.fields.get(name)
            if definition is None:
                problems.append(f"{path}.{key}: {concrete.name} has no field {name}")
                continue
            subselections = [n.selection_set for n in nodes if n.selection_set is not None]
            problems += self.value(definition.type, subselections, value[key], f"{path}.{key}")
        return problems

    def value(
        self,
        type_: GraphQLOutputType,
        selection_sets: list[SelectionSetNode],
        value: Any,
        path: str,
    ) -> list[str]:
        if isinstance(type_, GraphQLNonNull):
            if value is None:
                return [f"{path}: null in a non-null field of type {type_}"]
            return self.value(type_.of_type, selection_sets, value, path)
        if value is None:
            return []
        if isinstance(type_, GraphQLList):
            if not isinstance(value, list):
                return [f"{path}: list expected, got {value!r}"]
            problems: list[str] = []
            for index, item in enumerate(value):
                problems += self.value(type_.of_type, selection_sets, item, f"{path}[{index}]")
            return problems
        if isinstance(type_, GraphQLScalarType):
            return [] if scalar_fits(type_.name, value) else [f"{path}: {value!r} is no {type_}"]
        if isinstance(type_, GraphQLEnumType):
            return [] if value in type_.values else [f"{path}: {value!r} is no {type_}"]
        if isinstance(type_, GraphQLObjectType):
            return self.object(type_, selection_sets, value, path)
        # An interface or a union: the value must be an object of one of its types.
        assert graphql.is_abstract_type(type_), type_
        candidates = self.schema.get_possible_types(type_)
        attempts = {c.name: self.object(c, selection_sets, value, path) for c in candidates}
        nearest = min(attempts, key=lambda name: len(attempts[name]))
        if not attempts[nearest]:
            return []
        return [f"{path}: of none of the types of {type_}; as {nearest}:", *attempts[nearest]]


def scalar_fits(name: str, value: Any) -> bool:
    """Whether `value` is a serialized value of the scalar `name`."""
    match name:
        case "Int":
            return type(value) is int and -(2**31) <= value < 2**31
        case "Float":
            return type(value) in (int, float)
        case "String" | "ID":
            return isinstance(value, str)
        case "Boolean":
            return isinstance(value, bool)
        case "DateTime":  # an instant: ISO 8601 with its offset, never a naive time
            if not isinstance(value, str):
                return False
            try:
                return datetime.fromisoformat(value).tzinfo is not None
            except ValueError:
                return False
    return False  # a scalar this test does not know of


def error_problems(errors: Any) -> list[str]:
    """Where `errors` is not a GraphQL errors list: objects with a message, and a code."""
    if not isinstance(errors, list) or not errors:
        return [f"errors: a non-empty list expected, got {errors!r}"]
    problems = []
    for index, error in enumerate(errors):
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            problems.append(f"errors[{index}]: no message: {error!r}")
        elif not isinstance((error.get("extensions") or {}).get("code"), str):
            problems.append(f"errors[{index}]: no extensions.code: {error!r}")
    return problems


# -- the run ------------------------------------------------------------------------------


def with_known_identifiers(body: str, owner: str, nonce: str) -> str:
    """The document `body` with its owner ids and nonces replaced by `owner` and `nonce`:
    so that some generated writes land on a few owners, build up balances to spend, and
    reuse nonces, and some reads find entries (the way Schemathesis's dictionaries put
    chosen values into generated arguments)."""

    class Swap(graphql.Visitor):
        def enter_argument(self, node: ArgumentNode, *_: Any) -> ArgumentNode | None:
            name = node.name.value
            if name in ("ownerId", "id"):
                return ArgumentNode(name=node.name, value=StringValueNode(value=owner))
            if name == "ownerIds":
                owners = tuple(StringValueNode(value=known) for known in KNOWN_OWNERS)
                return ArgumentNode(name=node.name, value=ListValueNode(values=owners))
            return None

        def enter_object_field(self, node: ObjectFieldNode, *_: Any) -> ObjectFieldNode | None:
            value = {"ownerId": owner, "nonce": nonce}.get(node.name.value)
            if value is None:
                return None
            return ObjectFieldNode(name=node.name, value=StringValueNode(value=value))

    return graphql.print_ast(graphql.visit(graphql.parse(body), Swap()))


@dataclass
class Fuzz:
    """What all the examples of one app's run share: the app, its schema, the figures."""

    app: str
    url: str  # of its database
    client: TestClient
    schema: FuzzedSchema
    figures: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def send(self, drawn: "Drawn") -> None:
        """Sends one generated request through the app and checks its response."""
        case, caller = drawn.case, drawn.caller
        mode = case.meta.generation.mode.value if case.meta else "explicit"
        if drawn.known is not None and mode == "positive":
            assert isinstance(case.body, str), case.body
            case.body = with_known_identifiers(case.body, *drawn.known)
            self.figures["with known identifiers"] += 1
        if caller == "service":
            headers = service_headers(self.app)
        else:
            headers = user_headers(self.app, END_USER)
        request = case.as_transport_kwargs(headers=headers)
        self.figures["requests"] += 1
        self.figures[f"{case.operation.label} ({mode})"] += 1
        self.figures[f"by {caller}"] += 1
        response = self.client.request(
            request["method"], request["url"], json=request["json"], headers=request["headers"]
        )
        self.statuses[response.status_code] += 1
        problems = self.problems(case, caller, response)
        if problems:
            self.failures.append(
                f"{caller} request: POST /graphql {request['json']!r}\n"
                f"response: {response.status_code} {response.text[:2000]}\n" + "\n".join(problems)
            )

    def problems(self, case: FuzzCase, caller: str, response: Response) -> list[str]:
        if response.status_code >= 500:
            self.figures["5xx"] += 1
            return [f"status {response.status_code}"]
        try:
            body = response.json()
        except ValueError:
            self.figures["violations"] += 1
            return ["not JSON"]
        if not isinstance(body, dict) or not ({"data", "errors"} & body.keys()):
            self.figures["violations"] += 1
            return ["neither data nor errors"]
        errors = body.get("errors")
        codes = [
            (error.get("extensions") or {}).get("code")
            for error in errors or []
            if isinstance(error, dict)
        ]
        self.outcomes.update(f"error {code}" for code in codes)
        data = body.get("data")
        self.outcomes["with data" if data is not None else "without data"] += 1

        problems = []
        # An end user's read of another owner is FORBIDDEN: a refusal that Schemathesis
        # counts as a server error, as it has a path. Any other answer gets both checks.
        checks = CHECKS if caller == "service" or set(codes) != {"FORBIDDEN"} else CHECKS[1:]
        try:
            case.validate_response(response, checks=checks, headers=dict(response.request.headers))
        except FailureGroup as group:
            for failure in group.exceptions:
                problems.append(f"{type(failure).__name__}: {failure.title}: {failure.message}")
                if isinstance(failure, SCHEMA_FAILURES):
                    self.figures["violations"] += 1
                else:
                    self.figures["server errors"] += 1
        ours = error_problems(errors) if "errors" in body else []
        if data is not None:
            assert isinstance(case.body, str), case.body
            document = graphql.parse(case.body)
            invalid = graphql.validate(self.schema.client_schema, document)
            if invalid:
                ours.append(f"data for a document the schema refuses: {invalid}")
            else:
                ours += data_problems(self.schema.client_schema, document, data)
        elif "errors" not in body:
            ours.append("data is null without errors")
        self.figures["violations"] += len(ours)
        return problems + ours


@dataclass
class Drawn:
    case: FuzzCase
    caller: str  # "service" or "end user"
    known: tuple[str, str] | None  # an owner and a nonce to put into a valid document


def cases(schema: FuzzedSchema) -> st.SearchStrategy[Drawn]:
    """A generated request, who sends it, and whether it uses known identifiers: of seven
    requests, about three createEntry, three spread over the query fields, and one that
    breaks the schema's argument types; half of the valid ones with known identifiers;
    about one in seven sent by the end user."""
    found = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    operations = {operation.label: operation for operation in found}
    mutation = operations.pop("Mutation.createEntry").as_strategy()
    queries = st.one_of([operation.as_strategy() for operation in operations.values()])
    invalid = schema.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    request = st.sampled_from([mutation] * 3 + [queries] * 3 + [invalid]).flatmap(lambda s: s)
    caller = st.sampled_from(["service"] * 6 + ["end user"])
    nonce = st.one_of(st.sampled_from(KNOWN_NONCES), st.uuids().map(str))
    known = st.one_of(st.none(), st.tuples(st.sampled_from(KNOWN_OWNERS), nonce))
    return st.builds(Drawn, request, caller, known)


def live_schema(client: TestClient, app: str) -> FuzzedSchema:
    """The app's schema as Schemathesis reads it: introspected from the running app."""
    answer = client.post(
        "/graphql", json={"query": get_introspection_query()}, headers=service_headers(app)
    )
    assert answer.status_code == 200, answer.text
    schema = schemathesis.graphql.from_dict(answer.json())
    schema.location = "/graphql"  # what `from_asgi` sets: the endpoint the cases go to
    return schema


@pytest.fixture(params=list(APPS))
def fuzzed(request: pytest.FixtureRequest, new_database: Callable[..., str]) -> Iterator[Fuzz]:
    """An app on a fresh database of its own, in-process, with its live schema."""
    app: str = request.param
    operations = APPS[app]
    url = new_database(f"fuzz_{app}", operations=operations)
    config = Settings(app_database_urls={app: url}, jwt_secret=TEST_SECRET)
    with TestClient(create_app(app, operations, config)) as client:
        yield Fuzz(app, url, client, live_schema(client, app))


def test_generated_requests_get_no_server_error_and_conform_to_the_live_schema(
    fuzzed: Fuzz, figures: Callable[[str], None]
) -> None:
    app, url = fuzzed.app, fuzzed.url
    started = time.perf_counter()

    @SETTINGS
    @given(drawn=cases(fuzzed.schema))
    def fuzz(drawn: Drawn) -> None:
        fuzzed.send(drawn)

    fuzz()
    elapsed = time.perf_counter() - started
    counts = fuzzed.figures
    [(entries, spends, owners, unbalanced, broken_runs)] = sql(url, BOOKS)
    figures(
        f"fuzz {app}: {counts['requests']} requests, {counts['5xx']} 5xx,"
        f" {counts['violations']} schema violations,"
        f" statuses {dict(sorted(fuzzed.statuses.items()))}, entries written {entries}"
        f" ({spends} of them spends, {owners} owners);"
        f" {counts['server errors']} GraphQL server errors; {elapsed:.1f} s"
    )
    figures(f"fuzz {app} requests: {dict(sorted(counts.items()))}")
    figures(f"fuzz {app} answers: {dict(sorted(fuzzed.outcomes.items()))}")
    assert not fuzzed.failures, (
        f"{len(fuzzed.failures)} bad responses; the first ones:\n\n"
        + "\n\n".join(fuzzed.failures[:5])
    )
    assert counts["requests"] >= REQUESTS_PER_APP
    assert counts["5xx"] == counts["server errors"] == counts["violations"] == 0
    assert entries > 0, "no generated createEntry was written"
    assert (unbalanced, broken_runs) == (0, 0), "the books do not balance"

    figures(f"fuzz {app} verify: {verify_books(app, url)}")


def test_the_data_check_finds_what_breaks_the_schema() -> None:
    """The check above is not vacuous: it accepts a conforming answer and names each way
    an answer can break the schema."""
    schema = graphql.build_schema((ROOT / "schema" / "healthai.graphql").read_text())
    document = graphql.parse(
        """mutation { createEntry(input: {ownerId: "o", operation: DAILY_REWARD, nonce: "n"}) {
             kind: __typename
             ... on LedgerEntry { id amount operation createdOn }
             ... on LedgerError { code }
           } }"""
    )
    entry = {"id": "1", "amount": 1, "operation": "DAILY_REWARD"}
    good: dict[str, Any] = {"kind": "LedgerEntry", **entry, "createdOn": "2026-01-01T00:00:00Z"}
    refusal: dict[str, Any] = {"kind": "LimitReached", "code": "LIMIT_REACHED"}
    answer: dict[str, Any] | None
    for answer in (good, refusal):
        assert data_problems(schema, document, {"createEntry": answer}) == []

    broken: list[dict[str, Any] | None] = [
        None,  # null in a non-null field
        {k: v for k, v in good.items() if k != "id"},  # a selected field missing
        {**good, "balanceAfter": 1},  # a field not selected
        {**good, "amount": "1"},  # an Int as a string
        {**good, "amount": 2**31},  # an Int out of range
        {**good, "operation": "BOOKING_REWARD"},  # not a value of the enum
        {**good, "createdOn": "2026-01-01T00:00:00"},  # a DateTime without its zone
        {**good, "kind": "InvalidInput"},  # fields of another type of the union
        {**refusal, "code": "LIMIT"},  # an unknown error code
    ]
    for answer in broken:
        assert data_problems(schema, document, {"createEntry": answer}), answer
