"""Bearer tokens: verifying the JWT a request carries (PyJWT), issuing tokens for
`graphql-ledger token` and the development server, and the development secret kept in the
data directory. What a verified caller may do is `access.py`'s business; the identity
provider's key set (LEDGER_JWKS_URL) is `jwks.py`'s.

A token is for one app: its `aud` is the app's audience (its name unless
`<APP>_JWT_AUDIENCE` says otherwise). The owner claim (`sub` by default) names the owner an
end user acts as; a scope claim holding `ledger:service` makes it a backend service.
"""

import base64
import collections
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from graphql_ledger.access import SERVICE_SCOPE, Principal
from graphql_ledger.config import ConfigError, Settings
from graphql_ledger.jwks import ProviderKeys
from graphql_ledger.token_refusals import NOT_A_JWT, refusal, shown

__all__ = [
    "Authenticator",
    "FixedKey",
    "TokenKeysUnavailable",
    "TokenRules",
    "Unauthenticated",
    "authenticator_for",
    "development_secret",
    "issue_token",
    "signing_secret",
]

logger = logging.getLogger(__name__)

_SECRET_FILE = "jwt-secret"
_REMEMBERED_TOKENS = 4096


class Unauthenticated(Exception):
    """The request carries no usable token; the message says why, for the client."""

    status = 401
    code = "UNAUTHENTICATED"
    outcome = "unauthenticated"  # the metrics' and the access log's word for it

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class TokenKeysUnavailable(Unauthenticated):
    """No key to verify any token with: the identity provider was never reached. The
    client is not at fault, so it is 503, not 401."""

    status = 503
    code = "SERVICE_UNAVAILABLE"
    outcome = "unavailable"

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": "10"}


class FixedKey(NamedTuple):
    """One configured key: the HS256 secret or a PEM public key."""

    key: Any
    algorithm: str
    described: str  # the key in the user's terms, for a wrong signature's refusal


@dataclass(frozen=True)
class TokenRules:
    """What a token's claims must say, besides its signature and `exp`."""

    audience: str
    issuer: str | None = None
    owner_claim: str = "sub"
    scope_claim: str = "scope"
    # The ledger's own HS256 tokens are for exactly one app: a secret shared by several
    # apps must not let one token act on them all.
    single_audience: bool = False


class Authenticator:
    """Turns a request's Authorization header into the Principal of one app.

    A client sends the same token with every request until it expires, and checking a
    signature costs more than the rest of a small request's Python work (measured), so
    tokens that verified are remembered, by their exact text, until their `exp`: a
    token's text fixes its signature and claims, so the same text verifies the same way
    while its key does. When the identity provider's set removes or changes a key, every
    remembered token is forgotten and verified again.
    """

    def __init__(self, keys: FixedKey | ProviderKeys, rules: TokenRules) -> None:
        self._keys = keys
        self._provider = keys if isinstance(keys, ProviderKeys) else None
        self.rules = rules
        self._generation = 0
        self._verified: collections.OrderedDict[str, tuple[Principal, float]] = (
            collections.OrderedDict()
        )

    async def start(self) -> None:
        """Fetches the identity provider's keys and keeps them fresh, if there is one."""
        if self._provider is not None:
            await self._provider.start()

    async def stop(self) -> None:
        if self._provider is not None:
            await self._provider.stop()

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller an `Authorization: Bearer <JWT>` header proves; raises
        Unauthenticated, naming the reason, for a missing, malformed, expired, wrongly
        signed, wrong-issuer or wrong-audience token and for `alg: none`, and
        TokenKeysUnavailable when no key of the identity provider is known."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("a bearer token is required: Authorization: Bearer <token>")
        provider = self._provider
        if provider is not None:
            if provider.due():
                await provider.refresh()
            if provider.generation != self._generation:
                self._verified.clear()
                self._generation = provider.generation
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, expires = remembered
            if time.time() < expires:
                return principal
            del self._verified[token]
        principal, expires = self._verify(token, await self._key_for(token))
        self._verified[token] = (principal, expires)
        if len(self._verified) > _REMEMBERED_TOKENS:
            self._verified.popitem(last=False)
        return principal

    async def _key_for(self, token: str) -> FixedKey:
        if self._provider is None:
            assert isinstance(self._keys, FixedKey)
            return self._keys
        provider = self._provider
        kid = _key_id(token)
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated(
                "this token names no key id (kid) in its header, so no key of the "
                "identity provider can verify it"
            )
        key = provider.key(kid)
        if key is None:
            await provider.refresh_for_unknown()
            key = provider.key(kid)
        if key is None:
            if provider.empty:
                raise TokenKeysUnavailable(
                    "the identity provider's signing keys (LEDGER_JWKS_URL) could not be "
                    "fetched yet, so no token can be verified; try again shortly"
                )
            raise Unauthenticated(
                f"this token is signed with key id {shown(kid)}, which the identity "
                "provider does not list"
            )
        described = f"the identity provider's key {shown(kid)}"
        return FixedKey(key.key, key.algorithm_name, described)  # PyJWK.key: the public key

    def _verify(self, token: str, key: FixedKey) -> tuple[Principal, float]:
        rules = self.rules
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                audience=rules.audience,
                issuer=rules.issuer,
                options={"require": ["exp"], "strict_aud": rules.single_audience},
            )
        except jwt.PyJWTError as error:
            described = (key.described, key.algorithm)
            raise Unauthenticated(
                refusal(error, token, rules.audience, rules.issuer, described)
            ) from None
        return self._principal(claims), float(claims["exp"])

    def _principal(self, claims: dict[str, Any]) -> Principal:
        scopes = _scopes(claims, self.rules.scope_claim)
        is_service = SERVICE_SCOPE in scopes
        claim = self.rules.owner_claim
        owner = claims.get(claim)
        if owner is None and is_service:  # a service need not stand for an owner
            claim, owner = "sub", claims.get("sub")
        if isinstance(owner, int) and not isinstance(owner, bool):
            owner = str(owner)
        if owner is None:
            raise Unauthenticated(f"this token has no {claim} claim naming its owner")
        if not isinstance(owner, str) or not owner:
            raise Unauthenticated(f"this token's {claim} claim must be a non-empty string")
        return Principal(subject=owner, is_service=is_service)


