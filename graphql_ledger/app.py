"""One ledger app as an ASGI application: Starlette routing for /graphql (HTTP and
WebSocket) and the operator's endpoints, the middleware every request passes (request id,
body limit, access log, CORS), and the lifecycle of the database, the live balance feed and
the token key. The schema comes from `schema.build_schema`, the endpoint from
`view.LedgerGraphQL`; the configuration is read once, when the app is made."""

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route, WebSocketRoute

from graphql_ledger.auth import authenticator_for, development_secret
from graphql_ledger.config import Settings
from graphql_ledger.development import development_token, is_development
from graphql_ledger.expiry import ExpiryPass
from graphql_ledger.graphiql import STATIC_PATH, GraphiQLAssets
from graphql_ledger.health import healthz, readyz
from graphql_ledger.health import metrics as metrics_endpoint
from graphql_ledger.home import home
from graphql_ledger.ledger import Entry
from graphql_ledger.logs import configure_logging
from graphql_ledger.metrics import LedgerMetrics
from graphql_ledger.middleware import AccessLog, BodyLimit, RequestId
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.schema import QueryLimits, build_schema
from graphql_ledger.storage import (
    BalanceFeed,
    EmbeddedPostgres,
    LedgerRepository,
    ReadReplicas,
    create_engine,
    display_url,
    head_revision,
    migrate,
)
from graphql_ledger.view import LedgerGraphQL
from graphql_ledger.webhooks import start_events

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(
    name: str,
    operations: type[LedgerOperation],
    settings: Settings | None = None,
    *,
    development: bool | None = None,
) -> Starlette:
    """The ASGI app serving `name`'s ledger at /graphql.

    Args:
        name: The app's name: its tokens' audience, and the name of its database
            (`<NAME>_DATABASE_URL`, or the database called `name` on `DATABASE_URL`'s
            server or on the embedded one).
        operations: The app's operation enum.
        settings: The configuration; read from the environment when omitted.
        development: Whether GraphiQL opens with a development token (`serve` says; by
            default, when the app is in development mode: development.py).
    """
    if settings is None:  # this process is the app's: its logs are the app's too
        settings = Settings.from_env()
        configure_logging(settings.log_format, development=is_development(settings, [name]))
    if development is None:
        development = is_development(settings, [name])
    graphiql = GraphiQLAssets()
    graphql = LedgerGraphQL(
        build_schema(operations, QueryLimits.of(settings)),
        max_websockets=settings.max_websockets,
        max_subscriptions=settings.max_subscriptions,
        graphiql=graphiql,
    )
    app = Starlette(
        routes=[
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            Mount(STATIC_PATH, graphiql.files),  # GraphiQL's own files (graphiql.py)
            Route("/", home),  # a pointer to /graphql (home.py)
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
        ],
        middleware=_middleware(settings),
        lifespan=_lifespan(name, operations, settings, graphiql if development else None),
    )
    app.state.name = name
    app.state.schema_revision = head_revision()
    return app


