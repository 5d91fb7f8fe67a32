"""The HTTP concerns every request shares, as ASGI middleware around the whole app (as
Starlette composes its own): a request id, the body limit, and one access-log line plus the
request metrics per request. The operator's probes (/healthz, /readyz, /metrics) are neither
logged nor counted: they arrive every few seconds and would drown the rest.

The GraphQL executor leaves what it ran (an `OperationRecord`) in the request's state, so the
one line of a GraphQL request names its operation and outcome; a WebSocket's operations are
reported one by one through `report_operation`, with the same fields."""

import logging
import time
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphql_ledger.schema import OperationRecord

__all__ = [
    "AccessLog",
    "BodyLimit",
    "RequestId",
    "graphql_error_response",
    "report_operation",
]

request_log = logging.getLogger("graphql_ledger.requests")

_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
OPERATION = "ledger.operation"  # the request state's key for the OperationRecord
OUTCOME = "ledger.outcome"  # and for what the view answered without running one
REQUEST_ID = "ledger.request_id"


def graphql_error_response(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A response outside GraphQL execution, shaped like a GraphQL result's errors."""
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status, headers=headers)


def _state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


class RequestId:
    """Keeps the caller's X-Request-ID when it is a sane one, else makes one; the response
    carries it back, and the log line names it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        sane = 0 < len(given) <= 128 and given.isprintable() and given.isascii()
        request_id = given if sane else uuid.uuid4().hex
        _state(scope)[REQUEST_ID] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id if scope["type"] == "http" else send)


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuses a body larger than `max_bytes` with 413: at once when its Content-Length
    says so, and as soon as it passes the limit when it comes without one (never read
    whole)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _BodyTooLarge
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        _state(scope)[OUTCOME] = "payload_too_large"
        response = graphql_error_response(
            413, f"the request body is larger than {self.max_bytes} bytes", "PAYLOAD_TOO_LARGE"
        )
        await response(scope, receive, send)


class AccessLog:
    """One log line and the request metrics of each HTTP request, once it is answered;
    never a token or a variable, which may hold personal data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _PROBES:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            state = _state(scope)
            record: OperationRecord | None = state.get(OPERATION)
            outcome = state.get(OUTCOME) or (
                record.outcome if record else "ok" if status < 400 else "error"
            )
            _report(
                scope,
                scope["method"],
                status,
                record.name if record else None,
                outcome,
                time.perf_counter() - started,
            )


def report_operation(scope: Scope, record: OperationRecord) -> None:
    """The log line and metrics of one operation a WebSocket ran."""
    _report(scope, "WS", None, record.name, record.outcome, record.seconds)


def _report(
    scope: Scope,
    method: str,
    status: int | None,
    operation: str | None,
    outcome: str,
    seconds: float,
) -> None:
    app_state = scope["app"].state
    metrics = getattr(app_state, "metrics", None)
    if metrics is not None:  # None before the app has started
        metrics.request(operation, outcome, seconds)
    request_log.info(
        "%s %s %s",
        method,
        scope["path"],
        status if status is not None else (operation or "anonymous"),
        extra={
            "request_id": _state(scope).get(REQUEST_ID),
            "app": app_state.name,
            "operation": operation,
            "outcome": outcome,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        },
    )
