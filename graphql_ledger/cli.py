"""The `graphql-ledger` command: `serve`, `migrate`, `verify`, `events`, `deliver`,
`export-schema` and `token`.
Thin: it resolves each app's database (starting the embedded server when none is
configured) and token key, and hands over to the app, auth, storage and schema modules."""

import argparse
import asyncio
import contextlib
import dataclasses
import errno
import functools
import logging
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import uvicorn

from graphql_ledger.app import create_app
from graphql_ledger.auth import authenticator_for, development_secret, issue_token, signing_secret
from graphql_ledger.config import ConfigError, Settings
from graphql_ledger.development import (
    DEVELOPMENT_TOKEN_TTL,
    development_token,
    is_development,
)
from graphql_ledger.logs import configure_logging
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.outbox import show_events
from graphql_ledger.registry import UnknownApp, registered_apps, select_apps
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
from graphql_ledger.webhooks import deliver_until_stopped

__all__ = ["main"]

logger = logging.getLogger("graphql_ledger")


_SERVICE = "service"  # a service token's `sub` when --sub is omitted: it acts for any owner


class PortUnavailable(Exception):
    """A port `serve` cannot listen on; the message says which and what to do."""


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    try:
        configure_logging(Settings.from_env().log_format)
        status: int = args.run(args)
    except (
        ConfigError,
        DatabaseUnreachable,
        NotMigrated,
        PortUnavailable,
        ServingRoleMissing,
        UnknownApp,
    ) as error:
        print(f"graphql-ledger: {error}", file=sys.stderr)
        return 1
    return status


# The variables each command reads (docs/configuration.md has them all).
_DATABASE_VARIABLES = """\
  <APP>_DATABASE_URL   an app's database, e.g. HEALTHAI_DATABASE_URL
  DATABASE_URL         a server holding one database per app, named after it
  LEDGER_DATA_DIR      the embedded PostgreSQL's data when neither is set (./.ledger)"""
_SERVE_VARIABLES = f"""{_DATABASE_VARIABLES}
  LEDGER_JWT_SECRET, LEDGER_JWT_PUBLIC_KEY   the token key (development: a secret in the
                       data folder, when every app is on the embedded database)
  LEDGER_AUTH          off serves without tokens (on)
  LEDGER_LOG_FORMAT    json or text (text in development, json otherwise)
  LEDGER_DB_*, LEDGER_MAX_*, LEDGER_CORS_ORIGINS, LEDGER_INTROSPECTION, ...
                       pools, limits and the rest: docs/configuration.md"""
_TOKEN_VARIABLES = f"""\
  LEDGER_JWT_SECRET    the HS256 secret to sign with; without it, the development secret
                       in LEDGER_DATA_DIR, for an app on the embedded database
{_DATABASE_VARIABLES}"""


def _apps() -> str:
    return f"apps: {', '.join(registered_apps())}"


