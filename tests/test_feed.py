"""A subscriber's buffer of balance updates: newest kept, nothing older than what it has,
and an end when the feed stops. Pure asyncio; no database."""

import asyncio
from datetime import UTC, datetime, timedelta

from graphql_ledger.ledger import Balance
from graphql_ledger.storage.feed import BalanceUpdate, Follower

START = datetime(2026, 1, 1, tzinfo=UTC)


def update(n: int) -> BalanceUpdate:
    return BalanceUpdate(Balance("o", n * 10, START + timedelta(seconds=n)), n)


async def drain(follower: Follower) -> list[int]:
    follower.close()
    return [u.balance.balance async for u in follower]


def test_updates_arrive_in_the_order_offered() -> None:
    follower = Follower("o", buffer=8)
    for n in (1, 2, 3):
        follower.offer(update(n))
    assert asyncio.run(drain(follower)) == [10, 20, 30]


def test_an_update_not_newer_than_the_last_one_offered_is_dropped() -> None:
    follower = Follower("o", buffer=8)
    follower.offer(update(2))
    follower.offer(update(2))  # the same version, e.g. read at follow and then notified
    follower.offer(update(1))  # older
    follower.offer(update(3))
    assert asyncio.run(drain(follower)) == [20, 30]


def test_a_follower_that_falls_behind_keeps_the_newest() -> None:
    follower = Follower("o", buffer=3)
    for n in range(1, 11):
        follower.offer(update(n))
    assert asyncio.run(drain(follower)) == [80, 90, 100]


def test_an_owner_without_entries_sorts_before_any_entry() -> None:
    follower = Follower("o", buffer=3)
    follower.offer(BalanceUpdate(Balance("o", 0, None), 0))
    follower.offer(update(1))
    assert asyncio.run(drain(follower)) == [0, 10]


def test_a_waiting_follower_wakes_for_an_update_and_ends_when_closed() -> None:
    async def scenario() -> list[int]:
        follower = Follower("o", buffer=3)
        received: list[int] = []

        async def read() -> None:
            async for u in follower:
                received.append(u.balance.balance)

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.01)
        follower.offer(update(1))
        await asyncio.sleep(0.01)
        follower.close()
        await asyncio.wait_for(reader, 1)
        return received

    assert asyncio.run(scenario()) == [10]
