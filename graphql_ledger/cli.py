"""The `graphql-ledger` command: `serve`, `migrate`, `verify`, `export-schema` and `token`.
Thin: it resolves each app's database (starting the embedded server when none is
configured) and token key, and hands over to the app, auth, storage and schema modules."""

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import logging
import signal
import sys
from collections.abc import Iterator, Sequence

import uvicorn

from graphql_ledger.app import create_app
from graphql_ledger.auth import authenticator_for, development_secret, issue_token, signing_secret
from graphql_ledger.config import ConfigError, Settings
from graphql_ledger.logs import configure_logging
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.registry import UnknownApp, select_apps
from graphql_ledger.schema import build_schema
from graphql_ledger.storage import (
    DatabaseUnreachable,
    EmbeddedPostgres,
    check_reachable,
    display_url,
    head_revision,
    migrate,
)
from graphql_ledger.storage.audit import BrokenOwner, NotMigrated, audit
from graphql_ledger.storage.migrations import ServingRoleMissing

__all__ = ["main"]

logger = logging.getLogger("graphql_ledger")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        configure_logging(Settings.from_env().log_format)
        status: int = args.run(args)
    except (ConfigError, DatabaseUnreachable, NotMigrated, ServingRoleMissing, UnknownApp) as error:
        print(f"graphql-ledger: {error}", file=sys.stderr)
        return 1
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphql-ledger", description="A credit ledger served as GraphQL, one API per app."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="serve apps (all by default), the first on --port, the next on +1",
    )
    serve.add_argument("apps", nargs="*", metavar="APP", help="apps to serve (default: all)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port of the first app (8000)")
    serve.set_defaults(run=_serve)

    migrate_ = commands.add_parser(
        "migrate", help="create app databases if missing and migrate them to the newest schema"
    )
    migrate_.add_argument("apps", nargs="*", metavar="APP", help="apps to migrate (default: all)")
    migrate_.set_defaults(run=_migrate)

    verify = commands.add_parser(
        "verify",
        help="check that the books balance (exit 2 listing each broken owner if not)",
    )
    verify.add_argument("apps", nargs="*", metavar="APP", help="apps to check (default: all)")
    verify.set_defaults(run=_verify)

    export = commands.add_parser("export-schema", help="print an app's GraphQL schema (SDL)")
    export.add_argument("app", metavar="APP")
    export.set_defaults(run=_export_schema)

    token = commands.add_parser(
        "token", help="print a bearer token for an app, signed with the configured secret"
    )
    token.add_argument("--app", required=True, help="the app the token is for (its audience)")
    token.add_argument("--sub", required=True, metavar="OWNER", help="the owner it acts as")
    token.add_argument(
        "--service", action="store_true", help="a backend service token: any owner, any operation"
    )
    token.add_argument("--ttl", type=int, default=3600, metavar="SECONDS", help="lifetime (3600)")
    token.set_defaults(run=_token)
    return parser


# What `serve` prints for development on the embedded database: long enough for a day's work.
_DEVELOPMENT_TOKEN_TTL = 30 * 24 * 3600


@dataclasses.dataclass(frozen=True)
class _Database:
    """Where an app's ledger is: `url` is the owner's (migrate and verify use it),
    `serving_url` what the app serves with, and `login` the embedded server's serving login
    that migrating it creates (None for a configured database)."""

    url: str
    serving_url: str
    login: str | None = None


@contextlib.contextmanager
def _databases(settings: Settings, apps: Sequence[str]) -> Iterator[dict[str, _Database]]:
    """Each app's database; the embedded server, started here and stopped on exit, holds
    those no variable configures."""
    urls = {app: settings.configured_database_url(app) for app in apps}
    if all(url is not None for url in urls.values()):
        yield {app: _Database(url, url) for app, url in urls.items() if url is not None}
        return
    with EmbeddedPostgres(settings.data_dir) as embedded:
        logger.info("no database configured: embedded PostgreSQL, data in %s", embedded.data_dir)
        yield {
            app: _Database(url, url)
            if url is not None
            else _Database(embedded.url(app), embedded.serving_url(app), embedded.serving_login)
            for app, url in urls.items()
        }