def _epilog(variables: str | None) -> str:
    read = f"environment variables read:\n{variables}" if variables else "reads no variable"
    return f"{_apps()}\n\n{read}"


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="graphql-ledger",
        description="A credit ledger served as GraphQL, one API per app.",
        epilog=f"{_apps()}\n\n`graphql-ledger COMMAND --help` names the variables each "
        "command reads.",
        formatter_class=formatter,
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, summary: str, variables: str | None) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=_epilog(variables),
            formatter_class=formatter,
        )

    serve = command(
        "serve",
        "serve apps (all by default), the first on --port, the next on +1",
        _SERVE_VARIABLES,
    )
    serve.add_argument("apps", nargs="*", metavar="APP", help="apps to serve (default: all)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port of the first app (8000)")
    serve.set_defaults(run=_serve)

    migrate_ = command(
        "migrate",
        "create app databases if missing and migrate them to the newest schema",
        _DATABASE_VARIABLES,
    )
    migrate_.add_argument("apps", nargs="*", metavar="APP", help="apps to migrate (default: all)")
    migrate_.set_defaults(run=_migrate)

    verify = command(
        "verify",
        "check that the books balance (exit 2 listing each broken owner if not)",
        _DATABASE_VARIABLES,
    )
    verify.add_argument("apps", nargs="*", metavar="APP", help="apps to check (default: all)")
    verify.set_defaults(run=_verify)

    events = command(
        "events",
        "list an app's webhook events by id, one JSON object a line (and re-send "
        "dead-lettered ones)",
        _DATABASE_VARIABLES,
    )
    events.add_argument("apps", nargs="*", metavar="APP", help="apps to list (default: all)")
    events.add_argument("--since", type=int, default=0, metavar="ID", help="ids above this (0)")
    events.add_argument("--limit", type=int, metavar="N", help="at most N per app (all)")
    events.add_argument(
        "--status", choices=("pending", "delivered", "dead"), help="only events of this status"
    )
    events.add_argument(
        "--resend-dead",
        nargs="*",
        type=int,
        metavar="ID",
        help="first make these dead-lettered events (all, without ids) pending again",
    )
    events.set_defaults(run=_events)

    deliver = command(
        "deliver",
        "deliver the apps' webhook events in this process (servers with "
        "LEDGER_WEBHOOK_WORKER=off), until stopped",
        _DATABASE_VARIABLES,
    )
    deliver.add_argument("apps", nargs="*", metavar="APP", help="apps (default: all with one)")
    deliver.set_defaults(run=_deliver)

    export = command("export-schema", "print an app's GraphQL schema (SDL)", None)
    export.add_argument("app", metavar="APP")
    export.set_defaults(run=_export_schema)

    token = command(
        "token",
        "print a bearer token for an app, signed with the configured secret",
        _TOKEN_VARIABLES,
    )
    token.add_argument("--app", required=True, help="the app the token is for (its audience)")
    token.add_argument(
        "--sub",
        metavar="OWNER",
        help="the owner an end-user token acts as (required without --service); with "
        f"--service, only the name the service goes by ({_SERVICE!r} if omitted)",
    )
    token.add_argument(
        "--service", action="store_true", help="a backend service token: any owner, any operation"
    )
    token.add_argument(
        "--ttl",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="lifetime (3600: an hour, short as a real token's should be; the development "
        f"tokens `serve` prints last {DEVELOPMENT_TOKEN_TTL // 86400} days, for a month "
        "of restarts)",
    )
    token.set_defaults(run=_token)
    return parser


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
    configure_logging(settings.log_format, development=is_development(settings, apps))
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
    configure_logging(settings.log_format, development=is_development(settings, apps))
    with _databases(settings, list(apps)) as databases:
        balanced = asyncio.run(_verify_all({app: db.url for app, db in databases.items()}))
    return 0 if balanced else BOOKS_BROKEN


async def _events_all(urls: dict[str, str], args: argparse.Namespace) -> None:
    for app, url in urls.items():
        await show_events(
            app,
            url,
            since=args.since,
            limit=args.limit,
            status=args.status,
            resend=args.resend_dead,
        )


