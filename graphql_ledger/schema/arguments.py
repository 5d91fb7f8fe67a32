"""Query arguments checked before anything reaches storage: each broken rule is a
BadUserInput that names the argument, and nothing is read."""

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from strawberry import UNSET

from graphql_ledger import ledger
from graphql_ledger.history import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, HistoryQuery, InvalidCursor
from graphql_ledger.holds import HoldStatus, hold_position
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.schema.errors import BadUserInput
from graphql_ledger.storage.grants import GrantPageQuery, grant_position
from graphql_ledger.storage.holds import HoldPageQuery

__all__ = [
    "MAX_BALANCES_PER_QUERY",
    "checked_instant",
    "checked_owner_id",
    "checked_owner_ids",
    "given",
    "grant_page_query",
    "history_query",
    "hold_page_query",
]

MAX_BALANCES_PER_QUERY = 100

T = TypeVar("T")
P = TypeVar("P")


def given(value: T | None) -> T | None:
    """An optional argument's value; None when the client left it out (UNSET, which keeps
    Strawberry from printing `= null` defaults into the SDL) or sent null."""
    return None if value is UNSET else value


def checked_owner_id(owner_id: str, argument: str = "ownerId") -> str:
    problem = ledger.identifier_problem(argument, owner_id)
    if problem is not None:
        raise BadUserInput(problem.message)
    return owner_id


def checked_owner_ids(owner_ids: Sequence[str]) -> list[str]:
    if len(owner_ids) > MAX_BALANCES_PER_QUERY:
        raise BadUserInput(f"ownerIds holds {len(owner_ids)} ids; at most {MAX_BALANCES_PER_QUERY}")
    return [checked_owner_id(owner_id) for owner_id in owner_ids]


# Python's datetime, asyncpg's parameters and the cursors all hold UTC instants of years
# 1 to 9999 only.
_INSTANTS = "0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"


def checked_instant(value: datetime | None, argument: str) -> datetime | None:
    """The instant, in UTC. It must say its offset: a local time names no instant. The
    DateTime scalar reads years 1 to 9999 in the client's offset, so an offset can carry an
    instant past the first or last one in UTC; that is the client's to fix, not a fault."""
    if value is None:
        return None
    if value.utcoffset() is None:
        raise BadUserInput(
            f"{argument} must include a UTC offset, e.g. 2026-11-26T09:30:00Z or +01:00"
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        side = "before" if value.year == 1 else "after"
        raise BadUserInput(
            f"{argument} is {side} the instants this API can represent, {_INSTANTS} in UTC"
        ) from None


def history_query(
    owner_id: str,
    first: int | None,
    after: str | None,
    operation: LedgerOperation | None,
    since: datetime | None,
    until: datetime | None,
    metadata: object = None,
) -> HistoryQuery:
    """The page the `entries` arguments ask for."""
    _check_first(first)
    since, until = checked_instant(since, "since"), checked_instant(until, "until")
    if since is not None and until is not None and since > until:
        raise BadUserInput("since must not be later than until")
    if metadata is not None:
        problem = ledger.metadata_problem(metadata)
        if problem is not None:
            raise BadUserInput(problem.message)
    query = HistoryQuery(
        owner_id=checked_owner_id(owner_id),
        operation=operation,
        since=since,
        until=until,
        metadata=tuple(sorted(metadata.items())) if isinstance(metadata, dict) else None,
    )
    if first is not None:
        query = dataclasses.replace(query, first=first)
    if after is not None:
        try:
            query = dataclasses.replace(query, after=query.position_of(after))
        except InvalidCursor as error:
            raise BadUserInput(str(error)) from None
    return query


def hold_page_query(
    owner_id: str, status: HoldStatus | None, first: int | None, after: str | None
) -> HoldPageQuery:
    """The page the `holds` arguments ask for."""
    size, position = _page(first, after, hold_position)
    return HoldPageQuery(checked_owner_id(owner_id), status, size, position)


def grant_page_query(owner_id: str, first: int | None, after: str | None) -> GrantPageQuery:
    """The page the `grants` arguments ask for."""
    size, position = _page(first, after, grant_position)
    return GrantPageQuery(checked_owner_id(owner_id), size, position)


def _page(
    first: int | None, after: str | None, position_of: Callable[[str], P | None]
) -> tuple[int, P | None]:
    """A page's size (`first`, its default when absent) and where it starts (`after`,
    decoded by `position_of`, which answers None for a string that is not its cursor)."""
    _check_first(first)
    position = None
    if after is not None:
        position = position_of(after)
        if position is None:
            raise BadUserInput("after is not a cursor of this API")
    return first or DEFAULT_PAGE_SIZE, position


def _check_first(first: int | None) -> None:
    if first is not None and not 1 <= first <= MAX_PAGE_SIZE:
        raise BadUserInput(f"first must be from 1 to {MAX_PAGE_SIZE}, not {first}")
