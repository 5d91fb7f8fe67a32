"""One ledger app as an ASGI application: Starlette routing for /graphql (HTTP and
WebSocket), CORS, the database's and the token key's lifecycle. The schema comes from
`schema.build_schema`, the endpoint from `view.LedgerGraphQL`; the configuration is read
once, when the app is made."""

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route, WebSocketRoute

from graphql_ledger.auth import authenticator_for, development_secret
from graphql_ledger.config import Settings
from graphql_ledger.graphiql import STATIC_PATH, GraphiQLAssets
from graphql_ledger.health import healthz, readyz
from graphql_ledger.health import metrics as metrics_endpoint
from graphql_ledger.ledger import Entry, EntryOutcome
from graphql_ledger.logs import configure_logging
from graphql_ledger.metrics import LedgerMetrics
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.schema import QueryLimits, build_schema
from graphql_ledger.storage import (
    BalanceFeed,
    EmbeddedPostgres,
    LedgerRepository,
    create_engine,
    display_url,
    head_revision,
    migrate,
)
from graphql_ledger.view import LedgerGraphQL

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(
    name: str, operations: type[LedgerOperation], settings: Settings | None = None
) -> Starlette:
    """The ASGI app serving `name`'s ledger at /graphql.

    Args:
        name: The app's name: its tokens' audience, and the name of its database
            (`<NAME>_DATABASE_URL`, or the database called `name` on `DATABASE_URL`'s
            server or on the embedded one).
        operations: The app's operation enum.
        settings: The configuration; read from the environment when omitted.
    """
    if settings is None:  # this process is the app's: its logs are the app's too
        settings = Settings.from_env()
        configure_logging(settings.log_format)
    config = settings
    schema = build_schema(operations, QueryLimits.of(config))
    graphiql = GraphiQLAssets()
    graphql = LedgerGraphQL(
        schema,
        max_body_bytes=config.max_body_bytes,
        max_websockets=config.max_websockets,
        max_subscriptions=config.max_subscriptions,
        graphiql=graphiql,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        serving = config
        url = config.configured_database_url(name)
        embedded = None
        if url is None:
            # Development without a configured database: the embedded server, migrated here
            # because nobody else will (a configured database is migrated by
            # `graphql-ledger migrate`, never by the app), with the development token
            # secret unless a key is configured.
            embedded = await asyncio.to_thread(EmbeddedPostgres(config.data_dir).start)
            url = embedded.url(name)
            await migrate(url, operations)
            if config.auth and not config.token_key_configured:
                secret = development_secret(config.data_dir)
                serving = dataclasses.replace(config, jwt_secret=secret)
        app.state.authenticator = authenticator = authenticator_for(serving, name)
        await authenticator.start()  # the identity provider's keys, if any: fetched now
        engine = create_engine(
            url,
            pool_size=config.pool_size,
            timeout=config.pool_timeout,
            statement_cache=config.statement_cache,
        )
        app.state.repository = repository = LedgerRepository(
            engine, operations, timeout=config.db_timeout
        )
        app.state.feed = feed = BalanceFeed(
            engine,
            repository.newest_balances,
            listen_url=config.listen_database_url(name, url),
            buffer=config.subscription_buffer,
        )
        app.state.metrics = metrics = LedgerMetrics(name, pool_status(engine))
        app.state.observe_outcome = counting(metrics)
        await feed.start()
        logger.info("%s serves the ledger in %s", name, display_url(url))
        try:
            yield
        finally:
            await authenticator.stop()
            await feed.stop()
            await engine.dispose()
            logger.info("%s stopped", name)
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    middleware = []
    if config.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )
        )
    app = Starlette(
        routes=[
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            Mount(STATIC_PATH, graphiql.files),  # GraphiQL's own files (graphiql.py)
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.name = name
    app.state.schema_revision = head_revision()
    return app


def pool_status(engine: AsyncEngine) -> Callable[[], tuple[int, int]]:
    """Connections of the engine's pool in use and idle, read at each scrape."""
    pool = engine.sync_engine.pool

    def status() -> tuple[int, int]:
        return pool.checkedout(), pool.checkedin()  # type: ignore[attr-defined]

    return status


def counting(metrics: LedgerMetrics) -> Callable[[EntryOutcome], None]:
    """What the metrics count of each createEntry outcome."""

    def observe(outcome: EntryOutcome) -> None:
        if isinstance(outcome, Entry):
            if not outcome.replayed:
                metrics.entry_created(outcome.operation.name)
        else:
            metrics.refusal(outcome.code)

    return observe
