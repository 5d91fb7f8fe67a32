"""The bad input corpus (issue 8): malformed JSON, wrong content types, huge strings, deep and
heavily aliased documents, and Unicode edge cases in ownerId and nonce, each sent raw to
healthai's /graphql. Every one gets a clean 4xx or GraphQL error of the documented shape,
no 5xx and no logged error, and writes no row to `entries` or `balances`. Valid edges
(4-byte characters, combining marks, right-to-left letters, exactly 255 characters) are
stored exactly as sent.

The exact messages of single refusals are pinned where they live: test_http.py (malformed
JSON, content type, methods), test_abuse_limits.py (limits, 413, batching, chunked bodies),
test_create_entry.py and test_balances.py (input rules). This file is the corpus."""

import json
import logging
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.support import CREATE_ENTRY, GraphQLClient, sql

MEBIBYTE = 1024 * 1024  # LEDGER_MAX_BODY_BYTES' default
JSON = {"content-type": "application/json"}
BAD_OWNER = "bad-input"  # a valid ownerId, for the cases whose fault lies elsewhere
REFUSED_OWNER_ID = "ownerId contains the control or format character"


# What a request may be answered with.


@dataclass(frozen=True)
class Refused:
    """Refused before GraphQL: this status and exactly this one error."""

    status: int
    code: str
    message: str


@dataclass(frozen=True)
class GraphQLFailure:
    """A GraphQL response (200) with no data; its first error has this code and message
    (or a message starting with `message` when `prefix`)."""

    code: str
    message: str
    prefix: bool = False


@dataclass(frozen=True)
class Invalid:
    """createEntry answered with InvalidInput naming `field`."""

    field: str
    message: str


Expected = Refused | GraphQLFailure | Invalid


@dataclass(frozen=True)
class Case:
    """One raw request of the corpus and what it must be answered with."""

    name: str
    content: bytes
    expected: Expected
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))  # sent as Latin-1
    method: str = "POST"
    path: str = "/graphql"


def body(query: str, **variables: Any) -> bytes:
    """A JSON request body; non-ASCII goes as \\u escapes (astral characters as pairs)."""
    return json.dumps({"query": query, "variables": variables}).encode()


def create_body(owner_id: Any, nonce: Any) -> bytes:
    return body(
        CREATE_ENTRY, input={"ownerId": owner_id, "operation": "CREDIT_ADD", "nonce": nonce}
    )


def create_text(owner_json: str, nonce_json: str) -> bytes:
    """A createEntry body whose ownerId and nonce are written as raw JSON text, for what
    Python's json module would never produce (lone surrogate escapes)."""
    return (
        '{"query": ' + json.dumps(CREATE_ENTRY) + ', "variables": {"input": {"ownerId": '
        f'{owner_json}, "operation": "CREDIT_ADD", "nonce": {nonce_json}}}}}}}'
    ).encode()


def create_literal(
    selection: str = "{ __typename }", nonce: str = "n", owner_id: str = BAD_OWNER
) -> str:
    """A createEntry field with a literal input (GraphQL escapes allowed in its strings):
    valid unless told otherwise, so any write it made would count."""
    return (
        f'createEntry(input: {{ownerId: "{owner_id}", operation: CREDIT_ADD, '
        f'nonce: "{nonce}"}}) {selection}'
    )


# Selects what CREATE_ENTRY selects of an InvalidInput, for literal inputs.
INVALID_SELECTION = (
    "{ __typename ... on LedgerError { code message } ... on InvalidInput { field } }"
)


NOT_JSON = Refused(400, "BAD_REQUEST", "Unable to parse request body as JSON")
NO_QUERY = Refused(400, "BAD_REQUEST", "No GraphQL query found in the request")


def unsupported(sent: str | None) -> Refused:
    """The refusal of a POST that is not JSON: what came, and what is expected."""
    said = f"Unsupported content type {sent!r}" if sent else "No content type"
    expected = "send the GraphQL request as JSON, with Content-Type: application/json"
    return Refused(400, "BAD_REQUEST", f"{said}: {expected}")


TOO_LARGE = Refused(413, "PAYLOAD_TOO_LARGE", f"the request body is larger than {MEBIBYTE} bytes")
VALID = create_body(BAD_OWNER, "valid-nonce")  # refused only for how it is sent
BALANCE = "query($o: ID!) { balance(ownerId: $o) { ownerId balance } }"

