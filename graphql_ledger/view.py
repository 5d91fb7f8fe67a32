"""The /graphql endpoint: GraphQL over HTTP and over WebSocket, on Strawberry's ASGI view. An
HTTP request must carry a valid bearer token (the GraphiQL page itself needs none); a
WebSocket speaks graphql-transport-ws, counts against the process's connection limit, and
proves itself in connection_init. Either way the operation runs on the schema's one executor
(`schema.base`); the request id, body limit and access log are middleware's (`middleware.py`).
Refusals made here keep the GraphQL error shape."""

import logging
import urllib.parse
from typing import Any, NamedTuple, cast

import orjson
from cross_web import HTTPException  # what Strawberry's view raises to refuse a request
from graphql import GraphQLFormattedError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage,
    SubscribeMessage,
)
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from graphql_ledger.access import Principal
from graphql_ledger.auth import Authenticator, Unauthenticated
from graphql_ledger.graphiql import GraphiQLAssets
from graphql_ledger.middleware import OPERATION, OUTCOME, graphql_error_response, report_operation
from graphql_ledger.persisted import PersistedQueries, PersistedQueryNotFound
from graphql_ledger.schema import LedgerContext, LedgerSchema, OperationRecord
from graphql_ledger.storage import LedgerPosition, parse_position

__all__ = ["LedgerGraphQL"]

logger = logging.getLogger(__name__)

_HTTP_ERROR_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
_JSON = "application/json"
_POSITION_HEADER = "x-ledger-position"
_PERSISTED_QUERY_NOT_FOUND: GraphQLFormattedError = {
    "message": "PersistedQueryNotFound",
    "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
}


class _Method(NamedTuple):
    name: str
    operations: frozenset[OperationType]


_POST = _Method("POST", frozenset({OperationType.QUERY, OperationType.MUTATION}))
_GET = _Method("GET", frozenset({OperationType.QUERY}))


def _get_parameters(request: Request) -> dict[str, Any]:
    """A GET request's query string as the JSON body it stands for. Bytes that are not
    UTF-8 are refused, as in a POST body (decoding would turn them into U+FFFD)."""
    try:
        urllib.parse.unquote_to_bytes(request.scope["query_string"]).decode()
    except UnicodeDecodeError:
        raise HTTPException(400, "the query string is not UTF-8") from None
    parameters: dict[str, Any] = dict(request.query_params)
    for name in ("variables", "extensions"):
        if name in parameters:
            try:
                parameters[name] = orjson.loads(parameters[name])
            except orjson.JSONDecodeError:
                raise HTTPException(400, f"{name} is not valid JSON") from None
    return parameters


def _position(request: Request, body: dict[str, Any]) -> LedgerPosition:
    """What the request's reads must see: the position its client sent back, in the
    X-Ledger-Position header or its own `extensions.ledgerPosition` (the later of the two)."""
    position = LedgerPosition()
    for token in (request.headers.get(_POSITION_HEADER), _extension_position(body)):
        if token is not None:
            try:
                position.advance(_sent_position(token))
            except ValueError as refusal:
                raise HTTPException(400, str(refusal)) from None
    return position


def _extension_position(payload: dict[str, Any]) -> object:
    extensions = payload.get("extensions")
    return extensions.get("ledgerPosition") if isinstance(extensions, dict) else None


def _sent_position(token: object) -> int:
    """A position a client sent back; ValueError, in the client's terms, for anything else."""
    try:
        return parse_position(token.strip() if isinstance(token, str) else "")
    except ValueError:
        raise ValueError(
            f"{token!r} is not a ledger position: send back the ledgerPosition (the "
            "X-Ledger-Position header) of an earlier response, as it came, like 0/16B3748"
        ) from None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def _unsupported_content_type(request: Request) -> str:
    sent = _media_type(request)
    return (
        f"Unsupported content type {sent!r}" if sent else "No content type"
    ) + f": send the GraphQL request as JSON, with Content-Type: {_JSON}"


