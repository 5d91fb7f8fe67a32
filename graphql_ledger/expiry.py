"""The expiry pass: books out, as EXPIRY entries, what has lapsed of expiring grants. Every
server process runs one (`ExpiryPass`) every LEDGER_EXPIRY_INTERVAL seconds (10 by default),
so an expired grant is booked within that time plus a pass's length, far inside the
contract's 60 s. Correctness needs none of it: reads stop counting an expired credit at its
expiresAt, and an owner's next write books what has lapsed first. The work is
ledger_expire_grants() in PostgreSQL: owners whose balances.expiring_until has passed,
soonest first, SKIP LOCKED, about BATCH EXPIRY entries per transaction; processes that run
it at once split the owners between them, and each grant is booked once."""

import asyncio
import logging
from contextlib import suppress

from graphql_ledger.storage import LedgerRepository, StorageUnavailable

__all__ = ["ExpiryPass", "expire_now"]

logger = logging.getLogger("graphql_ledger.expiry")

# EXPIRY entries per transaction: each holds the locks of the owners it books for a few
# milliseconds (bench/RESULTS.md: a backlog of 100,000 grants).
BATCH = 10


async def expire_now(repository: LedgerRepository, batch: int = BATCH) -> int:
    """Books everything that has lapsed, a batch per transaction, until a batch finds less
    than a full one; answers how many EXPIRY entries were booked."""
    booked = 0
    while True:
        done = await repository.expire_grants(batch)
        booked += done
        if done < batch:
            return booked


class ExpiryPass:
    """Runs `expire_now` every `interval` seconds until stopped."""

    def __init__(self, name: str, repository: LedgerRepository, interval: float) -> None:
        self.name = name
        self.repository = repository
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.name} expiry pass")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                booked = await expire_now(self.repository)
                if booked:
                    logger.info("%s booked %d expiries", self.name, booked)
            except StorageUnavailable as error:
                logger.warning("%s: the expiry pass waits for the database (%s)", self.name, error)
            except Exception:
                logger.exception("%s: the expiry pass failed; it runs again", self.name)
            await asyncio.sleep(self.interval)
