"""The bare reference endpoint: Starlette and the app's own LedgerRepository on asyncpg, with
no GraphQL. It measures what HTTP in Python plus the ledger's SQL can do, so the benchmark
can say what GraphQL costs on top. Only the benchmark serves it; the product never does.

    uvicorn bench.bare:app --workers N   (HEALTHAI_DATABASE_URL names the database)
"""

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from graphql_ledger.auth import Authenticator, Unauthenticated, authenticator_for
from graphql_ledger.config import Settings
from graphql_ledger.ledger import Entry, identifier_problem
from graphql_ledger.storage import LedgerRepository, create_engine
from healthai.operations import HealthAIOperation


def json_response(body: object) -> Response:
    return Response(json.dumps(body), media_type="application/json")


async def authenticated(request: Request) -> bool:
    """The product's token check, so that the comparison isolates GraphQL's cost."""
    authenticator: Authenticator = request.app.state.authenticator
    try:
        return (await authenticator.authenticate(request.headers.get("authorization"))).is_service
    except Unauthenticated:
        return False


async def create_entry(request: Request) -> Response:
    if not await authenticated(request):
        return Response(status_code=401)
    body = await request.json()
    problem = identifier_problem("ownerId", body["ownerId"]) or identifier_problem(
        "nonce", body["nonce"]
    )
    if problem is not None:
        return json_response({"code": "INVALID_INPUT", "field": problem.field})
    repository: LedgerRepository = request.app.state.repository
    outcome = await repository.create_entry(
        body["ownerId"], HealthAIOperation[body["operation"]], body["nonce"]
    )
    if isinstance(outcome, Entry):
        return json_response({"id": str(outcome.id), "balanceAfter": outcome.balance_after})
    return json_response({"code": type(outcome).__name__})


async def balances(request: Request) -> Response:
    if not await authenticated(request):
        return Response(status_code=401)
    body = await request.json()
    repository: LedgerRepository = request.app.state.repository
    found = await repository.balances_of(body["ownerIds"])
    return json_response(
        [
            {
                "ownerId": b.owner_id,
                "balance": b.balance,
                "lastUpdated": b.last_updated.isoformat() if b.last_updated else None,
            }
            for b in found
        ]
    )


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    engine = create_engine(
        os.environ["HEALTHAI_DATABASE_URL"],
        pool_size=int(os.environ.get("LEDGER_DB_POOL_SIZE", "10")),
    )
    app.state.repository = LedgerRepository(engine, HealthAIOperation)
    app.state.authenticator = authenticator_for(Settings.from_env(), "healthai")
    yield
    await engine.dispose()


app = Starlette(
    routes=[
        Route("/entry", create_entry, methods=["POST"]),
        Route("/balances", balances, methods=["POST"]),
    ],
    lifespan=lifespan,
)
