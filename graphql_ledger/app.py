"""One ledger app as an ASGI application: Starlette routing for /graphql (HTTP and
WebSocket), the database's lifecycle, and each request's context. The schema comes from
`schema.build_schema`; the configuration is read once, when the app starts."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cross_web import HTTPException  # what Strawberry's view raises to refuse a request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from graphql_ledger.config import Settings
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.schema import LedgerContext, build_schema
from graphql_ledger.storage import (
    EmbeddedPostgres,
    LedgerRepository,
    create_engine,
    display_url,
    migrate,
)

__all__ = ["LedgerGraphQL", "create_app", "graphql_error_response"]

logger = logging.getLogger(__name__)

_HTTP_ERROR_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def graphql_error_response(status: int, message: str, code: str | None) -> JSONResponse:
    """A response outside GraphQL execution, shaped like a GraphQL result's errors."""
    error: dict[str, object] = {"message": message}
    if code is not None:
        error["extensions"] = {"code": code}
    return JSONResponse({"errors": [error]}, status_code=status)


class LedgerGraphQL(GraphQL[LedgerContext, None]):
    """Strawberry's ASGI view with a fresh LedgerContext (and so fresh DataLoaders) per
    request, and HTTP-level refusals (a body that is not JSON, a mutation over GET) in
    the GraphQL error shape rather than plain text."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope, receive))
        except HTTPException as refusal:
            response = graphql_error_response(
                refusal.status_code, refusal.reason, _HTTP_ERROR_CODES.get(refusal.status_code)
            )
        await response(scope, receive, send)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> LedgerContext:
        repository: LedgerRepository = request.app.state.repository
        return LedgerContext.for_request(repository)


def create_app(
    name: str, operations: type[LedgerOperation], settings: Settings | None = None
) -> Starlette:
    """The ASGI app serving `name`'s ledger at /graphql.

    Args:
        name: The app's name; it names its database (`<NAME>_DATABASE_URL`, or the
            database called `name` on `DATABASE_URL`'s server or the embedded one).
        operations: The app's operation enum.
        settings: The configuration; read from the environment at start when omitted.
    """
    graphql = LedgerGraphQL(build_schema(operations))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        config = settings or Settings.from_env()
        url = config.configured_database_url(name)
        embedded = None
        if url is None:
            # Development without a configured database: the embedded server, migrated here
            # because nobody else will. A configured database is migrated by
            # `graphql-ledger migrate`, never by the app.
            embedded = await asyncio.to_thread(EmbeddedPostgres(config.data_dir).start)
            url = embedded.url(name)
            await migrate(url)
        engine = create_engine(url, pool_size=config.pool_size, timeout=config.pool_timeout)
        app.state.repository = LedgerRepository(engine, operations)
        logger.info("%s serves the ledger in %s", name, display_url(url))
        try:
            yield
        finally:
            await engine.dispose()
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    return Starlette(
        routes=[Route("/graphql", graphql), WebSocketRoute("/graphql", graphql)],
        lifespan=lifespan,
    )