async def _prepare_serving(
    databases: dict[str, _Database], apps: dict[str, type[LedgerOperation]]
) -> None:
    """Migrates the embedded development databases, by `migrate`'s own code; a configured
    one is only reached (one that cannot be ends `serve` at once): changing it, rules
    included, is `graphql-ledger migrate`'s, and the app may lack the rights (it serves
    as the serving role)."""
    await _migrate_all({app: db for app, db in databases.items() if db.login is not None}, apps)
    for database in databases.values():
        if database.login is None:
            await check_reachable(database.serving_url)


async def _migrate_all(
    databases: dict[str, _Database], apps: dict[str, type[LedgerOperation]]
) -> None:
    for app, database in databases.items():
        await migrate(database.url, apps[app], login=database.login)
        logger.info("%s: %s is at revision %s", app, display_url(database.url), head_revision())


def _migrate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    apps = select_apps(args.apps)
    with _databases(settings, list(apps)) as databases:
        asyncio.run(_migrate_all(databases, apps))
    return 0


# `verify`'s exit status when some owner's books do not balance (1: it could not check).
BOOKS_BROKEN = 2


def _print_broken(app: str, owner: BrokenOwner) -> None:
    print(f"{app}: {owner}", flush=True)


async def _verify_all(urls: dict[str, str]) -> bool:
    balanced = True
    for app, url in urls.items():
        summary = await audit(url, functools.partial(_print_broken, app))
        print(f"{app}: {summary}", flush=True)
        balanced = balanced and summary.balanced
    return balanced


def _verify(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    apps = select_apps(args.apps)
    with _databases(settings, list(apps)) as databases:
        balanced = asyncio.run(_verify_all({app: db.url for app, db in databases.items()}))
    return 0 if balanced else BOOKS_BROKEN


def _token(args: argparse.Namespace) -> int:
    [app] = select_apps([args.app])
    if args.ttl <= 0:
        raise ConfigError("--ttl must be a positive number of seconds")
    secret = signing_secret(Settings.from_env(), app)
    print(issue_token(secret, app, args.sub, service=args.service, ttl=args.ttl))
    return 0


def _print_development_tokens(settings: Settings, apps: Sequence[str]) -> None:
    for app in apps:
        token = issue_token(
            signing_secret(settings, app),
            app,
            "developer",
            service=True,
            ttl=_DEVELOPMENT_TOKEN_TTL,
        )
        # Printed, not logged: it is there to be copied as it stands.
        print(
            f"{app}: a development service token (30 days); paste into GraphiQL's headers:\n"
            f'    {{"Authorization": "Bearer {token}"}}',
            flush=True,
        )


def _export_schema(args: argparse.Namespace) -> int:
    [operations] = select_apps([args.app]).values()
    print(build_schema(operations).as_str())
    return 0


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to `_serve_all`, which stops every server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_all(servers: list[_Server]) -> None:
    def stop() -> None:
        for server in servers:
            server.force_exit = server.should_exit  # a second Ctrl-C stops waiting
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    await asyncio.gather(*(server.serve() for server in servers))


def _serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    apps = select_apps(args.apps)
    # With no key configured and every app on the embedded database, tokens are signed
    # with the development secret in the data dir. Otherwise a key must be configured:
    # building each app's authenticator now fails on a missing or unreadable one before
    # anything starts.
    development = (
        settings.auth
        and not settings.token_key_configured
        and all(settings.configured_database_url(app) is None for app in apps)
    )
    if settings.auth and not development:
        for name in apps:
            authenticator_for(settings, name)
    with _databases(settings, list(apps)) as databases:
        asyncio.run(_prepare_serving(databases, apps))
        urls = {app: db.serving_url for app, db in databases.items()}
        serving = dataclasses.replace(settings, app_database_urls=urls)
        if development:
            _print_development_tokens(settings, list(apps))
            secret = development_secret(settings.data_dir)
            serving = dataclasses.replace(serving, jwt_secret=secret)
        servers = []
        for offset, (name, operations) in enumerate(apps.items()):
            port = args.port + offset
            asgi = create_app(name, operations, serving)
            # The ledger logs each request itself, in LEDGER_LOG_FORMAT: uvicorn must
            # neither reconfigure logging nor write an access log of its own.
            config = uvicorn.Config(asgi, host=args.host, port=port, log_config=None)
            servers.append(_Server(config))
            logger.info("%s: GraphQL and GraphiQL at http://%s:%d/graphql", name, args.host, port)
        asyncio.run(_serve_all(servers))
    return 0 if all(server.started for server in servers) else 1
