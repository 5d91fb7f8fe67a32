"""The operator's endpoints: `/healthz` (the process answers), `/readyz` (its database
answers, is migrated to the revision this code expects, and holds this app's operation
rules; 503 otherwise) and `/metrics`.
They need no token and reveal no owner's data."""

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from graphql_ledger.metrics import CONTENT_TYPE_LATEST, LedgerMetrics
from graphql_ledger.storage import LedgerRepository

__all__ = ["healthz", "metrics", "readyz"]

logger = logging.getLogger(__name__)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    repository: LedgerRepository = request.app.state.repository
    expected: str | None = request.app.state.schema_revision
    try:
        revision = await repository.connections.schema_revision()
    except Exception as error:  # whatever it is, not ready; the log says what
        logger.warning("not ready: the database does not answer (%r)", error)
        return JSONResponse(
            {"status": "unavailable", "reason": "the database does not answer"}, status_code=503
        )
    if revision != expected:
        reason = f"the database is at revision {revision}, this code needs {expected}"
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    differences = await repository.rules.differences()
    if differences:
        reason = (
            "the database's operation rules are not this app's (run graphql-ledger migrate): "
            + "; ".join(differences)
        )
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready", "revision": revision})


async def metrics(request: Request) -> Response:
    recorder: LedgerMetrics = request.app.state.metrics
    return Response(recorder.exposition(), media_type=CONTENT_TYPE_LATEST)
