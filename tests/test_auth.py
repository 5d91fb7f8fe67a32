"""Authentication: who the caller is. Bearer JWTs over HTTP and WebSocket, HS256 and public
keys, LEDGER_AUTH=off, and the `graphql-ledger token` and `serve` commands."""

import base64
import hashlib
import hmac
import json
import logging
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from graphql_ledger import Settings, create_app
from healthai.operations import HealthAIOperation
from tests.support import (
    BALANCE,
    CLI,
    CREATE_ENTRY,
    ROOT,
    TEST_SECRET,
    ServerProcess,
    clean_environment,
    create_entry_request,
    service_headers,
    sql,
    user_headers,
)

WS = {"subprotocols": ["graphql-transport-ws"]}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


def claims(app: str = "healthai", **changes: Any) -> dict[str, Any]:
    """A backend service's claims for `app`; a change to None drops that claim."""
    base = {"sub": "svc", "aud": app, "exp": int(time.time()) + 600, "scope": "ledger:service"}
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def hs256_by_hand(key: bytes, payload: dict[str, Any]) -> str:
    """An HS256 token signed with any bytes, even those PyJWT refuses as an HMAC secret."""
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{segment(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def bearer(payload: dict[str, Any], key: str = TEST_SECRET) -> str:
    return f"Bearer {jwt.encode(payload, key, algorithm='HS256')}"


BAD_AUTHORIZATION: dict[str, Callable[[], str | None]] = {
    "no header": lambda: None,
    "basic scheme": lambda: bearer(claims()).replace("Bearer", "Basic"),
    "bearer with nothing": lambda: "Bearer",
    "token without scheme": lambda: bearer(claims()).removeprefix("Bearer "),
    "malformed token": lambda: "Bearer not.a.jwt",
    "alg none": lambda: f"Bearer {segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims())}.",
    "expired": lambda: bearer(claims(exp=int(time.time()) - 60)),
    "wrong aud": lambda: bearer(claims(aud="shopai")),
    "no aud": lambda: bearer(claims(aud=None)),
    "other secret": lambda: bearer(claims(), key="another-secret-of-at-least-32-bytes!"),
    "no sub": lambda: bearer(claims(sub=None)),
    "no exp": lambda: bearer(claims(exp=None)),
    "empty sub": lambda: bearer(claims(sub="")),
    "aud a list holding the app": lambda: bearer(claims(aud=["travelai", "healthai"])),
    "scope not a string": lambda: bearer(claims(scope=123)),
    "scope a mapping": lambda: bearer(claims(scope={"ledger:service": 1})),
}


def post(
    client: TestClient, query: str, headers: dict[str, str] | None = None, **variables: Any
) -> httpx.Response:
    return client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)


def credit_add(owner: str, nonce: str = "n1") -> dict[str, Any]:
    """CREATE_ENTRY's variables for a CREDIT_ADD, which only a backend service may create."""
    return {"input": {"ownerId": owner, "operation": "CREDIT_ADD", "nonce": nonce}}


def credit(client: TestClient, owner: str, headers: dict[str, str] | None) -> httpx.Response:
    return post(client, CREATE_ENTRY, headers, **credit_add(owner))


def no_balance(owner: str) -> dict[str, Any]:
    return {"data": {"balance": {"ownerId": owner, "balance": 0, "lastUpdated": None}}}


def entry_count(url: str, owner: str) -> int:
    count: int = sql(url, "SELECT count(*) FROM entries WHERE owner_id = :o", o=owner)[0][0]
    return count


def assert_unauthenticated(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    [error] = body["errors"]
    assert isinstance(error["message"], str) and error["message"]
    assert body == {
        "errors": [{"message": error["message"], "extensions": {"code": "UNAUTHENTICATED"}}]
    }


@contextmanager
def without_credentials(client: TestClient) -> Iterator[TestClient]:
    """`client` with no Authorization header of its own; its headers restored after."""
    saved = client.headers.copy()
    client.headers.pop("authorization", None)
    try:
        yield client
    finally:
        client.headers = saved


@pytest.fixture
def anonymous(healthai_app: TestClient) -> Iterator[TestClient]:
    with without_credentials(healthai_app) as client:
        yield client


@pytest.mark.parametrize("make", BAD_AUTHORIZATION.values(), ids=BAD_AUTHORIZATION.keys())
def test_a_request_without_a_valid_bearer_token_is_401_unauthenticated_and_writes_nothing(
    anonymous: TestClient, app_urls: dict[str, str], owner: str, make: Callable[[], str | None]
) -> None:
    authorization = make()
    headers = None if authorization is None else {"Authorization": authorization}

    assert_unauthenticated(credit(anonymous, owner, headers))
    assert_unauthenticated(post(anonymous, BALANCE, headers, ownerId=owner))
    assert entry_count(app_urls["healthai"], owner) == 0


def instant(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


SECRET = "the ledger's secret (LEDGER_JWT_SECRET, or the development secret)"
EXPIRED = int(time.time()) - 60
REFUSALS: dict[str, tuple[Callable[[], str | None], str]] = {
    "no header": (
        lambda: None,
        "a bearer token is required: Authorization: Bearer <token>",
    ),
    "a header that is not UTF-8": (
        lambda: "Bearer t7e3.e30.c2ln",
        "this token is not a JWT (three base64url parts separated by dots)",
    ),
    "malformed token": (
        lambda: "Bearer not.a.jwt",
        "this token is not a JWT (three base64url parts separated by dots)",
    ),
    "expired": (
        lambda: bearer(claims(exp=EXPIRED)),
        f"this token expired at {instant(EXPIRED)}",
    ),
    "wrong aud": (lambda: bearer(claims(aud="shopai")), "this token is for shopai, not healthai"),
    "no aud": (
        lambda: bearer(claims(aud=None)),
        "this token has no aud claim; this app's tokens carry aud healthai",
    ),
    "aud a list holding the app": (
        lambda: bearer(claims(aud=["travelai", "healthai"])),
        "this token is for several audiences (travelai, healthai); a token signed with the "
        "ledger's secret must be for healthai alone",
    ),
    "other secret": (
        lambda: bearer(claims(), key="another-secret-of-at-least-32-bytes!"),
        f"this token's signature does not verify with {SECRET}",
    ),
    "alg none": (
        lambda: f"Bearer {segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims())}.",
        f"this token is signed with none, and {SECRET} verifies HS256 tokens only",
    ),
    "no sub": (lambda: bearer(claims(sub=None)), "this token has no sub claim naming its owner"),
    "no exp": (
        lambda: bearer(claims(exp=None)),
        "this token has no exp claim; every token must expire",
    ),
    "scope a mapping": (
        lambda: bearer(claims(scope={"ledger:service": 1})),
        "this token's scope claim must be a space-separated string or a list of strings",
    ),
}


@pytest.mark.parametrize("make,message", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_refusal_says_what_is_wrong_with_the_token_in_the_users_terms(
    anonymous: TestClient, owner: str, make: Callable[[], str | None], message: str
) -> None:
    authorization = make()
    headers = None if authorization is None else {"Authorization": authorization}
    response = post(anonymous, BALANCE, headers, ownerId=owner)

    assert_unauthenticated(response)
    assert response.json()["errors"][0]["message"] == message


def test_a_token_for_another_app_is_refused_naming_both_apps(travelai_app: TestClient) -> None:
    with without_credentials(travelai_app) as travelai:
        response = post(travelai, BALANCE, service_headers("healthai"), ownerId="o")
    assert_unauthenticated(response)
    assert response.json()["errors"][0]["message"] == "this token is for healthai, not travelai"


def test_a_token_is_accepted_only_by_the_app_of_its_audience(
    healthai_app: TestClient, travelai_app: TestClient, app_urls: dict[str, str], owner: str
) -> None:
    healthai_token, travelai_token = service_headers("healthai"), service_headers("travelai")
    with (
        without_credentials(healthai_app) as healthai,
        without_credentials(travelai_app) as travelai,
    ):
        assert_unauthenticated(credit(travelai, owner, healthai_token))
        assert_unauthenticated(credit(healthai, owner, travelai_token))
        assert entry_count(app_urls["healthai"], owner) == 0
        assert entry_count(app_urls["travelai"], owner) == 0

        written = credit(healthai, owner, healthai_token).json()["data"]["createEntry"]
        assert (written["ownerId"], written["balanceAfter"]) == (owner, 10)
        read = post(travelai, BALANCE, travelai_token, ownerId=owner).json()
        assert read == no_balance(owner)
        read = post(healthai, BALANCE, healthai_token, ownerId=owner).json()
        assert read["data"]["balance"]["balance"] == 10


def test_graphiql_needs_no_token_but_a_query_over_get_does(anonymous: TestClient) -> None:
    page = anonymous.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()

    query = anonymous.get(
        "/graphql", params={"query": "{ operations { amount } }"}, headers={"Accept": "text/html"}
    )
    assert_unauthenticated(query)


@dataclass
class KeyedApp:
    client: TestClient
    algorithm: str
    private_key: Any
    public_pem: bytes
    described: str  # the key, as a refusal names it


def new_private_key(algorithm: str) -> Any:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module", params=["RS256", "ES256"])
def keyed_app(
    request: pytest.FixtureRequest,
    app_urls: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KeyedApp]:
    """healthai verifying tokens with a PEM public key file (LEDGER_JWT_PUBLIC_KEY)."""
    algorithm: str = request.param
    private_key = new_private_key(algorithm)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path_factory.mktemp("keys") / "public.pem"
    path.write_bytes(public_pem)
    settings = Settings(app_database_urls=app_urls, jwt_public_key=path)
    with TestClient(create_app("healthai", HealthAIOperation, settings)) as client:
        described = f"the public key in LEDGER_JWT_PUBLIC_KEY ({path})"
        yield KeyedApp(client, algorithm, private_key, public_pem, described)


def test_a_token_signed_with_the_configured_key_pair_is_accepted(
    keyed_app: KeyedApp, owner: str
) -> None:
    def sign(payload: dict[str, Any]) -> dict[str, str]:
        token = jwt.encode(payload, keyed_app.private_key, algorithm=keyed_app.algorithm)
        return {"Authorization": f"Bearer {token}"}

    written = credit(keyed_app.client, owner, sign(claims())).json()["data"]["createEntry"]
    assert (written["operation"], written["balanceAfter"]) == ("CREDIT_ADD", 10)
    as_owner = sign(claims(sub=owner, scope=None))
    read = post(keyed_app.client, BALANCE, as_owner, ownerId=owner).json()
    assert read["data"]["balance"]["balance"] == 10


def test_a_token_signed_with_another_key_pair_is_refused(
    keyed_app: KeyedApp, app_urls: dict[str, str], owner: str
) -> None:
    other = new_private_key(keyed_app.algorithm)
    token = jwt.encode(claims(), other, algorithm=keyed_app.algorithm)

    refused = credit(keyed_app.client, owner, {"Authorization": f"Bearer {token}"})
    assert_unauthenticated(refused)
    assert refused.json()["errors"][0]["message"] == (
        f"this token's signature does not verify with {keyed_app.described}"
    )
    assert entry_count(app_urls["healthai"], owner) == 0


def test_an_hs256_token_keyed_with_the_public_key_is_refused(
    keyed_app: KeyedApp, app_urls: dict[str, str], owner: str
) -> None:
    # Algorithm confusion: a verifier that let the token pick HS256 would use the public key,
    # which anyone may hold, as the HMAC secret.
    token = hs256_by_hand(keyed_app.public_pem, claims())

    refused = credit(keyed_app.client, owner, {"Authorization": f"Bearer {token}"})
    assert_unauthenticated(refused)
    assert refused.json()["errors"][0]["message"] == (
        f"this token is signed with HS256, and {keyed_app.described} verifies "
        f"{keyed_app.algorithm} tokens only"
    )
    assert entry_count(app_urls["healthai"], owner) == 0


def subscribe(ws: Any, id_: str, query: str, **variables: Any) -> dict[str, Any]:
    """Runs one operation over graphql-transport-ws; its single result's payload."""
    ws.send_json(
        {"id": id_, "type": "subscribe", "payload": {"query": query, "variables": variables}}
    )
    result = ws.receive_json()
    assert (result["type"], result["id"]) == ("next", id_), result
    assert ws.receive_json() == {"id": id_, "type": "complete"}
    payload: dict[str, Any] = result["payload"]
    return payload


REFUSED_INITS: dict[str, Callable[[], dict[str, Any] | None]] = {
    "no payload": lambda: None,
    "empty payload": lambda: {},
    "wrong token": lambda: {"Authorization": "Bearer x.y.z"},
    "other app's token": lambda: service_headers("travelai"),
    "expired token": lambda: {"Authorization": bearer(claims(exp=int(time.time()) - 60))},
}


@pytest.mark.parametrize("make", REFUSED_INITS.values(), ids=REFUSED_INITS.keys())
def test_a_websocket_without_a_valid_token_is_closed_with_4403_and_runs_nothing(
    anonymous: TestClient,
    app_urls: dict[str, str],
    owner: str,
    make: Callable[[], dict[str, Any] | None],
) -> None:
    payload = make()
    init = {"type": "connection_init"} | ({} if payload is None else {"payload": payload})
    operation = create_entry_request(owner, "CREDIT_ADD", "n1")
    with anonymous.websocket_connect("/graphql", **WS) as ws:
        ws.send_json(init)
        ws.send_json({"id": "1", "type": "subscribe", "payload": operation})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4403
    assert entry_count(app_urls["healthai"], owner) == 0


@pytest.mark.parametrize("key", ["Authorization", "authorization", "AUTHORIZATION"])
def test_a_websocket_with_a_service_token_in_connection_init_is_acked_and_runs_operations(
    anonymous: TestClient, app_urls: dict[str, str], owner: str, key: str
) -> None:
    token = service_headers("healthai")["Authorization"]
    with anonymous.websocket_connect("/graphql", **WS) as ws:
        ws.send_json({"type": "connection_init", "payload": {key: token}})
        assert ws.receive_json()["type"] == "connection_ack"

        written = subscribe(ws, "1", CREATE_ENTRY, **credit_add(owner))["data"]["createEntry"]
        assert (written["__typename"], written["balanceAfter"]) == ("LedgerEntry", 10)
        read = subscribe(ws, "2", BALANCE, ownerId=owner)
        assert read["data"]["balance"]["balance"] == 10
    assert entry_count(app_urls["healthai"], owner) == 1


def test_a_user_token_on_a_websocket_acts_as_that_user_and_is_forbidden_another_owner(
    anonymous: TestClient, owner: str
) -> None:
    other = f"{owner}-other"
    written = credit(anonymous, other, service_headers("healthai")).json()
    assert written["data"]["createEntry"]["balanceAfter"] == 10
    with anonymous.websocket_connect("/graphql", **WS) as ws:
        ws.send_json({"type": "connection_init", "payload": user_headers("healthai", owner)})
        assert ws.receive_json()["type"] == "connection_ack"

        theirs = subscribe(ws, "1", BALANCE, ownerId=other)
        assert theirs["data"] is None
        assert [error["extensions"]["code"] for error in theirs["errors"]] == ["FORBIDDEN"]
        mine = subscribe(ws, "2", BALANCE, ownerId=owner)
        assert mine == no_balance(owner)


def test_with_auth_off_the_app_warns_at_startup_and_treats_every_caller_as_a_service(
    app_urls: dict[str, str], owner: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="graphql_ledger.auth")
    settings = Settings(app_database_urls=app_urls, auth=False)
    with TestClient(create_app("healthai", HealthAIOperation, settings)) as client:
        warnings = [
            record.getMessage()
            for record in caplog.records
            if record.name == "graphql_ledger.auth" and record.levelno == logging.WARNING
        ]
        assert len(warnings) == 1, warnings
        assert "authentication is off" in warnings[0].lower()

        written = credit(client, owner, None).json()
        assert written["data"]["createEntry"]["balanceAfter"] == 10
    assert entry_count(app_urls["healthai"], owner) == 1


@pytest.mark.slow
def test_a_server_with_auth_off_warns_at_every_start(app_urls: dict[str, str], owner: str) -> None:
    env = clean_environment(
        HEALTHAI_DATABASE_URL=app_urls["healthai"], LEDGER_AUTH="off", LEDGER_JWT_SECRET=None
    )
    for start in range(2):
        with ServerProcess.uvicorn("healthai", env) as server:
            body = create_entry_request(owner, "CREDIT_ADD", f"n{start}")
            response = httpx.post(f"{server.url()}/graphql", json=body)
            assert response.json()["data"]["createEntry"]["balanceAfter"] == 10 * (start + 1)
        assert "authentication is off" in server.output().lower(), server.output()


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_serve_on_a_configured_database_without_a_token_key_refuses_to_start(
    app_urls: dict[str, str],
) -> None:
    env = clean_environment(HEALTHAI_DATABASE_URL=app_urls["healthai"], LEDGER_JWT_SECRET=None)
    result = run_cli("serve", "healthai", "--port", "1", env=env)

    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "LEDGER_JWT_SECRET" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def decoded(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, TEST_SECRET, algorithms=["HS256"], audience="healthai"))


def test_the_token_command_prints_an_end_user_token_for_the_app(
    anonymous: TestClient, owner: str
) -> None:
    result = run_cli("token", "--app", "healthai", "--sub", owner, env=clean_environment())
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()

    payload = decoded(token)
    assert (payload["sub"], payload["aud"]) == (owner, "healthai")
    assert abs(payload["exp"] - time.time() - 3600) < 30
    assert "ledger:service" not in str(payload.get("scope", ""))
    headers = {"Authorization": f"Bearer {token}"}
    assert post(anonymous, BALANCE, headers, ownerId=owner).json() == no_balance(owner)
    other = post(anonymous, BALANCE, headers, ownerId=f"{owner}-other").json()
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_the_token_command_prints_a_service_token_with_the_given_lifetime() -> None:
    args = ["token", "--app", "healthai", "--sub", "billing", "--service", "--ttl", "60"]
    result = run_cli(*args, env=clean_environment())
    assert result.returncode == 0, result.stderr

    payload = decoded(result.stdout.strip())
    assert (payload["sub"], payload["scope"]) == ("billing", "ledger:service")
    assert abs(payload["exp"] - time.time() - 60) < 30


def test_the_token_command_for_an_unknown_app_fails_listing_the_known_apps() -> None:
    result = run_cli("token", "--app", "shopai", "--sub", "alice", env=clean_environment())

    assert result.returncode != 0
    assert result.stdout == ""
    assert "shopai" in result.stderr
    assert "healthai" in result.stderr and "travelai" in result.stderr
