"""The independent reference endpoint: Starlette and asyncpg's own pool on the minimal
ledger of bench/minimal.sql (schema `minimal`), nothing of the product's: no SQLAlchemy, no
repository, no GraphQL, no token check, no rules. One statement per request (the entry's
insert and the balance's upsert in one CTE, as one transaction). It measures what HTTP in
Python plus a bare ledger transaction can do on this machine; `bench/bare.py` is the other
bare endpoint, which runs the ledger's own SQL. Only the benchmark serves it.

    uvicorn bench.independent:app --workers N   (HEALTHAI_DATABASE_URL names the database)
"""

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CREATE_ENTRY = """
    WITH moved AS (
        INSERT INTO minimal.balances AS b (owner_id, balance, last_updated)
        VALUES ($1, 10, clock_timestamp())
        ON CONFLICT (owner_id) DO UPDATE
           SET balance = b.balance + excluded.balance, last_updated = excluded.last_updated
        RETURNING b.owner_id, b.balance, b.last_updated)
    INSERT INTO minimal.entries (owner_id, amount, balance_after, nonce, created_on)
    SELECT owner_id, 10, balance, $2, last_updated FROM moved
    RETURNING id, balance_after
"""
BALANCES = """
    SELECT owner_id, balance, last_updated FROM minimal.balances WHERE owner_id = ANY($1)
"""


def json_response(body: object) -> Response:
    return Response(json.dumps(body), media_type="application/json")


async def create_entry(request: Request) -> Response:
    body = await request.json()
    pool: asyncpg.Pool = request.app.state.pool
    try:
        row = await pool.fetchrow(CREATE_ENTRY, body["ownerId"], body["nonce"])
    except asyncpg.UniqueViolationError:
        return json_response({"code": "NONCE_CONFLICT"})
    return json_response({"id": str(row["id"]), "balanceAfter": row["balance_after"]})


async def balances(request: Request) -> Response:
    body = await request.json()
    pool: asyncpg.Pool = request.app.state.pool
    rows = await pool.fetch(BALANCES, body["ownerIds"])
    return json_response(
        [
            {
                "ownerId": row["owner_id"],
                "balance": row["balance"],
                "lastUpdated": row["last_updated"].isoformat(),
            }
            for row in rows
        ]
    )


async def ready(request: Request) -> Response:
    return json_response({"data": {"__typename": "Query"}})


async def _no_reset(connection: asyncpg.Connection) -> None:
    """No reset query on release (asyncpg's default is one more round trip per request):
    these statements leave no session state behind."""


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    url = os.environ["HEALTHAI_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    size = int(os.environ.get("LEDGER_DB_POOL_SIZE", "10"))
    app.state.pool = await asyncpg.create_pool(url, min_size=size, max_size=size, reset=_no_reset)
    yield
    await app.state.pool.close()


app = Starlette(
    routes=[
        Route("/entry", create_entry, methods=["POST"]),
        Route("/balances", balances, methods=["POST"]),
        Route("/graphql", ready, methods=["POST"]),  # the benchmark's readiness probe
    ],
    lifespan=lifespan,
)