class _TransportWSHandler(BaseGraphQLTransportWSHandler[LedgerContext, None]):
    """graphql-transport-ws with Apollo's persisted queries and positions to read at
    (`extensions.ledgerPosition`), as over HTTP."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload: dict[str, Any] = dict(message.get("payload") or {})
        view = cast(LedgerGraphQL, self.view)
        try:
            query = view.persisted_queries.resolve(payload)
        except HTTPException as refusal:
            await self._refuse(message["id"], {"message": refusal.reason})
            return
        if isinstance(query, PersistedQueryNotFound):
            await self._refuse(message["id"], _PERSISTED_QUERY_NOT_FOUND)
            return
        payload["query"] = query
        if (token := _extension_position(payload)) is not None:
            # A connection's reads already follow its own writes; this brings in another's.
            try:
                self.context.position.advance(_sent_position(token))
            except ValueError as refusal:
                await self._refuse(
                    message["id"], {"message": str(refusal), "extensions": {"code": "BAD_REQUEST"}}
                )
                return
        await super().handle_subscribe(cast(SubscribeMessage, {**message, "payload": payload}))

    async def _refuse(self, operation_id: str, error: GraphQLFormattedError) -> None:
        if not self.connection_acknowledged:
            await self.websocket.close(code=4401, reason="Unauthorized")
            return
        refusal: ErrorMessage = {"id": operation_id, "type": "error", "payload": [error]}
        await self.send_message(refusal)


class LedgerGraphQL(GraphQL[LedgerContext, None]):
    """Strawberry's view with the ledger's request checks and a LedgerContext (fresh
    DataLoaders, the authenticated caller) per request or WebSocket connection."""

    graphql_transport_ws_handler_class = _TransportWSHandler

    def __init__(
        self,
        schema: LedgerSchema,
        *,
        max_websockets: int,
        max_subscriptions: int,
        graphiql: GraphiQLAssets | None = None,
    ) -> None:
        super().__init__(
            schema,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=max_subscriptions,
        )
        self.max_websockets = max_websockets
        self.open_websockets = 0
        self.persisted_queries = PersistedQueries()
        self.graphiql = graphiql or GraphiQLAssets()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._serve_websocket(scope, receive, send)
        elif scope["type"] == "http":
            response = await self._respond(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            request.scope["state"][OUTCOME] = "page"
            return await self.run(request)
        authenticator: Authenticator = request.app.state.authenticator
        try:
            principal = await authenticator.authenticate(request.headers.get("authorization"))
        except Unauthenticated as refusal:  # 401, or 503 while no token key is known
            request.scope["state"][OUTCOME] = refusal.outcome
            return graphql_error_response(
                refusal.status, str(refusal), refusal.code, refusal.headers
            )
        try:
            if request.method == "POST" and _media_type(request) == _JSON:
                body = await self._json_body(request)
                return await self._execute(request, principal, body, _POST)
            if request.method == "GET" and "query" in request.query_params:
                return await self._execute(request, principal, _get_parameters(request), _GET)
            if request.method == "POST":  # Strawberry's refusal would not say what is expected
                raise HTTPException(400, _unsupported_content_type(request))
            request.state.principal = principal
            return await self.run(request)  # anything else: Strawberry's own handling
        except HTTPException as refusal:
            code = _HTTP_ERROR_CODES.get(refusal.status_code, "BAD_REQUEST")
            request.scope["state"][OUTCOME] = code.lower()
            return graphql_error_response(refusal.status_code, refusal.reason, code)

    async def _json_body(self, request: Request) -> dict[str, Any]:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise HTTPException(400, "Unable to parse request body as JSON") from None
        if isinstance(body, list):
            raise HTTPException(400, "Batching is not enabled")
        if not isinstance(body, dict):
            raise HTTPException(400, "No GraphQL query found in the request")
        return body

    async def _execute(
        self, request: Request, principal: Principal, body: dict[str, Any], method: _Method
    ) -> Response:
        """A GraphQL request over HTTP (POST with JSON, the way clients send nearly every
        request, or GET), run without Strawberry's generic request handling (measured: it
        cost as much as a small query's execution)."""
        query = self.persisted_queries.resolve(body)
        if isinstance(query, PersistedQueryNotFound):
            request.scope["state"][OUTCOME] = "persisted_query_not_found"
            not_found = {"errors": [_PERSISTED_QUERY_NOT_FOUND]}
            return Response(orjson.dumps(not_found), media_type=_JSON)
        variables = body.get("variables")
        if variables is not None and not isinstance(variables, dict):
            raise HTTPException(400, "variables must be an object")
        requested = body.get("operationName")
        state = request.app.state

        def record(operation: OperationRecord) -> None:
            request.scope["state"][OPERATION] = operation

        position = _position(request, body)
        context = LedgerContext(
            state.repository,
            principal,
            observe=state.observe_outcome,
            record=record,
            position=position,
        )
        try:
            result = await self.schema.execute(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=requested if isinstance(requested, str) else None,
                allowed_operation_types=method.operations,
            )
        except MissingQueryError:
            raise HTTPException(400, "No GraphQL query found in the request") from None
        except InvalidOperationTypeError as refusal:
            raise HTTPException(400, refusal.as_http_error_reason(method.name)) from None
        except CannotGetOperationTypeError as refusal:
            raise HTTPException(400, refusal.as_http_error_reason()) from None
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        if (token := position.token) is None:
            return Response(orjson.dumps(answer), media_type=_JSON)
        # Sent back, the position makes a later read see what this request wrote or saw.
        answer["extensions"] = {"ledgerPosition": token}
        return Response(
            orjson.dumps(answer), media_type=_JSON, headers={"X-Ledger-Position": token}
        )

    async def _serve_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.open_websockets >= self.max_websockets:
            # Closing before accepting refuses the handshake (HTTP 403).
            logger.warning("WebSocket refused: %d connections open", self.open_websockets)
            await WebSocket(scope, receive, send).close(code=1013)
            return
        self.open_websockets += 1
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.open_websockets -= 1

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL with its files served by the app (graphiql.py), or from the CDN."""
        client = request.client.host if request.client else None  # development: loopback only
        return HTMLResponse(self.graphiql.page(request.scope.get("root_path", ""), client=client))

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()  # str: WebSocket frames are sent as text

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> LedgerContext:
        state = request.app.state
        if isinstance(request, WebSocket):  # authenticated by on_ws_connect
            scope = request.scope
            authenticator: Authenticator = state.authenticator
            return LedgerContext(
                state.repository,
                None,
                authenticate=authenticator.authenticate,
                feed=state.feed,
                observe=state.observe_outcome,
                record=lambda operation: report_operation(scope, operation),
            )
        # An HTTP request Strawberry handles itself (a GraphiQL page, a form body).
        return LedgerContext(state.repository, getattr(request.state, "principal", None))

    async def on_ws_connect(self, context: LedgerContext) -> UnsetType:
        """Authenticates a WebSocket from its connection_init payload, whose
        `Authorization` key (any case) holds `Bearer <token>`; refuses it with 4403."""
        params: dict[str, Any] = context.connection_params or {}
        header = next((v for k, v in params.items() if k.lower() == "authorization"), None)
        assert context.authenticate is not None
        try:
            context.principal = await context.authenticate(
                header if isinstance(header, str) else None
            )
        except Unauthenticated as refusal:
            logger.info("WebSocket refused (%s): %s", refusal.code, refusal)
            raise ConnectionRejectionError({"message": str(refusal)}) from None
        return cast(UnsetType, UNSET)  # acknowledge without a payload