def _middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: the request id reaches every response, the access log times and
    counts everything inside it, refusals of the body limit included."""
    middleware = [
        Middleware(RequestId),
        Middleware(AccessLog),
        Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
    ]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "X-Ledger-Position"],
                expose_headers=["X-Ledger-Position"],
                max_age=600,
            )
        )
    return middleware


def _lifespan(
    name: str,
    operations: type[LedgerOperation],
    settings: Settings,
    development_page: GraphiQLAssets | None,
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """The app's lifespan: its database (the embedded one when none is configured), token
    key, repository, balance feed and metrics, opened at start and closed at stop. In
    development, `development_page` (GraphiQL) is given a development token to open with."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            url, serving = await _database(stack, name, operations, settings)
            app.state.authenticator = authenticator = authenticator_for(serving, name)
            await authenticator.start()  # the identity provider's keys, if any: fetched now
            stack.push_async_callback(authenticator.stop)
            if development_page is not None:  # GraphiQL opens ready to run (graphiql.py)
                key = serving.jwt_secret if serving.auth else None
                development_page.develop(name, key and development_token(key, name))
            engine = create_engine(
                url,
                pool_size=settings.pool_size,
                timeout=settings.pool_timeout,
                statement_cache=settings.statement_cache,
            )
            stack.push_async_callback(engine.dispose)
            replicas = await _replicas(stack, engine, name, settings)
            app.state.repository = repository = LedgerRepository(
                engine, operations, timeout=settings.db_timeout, replicas=replicas
            )
            app.state.feed = feed = BalanceFeed(
                engine,
                repository.newest_balances,
                listen_url=settings.listen_database_url(name, url),
                buffer=settings.subscription_buffer,
                watch=repository.watch_balances,
                unwatch=repository.unwatch_balances,
            )
            app.state.metrics = metrics = LedgerMetrics(name, pool_status(engine))
            app.state.observe_outcome = counting(metrics)
            await feed.start()
            stack.push_async_callback(feed.stop)
            await start_events(stack, name, url, settings, metrics)  # webhooks.py
            expiry = ExpiryPass(name, repository, settings.expiry_interval)  # expiry.py
            expiry.start()
            stack.push_async_callback(expiry.stop)
            logger.info("%s serves the ledger in %s", name, display_url(url))
            yield
        logger.info("%s stopped", name)

    return lifespan


async def _replicas(
    stack: AsyncExitStack, engine: AsyncEngine, name: str, settings: Settings
) -> ReadReplicas | None:
    """The app's read replicas (`<APP>_READ_DATABASE_URL`), sampled until the app stops."""
    urls = settings.read_database_urls(name)
    if not urls:
        return None
    replicas = ReadReplicas.connect(
        engine,
        urls,
        pool_size=settings.pool_size,
        statement_cache=settings.statement_cache,
        timeout=settings.db_timeout,
        max_lag=settings.max_replica_lag,
        wait=settings.replica_wait,
    )
    await replicas.start()
    stack.push_async_callback(replicas.stop)
    logger.info("%s reads on %s", name, ", ".join(r.name for r in replicas.replicas))
    return replicas


async def _database(
    stack: AsyncExitStack, name: str, operations: type[LedgerOperation], settings: Settings
) -> tuple[str, Settings]:
    """The app's database URL and the settings it serves with. Without a configured
    database: the embedded server (stopped with the app), migrated here because nobody
    else will (a configured database is migrated by `graphql-ledger migrate`, never by the
    app), with the development token secret unless a key is configured."""
    url = settings.configured_database_url(name)
    if url is not None:
        return url, settings
    embedded = await asyncio.to_thread(EmbeddedPostgres(settings.data_dir).start)
    stack.push_async_callback(asyncio.to_thread, embedded.stop)
    # Migrated as the embedded server's superuser; served as its serving login.
    await migrate(embedded.url(name), operations, login=embedded.serving_login)
    url = embedded.serving_url(name)
    if settings.auth and not settings.token_key_configured:
        secret = development_secret(settings.data_dir)
        settings = dataclasses.replace(settings, jwt_secret=secret)
    return url, settings


def pool_status(engine: AsyncEngine) -> Callable[[], tuple[int, int]]:
    """Connections of the engine's pool in use and idle, read at each scrape."""
    pool = engine.sync_engine.pool

    def status() -> tuple[int, int]:
        return pool.checkedout(), pool.checkedin()  # type: ignore[attr-defined]

    return status


def counting(metrics: LedgerMetrics) -> Callable[[object], None]:
    """What the metrics count of each write's outcome: entries written (replays aside) and
    refusals by code."""

    def observe(outcome: object) -> None:
        if isinstance(outcome, Entry):
            if not outcome.replayed:
                metrics.entry_created(outcome.operation.name)
        elif isinstance(code := getattr(outcome, "code", None), str):
            metrics.refusal(code)

    return observe
