"""Tokens from an identity provider's JSON Web Key Set (LEDGER_JWKS_URL): keys chosen by
`kid`, rotation without a restart, the provider going away, issuer, audience and claim
mapping. A real JWKS server on 127.0.0.1 serves keys the test makes; the app runs
in-process on a clock the test moves, so no test waits for a TTL to pass."""

import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2 as httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from graphql_ledger import Settings, create_app
from graphql_ledger.config import ConfigError
from healthai.operations import HealthAIOperation
from tests.support import BALANCE, CREATE_ENTRY, ServerProcess, clean_environment

ISSUER = "https://login.example.com/"
WS = {"subprotocols": ["graphql-transport-ws"]}
ALGORITHMS = {"rsa": "RS256", "ec": "ES256", "ed25519": "EdDSA"}


class Clock:
    """The monotonic clock the app's key set is timed by; only the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Provider:
    """An identity provider's JWKS endpoint: serves the public half of the keys it
    publishes, counts the fetches, can hold its answers, stop and start again."""

    def __init__(self) -> None:
        self.private: dict[str, Any] = {}
        self.published: list[str] = []
        self.fetches = 0
        self.answering = threading.Event()
        self.answering.set()
        self.asked = threading.Event()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def new_key(self, kid: str, kind: str = "rsa") -> str:
        if kind == "rsa":
            self.private[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif kind == "ec":
            self.private[kid] = ec.generate_private_key(ec.SECP256R1())
        else:
            self.private[kid] = ed25519.Ed25519PrivateKey.generate()
        return kid

    def publish(self, *kids: str) -> None:
        self.published = list(kids)

    def document(self) -> bytes:
        keys = []
        for kid in self.published:
            public = self.private[kid].public_key()
            jwk = _jwk(public)
            # RSA keys say their algorithm, as Auth0's and Keycloak's do; EC and OKP keys
            # leave PyJWT to infer it from the curve.
            extra = {"alg": "RS256"} if isinstance(public, rsa.RSAPublicKey) else {}
            keys.append(jwk | {"kid": kid, "use": "sig"} | extra)
        keys.append(
            {"kty": "RSA", "use": "enc", "kid": "encryption-only", "n": "AQAB", "e": "AQAB"}
        )
        return json.dumps({"keys": keys}).encode()

    def sign(self, kid: str, claims: dict[str, Any], *, signer: str | None = None) -> str:
        """A token naming `kid`, signed with `signer`'s key (by default `kid`'s own)."""
        key = self.private[signer or kid]
        return jwt.encode(claims, key, algorithm=_algorithm(key), headers={"kid": kid})

    def start(self) -> "Provider":
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.fetches += 1
                provider.asked.set()
                provider.answering.wait(10)
                body = provider.document()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None


def _jwk(public: Any) -> dict[str, Any]:
    """`public` as a JWK, by PyJWT's own encoders."""
    if isinstance(public, rsa.RSAPublicKey):
        return RSAAlgorithm.to_jwk(public, as_dict=True)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return ECAlgorithm.to_jwk(public, as_dict=True)
    return OKPAlgorithm.to_jwk(public, as_dict=True)


