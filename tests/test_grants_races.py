"""Expiring grants (contract section 5) under two real uvicorn processes of healthai on one
database, each running its expiry pass every 0.2 s: every lapsed grant is booked out as
exactly one EXPIRY, whichever process (or the owner's own write) books it, and spends racing
the expiry take credits from a grant only before it expires. The database alone keeps the
books: no assertion depends on which process booked, or on when a request ran, only on what
the ledger recorded (each spend's createdOn against its grant's expiresAt)."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest

from tests.support import (
    Cluster,
    GraphQLClient,
    database_now,
    mutate_async,
    service_headers,
    sql,
    two_servers,
    verify_books,
    wait_for_database_clock,
)

pytestmark = pytest.mark.slow

SERVICE = service_headers("healthai")
LIFETIME = timedelta(seconds=1.5)  # of each grant, from the database's clock
GRANT = 20  # credits of each grant: CREDIT_ADD of quantity 2
PURCHASE = 10  # credits that never expire, of every other owner
BOOKED_WITHIN = 20.0  # seconds the test waits, at most, for the passes to book every expiry
# The spends racing each grant's expiry: when each is sent, in seconds from the instant the
# grant expires, and how fast grants are given, so that the requests of a moment stay within
# what two processes on this machine answer at once.
WAVES = (-0.4, -0.15, 0.0, 0.15, 0.4)
RACING_OWNERS = 120
GRANTS_PER_SECOND = 60
IN_FLIGHT = 32  # requests at once, over both processes

ENTRY = "id ownerId amount balanceAfter createdOn kind expiresAt remaining"
CREATE = f"""
mutation C($input: CreateEntryInput!) {{ createEntry(input: $input) {{ __typename
  ... on LedgerEntry {{ {ENTRY} }}
  ... on LedgerError {{ code message }}
  ... on InsufficientCredits {{ balance required }} }} }}
"""
BOOKS = """
query B($ids: [ID!]!) { balances(ownerIds: $ids) { ownerId balance held available
  expiringWithin(seconds: 3600) } }
"""
GRANTS = """
query G($id: ID!) { owner(id: $id) {
  grants(first: 10) { edges { node { id remaining } } }
  entries(first: 20) { edges { node { kind amount nonce operation remaining
                                      expiryOf { id remaining } } } } } }
"""

# Per grant: its EXPIRY entries (how many, their amounts), what its uses took, and the row.
EXPIRIES = """
SELECT g.entry_id, g.remaining,
       (SELECT count(*) FROM entries e
         WHERE e.owner_id = g.owner_id AND e.expiry_of = g.entry_id),
       (SELECT coalesce(sum(e.amount), 0) FROM entries e
         WHERE e.owner_id = g.owner_id AND e.expiry_of = g.entry_id),
       (SELECT coalesce(sum(u.credits), 0) FROM grant_uses u
         WHERE u.owner_id = g.owner_id AND u.grant_id = g.entry_id)
  FROM grants g WHERE g.owner_id LIKE :prefix || '%'
"""
BOOKED = """
SELECT count(*) FROM grants g WHERE g.owner_id LIKE :prefix || '%'
   AND EXISTS (SELECT FROM entries e WHERE e.owner_id = g.owner_id AND e.expiry_of = g.entry_id)
"""
# Credits some spend or hold took from a grant at or after the grant's expiresAt.
TAKEN_AFTER_EXPIRY = """
SELECT count(*) FROM grant_uses u JOIN grants g
    ON g.owner_id = u.owner_id AND g.entry_id = u.grant_id
 WHERE u.owner_id LIKE :prefix || '%' AND u.credits > 0
   AND (u.taken_on >= u.expires_at OR u.taken_on >= g.expires_at)
"""
# Which spends took credits from grants, and how many.
SPENDS = """
SELECT u.entry_id, sum(u.credits) FROM grant_uses u
 WHERE u.owner_id LIKE :prefix || '%' AND u.entry_id IS NOT NULL GROUP BY u.entry_id
