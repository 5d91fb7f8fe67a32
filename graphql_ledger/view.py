"""The /graphql endpoint: Strawberry's ASGI view, with the request checks that come before
GraphQL. An HTTP request must fit the body limit and carry a valid bearer token (the
GraphiQL page itself needs none); a WebSocket speaks graphql-transport-ws, counts against
the process's connection limit, and proves itself in connection_init. Refusals made here
keep the GraphQL error shape."""

import logging
from typing import Any, cast

import orjson
from cross_web import HTTPException  # what Strawberry's view raises to refuse a request
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from graphql_ledger.auth import Authenticator, Unauthenticated
from graphql_ledger.persisted import PersistedQueries, PersistedQueryNotFound
from graphql_ledger.schema import LedgerContext, LedgerSchema
from graphql_ledger.storage import LedgerRepository

__all__ = ["LedgerGraphQL", "graphql_error_response"]

logger = logging.getLogger(__name__)

_HTTP_ERROR_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
_JSON = "application/json"
_POST_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._serve_websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        response = await self._respond(Request(scope, self._limited(receive)))
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return self._too_large()
        if not self.should_render_graphql_ide(self.request_adapter_class(request)):
            authenticator: Authenticator = request.app.state.authenticator
            try:
                request.state.principal = authenticator.authenticate(
                    request.headers.get("authorization")
                )
            except Unauthenticated as refusal:
                return graphql_error_response(
                    401, str(refusal), "UNAUTHENTICATED", {"WWW-Authenticate": "Bearer"}
                )
        try:
            if request.method == "POST" and _media_type(request) == "application/json":
                return await self._execute_json(request)
            return await self.run(request)
        except HTTPException as refusal:
            code = _HTTP_ERROR_CODES.get(refusal.status_code, "BAD_REQUEST")
            return graphql_error_response(refusal.status_code, refusal.reason, code)
        except BodyTooLarge:
            return self._too_large()

    async def _execute_json(self, request: Request) -> Response:
        """POST with a JSON body, the way clients send nearly every request, executed
        without Strawberry's generic request handling (measured: it cost as much as a
        small query's execution). Other requests (GET, forms, GraphiQL) take Strawberry's
        path; both answer alike."""
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise HTTPException(400, "Unable to parse request body as JSON") from None
        if isinstance(body, list):
            raise HTTPException(400, "Batching is not enabled")
        if not isinstance(body, dict):
            raise HTTPException(400, "No GraphQL query found in the request")
        query = self.persisted_queries.resolve(body)
        if isinstance(query, PersistedQueryNotFound):
            return Response(orjson.dumps(_PERSISTED_QUERY_NOT_FOUND), media_type=_JSON)
        variables = body.get("variables")
        if variables is not None and not isinstance(variables, dict):
            raise HTTPException(400, "variables must be an object")
        operation_name = body.get("operationName")
        context = LedgerContext.for_request(request.app.state.repository, request.state.principal)
        try:
            result = await self.schema.execute(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name if isinstance(operation_name, str) else None,
                allowed_operation_types=_POST_OPERATIONS,
            )
        except MissingQueryError:
            raise HTTPException(400, "No GraphQL query found in the request") from None
        except InvalidOperationTypeError as refusal:
            raise HTTPException(400, refusal.as_http_error_reason("POST")) from None
        except CannotGetOperationTypeError as refusal:
            raise HTTPException(400, refusal.as_http_error_reason()) from None
        response: dict[str, object] = {"data": result.data}
        if result.errors:
            response["errors"] = [error.formatted for error in result.errors]
        return Response(orjson.dumps(response), media_type=_JSON)

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

    def _too_large(self) -> JSONResponse:
        return graphql_error_response(
            413, f"the request body is larger than {self.max_body_bytes} bytes", "PAYLOAD_TOO_LARGE"
        )

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()  # str: WebSocket frames are sent as text

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> LedgerContext:
        repository: LedgerRepository = request.app.state.repository
        if isinstance(request, WebSocket):  # authenticated by on_ws_connect
            authenticator: Authenticator = request.app.state.authenticator
            return LedgerContext.for_request(
                repository, None, authenticator.authenticate, request.app.state.feed
            )
        return LedgerContext.for_request(repository, getattr(request.state, "principal", None))

    async def on_ws_connect(self, context: LedgerContext) -> UnsetType:
        """Authenticates a WebSocket from its connection_init payload, whose
        `Authorization` key (any case) holds `Bearer <token>`; refuses it with 4403."""
        params: dict[str, Any] = context.connection_params or {}
        header = next((v for k, v in params.items() if k.lower() == "authorization"), None)
        assert context.authenticate is not None
        try:
            context.principal = context.authenticate(header if isinstance(header, str) else None)
        except Unauthenticated as refusal:
            logger.info("WebSocket refused: %s", refusal)
            raise ConnectionRejectionError({"message": str(refusal)}) from None
        return cast(UnsetType, UNSET)  # acknowledge without a payload
