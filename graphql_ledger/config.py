"""Configuration, read once from the environment when a process starts. Every variable the
service reads is named here and documented in the README's Configuration section."""

import base64
import binascii
import os
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import make_url

__all__ = ["ConfigError", "Settings", "Webhook"]

_APP_URL_SUFFIX = "_DATABASE_URL"
_LISTEN_URL_SUFFIX = "_LISTEN_DATABASE_URL"
_READ_URL_SUFFIX = "_READ_DATABASE_URL"
_AUDIENCE_SUFFIX = "_JWT_AUDIENCE"
_TOKEN_KEYS = ("LEDGER_JWT_SECRET", "LEDGER_JWT_PUBLIC_KEY", "LEDGER_JWKS_URL")
_WEBHOOK_URL_SUFFIX = "_WEBHOOK_URL"
_WEBHOOK_SECRET_SUFFIX = "_WEBHOOK_SECRET"
_LOW_BALANCE_SUFFIX = "_LOW_BALANCE"
_SECRET_PREFIX = "whsec_"


class ConfigError(Exception):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True)
class Webhook:
    """An app's receiver of events: where they are POSTed, and the key (the secret's
    decoded bytes) they are signed with. Neither the key nor the secret is ever shown."""

    url: str
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class Settings:
    """Everything a ledger process is configured with.

    Attributes:
        app_database_urls: `<APP>_DATABASE_URL` values by lower-case app name.
        app_listen_urls: `<APP>_LISTEN_DATABASE_URL`, a URL reaching PostgreSQL itself for
            the live balance feed's LISTEN when the app's URL goes through a transaction
            pooler such as PgBouncer; by default the app's URL.
        app_read_urls: `<APP>_READ_DATABASE_URL`, the app's database on its streaming
            replicas (one URL or several, comma-separated), which serve its reads when
            fresh enough (storage/replicas.py); none by default.
        replica_wait: `LEDGER_REPLICA_WAIT`, seconds a read that carries a position waits
            for a replica to replay that far before the primary serves it.
        max_replica_lag: `LEDGER_MAX_REPLICA_LAG`, seconds of the primary's WAL a replica
            may still have to replay and serve reads that carry no position.
        database_url: `DATABASE_URL`, a server on which each app uses a database named
            after the app.
        data_dir: `LEDGER_DATA_DIR`, where the embedded PostgreSQL keeps its data (and the
            development token secret) when no database is configured.
        pool_size: `LEDGER_DB_POOL_SIZE`, connections each process keeps per app database.
        pool_timeout: `LEDGER_DB_POOL_TIMEOUT`, seconds a request waits for a connection.
        db_timeout: `LEDGER_DB_TIMEOUT`, seconds one unit of work may take, from waiting
            for a connection to the statement's answer, before the request fails with
            SERVICE_UNAVAILABLE.
        statement_cache: `LEDGER_DB_STATEMENT_CACHE`, prepared statements kept per
            connection; 0 behind PgBouncer in transaction mode.
        log_format: `LEDGER_LOG_FORMAT`, `json` (one object per line) or `text`; None
            (unset): `text` in development mode, `json` otherwise.
        auth: `LEDGER_AUTH` (`on` or `off`): whether requests need a bearer token.
        jwt_secret: `LEDGER_JWT_SECRET`, the HS256 key tokens are signed with.
        jwt_public_key: `LEDGER_JWT_PUBLIC_KEY`, a PEM file of the RS256 or ES256 public
            key tokens are verified with, when an identity provider signs them.
        jwks_url: `LEDGER_JWKS_URL`, the identity provider's JSON Web Key Set: tokens are
            verified with the key their `kid` names. One of `jwt_secret`,
            `jwt_public_key` and `jwks_url` at most.
        jwks_ttl: `LEDGER_JWKS_TTL`, seconds the fetched key set is used before it is
            fetched again.
        jwks_clock: the monotonic clock that TTL and the unknown-key refresh limit are
            measured on; not an environment variable (tests drive it).
        jwt_issuer: `LEDGER_JWT_ISSUER`, the `iss` every token must carry, when set.
        jwt_audiences: `<APP>_JWT_AUDIENCE` values by lower-case app name: the `aud` that
            app's tokens carry, by default the app's name (`audience()`).
        jwt_owner_claim: `LEDGER_JWT_OWNER_CLAIM`, the claim naming the owner an end-user
            token stands for.
        jwt_scope_claim: `LEDGER_JWT_SCOPE_CLAIM`, the claim holding the token's scopes (a
            space-separated string or a list of strings).
        introspection: `LEDGER_INTROSPECTION` (`on` or `off`).
        cors_origins: `LEDGER_CORS_ORIGINS`, comma-separated origins browsers may call
            from; none by default.
        max_depth, max_aliases, max_tokens: `LEDGER_MAX_DEPTH`, `LEDGER_MAX_ALIASES`,
            `LEDGER_MAX_TOKENS`, limits on one GraphQL document.
        max_body_bytes: `LEDGER_MAX_BODY_BYTES`, the largest request body accepted.
        max_websockets: `LEDGER_MAX_WEBSOCKETS`, open WebSocket connections per process.
        max_subscriptions: `LEDGER_MAX_SUBSCRIPTIONS`, operations at once per connection.
        subscription_buffer: `LEDGER_SUBSCRIPTION_BUFFER`, balances held for a subscriber
            that reads slower than they change (the newest are kept).
        webhooks: by lower-case app name, `<APP>_WEBHOOK_URL` and `<APP>_WEBHOOK_SECRET`
            (Standard Webhooks' `whsec_` + base64 of a 24 to 64 byte key), both or neither.
        low_balances: `<APP>_LOW_BALANCE`, the app's low-balance threshold; none if unset.
        webhook_timeout: `LEDGER_WEBHOOK_TIMEOUT`, seconds a receiver has to answer.
        webhook_retry_base: `LEDGER_WEBHOOK_RETRY_BASE`, seconds before the first retry;
            each retry waits twice as long, up to `LEDGER_WEBHOOK_RETRY_MAX`.
        webhook_retry_window: `LEDGER_WEBHOOK_RETRY_WINDOW`, seconds an event is retried
            before it is dead-lettered.
        webhook_retention: `LEDGER_WEBHOOK_RETENTION`, seconds a delivered event is kept.
        webhook_poll: `LEDGER_WEBHOOK_POLL`, seconds the delivery worker waits when no
            event is due.
        webhook_worker: `LEDGER_WEBHOOK_WORKER` (`on` or `off`): whether server processes
            deliver events themselves; off, a `graphql-ledger deliver` process does.
        expiry_interval: `LEDGER_EXPIRY_INTERVAL`, seconds between two expiry passes of a
            server process (each books what has lapsed of expiring grants); at most 50.
    """

    app_database_urls: Mapping[str, str] = field(default_factory=dict)
    app_listen_urls: Mapping[str, str] = field(default_factory=dict)
    app_read_urls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    replica_wait: float = 1.0
    max_replica_lag: float = 1.0
    database_url: str | None = None
    data_dir: Path = Path(".ledger")
    pool_size: int = 10
    pool_timeout: float = 5.0
    db_timeout: float = 5.0
    statement_cache: int = 100
    log_format: str | None = None
    auth: bool = True
    jwt_secret: str | None = None
    jwt_public_key: Path | None = None
    jwks_url: str | None = None
    jwks_ttl: float = 300.0
    jwks_clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)
    jwt_issuer: str | None = None
    jwt_audiences: Mapping[str, str] = field(default_factory=dict)
    jwt_owner_claim: str = "sub"
    jwt_scope_claim: str = "scope"
    introspection: bool = True
    cors_origins: tuple[str, ...] = ()
    max_depth: int = 10
    max_aliases: int = 100
    max_tokens: int = 2000
    max_body_bytes: int = 1024 * 1024
    max_websockets: int = 1000
    max_subscriptions: int = 20
    subscription_buffer: int = 16
    webhooks: Mapping[str, Webhook] = field(default_factory=dict)
    low_balances: Mapping[str, int] = field(default_factory=dict)
    webhook_timeout: float = 10.0
    webhook_retry_base: float = 5.0
    webhook_retry_max: float = 3600.0
    webhook_retry_window: float = 24 * 3600.0
    webhook_retention: float = 7 * 24 * 3600.0
    webhook_poll: float = 0.5
    webhook_worker: bool = True
    expiry_interval: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Settings":
        app_urls = {
            name[: -len(_APP_URL_SUFFIX)].lower(): value
            for name, value in environ.items()
            if name.endswith(_APP_URL_SUFFIX)
            and not name.endswith((_LISTEN_URL_SUFFIX, _READ_URL_SUFFIX))
            and name != "DATABASE_URL"
            and value
        }
        listen_urls = {
            name[: -len(_LISTEN_URL_SUFFIX)].lower(): value
            for name, value in environ.items()
            if name.endswith(_LISTEN_URL_SUFFIX) and value
        }
        log_format = (environ.get("LEDGER_LOG_FORMAT") or "").strip().lower() or None
        if log_format not in (None, "json", "text"):
            raise ConfigError(f"LEDGER_LOG_FORMAT must be json or text, not {log_format!r}")
        cache = environ.get("LEDGER_DB_STATEMENT_CACHE", "").strip()
        if cache and not cache.isdigit():
            raise ConfigError(f"LEDGER_DB_STATEMENT_CACHE must be 0 or more, not {cache!r}")
        keys = [name for name in _TOKEN_KEYS if environ.get(name)]
        if len(keys) > 1:
            raise ConfigError(
                f"set one of {', '.join(_TOKEN_KEYS)}, not {' and '.join(keys)}: each is "
                "a different way to verify tokens"
            )
        public_key = environ.get("LEDGER_JWT_PUBLIC_KEY")
        secret = environ.get("LEDGER_JWT_SECRET") or None
        origins = environ.get("LEDGER_CORS_ORIGINS", "")
        return cls(
            app_database_urls=app_urls,
            app_listen_urls=listen_urls,
            app_read_urls=_read_urls(environ),
            replica_wait=_positive(environ, "LEDGER_REPLICA_WAIT", float, cls.replica_wait),
            max_replica_lag=_positive(
                environ, "LEDGER_MAX_REPLICA_LAG", float, cls.max_replica_lag
            ),
            statement_cache=int(cache) if cache else cls.statement_cache,
            log_format=log_format,
            database_url=environ.get("DATABASE_URL") or None,
            data_dir=Path(environ.get("LEDGER_DATA_DIR") or ".ledger"),
            pool_size=_positive(environ, "LEDGER_DB_POOL_SIZE", int, cls.pool_size),
            pool_timeout=_positive(environ, "LEDGER_DB_POOL_TIMEOUT", float, cls.pool_timeout),
            db_timeout=_positive(environ, "LEDGER_DB_TIMEOUT", float, cls.db_timeout),
            auth=_switch(environ, "LEDGER_AUTH", cls.auth),
            jwt_secret=secret,
            jwt_public_key=Path(public_key) if public_key else None,
            jwks_url=_jwks_url(environ),
            jwks_ttl=_positive(environ, "LEDGER_JWKS_TTL", float, cls.jwks_ttl),
            jwt_issuer=environ.get("LEDGER_JWT_ISSUER") or None,
            jwt_audiences=_audiences(environ),
            jwt_owner_claim=environ.get("LEDGER_JWT_OWNER_CLAIM", "").strip()
            or cls.jwt_owner_claim,
            jwt_scope_claim=environ.get("LEDGER_JWT_SCOPE_CLAIM", "").strip()
            or cls.jwt_scope_claim,
            introspection=_switch(environ, "LEDGER_INTROSPECTION", cls.introspection),
            cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
            max_depth=_positive(environ, "LEDGER_MAX_DEPTH", int, cls.max_depth),
            max_aliases=_positive(environ, "LEDGER_MAX_ALIASES", int, cls.max_aliases),
            max_tokens=_positive(environ, "LEDGER_MAX_TOKENS", int, cls.max_tokens),
            max_body_bytes=_positive(environ, "LEDGER_MAX_BODY_BYTES", int, cls.max_body_bytes),
            max_websockets=_positive(environ, "LEDGER_MAX_WEBSOCKETS", int, cls.max_websockets),
            max_subscriptions=_positive(
                environ, "LEDGER_MAX_SUBSCRIPTIONS", int, cls.max_subscriptions
            ),
            subscription_buffer=_positive(
                environ, "LEDGER_SUBSCRIPTION_BUFFER", int, cls.subscription_buffer
            ),
            webhooks=_webhooks(environ),
            low_balances=_low_balances(environ),
            webhook_timeout=_positive(
                environ, "LEDGER_WEBHOOK_TIMEOUT", float, cls.webhook_timeout
            ),
            webhook_retry_base=_positive(
                environ, "LEDGER_WEBHOOK_RETRY_BASE", float, cls.webhook_retry_base
            ),
            webhook_retry_max=_positive(
                environ, "LEDGER_WEBHOOK_RETRY_MAX", float, cls.webhook_retry_max
            ),
            webhook_retry_window=_positive(
                environ, "LEDGER_WEBHOOK_RETRY_WINDOW", float, cls.webhook_retry_window
            ),
            webhook_retention=_positive(
                environ, "LEDGER_WEBHOOK_RETENTION", float, cls.webhook_retention
            ),
            webhook_poll=_positive(environ, "LEDGER_WEBHOOK_POLL", float, cls.webhook_poll),
            webhook_worker=_switch(environ, "LEDGER_WEBHOOK_WORKER", cls.webhook_worker),
            expiry_interval=_expiry_interval(environ, cls.expiry_interval),
        )

    def configured_database_url(self, app: str) -> str | None:
        """The URL of `app`'s database, or None when the embedded server should hold it."""
        if app in self.app_database_urls:
            return self.app_database_urls[app]
        if self.database_url is not None:
            url = make_url(self.database_url).set(database=app)
            return url.render_as_string(hide_password=False)
        return None

    def listen_database_url(self, app: str, database_url: str) -> str:
        """Where `app`'s balance feed LISTENs: its own setting, else its database URL."""
        return self.app_listen_urls.get(app, database_url)

    def read_database_urls(self, app: str) -> tuple[str, ...]:
        """`app`'s database on each of its read replicas; empty without replicas."""
        return self.app_read_urls.get(app, ())

    def audience(self, app: str) -> str:
        """The `aud` `app`'s tokens carry: `<APP>_JWT_AUDIENCE`, else the app's name."""
        return self.jwt_audiences.get(app, app)

    @property
    def token_key_configured(self) -> bool:
        return (
            self.jwt_secret is not None
            or self.jwt_public_key is not None
            or self.jwks_url is not None
        )


