"""The /graphql endpoint: Strawberry's ASGI view, with the request checks that come before
GraphQL. An HTTP request must fit the body limit and carry a valid bearer token (the
GraphiQL page itself needs none); a WebSocket speaks graphql-transport-ws, counts against
the process's connection limit, and proves itself in connection_init. Refusals made here
keep the GraphQL error shape."""

import logging
import time
import urllib.parse
import uuid
from typing import Any, NamedTuple, cast

import orjson
from cross_web import HTTPException  # what Strawberry's view raises to refuse a request
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from graphql_ledger.auth import Authenticator, Unauthenticated
from graphql_ledger.graphiql import GraphiQLAssets
from graphql_ledger.persisted import PersistedQueries, PersistedQueryNotFound
from graphql_ledger.schema import LedgerContext, LedgerSchema

__all__ = ["LedgerGraphQL", "graphql_error_response"]

logger = logging.getLogger(__name__)

request_log = logging.getLogger("graphql_ledger.requests")

_HTTP_ERROR_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
_JSON = "application/json"


class _Method(NamedTuple):
    name: str
    operations: frozenset[OperationType]


_POST = _Method("POST", frozenset({OperationType.QUERY, OperationType.MUTATION}))
_GET = _Method("GET", frozenset({OperationType.QUERY}))


class _Answer(NamedTuple):
    """A response, and what the log and the metrics say of it."""

    response: Response
    operation: str | None
    outcome: str


def _request_id(request: Request) -> str:
    """The caller's X-Request-ID when it is a sane one, else a new one."""
    given = request.headers.get("x-request-id", "")
    if 0 < len(given) <= 128 and given.isprintable() and given.isascii():
        return given
    return uuid.uuid4().hex


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


_PERSISTED_QUERY_NOT_FOUND = {
    "errors": [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ]
}


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


class BodyTooLarge(Exception):
    pass


def graphql_error_response(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A response outside GraphQL execution, shaped like a GraphQL result's errors."""
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status, headers=headers)


