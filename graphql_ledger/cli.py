"""The `graphql-ledger` command: `serve`, `migrate` and `export-schema`. Thin: it resolves
each app's database (starting the embedded server when none is configured) and hands
over to the app, storage and schema modules."""

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
from collections.abc import Iterator, Sequence

import uvicorn

from graphql_ledger.app import create_app
from graphql_ledger.config import ConfigError, Settings
from graphql_ledger.registry import UnknownApp, select_apps
from graphql_ledger.schema import build_schema
from graphql_ledger.storage import (
    DatabaseUnreachable,
    EmbeddedPostgres,
    display_url,
    head_revision,
    migrate,
)

__all__ = ["main"]

logger = logging.getLogger("graphql_ledger")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    try:
        status: int = args.run(args)
    except (ConfigError, DatabaseUnreachable, UnknownApp) as error:
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
        help="migrate and serve apps (all by default), the first on --port, the next on +1",
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

    export = commands.add_parser("export-schema", help="print an app's GraphQL schema (SDL)")
    export.add_argument("app", metavar="APP")
    export.set_defaults(run=_export_schema)
    return parser


@contextlib.contextmanager
def _databases(settings: Settings, apps: Sequence[str]) -> Iterator[dict[str, str]]:
    """Each app's database URL; the embedded server, started here and stopped on exit,
    holds those no variable configures."""
    urls = {app: settings.configured_database_url(app) for app in apps}
    if all(url is not None for url in urls.values()):
        yield {app: url for app, url in urls.items() if url is not None}
        return
    with EmbeddedPostgres(settings.data_dir) as embedded:
        logger.info("no database configured: embedded PostgreSQL, data in %s", embedded.data_dir)
        yield {app: url or embedded.url(app) for app, url in urls.items()}


async def _migrate_all(urls: dict[str, str]) -> None:
    for app, url in urls.items():
        await migrate(url)
        logger.info("%s: %s is at revision %s", app, display_url(url), head_revision())


def _migrate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    with _databases(settings, list(select_apps(args.apps))) as urls:
        asyncio.run(_migrate_all(urls))
    return 0


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
    with _databases(settings, list(apps)) as urls:
        asyncio.run(_migrate_all(urls))
        serving = dataclasses.replace(settings, app_database_urls=urls)
        servers = []
        for offset, (name, operations) in enumerate(apps.items()):
            port = args.port + offset
            app = create_app(name, operations, serving)
            servers.append(_Server(uvicorn.Config(app, host=args.host, port=port)))
            logger.info("%s: GraphQL and GraphiQL at http://%s:%d/graphql", name, args.host, port)
        asyncio.run(_serve_all(servers))
    return 0 if all(server.started for server in servers) else 1