_Number = TypeVar("_Number", int, float)


def _positive(
    environ: Mapping[str, str], name: str, kind: type[_Number], default: _Number
) -> _Number:
    raw = environ.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a positive number, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be a positive number, not {raw!r}")
    return value


def _expiry_interval(environ: Mapping[str, str], default: float) -> float:
    interval = _positive(environ, "LEDGER_EXPIRY_INTERVAL", float, default)
    if interval > 50:  # an expired grant is booked within 60 s: the interval and a pass
        raise ConfigError(
            f"LEDGER_EXPIRY_INTERVAL must be at most 50 seconds, not {interval:g}: expired"
            " credits are booked within 60 s"
        )
    return interval


def _jwks_url(environ: Mapping[str, str]) -> str | None:
    raw = environ.get("LEDGER_JWKS_URL", "").strip()
    if not raw:
        return None
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"LEDGER_JWKS_URL must be an http(s) URL of a JSON Web Key Set, not {raw!r}"
        )
    return raw


def _read_urls(environ: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for name, value in environ.items():
        urls = tuple(url.strip() for url in value.split(",") if url.strip())
        if not name.endswith(_READ_URL_SUFFIX) or not urls:
            continue
        for url in urls:
            try:
                make_url(url)
            except Exception:
                raise ConfigError(
                    f"{name} must be PostgreSQL URLs separated by commas, not {url!r}"
                ) from None
        found[name[: -len(_READ_URL_SUFFIX)].lower()] = urls
    return found


def _audiences(environ: Mapping[str, str]) -> dict[str, str]:
    if environ.get("LEDGER" + _AUDIENCE_SUFFIX):
        raise ConfigError(
            "LEDGER_JWT_AUDIENCE is not read: each app has its own audience, "
            "<APP>_JWT_AUDIENCE (HEALTHAI_JWT_AUDIENCE, TRAVELAI_JWT_AUDIENCE)"
        )
    return {
        name[: -len(_AUDIENCE_SUFFIX)].lower(): value.strip()
        for name, value in environ.items()
        if name.endswith(_AUDIENCE_SUFFIX) and value.strip()
    }


def _by_app(environ: Mapping[str, str], suffix: str) -> dict[str, str]:
    return {
        name[: -len(suffix)].lower(): value.strip()
        for name, value in environ.items()
        if name.endswith(suffix) and name != "LEDGER" + suffix and value.strip()
    }


def _webhooks(environ: Mapping[str, str]) -> dict[str, Webhook]:
    urls = _by_app(environ, _WEBHOOK_URL_SUFFIX)
    secrets = _by_app(environ, _WEBHOOK_SECRET_SUFFIX)
    webhooks = {}
    for app in sorted(urls.keys() | secrets.keys()):
        prefix = app.upper()
        if app not in secrets or app not in urls:
            missing = _WEBHOOK_SECRET_SUFFIX if app not in secrets else _WEBHOOK_URL_SUFFIX
            raise ConfigError(f"{prefix}{missing} must be set too: a webhook needs both")
        parts = urllib.parse.urlsplit(urls[app])
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"{prefix}{_WEBHOOK_URL_SUFFIX} must be an http(s) URL, not {urls[app]!r}"
            )
        webhooks[app] = Webhook(
            urls[app], _webhook_key(f"{prefix}{_WEBHOOK_SECRET_SUFFIX}", secrets[app])
        )
    return webhooks


def _webhook_key(name: str, secret: str) -> bytes:
    """The key of a Standard Webhooks secret; the error never repeats the secret."""
    problem = f"{name} must be whsec_ followed by the base64 of a 24 to 64 byte key"
    if not secret.startswith(_SECRET_PREFIX):
        raise ConfigError(problem + " (it does not start with whsec_)")
    try:
        key = base64.b64decode(secret[len(_SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(problem + " (what follows whsec_ is not base64)") from None
    if not 24 <= len(key) <= 64:
        raise ConfigError(problem + f" (its key is {len(key)} bytes)")
    return key


def _low_balances(environ: Mapping[str, str]) -> dict[str, int]:
    thresholds = {}
    for app, raw in _by_app(environ, _LOW_BALANCE_SUFFIX).items():
        name = f"{app.upper()}{_LOW_BALANCE_SUFFIX}"
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number of credits, not {raw!r}") from None
        if not 0 < value <= 2147483647:
            raise ConfigError(f"{name} must be 1 to 2147483647 credits, not {raw!r}")
        thresholds[app] = value
    return thresholds


def _switch(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{name} must be on or off, not {raw!r}")