class LedgerGraphQL(GraphQL[LedgerContext, None]):
    """Strawberry's view with the ledger's request checks and a LedgerContext (fresh
    DataLoaders, the authenticated caller) per request or WebSocket connection."""

    def __init__(
        self,
        schema: LedgerSchema,
        *,
        max_body_bytes: int,
        max_websockets: int,
        max_subscriptions: int,
        graphiql: GraphiQLAssets | None = None,
    ) -> None:
        super().__init__(
            schema,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=max_subscriptions,
        )
        self.max_body_bytes = max_body_bytes
        self.max_websockets = max_websockets
        self.open_websockets = 0
        self.persisted_queries = PersistedQueries()
        self.graphiql = graphiql or GraphiQLAssets()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._serve_websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        started = time.perf_counter()
        request = Request(scope, self._limited(receive))
        answer = await self._respond(request)
        request_id = _request_id(request)
        answer.response.headers["x-request-id"] = request_id
        await answer.response(scope, receive, send)
        self._record(request, answer, request_id, time.perf_counter() - started)

    async def _respond(self, request: Request) -> "_Answer":
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return self._too_large()
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            return _Answer(await self.run(request), None, "page")
        authenticator: Authenticator = request.app.state.authenticator
        try:
            request.state.principal = await authenticator.authenticate(
                request.headers.get("authorization")
            )
        except Unauthenticated as refusal:  # 401, or 503 while no token key is known
            response = graphql_error_response(
                refusal.status, str(refusal), refusal.code, refusal.headers
            )
            return _Answer(response, None, refusal.outcome)
        try:
            if request.method == "POST" and _media_type(request) == _JSON:
                return await self._execute(request, await self._json_body(request), _POST)
            if request.method == "GET" and "query" in request.query_params:
                return await self._execute(request, _get_parameters(request), _GET)
            handled = await self.run(request)  # anything else: Strawberry's own handling
            return _Answer(handled, None, "ok" if handled.status_code < 400 else "error")
        except HTTPException as refusal:
            code = _HTTP_ERROR_CODES.get(refusal.status_code, "BAD_REQUEST")
            refused = graphql_error_response(refusal.status_code, refusal.reason, code)
            return _Answer(refused, None, code.lower())
        except BodyTooLarge:
            return self._too_large()

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
        self, request: Request, body: dict[str, Any], method: "_Method"
    ) -> "_Answer":
        """A GraphQL request over HTTP (POST with JSON, the way clients send nearly every
        request, or GET), run without Strawberry's generic request handling (measured: it
        cost as much as a small query's execution)."""
        query = self.persisted_queries.resolve(body)
        if isinstance(query, PersistedQueryNotFound):
            response = Response(orjson.dumps(_PERSISTED_QUERY_NOT_FOUND), media_type=_JSON)
            return _Answer(response, None, "persisted_query_not_found")
        variables = body.get("variables")
        if variables is not None and not isinstance(variables, dict):
            raise HTTPException(400, "variables must be an object")
        requested = body.get("operationName")
        requested = requested if isinstance(requested, str) else None
        try:
            result = await self.schema.execute(
                query,
                variable_values=variables,
                context_value=self._context(request),
                operation_name=requested,
                allowed_operation_types=method.operations,
            )
        except MissingQueryError:
            raise HTTPException(400, "No GraphQL query found in the request") from None
        except InvalidOperationTypeError as refusal:
            raise HTTPException(400, refusal.as_http_error_reason(method.name)) from None
        except CannotGetOperationTypeError as refusal:
            raise HTTPException(400, refusal.as_http_error_reason()) from None
        body = {"data": result.data}
        outcome = "ok"
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
            codes = {(error.extensions or {}).get("code") for error in result.errors}
            outcome = (
                "unexpected"
                if "INTERNAL_SERVER_ERROR" in codes
                else "unavailable"
                if "SERVICE_UNAVAILABLE" in codes
                else "error"
            )
        schema = cast(LedgerSchema, self.schema)
        operation = schema.operation_name(query, requested) if query else None
        return _Answer(Response(orjson.dumps(body), media_type=_JSON), operation, outcome)

    def _context(self, request: Request) -> LedgerContext:
        state = request.app.state
        return LedgerContext.for_request(
            state.repository, request.state.principal, observe=state.observe_outcome
        )

    def _record(self, request: Request, answer: "_Answer", request_id: str, took: float) -> None:
        """One log line and the metrics of a request; never a token or a variable."""
        request.app.state.metrics.request(answer.operation, answer.outcome, took)
        request_log.info(
            "%s %s %d",
            request.method,
            request.url.path,
            answer.response.status_code,
            extra={
                "request_id": request_id,
                "app": request.app.state.name,
                "operation": answer.operation,
                "outcome": answer.outcome,
                "status": answer.response.status_code,
                "duration_ms": round(took * 1000, 2),
            },
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

    def _limited(self, receive: Receive) -> Receive:
        """`receive`, counting the body as it arrives: a body sent without a
        Content-Length is refused as soon as it passes the limit, never read whole."""
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise BodyTooLarge
            return message

        return limited

    def _too_large(self) -> "_Answer":
        response = graphql_error_response(
            413, f"the request body is larger than {self.max_body_bytes} bytes", "PAYLOAD_TOO_LARGE"
        )
        return _Answer(response, None, "payload_too_large")

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL with its files served by the app (graphiql.py), or from the CDN."""
        return HTMLResponse(self.graphiql.page(request.scope.get("root_path", "")))

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()  # str: WebSocket frames are sent as text

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> LedgerContext:
        state = request.app.state
        if isinstance(request, WebSocket):  # authenticated by on_ws_connect
            authenticator: Authenticator = state.authenticator
            return LedgerContext.for_request(
                state.repository,
                None,
                authenticator.authenticate,
                state.feed,
                observe=state.observe_outcome,
            )
        # An HTTP request Strawberry handles itself (a GraphiQL page, a form body).
        return LedgerContext.for_request(
            state.repository, getattr(request.state, "principal", None)
        )

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