def _algorithm(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ES256"
    return "EdDSA"


def claims(**changes: Any) -> dict[str, Any]:
    """An end user's claims as an identity provider issues them; None drops a claim."""
    base = {
        "iss": ISSUER,
        "sub": "auth0|alice",
        "aud": "healthai",
        "exp": int(time.time()) + 600,
        "iat": int(time.time()),
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def service(**changes: Any) -> dict[str, Any]:
    return claims(sub="billing@clients", scope="read:things ledger:service", **changes)


@pytest.fixture
def provider() -> Iterator[Provider]:
    provider = Provider()
    provider.new_key("k1")
    provider.publish("k1")
    provider.start()
    yield provider
    if provider._server is not None:
        provider.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@contextmanager
def serving(
    provider: Provider, clock: Clock, app_urls: dict[str, str], **settings: Any
) -> Iterator[TestClient]:
    """healthai verifying tokens with `provider`'s keys, timed by `clock`."""
    config = Settings(
        app_database_urls=app_urls,
        jwks_url=provider.url,
        jwks_clock=clock,
        jwt_issuer=ISSUER,
        **settings,
    )
    with TestClient(create_app("healthai", HealthAIOperation, config)) as client:
        yield client


def post(client: TestClient, token: str, query: str, **variables: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)


def balance_of(client: TestClient, token: str, owner: str) -> int:
    response = post(client, token, BALANCE, ownerId=owner)
    assert response.status_code == 200, response.text
    value: int = response.json()["data"]["balance"]["balance"]
    return value


def credit(client: TestClient, token: str, owner: str, nonce: str = "n1") -> dict[str, Any]:
    variables = {"input": {"ownerId": owner, "operation": "CREDIT_ADD", "nonce": nonce}}
    response = post(client, token, CREATE_ENTRY, **variables)
    assert response.status_code == 200, response.text
    written: dict[str, Any] = response.json()["data"]["createEntry"]
    return written


def refusal(response: httpx.Response, status: int = 401) -> str:
    """The message of a refusal made before GraphQL, checking its shape."""
    assert response.status_code == status, response.text
    [error] = response.json()["errors"]
    code = "UNAUTHENTICATED" if status == 401 else "SERVICE_UNAVAILABLE"
    assert error["extensions"] == {"code": code}
    message: str = error["message"]
    return message


def unknown_key(kid: str) -> str:
    return f"this token is signed with key id {kid}, which the identity provider does not list"


@pytest.mark.parametrize("kind", ["rsa", "ec", "ed25519"])
def test_a_token_of_each_listed_key_is_verified_with_the_key_its_kid_names(
    provider: Provider, clock: Clock, app_urls: dict[str, str], owner: str, kind: str
) -> None:
    kid = provider.new_key(f"{kind}-key", kind)
    provider.publish("k1", kid)
    with serving(provider, clock, app_urls) as client:
        written = credit(client, provider.sign(kid, service()), owner)
        assert (written["ownerId"], written["balanceAfter"]) == (owner, 10)
        user = provider.sign(kid, claims(sub=owner))
        assert balance_of(client, user, owner) == 10
        other = provider.sign("k1", claims(sub=owner))
        assert balance_of(client, other, owner) == 10
        assert provider.fetches == 1  # fetched at start, then only read


def test_a_rotation_needs_no_restart_and_a_removed_key_stops_working_within_the_ttl(
    provider: Provider, clock: Clock, app_urls: dict[str, str], owner: str
) -> None:
    with serving(provider, clock, app_urls, jwks_ttl=300) as client:
        old = provider.sign("k1", claims(sub=owner))
        assert balance_of(client, old, owner) == 0  # verified, and now remembered
        provider.new_key("k2", "ec")
        provider.publish("k1", "k2")
        new = provider.sign("k2", claims(sub=owner))
        assert balance_of(client, new, owner) == 0  # an unknown kid: fetched at once
        assert provider.fetches == 2

        provider.publish("k2")  # the provider drops k1
        clock.advance(299)
        assert balance_of(client, old, owner) == 0  # the TTL has not run out
        assert provider.fetches == 2
        clock.advance(1)
        assert refusal(post(client, old, BALANCE, ownerId=owner)) == unknown_key("k1")
        assert balance_of(client, new, owner) == 0
        # One refresh for the TTL, one for k1 as an unknown kid (10 s after the last).
        assert provider.fetches == 4


def test_a_key_replaced_under_the_same_kid_refuses_the_tokens_of_the_old_one(
    provider: Provider, clock: Clock, app_urls: dict[str, str], owner: str
) -> None:
    with serving(provider, clock, app_urls, jwks_ttl=60) as client:
        old = provider.sign("k1", claims(sub=owner))
        assert balance_of(client, old, owner) == 0
        provider.new_key("k1", "ec")  # same kid, another key (and algorithm)
        clock.advance(60)
        message = refusal(post(client, old, BALANCE, ownerId=owner))
        assert message == (
            "this token is signed with RS256, and the identity provider's key k1 verifies "
            "ES256 tokens only"
        )
        assert balance_of(client, provider.sign("k1", claims(sub=owner)), owner) == 0


def test_an_unknown_kid_refreshes_the_keys_at_most_once_every_10_seconds(
    provider: Provider, clock: Clock, app_urls: dict[str, str], owner: str
) -> None:
    with serving(provider, clock, app_urls) as client:
        provider.new_key("k3")
        token = provider.sign("k3", claims(sub=owner))
        assert refusal(post(client, token, BALANCE, ownerId=owner)) == unknown_key("k3")
        assert provider.fetches == 2
        provider.publish("k1", "k3")
        clock.advance(9.9)
        assert refusal(post(client, token, BALANCE, ownerId=owner)) == unknown_key("k3")
        assert provider.fetches == 2
        clock.advance(0.1)
        assert balance_of(client, token, owner) == 0
        assert provider.fetches == 3


def test_requests_for_one_unknown_kid_share_one_fetch_and_known_keys_do_not_wait_for_it(
    provider: Provider, clock: Clock, app_urls: dict[str, str], owner: str
) -> None:
    with serving(provider, clock, app_urls) as client:
        provider.new_key("k4")
        provider.publish("k1", "k4")
        provider.answering.clear()
        provider.asked.clear()
        tokens = [provider.sign("k4", claims(sub=owner, jti=str(n))) for n in range(6)]
        with concurrent.futures.ThreadPoolExecutor(len(tokens)) as pool:
            waiting = [pool.submit(balance_of, client, token, owner) for token in tokens]
            assert provider.asked.wait(10)
            # While the provider holds its answer, a token of a known key is served.
            assert balance_of(client, provider.sign("k1", claims(sub=owner)), owner) == 0
            done, _ = concurrent.futures.wait(waiting, timeout=0.5)
            assert not done  # every k4 request waits for the one fetch in flight
            provider.answering.set()
            assert [future.result(10) for future in waiting] == [0] * len(tokens)
        assert provider.fetches == 2


def test_while_the_provider_is_unreachable_cached_keys_keep_working(
    provider: Provider, clock: Clock, app_urls: dict[str, str], owner: str
) -> None:
    with serving(provider, clock, app_urls, jwks_ttl=60) as client:
        remembered = provider.sign("k1", claims(sub=owner))
        assert balance_of(client, remembered, owner) == 0
        provider.stop()
        clock.advance(600)
        assert balance_of(client, remembered, owner) == 0
        fresh = provider.sign("k1", claims(sub=owner, jti="fresh"))
        assert balance_of(client, fresh, owner) == 0
        provider.new_key("k5")
        unknown = provider.sign("k5", claims(sub=owner))
        assert refusal(post(client, unknown, BALANCE, ownerId=owner)) == unknown_key("k5")

        provider.publish("k1", "k5")
        provider.start()  # back, on the same port, with the new key
        clock.advance(10)
        assert balance_of(client, unknown, owner) == 0


def test_with_no_key_ever_fetched_requests_get_503_until_the_provider_answers(
    provider: Provider, clock: Clock, app_urls: dict[str, str], owner: str
) -> None:
    provider.stop()
    token = provider.sign("k1", claims(sub=owner))
    with serving(provider, clock, app_urls) as client:
        response = post(client, token, BALANCE, ownerId=owner)
        assert "could not be fetched yet" in refusal(response, 503)
        assert response.headers["retry-after"] == "10"
        with client.websocket_connect("/graphql", **WS) as ws:
            ws.send_json(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            )
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
        assert closed.value.code == 4403
        not_a_jwt = post(client, "garbage", BALANCE, ownerId=owner)
        assert refusal(not_a_jwt).startswith("this token is not a JWT")

        provider.start()
        clock.advance(10)
        assert balance_of(client, token, owner) == 0


def test_a_websocket_refused_for_want_of_keys_is_logged_as_unavailable(
    provider: Provider,
    clock: Clock,
    app_urls: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider.stop()
    token = provider.sign("k1", service())
    caplog.set_level(logging.INFO, logger="graphql_ledger")
    with (
        serving(provider, clock, app_urls) as client,
        client.websocket_connect("/graphql", **WS) as ws,
    ):
        ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()
    refused = [r.getMessage() for r in caplog.records if "WebSocket refused" in r.getMessage()]
    assert refused == [
        "WebSocket refused (SERVICE_UNAVAILABLE): the identity provider's signing keys "
        "(LEDGER_JWKS_URL) could not be fetched yet, so no token can be verified; try again "
        "shortly"
    ]


def expired_at(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_each_refusal_says_what_is_wrong_with_the_token(
    provider: Provider, clock: Clock, app_urls: dict[str, str], owner: str
) -> None:
    provider.new_key("other")
    expired = int(time.time()) - 60
    cases = {
        "not a JWT": (
            "t7e3.e30.c2ln",  # its header decodes to bytes that are not UTF-8
            "this token is not a JWT (three base64url parts separated by dots)",
        ),
        "other issuer": (
            provider.sign("k1", claims(iss="https://evil.example/")),
            f"this token was issued by https://evil.example/, not {ISSUER}",
        ),
        "no issuer": (
            provider.sign("k1", claims(iss=None)),
            f"this token has no iss claim; tokens must be issued by {ISSUER}",
        ),
        "other audience": (
            provider.sign("k1", claims(aud="travelai")),
            "this token is for travelai, not healthai",
        ),
        "other audiences": (
            provider.sign("k1", claims(aud=["travelai", "https://login.example.com/userinfo"])),
            "this token is for travelai, https://login.example.com/userinfo, not healthai",
        ),
        "expired": (
            provider.sign("k1", claims(exp=expired)),
            f"this token expired at {expired_at(expired)}",
        ),
        "no exp": (
            provider.sign("k1", claims(exp=None)),
            "this token has no exp claim; every token must expire",
        ),
        "bad signature": (
            provider.sign("k1", claims(), signer="other"),
            "this token's signature does not verify with the identity provider's key k1",
        ),
        "HS256 keyed with anything": (
            jwt.encode(claims(), "a-secret-of-thirty-two-bytes-or-more!", headers={"kid": "k1"}),
            "this token is signed with HS256, and the identity provider's key k1 verifies "
            "RS256 tokens only",
        ),
        "no kid": (
            jwt.encode(claims(), provider.private["k1"], algorithm="RS256"),
            "this token names no key id (kid) in its header, so no key of the identity "
            "provider can verify it",
        ),
        "no owner": (
            provider.sign("k1", claims(sub=None)),
            "this token has no sub claim naming its owner",
        ),
        "scope a number": (
            provider.sign("k1", claims(scope=7)),
            "this token's scope claim must be a space-separated string or a list of strings",
        ),
    }
    with serving(provider, clock, app_urls) as client:
        for name, (token, message) in cases.items():
            response = post(client, token, BALANCE, ownerId=owner)
            assert refusal(response) == message, name
            assert response.headers["www-authenticate"] == "Bearer"


def test_aud_may_be_a_list_holding_the_configured_audience(
    provider: Provider, clock: Clock, app_urls: dict[str, str], owner: str
) -> None:
    audience = "https://ledger.example.com/healthai"
    with serving(provider, clock, app_urls, jwt_audiences={"healthai": audience}) as client:
        as_list = provider.sign("k1", claims(sub=owner, aud=[audience, f"{ISSUER}userinfo"]))
        assert balance_of(client, as_list, owner) == 0
        as_string = provider.sign("k1", claims(sub=owner, aud=audience))
        assert balance_of(client, as_string, owner) == 0
        by_name = provider.sign("k1", claims(sub=owner, aud="healthai"))
        message = refusal(post(client, by_name, BALANCE, ownerId=owner))
        assert message == f"this token is for healthai, not {audience}"


@pytest.mark.parametrize("scope_claim", ["permissions", "scp"])
def test_the_owner_and_the_scopes_come_from_the_configured_claims(
    provider: Provider,
    clock: Clock,
    app_urls: dict[str, str],
    owner: str,
    scope_claim: str,
) -> None:
    owner_claim = "https://example.com/user_id"
    mapped = {"jwt_owner_claim": owner_claim, "jwt_scope_claim": scope_claim}
    with serving(provider, clock, app_urls, **mapped) as client:
        backend = provider.sign(
            "k1", claims(sub="m2m@clients", **{scope_claim: ["ledger:service"]})
        )
        assert credit(client, backend, owner)["balanceAfter"] == 10
        user = provider.sign("k1", claims(**{owner_claim: owner, scope_claim: ["read:balance"]}))
        assert balance_of(client, user, owner) == 10
        theirs = post(client, user, BALANCE, ownerId=f"{owner}-other").json()
        assert theirs["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        # A scope string in the default claim means nothing once another claim is named.
        in_scope = provider.sign("k1", claims(**{owner_claim: owner, "scope": "ledger:service"}))
        refused = credit(client, in_scope, owner, nonce="n2")
        assert refused["__typename"] == "OperationNotAllowed"
        no_owner = provider.sign("k1", claims())
        message = refusal(post(client, no_owner, BALANCE, ownerId=owner))
        assert message == f"this token has no {owner_claim} claim naming its owner"


def test_a_websocket_proves_itself_with_a_provider_token_in_connection_init(
    provider: Provider, clock: Clock, app_urls: dict[str, str], owner: str
) -> None:
    mapped = {"jwt_owner_claim": "uid", "jwt_scope_claim": "permissions"}
    with serving(provider, clock, app_urls, **mapped) as client:
        backend = provider.sign("k1", claims(permissions=["ledger:service"]))
        assert credit(client, backend, owner)["balanceAfter"] == 10
        provider.new_key("ws-key", "ec")
        provider.publish("k1", "ws-key")
        user = provider.sign("ws-key", claims(uid=owner))
        with client.websocket_connect("/graphql", **WS) as ws:
            ws.send_json(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {user}"}}
            )
            assert ws.receive_json() == {"type": "connection_ack"}
            operation = {"query": BALANCE, "variables": {"ownerId": owner}}
            ws.send_json({"id": "1", "type": "subscribe", "payload": operation})
            result = ws.receive_json()
            assert result["payload"]["data"]["balance"]["balance"] == 10
        wrong = provider.sign("k1", claims(uid=owner, iss="https://evil.example/"))
        with client.websocket_connect("/graphql", **WS) as ws:
            ws.send_json(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {wrong}"}}
            )
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
        assert closed.value.code == 4403


def test_no_token_and_no_key_reaches_the_logs(
    provider: Provider,
    clock: Clock,
    app_urls: dict[str, str],
    owner: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with serving(provider, clock, app_urls, jwks_ttl=60) as client:
        good = provider.sign("k1", claims(sub=owner))
        expired = provider.sign("k1", claims(sub=owner, exp=int(time.time()) - 5))
        provider.new_key("k6")
        unknown = provider.sign("k6", claims(sub=owner))
        for token in (good, expired, unknown):
            post(client, token, BALANCE, ownerId=owner)
        provider.stop()
        clock.advance(60)
        post(client, good, BALANCE, ownerId=owner)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "could not be fetched" in logged  # the outage was logged...
    published = json.loads(provider.document())["keys"][0]
    for secret in (good, expired, unknown, published["n"]):
        assert secret not in logged  # ...and neither a token nor a key


def test_the_token_key_settings_are_read_from_the_environment() -> None:
    env = {
        "LEDGER_JWKS_URL": "https://tenant.example.auth0.com/.well-known/jwks.json",
        "LEDGER_JWKS_TTL": "120",
        "LEDGER_JWT_ISSUER": "https://tenant.example.auth0.com/",
        "HEALTHAI_JWT_AUDIENCE": "https://api.example.com/healthai",
        "LEDGER_JWT_OWNER_CLAIM": "https://example.com/user_id",
        "LEDGER_JWT_SCOPE_CLAIM": "permissions",
    }
    settings = Settings.from_env(env)
    assert (settings.jwks_url, settings.jwks_ttl) == (env["LEDGER_JWKS_URL"], 120.0)
    assert settings.jwt_issuer == "https://tenant.example.auth0.com/"
    assert settings.audience("healthai") == "https://api.example.com/healthai"
    assert settings.audience("travelai") == "travelai"
    assert (settings.jwt_owner_claim, settings.jwt_scope_claim) == (
        "https://example.com/user_id",
        "permissions",
    )
    defaults = Settings.from_env({})
    assert (defaults.jwks_url, defaults.jwks_ttl, defaults.jwt_issuer) == (None, 300.0, None)
    assert (defaults.jwt_owner_claim, defaults.jwt_scope_claim) == ("sub", "scope")


BAD_ENVIRONMENTS = {
    "secret and JWKS": (
        {"LEDGER_JWT_SECRET": "s", "LEDGER_JWKS_URL": "https://idp.example/jwks"},
        "set one of LEDGER_JWT_SECRET, LEDGER_JWT_PUBLIC_KEY, LEDGER_JWKS_URL, not "
        "LEDGER_JWT_SECRET and LEDGER_JWKS_URL",
    ),
    "public key and JWKS": (
        {"LEDGER_JWT_PUBLIC_KEY": "/k.pem", "LEDGER_JWKS_URL": "https://idp.example/jwks"},
        "not LEDGER_JWT_PUBLIC_KEY and LEDGER_JWKS_URL",
    ),
    "all three": (
        {"LEDGER_JWT_SECRET": "s", "LEDGER_JWT_PUBLIC_KEY": "/k.pem", "LEDGER_JWKS_URL": "x"},
        "not LEDGER_JWT_SECRET and LEDGER_JWT_PUBLIC_KEY and LEDGER_JWKS_URL",
    ),
    "not a URL": (
        {"LEDGER_JWKS_URL": "file:///etc/passwd"},
        "LEDGER_JWKS_URL must be an http(s) URL of a JSON Web Key Set, not 'file:///etc/passwd'",
    ),
    "TTL zero": ({"LEDGER_JWKS_TTL": "0"}, "LEDGER_JWKS_TTL must be a positive number, not '0'"),
    "one audience for all": (
        {"LEDGER_JWT_AUDIENCE": "api"},
        "LEDGER_JWT_AUDIENCE is not read: each app has its own audience",
    ),
}


@pytest.mark.parametrize("env,message", BAD_ENVIRONMENTS.values(), ids=BAD_ENVIRONMENTS.keys())
def test_unusable_token_settings_stop_the_service_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(env)
    assert message in str(refused.value)


@pytest.mark.slow
def test_a_server_configured_by_environment_accepts_a_provider_token(
    provider: Provider, app_urls: dict[str, str], owner: str
) -> None:
    env = clean_environment(
        HEALTHAI_DATABASE_URL=app_urls["healthai"],
        LEDGER_JWT_SECRET=None,
        LEDGER_JWKS_URL=provider.url,
        LEDGER_JWT_ISSUER=ISSUER,
        HEALTHAI_JWT_AUDIENCE="https://api.example.com/healthai",
        LEDGER_JWT_SCOPE_CLAIM="permissions",
    )
    audience = "https://api.example.com/healthai"
    with ServerProcess.uvicorn("healthai", env) as server:
        backend = provider.sign("k1", claims(aud=[audience], permissions=["ledger:service"]))
        body = {
            "query": CREATE_ENTRY,
            "variables": {"input": {"ownerId": owner, "operation": "CREDIT_ADD", "nonce": "n"}},
        }
        headers = {"Authorization": f"Bearer {backend}"}
        written = httpx.post(f"{server.url()}/graphql", json=body, headers=headers).json()
        assert written["data"]["createEntry"]["balanceAfter"] == 10
        refused = httpx.post(
            f"{server.url()}/graphql",
            json=body,
            headers={"Authorization": f"Bearer {provider.sign('k1', claims())}"},
        )
        assert refusal(refused) == f"this token is for healthai, not {audience}"