"""


@pytest.fixture(scope="module")
def cluster(new_database: Callable[..., str]) -> Iterator[Cluster]:
    """Two healthai processes on one fresh database, each booking expiries every 0.2 s."""
    url = new_database("grantraces")
    with two_servers(
        url,
        LEDGER_EXPIRY_INTERVAL="0.2",
        LEDGER_DB_POOL_SIZE="10",
        LEDGER_DB_POOL_TIMEOUT="60",
        LEDGER_DB_TIMEOUT="60",
    ) as started:
        yield started
    verify_books("healthai", url)


@dataclass
class Owner:
    """One owner of a test and everything the ledger answered it."""

    id: str
    purchase: int  # credits that never expire, bought before the grant
    purchase_id: str = ""
    grant: dict[str, Any] = field(default_factory=dict)
    spends: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # credits, answer


def new_owners(count: int) -> tuple[str, list[Owner]]:
    """`count` owners no other test has, every other one with a purchase; their prefix."""
    prefix = f"grantrace-{time.time_ns()}-"
    owners = [Owner(f"{prefix}{n}", PURCHASE if n % 2 == 0 else 0) for n in range(count)]
    return prefix, owners


class Clients:
    """An async client of each server process; requests alternate between the two, at most
    IN_FLIGHT at once, so that each is answered in milliseconds, not queued for seconds."""

    def __init__(self, servers: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
        self.servers = servers
        self.sent = 0
        self.in_flight = asyncio.Semaphore(IN_FLIGHT)

    async def create(self, **input_: Any) -> dict[str, Any]:
        """createEntry, once fewer than IN_FLIGHT requests are."""
        async with self.in_flight:
            return await self.send(**input_)

    async def send(self, **input_: Any) -> dict[str, Any]:
        """createEntry at once: for a caller that holds a place in `in_flight`."""
        self.sent += 1
        return await mutate_async(self.servers[self.sent % 2], CREATE, "createEntry", **input_)


def run_with_clients(cluster: Cluster, work: Callable[[Clients], Awaitable[None]]) -> int:
    """Runs `work` with clients of both processes; answers how many requests it sent."""

    async def run() -> int:
        limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
        async with (
            httpx.AsyncClient(
                base_url=cluster.server_urls[0], limits=limits, timeout=90, headers=SERVICE
            ) as a,
            httpx.AsyncClient(
                base_url=cluster.server_urls[1], limits=limits, timeout=90, headers=SERVICE
            ) as b,
        ):
            clients = Clients((a, b))
            await work(clients)
            return clients.sent

    return asyncio.run(run())


class DatabaseClock:
    """The database's clock, read once and then followed on the monotonic clock (the two
    run at one rate), so that coroutines can name instants of it without a query. An
    instant it names is at most the read's latency early."""

    def __init__(self, url: str) -> None:
        self.read_at = time.monotonic()
        self.base = instant(database_now(url))

    def ahead(self, delta: timedelta) -> tuple[str, float]:
        """The database's instant `delta` from now (ISO 8601), and the monotonic instant
        at or before which it passes."""
        now = time.monotonic()
        at = self.base + timedelta(seconds=now - self.read_at) + delta
        return at.isoformat(), now + delta.total_seconds()


async def buy(clients: Clients, owners: list[Owner]) -> None:
    """Each owner's purchase, if it has one: credits that never expire."""

    async def one(owner: Owner) -> None:
        bought = await clients.create(
            ownerId=owner.id, operation="CREDIT_ADD", nonce="purchase",
            quantity=owner.purchase // 10,
        )  # fmt: skip
        assert (bought["__typename"], bought["expiresAt"]) == ("LedgerEntry", None), bought
        assert (bought["balanceAfter"], bought["remaining"]) == (owner.purchase,) * 2, bought
        owner.purchase_id = bought["id"]

    await asyncio.gather(*(one(owner) for owner in owners if owner.purchase))


async def grant(clients: Clients, owner: Owner, clock: DatabaseClock) -> float:
    """The owner's grant of GRANT credits, expiring LIFETIME after the database's clock as
    it is sent (the caller holds a place in `in_flight`); answers the monotonic instant by
    which it expires."""
    expires_at, expires_by = clock.ahead(LIFETIME)
    owner.grant = await clients.send(
        ownerId=owner.id, operation="CREDIT_ADD", nonce="grant",
        quantity=GRANT // 10, expiresAt=expires_at,
    )  # fmt: skip
    assert owner.grant["__typename"] == "LedgerEntry", owner.grant
    assert (owner.grant["balanceAfter"], owner.grant["remaining"]) == (
        owner.purchase + GRANT,
        GRANT,
    ), owner.grant
    assert instant(owner.grant["expiresAt"]) == instant(expires_at)
    return expires_by