def _key_id(token: str) -> object:
    """The `kid` of a token's header, read alone: PyJWT's get_unverified_header decodes
    the whole token and cost 20 µs (measured); PyJWT checks the header again anyway."""
    segment = token.partition(".")[0]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:  # bad base64, bytes that are not UTF-8, not JSON
        raise Unauthenticated(NOT_A_JWT) from None
    if not isinstance(header, dict):
        raise Unauthenticated(NOT_A_JWT)
    return header.get("kid")


class Unguarded(Authenticator):
    """LEDGER_AUTH=off: every request is a backend service."""

    def __init__(self, audience: str) -> None:
        super().__init__(FixedKey(None, "none", "no key"), TokenRules(audience))

    async def authenticate(self, authorization: str | None) -> Principal:
        return Principal(subject="anonymous", is_service=True)


def _scopes(claims: dict[str, Any], claim: str) -> list[str]:
    value = claims.get(claim)
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(scope, str) for scope in value):
        return value
    raise Unauthenticated(
        f"this token's {claim} claim must be a space-separated string or a list of strings"
    )


def authenticator_for(settings: Settings, app: str) -> Authenticator:
    """The authenticator of `app`'s requests, from the configured key; raises ConfigError
    when authentication is on and no key is configured."""
    if not settings.auth:
        logger.warning(
            "authentication is OFF (LEDGER_AUTH=off): anyone who can reach %s can read "
            "and write every owner's credits",
            app,
        )
        return Unguarded(app)
    rules = TokenRules(
        audience=settings.audience(app),
        issuer=settings.jwt_issuer,
        owner_claim=settings.jwt_owner_claim,
        scope_claim=settings.jwt_scope_claim,
        single_audience=settings.jwt_secret is not None,
    )
    if settings.jwt_secret is not None:
        described = "the ledger's secret (LEDGER_JWT_SECRET, or the development secret)"
        return Authenticator(FixedKey(settings.jwt_secret, "HS256", described), rules)
    if settings.jwt_public_key is not None:
        return Authenticator(_public_key(settings.jwt_public_key), rules)
    if settings.jwks_url is not None:
        keys = ProviderKeys(settings.jwks_url, settings.jwks_ttl, settings.jwks_clock)
        return Authenticator(keys, rules)
    raise ConfigError(
        "authentication is on but no token key is configured: set LEDGER_JWT_SECRET, "
        "LEDGER_JWT_PUBLIC_KEY or LEDGER_JWKS_URL (or LEDGER_AUTH=off to serve without "
        "authentication)"
    )


def _public_key(path: Path) -> FixedKey:
    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ConfigError(f"LEDGER_JWT_PUBLIC_KEY: cannot load {path}: {error}") from None
    described = f"the public key in LEDGER_JWT_PUBLIC_KEY ({path})"
    if isinstance(key, RSAPublicKey):
        return FixedKey(key, "RS256", described)
    if isinstance(key, EllipticCurvePublicKey):
        return FixedKey(key, "ES256", described)
    raise ConfigError(f"LEDGER_JWT_PUBLIC_KEY: {path} is neither an RSA nor an EC key")


def issue_token(
    secret: str, app: str, subject: str, *, service: bool = False, ttl: int = 3600
) -> str:
    """An HS256 token for `app` acting as owner `subject`, or as a service."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "aud": app, "iat": now, "exp": now + ttl}
    if service:
        claims["scope"] = SERVICE_SCOPE
    return jwt.encode(claims, secret, algorithm="HS256")


def development_secret(data_dir: Path) -> str:
    """The development token secret kept in `data_dir`, made on first use."""
    path = data_dir / _SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def signing_secret(settings: Settings, app: str) -> str:
    """The secret `app`'s tokens are signed with: LEDGER_JWT_SECRET, or the development
    secret when `app` runs on the embedded database and no key is configured."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret
    if settings.jwt_public_key is not None or settings.jwks_url is not None:
        configured = "LEDGER_JWT_PUBLIC_KEY" if settings.jwks_url is None else "LEDGER_JWKS_URL"
        raise ConfigError(
            f"tokens verified with {configured} are issued by your identity provider, "
            "which holds the private key"
        )
    if settings.configured_database_url(app) is None:
        return development_secret(settings.data_dir)
    raise ConfigError(
        f"{app} runs on a configured database and no LEDGER_JWT_SECRET is set; "
        "there is no key to sign a token with"
    )
