"""SIGTERM in the middle of a write load drains the server: every request it had taken is
answered in full and stored, every other one fails before the ledger saw it."""

import asyncio
import signal
import uuid
from collections.abc import Callable
from typing import Any

import httpx2 as httpx

from tests.support import (
    ServerProcess,
    clean_environment,
    create_entry_request,
    service_headers,
    sql,
)

CLIENTS = 40


async def load(base_url: str, stop_after: float, on_started: Callable[[], None]) -> list[Any]:
    """CLIENTS clients writing until the server is gone; each result is
    (nonce, entry id or None, the failure's type name or None)."""
    results: list[Any] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(
        base_url=base_url, headers=service_headers("healthai"), limits=limits, timeout=30
    ) as http:

        async def client(number: int) -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + stop_after
            while loop.time() < deadline:
                nonce = uuid.uuid4().hex
                request = create_entry_request(f"drain-{number}", "CREDIT_ADD", nonce)
                try:
                    response = await http.post("/graphql", json=request)
                except httpx.TransportError as error:
                    results.append((nonce, None, type(error).__name__))
                    if isinstance(error, httpx.ConnectError):
                        return  # the server is gone
                    continue
                body = response.json()  # a half-answered request would fail right here
                entry = body["data"]["createEntry"]
                assert entry["__typename"] == "LedgerEntry", body
                results.append((nonce, entry["id"], None))

        clients = [asyncio.create_task(client(n)) for n in range(CLIENTS)]
        await asyncio.sleep(1.0)
        on_started()
        await asyncio.gather(*clients)
    return results


def test_sigterm_mid_load_answers_every_request_in_full_or_not_at_all(
    new_database: Callable[..., str], figures: Callable[[str], None]
) -> None:
    url = new_database("drain")
    server = ServerProcess.uvicorn("healthai", clean_environment(HEALTHAI_DATABASE_URL=url))
    server.start()
    assert server.process is not None
    results = asyncio.run(
        load(server.url(), 15, lambda: server.process.send_signal(signal.SIGTERM))  # type: ignore[union-attr]
    )
    exit_code = server.process.wait(30)  # one SIGTERM only: a second one forces the exit

    answered = {nonce: entry_id for nonce, entry_id, failure in results if failure is None}
    failed = {nonce: failure for nonce, _, failure in results if failure is not None}
    stored = {row.nonce: str(row.id) for row in sql(url, "SELECT nonce, id FROM entries")}
    figures(f"drain: {len(answered)} answered, {len(failed)} refused once draining began")

    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught (-15).
    assert exit_code in (0, -signal.SIGTERM), server.output()
    assert '"message":"healthai stopped"' in server.output()
    assert len(answered) > CLIENTS, "the load ran before the signal"
    assert failed, "requests were still arriving when the server stopped"
    assert {stored.get(nonce) for nonce in answered} == set(answered.values()) - {None}
    assert all(stored[nonce] == entry_id for nonce, entry_id in answered.items())
    assert not set(failed) & set(stored), "a request that got no answer was written"
    assert set(failed.values()) <= {"ConnectError", "RemoteProtocolError", "ReadError"}