async def spend(
    clients: Clients, owner: Owner, nonce: str, credits: int, *, queued: bool = True
) -> None:
    """A spend of `credits`, its answer kept; `queued=False` from a caller that holds a
    place in `in_flight`."""
    input_ = {"ownerId": owner.id, "operation": "CREDIT_SPEND", "nonce": nonce}
    send = clients.create if queued else clients.send
    owner.spends.append((credits, await send(**input_, quantity=credits)))


def instant(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


@dataclass
class Expected:
    """What one owner's books must be once its grant has expired, from what the ledger
    answered: a spend dated before the grant's expiresAt takes from the grant (the
    soonest-expiring credits), one dated at or after it from the purchase, and a spend is
    refused only when nothing is available (the grant expired, the purchase spent)."""

    from_grant: dict[str, int]  # spend entry id -> credits it took from the grant
    left: int  # the grant's credits that lapse
    balance: int
    refused: int
    late: int  # spends dated at or after the expiry that went ahead, from the purchase


def expected_books(owner: Owner) -> Expected:
    expires = instant(owner.grant["expiresAt"])
    granted = [(c, a) for c, a in owner.spends if a["__typename"] == "LedgerEntry"]
    refused = [(c, a) for c, a in owner.spends if a["__typename"] != "LedgerEntry"]
    grant_left, purchase_left, balance = GRANT, owner.purchase, owner.purchase + GRANT
    from_grant, late = {}, 0
    for credits, entry in sorted(granted, key=lambda spent: int(spent[1]["id"])):
        assert entry["amount"] == -credits, entry
        if instant(entry["createdOn"]) < expires:
            assert late == 0, (owner.id, "a spend from the grant after its EXPIRY", entry)
            assert credits <= grant_left, (owner.id, entry)
            from_grant[entry["id"]] = credits
            grant_left -= credits
        else:  # the grant's EXPIRY was booked before it, by a pass or by this very write
            if late == 0:
                balance -= grant_left
            assert credits <= purchase_left, (owner.id, entry)
            purchase_left -= credits
            late += 1
        assert entry["balanceAfter"] == balance - credits, (owner.id, entry)
        balance -= credits
    for credits, answer in refused:
        assert owner.purchase == 0, (owner.id, answer)  # purchases outlast every spend
        assert answer == {
            "__typename": "InsufficientCredits",
            "code": "INSUFFICIENT_CREDITS",
            "message": answer["message"],
            "balance": 0,
            "required": credits,
        }, (owner.id, answer)
    return Expected(from_grant, grant_left, purchase_left, len(refused), late)


def wait_until_every_grant_is_booked(url: str, prefix: str, owners: list[Owner]) -> None:
    """Waits for the database clock to pass the grants' expiresAt, then polls (at most
    BOOKED_WITHIN seconds) until each grant has an EXPIRY: booked by either process's pass,
    or by a write of its owner."""
    latest = max((owner.grant["expiresAt"] for owner in owners), key=instant)
    wait_for_database_clock(url, latest, timeout=BOOKED_WITHIN)
    deadline = time.monotonic() + BOOKED_WITHIN
    while sql(url, BOOKED, prefix=prefix)[0][0] < len(owners):
        assert time.monotonic() < deadline, "the expiry passes left grants unbooked"
        time.sleep(0.1)


def check_books(cluster: Cluster, prefix: str, owners: list[Owner]) -> dict[str, int]:
    """Checks every owner's books against `expected_books`: in the database (as its owner),
    through both processes, and with `graphql-ledger verify`; answers figures."""
    url = cluster.database_url
    expected = {owner.id: expected_books(owner) for owner in owners}
    by_grant = {int(owner.grant["id"]): expected[owner.id] for owner in owners}

    rows = sql(url, EXPIRIES, prefix=prefix)
    assert len(rows) == len(owners)
    for grant_id, remaining, expiries, expired, used in rows:
        books = by_grant[grant_id]
        assert (remaining, expiries, expired) == (0, 1, -books.left), grant_id
        assert used == GRANT - books.left, grant_id
    assert sql(url, TAKEN_AFTER_EXPIRY, prefix=prefix) == [(0,)]
    taken = {str(entry_id): credits for entry_id, credits in sql(url, SPENDS, prefix=prefix)}
    assert taken == {
        entry_id: credits
        for books in expected.values()
        for entry_id, credits in books.from_grant.items()
    }

    sample = owners[:: max(1, len(owners) // 20)]
    for server_url in cluster.server_urls:
        with httpx.Client(base_url=server_url, headers=SERVICE, timeout=30) as http:
            client = GraphQLClient(http)
            for start in range(0, len(owners), 100):
                batch = [owner.id for owner in owners[start : start + 100]]
                assert client.data(BOOKS, ids=batch)["balances"] == [
                    {
                        "ownerId": owner_id,
                        "balance": expected[owner_id].balance,
                        "held": 0,
                        "available": expected[owner_id].balance,
                        "expiringWithin": 0,
                    }
                    for owner_id in batch
                ]
            for owner in sample:  # only the purchase is left, if anything
                left = expected[owner.id].balance
                owned = client.data(GRANTS, id=owner.id)["owner"]
                assert [edge["node"] for edge in owned["grants"]["edges"]] == (
                    [{"id": owner.purchase_id, "remaining": left}] if left else []
                )
                [expiry] = [
                    edge["node"] for edge in owned["entries"]["edges"]
                    if edge["node"]["kind"] == "EXPIRY"
                ]  # fmt: skip
                assert expiry == {
                    "kind": "EXPIRY",
                    "amount": -expected[owner.id].left,
                    "nonce": "grant",
                    "operation": "CREDIT_ADD",
                    "remaining": None,
                    "expiryOf": {"id": owner.grant["id"], "remaining": 0},
                }
    verify_books("healthai", url)
    return {
        "spends": sum(len(owner.spends) for owner in owners),
        "from grants": sum(len(books.from_grant) for books in expected.values()),
        "late": sum(books.late for books in expected.values()),
        "refused": sum(books.refused for books in expected.values()),
    }


def test_two_expiry_passes_book_every_lapsed_grant_exactly_once(
    cluster: Cluster, figures: Callable[[str], None]
) -> None:
    prefix, owners = new_owners(300)
    run_with_clients(cluster, lambda clients: buy(clients, owners))
    clock = DatabaseClock(cluster.database_url)

    async def grant_and_spend_some(clients: Clients) -> None:
        async def one(number: int, owner: Owner) -> None:
            async with clients.in_flight:  # the spend right after the grant
                await grant(clients, owner, clock)
                if number % 6:
                    await spend(clients, owner, "partly", number % 6, queued=False)

        await asyncio.gather(*(one(number, owner) for number, owner in enumerate(owners)))

    sent = run_with_clients(cluster, grant_and_spend_some)
    wait_until_every_grant_is_booked(cluster.database_url, prefix, owners)

    counts = check_books(cluster, prefix, owners)
    assert counts["spends"] == 250
    figures(
        f"grant races: {len(owners)} grants over 2 processes with expiry passes every 0.2 s,"
        f" {sent} requests, {counts['from grants']} spends from grants before expiry"
        f" ({counts['late']} after it, {counts['refused']} refused) -> one EXPIRY per grant"
    )


def test_spends_racing_the_expiry_take_from_the_grant_only_before_it_expires(
    cluster: Cluster, figures: Callable[[str], None]
) -> None:
    prefix, owners = new_owners(RACING_OWNERS)
    run_with_clients(cluster, lambda clients: buy(clients, owners))
    clock = DatabaseClock(cluster.database_url)

    async def grant_then_spend_across_the_expiry(clients: Clients) -> None:
        started = time.monotonic()

        async def one(number: int, owner: Owner) -> None:
            await asyncio.sleep(started + number / GRANTS_PER_SECOND - time.monotonic())
            async with clients.in_flight:
                expires_by = await grant(clients, owner, clock)

            async def at(number: int, offset: float) -> None:
                await asyncio.sleep(max(0.0, expires_by + offset - time.monotonic()))
                await spend(clients, owner, f"race-{number}", 1)

            await asyncio.gather(*(at(number, offset) for number, offset in enumerate(WAVES)))

        await asyncio.gather(*(one(number, owner) for number, owner in enumerate(owners)))

    sent = run_with_clients(cluster, grant_then_spend_across_the_expiry)
    wait_until_every_grant_is_booked(cluster.database_url, prefix, owners)

    counts = check_books(cluster, prefix, owners)
    assert counts["spends"] == len(WAVES) * len(owners)
    figures(
        f"grant races: {len(WAVES) * len(owners)} spends of {len(owners)} owners racing their"
        f" grants' expiry over 2 processes ({sent} requests): {counts['from grants']} from"
        f" the grants before expiry, {counts['late']} from purchases after it,"
        f" {counts['refused']} refused -> no credit spent after its grant expired"
    )
