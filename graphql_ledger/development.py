"""Development mode: serving every app on the embedded PostgreSQL with no token key
configured, so tokens are signed with the development secret in the data directory. It
then prints a start-up summary, logs human lines and opens GraphiQL ready to run."""

from collections.abc import Iterable

from graphql_ledger.auth import issue_token
from graphql_ledger.config import Settings

__all__ = ["DEVELOPER", "DEVELOPMENT_TOKEN_TTL", "development_token", "is_development"]

DEVELOPMENT_TOKEN_TTL = 30 * 24 * 3600
"""A development token lasts 30 days, so that a token pasted into a tool keeps working for a
month of restarts; `graphql-ledger token` defaults to an hour, as a real token should."""
DEVELOPER = "developer"
"""The `sub` of development tokens: the name the service token goes by."""


def is_development(settings: Settings, apps: Iterable[str]) -> bool:
    """Whether `apps` are served in development: each on the embedded database, and no
    token key configured (with LEDGER_AUTH=on, the development secret signs tokens)."""
    return not settings.token_key_configured and all(
        settings.configured_database_url(app) is None for app in apps
    )


def development_token(secret: str, app: str) -> str:
    """A service token for `app`, signed with the development `secret`."""
    return issue_token(secret, app, DEVELOPER, service=True, ttl=DEVELOPMENT_TOKEN_TTL)
