"""Alembic environment shared by every app database.

`graphql-ledger migrate` hands Alembic an open connection (config.attributes["connection"]);
the plain `alembic` command, used to write new revisions, connects to $DATABASE_URL.
"""

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from graphql_ledger.storage.database import create_engine


def run_with(connection: Connection) -> None:
    context.configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_standalone(url: str) -> None:
    engine = create_engine(url, autocommit=False)
    async with engine.connect() as connection:
        await connection.run_sync(run_with)
        await connection.commit()
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_with(connection)
else:
    asyncio.run(run_standalone(os.environ["DATABASE_URL"]))