def _events(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    apps = select_apps(args.apps)
    with _databases(settings, list(apps)) as databases:
        asyncio.run(_events_all({app: db.url for app, db in databases.items()}, args))
    return 0


def _deliver(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    apps = [app for app in select_apps(args.apps) if app in settings.webhooks]
    if not apps:
        raise ConfigError("no app has a webhook: set <APP>_WEBHOOK_URL and _WEBHOOK_SECRET")
    configure_logging(settings.log_format, development=is_development(settings, apps))
    with _databases(settings, apps) as databases:
        urls = {app: db.serving_url for app, db in databases.items()}
        asyncio.run(deliver_until_stopped(urls, settings))
    return 0


def _token(args: argparse.Namespace) -> int:
    [app] = select_apps([args.app])
    if args.ttl <= 0:
        raise ConfigError("--ttl must be a positive number of seconds")
    if args.sub is None and not args.service:
        raise ConfigError(
            "--sub OWNER is required: the owner the token acts as (or --service, for a "
            "backend service acting for any owner)"
        )
    secret = signing_secret(Settings.from_env(), app)
    subject = args.sub or _SERVICE
    print(issue_token(secret, app, subject, service=args.service, ttl=args.ttl))
    return 0


def _export_schema(args: argparse.Namespace) -> int:
    [operations] = select_apps([args.app]).values()
    print(build_schema(operations).as_str())
    return 0


def _listen(host: str, ports: Sequence[int]) -> list[socket.socket]:
    """Sockets bound to each port, before anything is announced or started: a port in use
    ends `serve` with one line (uvicorn would fail only after the start-up work)."""
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            sockets.append(_bind(host, port, ports))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind(host: str, port: int, ports: Sequence[int]) -> socket.socket:
    if not 0 < port < 65536:
        raise PortUnavailable(f"--port must give ports from 1 to 65535, not {port}")
    # As uvicorn binds: SO_REUSEADDR, so that a port a stopped server left in TIME_WAIT works.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            other = ports[0] + 100
            raise PortUnavailable(
                f"port {port} on {host} is already in use (another `graphql-ledger serve`?): "
                f"stop that, or serve on other ports with --port {other} (make run "
                f"PORT={other}), which takes {other}-{other + len(ports) - 1}"
                if len(ports) > 1
                else f"port {port} on {host} is already in use (another `graphql-ledger "
                f"serve`?): stop that, or serve on another port with --port {other}"
            ) from None
        raise PortUnavailable(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def _closing(sockets: list[socket.socket]) -> Iterator[None]:
    try:
        yield
    finally:
        for sock in sockets:
            sock.close()


class _Server(uvicorn.Server):
    """A uvicorn server on a socket `serve` bound, which leaves signals to `_serve_all`
    (which stops every server) and says when it has started."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket) -> None:
        super().__init__(config)
        self.socket = sock
        self.bound = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.bound.set()

    async def run_until_stopped(self) -> None:
        """Serves until stopped; a failed start-up (which uvicorn ends with SystemExit,
        having logged why) returns too."""
        with contextlib.suppress(SystemExit):
            await self.serve(sockets=[self.socket])


async def _serve_all(servers: list[_Server], announce: Callable[[], None]) -> None:
    """Runs the servers until a signal stops them, or until one fails to start; calls
    `announce` once every server is listening and its app started."""

    def stop() -> None:
        for server in servers:
            server.force_exit = server.should_exit  # a second Ctrl-C stops waiting
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)

    async def announce_when_started() -> None:
        await asyncio.gather(*(server.bound.wait() for server in servers))
        announce()

    async def run(server: _Server) -> None:
        await server.run_until_stopped()
        stop()  # the others too, when one stops (a failed start-up)

    announcing = asyncio.create_task(announce_when_started())
    try:
        await asyncio.gather(*(run(server) for server in servers))
    finally:
        announcing.cancel()


@dataclasses.dataclass(frozen=True)
class _Serving:
    """What the start-up summary tells: where each app is, and in development the tokens
    and the data folder."""

    urls: dict[str, str]
    tokens: dict[str, str]
    data_dir: Path | None

    def announce(self) -> None:
        if self.data_dir is None:  # production: a log line per app, in the logs' format
            for app, url in self.urls.items():
                logger.info("%s: GraphQL at %s/graphql", app, url)
            return
        print(self.summary(), flush=True)

    def summary(self) -> str:
        """The development summary: printed last, as a block, to be read and copied."""
        width = max(len(app) for app in self.urls)
        lines = ["", "graphql-ledger is serving, in development:", ""]
        for app, url in self.urls.items():
            lines.append(f"  {app:<{width}}  {url}/graphql   GraphiQL, ready to run")
        lines += ["", f"  data folder  {self.data_dir}  (PostgreSQL's data, the token secret)"]
        if self.tokens:
            lines += [
                "",
                f"  Service tokens ({DEVELOPMENT_TOKEN_TTL // 86400} days), already in GraphiQL;"
                " for other clients:",
            ]
            for app, token in self.tokens.items():
                lines.append(f'  {app}: {{"Authorization": "Bearer {token}"}}')
        lines += ["", "  Ctrl-C stops it.", ""]
        return "\n".join(lines)


def _serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    apps = select_apps(args.apps)
    # With no key configured and every app on the embedded database, tokens are signed
    # with the development secret in the data dir. Otherwise a key must be configured:
    # building each app's authenticator now fails on a missing or unreadable one before
    # anything starts.
    development = is_development(settings, apps)
    configure_logging(settings.log_format, development=development)
    if settings.auth and not development:
        for name in apps:
            authenticator_for(settings, name)
    ports = [args.port + offset for offset in range(len(apps))]
    sockets = _listen(args.host, ports)
    with _closing(sockets), _databases(settings, list(apps)) as databases:
        asyncio.run(_prepare_serving(databases, apps))
        urls = {app: db.serving_url for app, db in databases.items()}
        serving = dataclasses.replace(settings, app_database_urls=urls)
        tokens = {}
        if development and settings.auth:
            secret = development_secret(settings.data_dir)
            serving = dataclasses.replace(serving, jwt_secret=secret)
            tokens = {name: development_token(secret, name) for name in apps}
        servers = []
        for sock, (name, operations) in zip(sockets, apps.items(), strict=True):
            asgi = create_app(name, operations, serving, development=development)
            # The ledger logs each request itself, in LEDGER_LOG_FORMAT: uvicorn must
            # neither reconfigure logging nor write an access log of its own.
            config = uvicorn.Config(
                asgi, host=args.host, port=sock.getsockname()[1], log_config=None
            )
            servers.append(_Server(config, sock))
        announced = _Serving(
            urls={
                name: f"http://{_url_host(args.host)}:{port}"
                for name, port in zip(apps, ports, strict=True)
            },
            tokens=tokens,
            data_dir=settings.data_dir.resolve() if development else None,
        )
        asyncio.run(_serve_all(servers, announced.announce))
    return 0 if all(server.started for server in servers) else 1


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
