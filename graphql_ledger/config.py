"""Configuration, read once from the environment when a process starts. Every variable the
service reads is named here and documented in docs/configuration.md."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import make_url

__all__ = ["ConfigError", "Settings"]

_APP_URL_SUFFIX = "_DATABASE_URL"


class ConfigError(Exception):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything a ledger process is configured with.

    Attributes:
        app_database_urls: `<APP>_DATABASE_URL` values by lower-case app name.
        database_url: `DATABASE_URL`, a server on which each app uses a database named
            after the app.
        data_dir: `LEDGER_DATA_DIR`, where the embedded PostgreSQL keeps its data when no
            database is configured.
        pool_size: `LEDGER_DB_POOL_SIZE`, connections each process keeps per app database.
        pool_timeout: `LEDGER_DB_POOL_TIMEOUT`, seconds a request waits for a connection.
    """

    app_database_urls: Mapping[str, str] = field(default_factory=dict)
    database_url: str | None = None
    data_dir: Path = Path(".ledger")
    pool_size: int = 10
    pool_timeout: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Settings":
        app_urls = {
            name[: -len(_APP_URL_SUFFIX)].lower(): value
            for name, value in environ.items()
            if name.endswith(_APP_URL_SUFFIX) and name != "DATABASE_URL" and value
        }
        return cls(
            app_database_urls=app_urls,
            database_url=environ.get("DATABASE_URL") or None,
            data_dir=Path(environ.get("LEDGER_DATA_DIR") or ".ledger"),
            pool_size=_positive(environ, "LEDGER_DB_POOL_SIZE", int, cls.pool_size),
            pool_timeout=_positive(environ, "LEDGER_DB_POOL_TIMEOUT", float, cls.pool_timeout),
        )

    def configured_database_url(self, app: str) -> str | None:
        """The URL of `app`'s database, or None when the embedded server should hold it."""
        if app in self.app_database_urls:
            return self.app_database_urls[app]
        if self.database_url is not None:
            return (
                make_url(self.database_url).set(database=app).render_as_string(hide_password=False)
            )
        return None


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
