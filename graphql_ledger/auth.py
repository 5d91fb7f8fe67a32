"""Bearer tokens: verifying the JWT a request carries (PyJWT), issuing tokens for
`graphql-ledger token` and the development server, and the development secret kept in the
data directory. What a verified caller may do is `access.py`'s business.

A token is for one app: its `aud` is the app's name. `sub` is the owner an end user acts
as; a `scope` holding `ledger:service` makes it a backend service.
"""

import collections
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from graphql_ledger.access import SERVICE_SCOPE, Principal
from graphql_ledger.config import ConfigError, Settings

__all__ = [
    "Authenticator",
    "Unauthenticated",
    "authenticator_for",
    "development_secret",
    "issue_token",
    "signing_secret",
]

logger = logging.getLogger(__name__)

_SECRET_FILE = "jwt-secret"
_REMEMBERED_TOKENS = 4096
_REQUIRED_CLAIMS = ["sub", "exp"]


class Unauthenticated(Exception):
    """The request carries no usable token; the message says why, for the client."""


class Authenticator:
    """Turns a request's Authorization header into the Principal of one app.

    A client sends the same token with every request until it expires, and checking a
    signature costs more than the rest of a small request's Python work (measured), so
    tokens that verified are remembered, by their exact text, until their `exp`: a
    token's text fixes its signature and claims, so the same text verifies the same way.
    """

    def __init__(self, key: Any, algorithm: str, audience: str) -> None:
        self._key = key
        self._algorithm = algorithm
        self.audience = audience
        self._verified: collections.OrderedDict[str, tuple[Principal, float]] = (
            collections.OrderedDict()
        )

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller an `Authorization: Bearer <JWT>` header proves; raises
        Unauthenticated for a missing, malformed, expired, wrongly signed or
        wrong-audience token (`aud` must be exactly the app's name, not a list holding
        it), and for `alg: none`."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("a bearer token is required: Authorization: Bearer <token>")
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, expires = remembered
            if time.time() < expires:
                return principal
            del self._verified[token]
        principal, expires = self._verify(token)
        self._verified[token] = (principal, expires)
        if len(self._verified) > _REMEMBERED_TOKENS:
            self._verified.popitem(last=False)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                audience=self.audience,
                options={"require": _REQUIRED_CLAIMS, "strict_aud": True},
            )
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"invalid token: {error}") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("invalid token: sub must be a non-empty string")
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise Unauthenticated("invalid token: scope must be a space-separated string")
        scopes = scope.split()
        return Principal(subject=subject, is_service=SERVICE_SCOPE in scopes), float(claims["exp"])


class Unguarded(Authenticator):
    """LEDGER_AUTH=off: every request is a backend service."""

    def __init__(self, audience: str) -> None:
        super().__init__(key=None, algorithm="none", audience=audience)

    def authenticate(self, authorization: str | None) -> Principal:
        return Principal(subject="anonymous", is_service=True)


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
    if settings.jwt_secret is not None:
        return Authenticator(settings.jwt_secret, "HS256", app)
    if settings.jwt_public_key is not None:
        return _public_key_authenticator(settings.jwt_public_key, app)
    raise ConfigError(
        "authentication is on but no token key is configured: set LEDGER_JWT_SECRET or "
        "LEDGER_JWT_PUBLIC_KEY (or LEDGER_AUTH=off to serve without authentication)"
    )


def _public_key_authenticator(path: Path, app: str) -> Authenticator:
    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ConfigError(f"LEDGER_JWT_PUBLIC_KEY: cannot load {path}: {error}") from None
    if isinstance(key, RSAPublicKey):
        return Authenticator(key, "RS256", app)
    if isinstance(key, EllipticCurvePublicKey):
        return Authenticator(key, "ES256", app)
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
    if settings.jwt_public_key is not None:
        raise ConfigError(
            "tokens verified with LEDGER_JWT_PUBLIC_KEY are issued by your identity "
            "provider, which holds the private key"
        )
    if settings.configured_database_url(app) is None:
        return development_secret(settings.data_dir)
    raise ConfigError(
        f"{app} runs on a configured database and no LEDGER_JWT_SECRET is set; "
        "there is no key to sign a token with"
    )
