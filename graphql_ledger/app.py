"""One ledger app as an ASGI application: Starlette routing for /graphql (HTTP and
WebSocket), CORS, the database's and the token key's lifecycle. The schema comes from
`schema.build_schema`, the endpoint from `view.LedgerGraphQL`; the configuration is read
once, when the app is made."""

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute

from graphql_ledger.auth import authenticator_for, development_secret
from graphql_ledger.config import Settings
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.schema import QueryLimits, build_schema
from graphql_ledger.storage import (
    BalanceFeed,
    EmbeddedPostgres,
    LedgerRepository,
    create_engine,
    display_url,
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
    config = settings or Settings.from_env()
    schema = build_schema(operations, QueryLimits.of(config))
    graphql = LedgerGraphQL(
        schema,
        max_body_bytes=config.max_body_bytes,
        max_websockets=config.max_websockets,
        max_subscriptions=config.max_subscriptions,
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
            await migrate(url)
            if config.auth and not config.token_key_configured:
                secret = development_secret(config.data_dir)
                serving = dataclasses.replace(config, jwt_secret=secret)
        app.state.authenticator = authenticator_for(serving, name)
        engine = create_engine(url, pool_size=config.pool_size, timeout=config.pool_timeout)
        app.state.repository = repository = LedgerRepository(engine, operations)
        app.state.feed = feed = BalanceFeed(
            engine, repository.newest_balances, buffer=config.subscription_buffer
        )
        await feed.start()
        logger.info("%s serves the ledger in %s", name, display_url(url))
        try:
            yield
        finally:
            await feed.stop()
            await engine.dispose()
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
    return Starlette(
        routes=[Route("/graphql", graphql), WebSocketRoute("/graphql", graphql)],
        middleware=middleware,
        lifespan=lifespan,
    )