MALFORMED_JSON = [
    Case("truncated", VALID[: len(VALID) // 2], NOT_JSON),
    Case("trailing-garbage", VALID + b" }{", NOT_JSON),
    Case("two-documents", VALID + VALID, NOT_JSON),
    Case("empty-body", b"", NOT_JSON),
    Case("whitespace-body", b" \r\n\t ", NOT_JSON),
    Case("single-quotes", b"{'query': '{ __typename }'}", NOT_JSON),
    Case("nan-variable", b'{"query": "{ __typename }", "variables": {"x": NaN}}', NOT_JSON),
    Case("number-overflow", b'{"query": "{ __typename }", "variables": {"x": 1e400}}', NOT_JSON),
    Case("raw-nul-in-string", VALID.replace(b"valid-nonce", b"valid\x00nonce"), NOT_JSON),
    Case("invalid-utf8", VALID.replace(b"valid-nonce", b"valid\xff\xfenonce"), NOT_JSON),
    Case("overlong-utf8", VALID.replace(b"valid-nonce", b"valid\xc0\xafnonce"), NOT_JSON),
    Case("utf8-encoded-surrogate", VALID.replace(b"bad-input", b"bad\xed\xa0\x80input"), NOT_JSON),
    Case("utf16-body", VALID.decode().encode("utf-16"), NOT_JSON),
    Case("utf8-bom-prefix", b"\xef\xbb\xbf" + VALID, NOT_JSON),
    Case(
        "json-nested-100000-deep",
        b'{"query": "{ __typename }", "variables": {"x": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}}",
        NOT_JSON,
    ),
    Case("json-string", b'"mutation { __typename }"', NO_QUERY),
    Case("json-number", b"42", NO_QUERY),
    Case("json-null", b"null", NO_QUERY),
    Case("query-not-a-string", b'{"query": 5}', NO_QUERY),
    Case(
        "batch-of-operations",
        b"[" + VALID + b", " + VALID + b"]",
        Refused(400, "BAD_REQUEST", "Batching is not enabled"),
    ),
    Case(
        "variables-not-an-object",
        json.dumps({"query": CREATE_ENTRY, "variables": [BAD_OWNER]}).encode(),
        Refused(400, "BAD_REQUEST", "variables must be an object"),
    ),
]

CONTENT_TYPES = [
    Case("text-plain", VALID, unsupported("text/plain"), headers={"content-type": "text/plain"}),
    Case("no-content-type", VALID, unsupported(None), headers={}),
    Case(
        "application-graphql",
        b"{ __typename }",
        unsupported("application/graphql"),
        headers={"content-type": "application/graphql"},
    ),
    Case(
        "form-urlencoded",
        b"query=mutation+%7B+" + create_literal().replace(" ", "+").encode() + b"+%7D",
        unsupported("application/x-www-form-urlencoded"),
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    Case(
        "multipart",
        b'--b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        + VALID
        + b'\r\n--b\r\nContent-Disposition: form-data; name="map"\r\n\r\n{}\r\n--b--\r\n',
        unsupported("multipart/form-data"),
        headers={"content-type": "multipart/form-data; boundary=b"},
    ),
]


def too_long(field_name: str, length: int) -> Invalid:
    return Invalid(field_name, f"{field_name} is {length} characters long; at most 255")


HUGE_STRINGS = [
    Case("owner-id-256", create_body("o" * 256, "n"), too_long("ownerId", 256)),
    Case("owner-id-100000", create_body("o" * 100_000, "n"), too_long("ownerId", 100_000)),
    Case("nonce-256", create_body(BAD_OWNER, "n" * 256), too_long("nonce", 256)),
    Case("nonce-100000", create_body(BAD_OWNER, "n" * 100_000), too_long("nonce", 100_000)),
    Case(
        "owner-id-256-four-byte",
        create_body("\U0001f600" * 256, "n"),
        too_long("ownerId", 256),
    ),
    Case(
        "owner-id-over-the-body-limit",
        create_body("o" * (MEBIBYTE + 1), "n"),
        TOO_LARGE,
    ),
    Case(
        "query-over-the-body-limit",
        body("mutation { " + create_literal() + " }" + " " * MEBIBYTE),
        TOO_LARGE,
    ),
]

DEEP_SELECTION = "{ ... on LedgerEntry { id " + "{ f " * 10 + "}" * 10 + " } }"
DEEP_LIST = "[" * 30 + f'"{BAD_OWNER}"' + "]" * 30
NESTED_LIST: Any = BAD_OWNER
for _ in range(500):
    NESTED_LIST = [NESTED_LIST]

DEEP_AND_ALIASED = [
    Case(
        "depth-over-the-limit",
        body("mutation Deep { " + create_literal(DEEP_SELECTION) + " }"),
        GraphQLFailure("GRAPHQL_VALIDATION_FAILED", "'Deep' exceeds maximum operation depth of 10"),
    ),
    Case(
        "selections-600-deep",
        body("mutation { " + create_literal("{ a " * 600 + "}" * 600) + " }"),
        GraphQLFailure(
            "GRAPHQL_PARSE_FAILED",
            "Syntax Error: Document is nested too deeply. Parsing aborted.",
        ),
    ),
    Case(
        "input-literal-300-deep",
        body(
            "mutation { createEntry(input: {ownerId: "
            + "[" * 300
            + '"o"'
            + "]" * 300
            + ', operation: CREDIT_ADD, nonce: "n"}) { __typename } }'
        ),
        GraphQLFailure(
            "GRAPHQL_PARSE_FAILED",
            "Syntax Error: Document is nested too deeply. Parsing aborted.",
        ),
    ),
    Case(
        "input-literal-30-deep",
        body(
            f"mutation {{ createEntry(input: {{ownerId: {DEEP_LIST}, operation: CREDIT_ADD, "
            'nonce: "n"}) { __typename } }'
        ),
        GraphQLFailure(
            "GRAPHQL_VALIDATION_FAILED",
            "ID cannot represent a non-string and non-integer value: [[[",
            prefix=True,
        ),
    ),
    Case(
        "input-variable-500-deep",
        create_body(NESTED_LIST, "n"),
        GraphQLFailure(
            "BAD_USER_INPUT",
            "Variable '$input' has invalid value at .ownerId: ID cannot represent value: [[[",
            prefix=True,
        ),
    ),
    Case(
        "fragment-cycle",
        body(
            "mutation { ...A } fragment A on Mutation { ...B } "
            f"fragment B on Mutation {{ {create_literal()} ...A }}"
        ),
        GraphQLFailure(
            "GRAPHQL_VALIDATION_FAILED",
            "Cannot spread fragment 'A' within itself via 'B'.",
        ),
    ),
    Case(
        "aliases-1000-create-entry",
        body(
            "mutation { "
            + " ".join(f"m{n}: " + create_literal(nonce=f"n{n}") for n in range(1000))
            + " }"
        ),
        GraphQLFailure(
            "GRAPHQL_PARSE_FAILED",
            "Syntax Error: Document contains more than 2000 tokens. Parsing aborted.",
        ),
    ),
    Case(
        "aliases-150-create-entry-within-the-token-limit",
        body(
            "mutation M($i: CreateEntryInput!) { "
            + " ".join(f"m{n}: createEntry(input: $i) {{ __typename }}" for n in range(150))
            + " }",
            i={"ownerId": BAD_OWNER, "operation": "CREDIT_ADD", "nonce": "aliased"},
        ),
        GraphQLFailure("GRAPHQL_VALIDATION_FAILED", "150 aliases found. Allowed: 100"),
    ),
    Case(
        "aliases-1000-balance",
        body(
            "{ "
            + " ".join(f'b{n}: balance(ownerId: "o") {{ balance }}' for n in range(1000))
            + " }"
        ),
        GraphQLFailure(
            "GRAPHQL_PARSE_FAILED",
            "Syntax Error: Document contains more than 2000 tokens. Parsing aborted.",
        ),
    ),
]

# Control (Cc) and format (Cf) characters, each refused in ownerId and in nonce.
REFUSED_CHARACTERS = {
    "nul": "\u0000",
    "tab": "\t",
    "newline": "\n",
    "escape": "\u001b",
    "del": "\u007f",
    "c1-next-line": "\u0085",
    "soft-hyphen": "\u00ad",
    "zero-width-space": "\u200b",
    "zero-width-joiner": "\u200d",
    "rtl-mark": "\u200f",
    "ltr-override": "\u202d",
    "rtl-override": "\u202e",
    "word-joiner": "\u2060",
    "bom": "\ufeff",
    "tag-letter-4-byte": "\U000e0041",
}


def refused_character(field_name: str, char: str) -> Invalid:
    return Invalid(
        field_name,
        f"{field_name} contains the control or format character U+{ord(char):04X} at position 2",
    )


UNICODE = [
    Case(
        f"owner-id-{label}",
        create_body(f"id{char}x", "n"),
        refused_character("ownerId", char),
    )
    for label, char in REFUSED_CHARACTERS.items()
] + [
    Case(
        f"nonce-{label}",
        create_body(BAD_OWNER, f"no{char}nce"),
        refused_character("nonce", char),
    )
    for label, char in REFUSED_CHARACTERS.items()
]
UNICODE += [
    Case("owner-id-empty", create_body("", "n"), Invalid("ownerId", "ownerId must not be empty")),
    Case("nonce-empty", create_body(BAD_OWNER, ""), Invalid("nonce", "nonce must not be empty")),
    Case("owner-id-lone-high-surrogate", create_text(r'"id\ud800x"', '"n"'), NOT_JSON),
    Case("nonce-lone-low-surrogate", create_text(f'"{BAD_OWNER}"', r'"no\udc00nce"'), NOT_JSON),
    Case("nonce-reversed-surrogates", create_text(f'"{BAD_OWNER}"', r'"\ude00\ud83d"'), NOT_JSON),
    Case(
        "owner-id-nul-in-graphql-literal",
        body("mutation { " + create_literal(INVALID_SELECTION, owner_id=r"id\u0000x") + " }"),
        refused_character("ownerId", "\u0000"),
    ),
    Case(
        "nonce-rtl-override-in-graphql-literal",
        body("mutation { " + create_literal(INVALID_SELECTION, nonce=r"no\u202Ence") + " }"),
        refused_character("nonce", "\u202e"),
    ),
    Case(
        "nonce-surrogate-in-graphql-literal",
        body("mutation { " + create_literal(nonce=r"no\ud800nce") + " }"),
        GraphQLFailure(
            "GRAPHQL_PARSE_FAILED", r"Syntax Error: Invalid Unicode escape sequence: '\ud800'."
        ),
    ),
]

# The same rules for a query argument: a GraphQL error with BAD_USER_INPUT.
QUERY_ARGUMENTS = [
    Case(
        "balance-literal-nul",
        body('{ balance(ownerId: "bad\\u0000") { balance } }'),
        GraphQLFailure("BAD_USER_INPUT", f"{REFUSED_OWNER_ID} U+0000 at position 3"),
    ),
    Case(
        "balance-variable-rtl-mark",
        body(BALANCE, o="bad\u200f"),
        GraphQLFailure("BAD_USER_INPUT", f"{REFUSED_OWNER_ID} U+200F at position 3"),
    ),
    Case(
        "balance-variable-100000",
        body(BALANCE, o="o" * 100_000),
        GraphQLFailure("BAD_USER_INPUT", "ownerId is 100000 characters long; at most 255"),
    ),
    Case(
        "balance-variable-lone-surrogate",
        b'{"query": ' + json.dumps(BALANCE).encode() + b', "variables": {"o": "\\ud800"}}',
        NOT_JSON,
    ),
    Case(
        "balances-one-rtl-override",
        body('{ balances(ownerIds: ["ok", "x\\u202e"]) { balance } }'),
        GraphQLFailure("BAD_USER_INPUT", f"{REFUSED_OWNER_ID} U+202E at position 1"),
    ),
    Case(
        "entries-bom",
        body('{ entries(ownerId: "\\ufeffx") { pageInfo { hasNextPage } } }'),
        GraphQLFailure("BAD_USER_INPUT", f"{REFUSED_OWNER_ID} U+FEFF at position 0"),
    ),
    Case(
        "owner-empty-id",
        body('{ owner(id: "") { balance } }'),
        GraphQLFailure("BAD_USER_INPUT", "id must not be empty"),
    ),
    Case(
        "get-variables-lone-surrogate",
        b"",
        Refused(400, "BAD_REQUEST", "variables is not valid JSON"),
        headers={},
        method="GET",
        path="/graphql?query=query(%24o%3A+ID!)+%7B+balance(ownerId%3A+%24o)+%7B+balance+%7D+%7D"
        "&variables=%7B%22o%22%3A+%22%5Cud800%22%7D",
    ),
    Case(
        "get-query-invalid-utf8",
        b"",
        Refused(400, "BAD_REQUEST", "the query string is not UTF-8"),
        headers={},
        method="GET",
        path="/graphql?query=%FF%7B+__typename+%7D",
    ),
    Case(
        "get-variables-invalid-utf8",
        b"",
        Refused(400, "BAD_REQUEST", "the query string is not UTF-8"),
        headers={},
        method="GET",
        path="/graphql?query=query(%24o%3A+ID!)+%7B+balance(ownerId%3A+%24o)+%7B+balance+%7D+%7D"
        "&variables=%7B%22o%22%3A%22%FF%22%7D",
    ),
    Case(
        "authorization-garbage-bytes",
        VALID,
        Refused(
            401,
            "UNAUTHENTICATED",
            "this token is not a JWT (three base64url parts separated by dots)",
        ),
        headers={**JSON, "authorization": "Bearer \xff\xfe\x00"},
    ),
]

# Instants the DateTime scalar reads (years 1 to 9999, any offset below 24 hours) whose
# offset carries them past the first or last instant in UTC: the client's mistake, named.
INSTANTS = "0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z in UTC"
BEFORE = "is before the instants this API can represent, " + INSTANTS
AFTER = "is after the instants this API can represent, " + INSTANTS
AT = "query($o: ID!, $at: DateTime) { balance(ownerId: $o, at: $at) { balance } }"
WINDOW = (
    "query($o: ID!, $since: DateTime, $until: DateTime)"
    " { entries(ownerId: $o, since: $since, until: $until) { pageInfo { hasNextPage } } }"
)
OUT_OF_RANGE_INSTANTS = [
    Case(
        "balance-at-year-1-plus-14h",
        body('{ balance(ownerId: "a", at: "0001-01-01T04:43:59.000074+14:00") { balance } }'),
        GraphQLFailure("BAD_USER_INPUT", f"at {BEFORE}"),
    ),
    Case(
        "balance-at-year-9999-minus-15h",
        body('{ balance(ownerId: "a", at: "9999-12-31T16:28:36.362880-15:00") { balance } }'),
        GraphQLFailure("BAD_USER_INPUT", f"at {AFTER}"),
    ),
    Case(
        "balance-at-variable-first-instant-plus-23h59",
        body(AT, o=BAD_OWNER, at="0001-01-01T00:00:00+23:59"),
        GraphQLFailure("BAD_USER_INPUT", f"at {BEFORE}"),
    ),
    Case(
        "entries-until-year-9999-minus-21h45",
        body(
            '{ entries(ownerId: "1", since: "0537-05-16T01:20:50+23:00",'
            ' until: "9999-12-31T23:59:59.999999-21:45") { pageInfo { hasNextPage } } }'
        ),
        GraphQLFailure("BAD_USER_INPUT", f"until {AFTER}"),
    ),
    Case(
        "entries-since-variable-one-minute-early",
        body(WINDOW, o=BAD_OWNER, since="0001-01-01T00:00:00+00:01"),
        GraphQLFailure("BAD_USER_INPUT", f"since {BEFORE}"),
    ),
    Case(
        "entries-since-variable-after-the-last-instant",
        body(WINDOW, o=BAD_OWNER, since="9999-12-31T23:59:59-23:59"),
        GraphQLFailure("BAD_USER_INPUT", f"since {AFTER}"),
    ),
    Case(
        "owner-entries-until-one-minute-late",
        body(
            '{ owner(id: "a") { entries(until: "9999-12-31T23:59:59.999999-00:01")'
            " { pageInfo { hasNextPage } } } }"
        ),
        GraphQLFailure("BAD_USER_INPUT", f"until {AFTER}"),
    ),
    Case(
        "owner-entries-since-year-1-plus-1h",
        body(
            '{ owner(id: "a") { entries(since: "0001-01-01T00:59:59+01:00")'
            " { pageInfo { hasNextPage } } } }"
        ),
        GraphQLFailure("BAD_USER_INPUT", f"since {BEFORE}"),
    ),
]

CORPUS = (
    MALFORMED_JSON
    + CONTENT_TYPES
    + HUGE_STRINGS
    + DEEP_AND_ALIASED
    + UNICODE
    + QUERY_ARGUMENTS
    + OUT_OF_RANGE_INSTANTS
)


@dataclass
class Tally:
    """What the module sent and what it found written, printed when it ends."""

    bad_cases: int = 0
    server_errors: int = 0
    rows_written: int = 0
    valid_edges: int = 0


@pytest.fixture(scope="module")
def tally() -> Tally:
    return Tally()


def ledger_rows(url: str) -> tuple[int, int]:
    """Rows in entries and in balances."""
    [(entries, balances)] = sql(
        url, "SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM balances)"
    )
    return int(entries), int(balances)


def check_answer(response: Any, expected: Expected) -> None:
    assert response.status_code < 500, response.text
    answer = response.json()
    match expected:
        case Refused(status, code, message):
            assert response.status_code == status, response.text
            assert answer == {"errors": [{"message": message, "extensions": {"code": code}}]}
        case GraphQLFailure(code, message, prefix):
            assert response.status_code == 200, response.text
            assert answer["data"] is None, answer
            first = answer["errors"][0]
            assert first["extensions"] == {"code": code}, answer
            if prefix:
                assert first["message"].startswith(message), first["message"]
            else:
                assert first["message"] == message
        case Invalid(field_name, message):
            assert response.status_code == 200, response.text
            assert answer == {
                "data": {
                    "createEntry": {
                        "__typename": "InvalidInput",
                        "code": "INVALID_INPUT",
                        "message": message,
                        "field": field_name,
                    }
                }
            }
    assert "INTERNAL_SERVER_ERROR" not in response.text
    assert "Traceback" not in response.text


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_bad_input_is_a_clean_refusal_and_writes_nothing(
    case: Case,
    healthai_http: TestClient,
    app_urls: dict[str, str],
    tally: Tally,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = app_urls["healthai"]
    before = ledger_rows(url)
    with caplog.at_level(logging.WARNING):
        response = healthai_http.request(
            case.method,
            case.path,
            content=case.content or None,
            headers={
                name.encode(): value.encode("latin-1") for name, value in case.headers.items()
            },
        )
    after = ledger_rows(url)
    tally.bad_cases += 1
    tally.server_errors += int(response.status_code >= 500)
    tally.rows_written += sum(after) - sum(before)

    check_answer(response, case.expected)
    assert after == before
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# Valid edges: not bad input. Each is stored and answered with exactly the characters sent.


@dataclass(frozen=True)
class Edge:
    """A valid ownerId (made from a fresh owner id) and nonce at the edge of the rules."""

    name: str
    owner_id: Callable[[str], str]
    nonce: str
    escaped: bool = False  # non-ASCII as JSON \u escapes rather than raw UTF-8


def exactly(length: int, fill: str) -> Callable[[str], str]:
    """The owner id padded with `fill` to exactly `length` characters."""
    return lambda owner: owner + fill * (length - len(owner))


EDGES = [
    Edge("four-byte-emoji-utf8", lambda o: f"\U0001f600{o}", "\U0001f600"),
    Edge("four-byte-emoji-json-escapes", lambda o: f"{o}\U0001f680", "n\U0001f680", escaped=True),
    Edge("four-byte-cjk-ext-b", lambda o: f"\U00020000-{o}", "\U0002a6d6"),
    Edge("combining-acute-not-normalized", lambda o: f"e\u0301-{o}", "cafe\u0301"),
    Edge("stacked-combining-marks", lambda o: f"{o}-a\u0300\u0301\u0302\u0303", "z\u0336\u0337"),
    Edge("hebrew", lambda o: f"שלום-{o}", "הזמנה-1"),
    Edge("arabic", lambda o: f"مرحبا-{o}", "طلب-١٢٣"),
    Edge("mixed-direction", lambda o: f"{o}-abc-שלום-123", "abc-مرحبا-456"),
    Edge("exactly-255-ascii", exactly(255, "x"), "n" * 255),
    Edge("exactly-255-four-byte", exactly(255, "\U0001f600"), "\U0001f600" * 255),
]


@pytest.mark.parametrize("edge", EDGES, ids=[edge.name for edge in EDGES])
def test_valid_unicode_edges_are_stored_exactly(
    edge: Edge,
    healthai_http: TestClient,
    app_urls: dict[str, str],
    owner: str,
    tally: Tally,
) -> None:
    url = app_urls["healthai"]
    owner_id = edge.owner_id(owner)
    input_ = {"ownerId": owner_id, "operation": "CREDIT_ADD", "nonce": edge.nonce}
    content = json.dumps(
        {"query": CREATE_ENTRY, "variables": {"input": input_}}, ensure_ascii=edge.escaped
    )
    before = ledger_rows(url)

    response = healthai_http.post("/graphql", content=content.encode(), headers=JSON)
    replay = healthai_http.post("/graphql", content=content.encode(), headers=JSON)

    assert response.status_code == 200, response.text
    entry = response.json()["data"]["createEntry"]
    assert entry["__typename"] == "LedgerEntry", entry
    assert (entry["ownerId"], entry["nonce"], entry["amount"], entry["balanceAfter"]) == (
        owner_id,
        edge.nonce,
        10,
        10,
    )
    assert replay.json()["data"]["createEntry"] == entry  # found again by the same characters
    stored = sql(
        url,
        "SELECT e.owner_id, e.nonce, e.amount, b.owner_id, b.balance"
        " FROM entries e JOIN balances b USING (owner_id) WHERE e.owner_id = :owner",
        owner=owner_id,
    )
    assert [tuple(row) for row in stored] == [(owner_id, edge.nonce, 10, owner_id, 10)]
    after = ledger_rows(url)
    assert after == (before[0] + 1, before[1] + 1)
    normalized = unicodedata.normalize("NFC", owner_id)
    if normalized != owner_id:  # a look-alike is another owner: nothing is normalized
        looked_up = healthai_http.post(
            "/graphql", json={"query": BALANCE, "variables": {"o": normalized}}
        )
        assert looked_up.json() == {"data": {"balance": {"ownerId": normalized, "balance": 0}}}
    tally.valid_edges += 1


FIRST_INSTANT = "0001-01-01T23:59:00+23:59"  # 0001-01-01T00:00:00Z
LAST_INSTANT = "9999-12-31T00:00:59.999999-23:59"  # 9999-12-31T23:59:59.999999Z
AS_OF = "query($o: ID!, $at: DateTime) { balance(ownerId: $o, at: $at) { balance lastUpdated } }"
PAGE = """
query($o: ID!, $since: DateTime, $until: DateTime, $after: String) {
  entries(ownerId: $o, first: 1, since: $since, until: $until, after: $after) {
    edges { node { nonce } } pageInfo { hasNextPage endCursor }
  }
  owner(id: $o) { entries(since: $since, until: $until) { edges { node { nonce } } } }
}
"""


def test_the_first_and_last_instants_in_any_offset_are_answered_exactly(
    healthai: GraphQLClient, owner: str
) -> None:
    """Valid edges of DateTime, reached with the largest offsets: as of the first instant
    the owner had nothing, as of the last it had everything, and a window from the first to
    the last holds every entry, its cursors the same in any offset."""
    healthai.create_entry(owner, "CREDIT_ADD", "edge-1")
    newest = healthai.create_entry(owner, "CREDIT_ADD", "edge-2")

    assert healthai.data(AS_OF, o=owner, at=FIRST_INSTANT) == {
        "balance": {"balance": 0, "lastUpdated": None}
    }
    assert healthai.data(AS_OF, o=owner, at=LAST_INSTANT) == {
        "balance": {"balance": 20, "lastUpdated": newest["createdOn"]}
    }
    first_page = healthai.data(PAGE, o=owner, since=FIRST_INSTANT, until=LAST_INSTANT)
    assert [e["node"]["nonce"] for e in first_page["entries"]["edges"]] == ["edge-2"]
    assert first_page["entries"]["pageInfo"]["hasNextPage"] is True
    assert first_page["owner"] == {
        "entries": {"edges": [{"node": {"nonce": "edge-2"}}, {"node": {"nonce": "edge-1"}}]}
    }
    # The same window written in UTC is the same query: the cursor pages on in it.
    in_utc = {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59.999999Z"}
    cursor = first_page["entries"]["pageInfo"]["endCursor"]
    second_page = healthai.data(PAGE, o=owner, after=cursor, **in_utc)["entries"]
    assert second_page["edges"] == [{"node": {"nonce": "edge-1"}}]
    assert second_page["pageInfo"]["hasNextPage"] is False


def test_the_whole_corpus_was_sent_and_wrote_nothing(
    tally: Tally, figures: Callable[[str], None]
) -> None:
    """The module's figures, once every case above has run (in file order)."""
    if (tally.bad_cases, tally.valid_edges) != (len(CORPUS), len(EDGES)):
        pytest.skip("only part of the corpus ran (-k, --lf): no figures for the whole")
    assert (tally.server_errors, tally.rows_written) == (0, 0)
    figures(
        f"bad input: {tally.bad_cases} cases sent, {tally.server_errors} answered with a 5xx,"
        f" {tally.rows_written} rows written; {tally.valid_edges} valid edge cases stored"
        " exactly"
    )
