"""`graphql-ledger events`: the operator's view of an app's outbox (events by id, for
replay or inspection, one JSON object a line) and the re-sending of dead-lettered events."""

import sys
from collections.abc import Sequence
from typing import TextIO

import orjson

from graphql_ledger.storage.events import (
    OutboxEvent,
    list_events,
    open_connection,
    resend_events,
)

__all__ = ["event_line", "show_events"]

_PAGE = 1000


def event_line(app: str, event: OutboxEvent) -> str:
    """One event as `events` prints it: what is POSTed, and its delivery state."""
    return orjson.dumps(
        {
            "app": app,
            "id": str(event.id),
            "type": event.type,
            "createdOn": event.created_on.isoformat(),
            "ownerId": event.owner_id,
            "status": event.status,
            "attempts": event.attempts,
            "nextAttemptAt": event.next_attempt_at.isoformat()
            if event.status == "pending"
            else None,
            "deliveredOn": event.delivered_on.isoformat() if event.delivered_on else None,
            "lastError": event.last_error,
            "data": orjson.Fragment(event.data),
        }
    ).decode()


async def show_events(
    app: str,
    url: str,
    *,
    since: int,
    limit: int | None,
    status: str | None,
    resend: Sequence[int] | None,
    out: TextIO = sys.stdout,
) -> None:
    """Prints `app`'s events with ids above `since` (of `status`, at most `limit`); with
    `resend`, first makes dead-lettered events pending again (all of them when empty)."""
    connection = await open_connection(url, timeout=10.0)
    try:
        if resend is not None:
            count = await resend_events(connection, list(resend) or None)
            print(f"{app}: {count} dead-lettered events to be sent again", file=sys.stderr)
        shown = 0
        while limit is None or shown < limit:
            page = _PAGE if limit is None else min(_PAGE, limit - shown)
            events = await list_events(connection, since, page, status)
            for event in events:
                print(event_line(app, event), file=out)
            shown += len(events)
            if len(events) < page:
                break
            since = events[-1].id
    finally:
        await connection.close()
