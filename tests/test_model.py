"""A model-based test of the ledger's writes: Hypothesis draws random sequences of
createEntry (every healthai operation, several owners, fresh and reused nonces, service and
end-user tokens, bad identifiers), reserveCredits, captureHold (all or some), releaseHold,
holds left to expire, refundEntry, and credits that expire (expiresAt a second or three
ahead of the database's clock, or days ahead) left to expire, and sends each through the
real API on a fresh PostgreSQL database. A plain Python model of the ledger predicts every
answer (the entry and its balanceAfter, the hold, the original of a replay,
InsufficientCredits against available, NonceConflict, HoldNonceConflict, HoldNotOpen,
AlreadyRefunded, NotRefundable, LimitReached, OperationNotAllowed, InvalidInput), which
grants each spend, hold and refund takes credits from or gives them back to (soonest-
expiring first, then those that never expire, oldest first) and the EXPIRY entries that
follow; after every step the balance, held, available, expiringWithin and Owner.grants
read through the API and the rows stored in the database must be the model's.

Time is the one thing the model does not draw, and what it draws next depends on what the
ledger answered: so a grant may only expire at a step the draws decide, never in between
(the same draws must meet the same answers on a replay, or Hypothesis finds the data
generation flaky). Grants given by one step expire days ahead; the one step that makes
credits expire within seconds also waits for them to, after spending and holding some of
them, and then waits for the server's expiry pass (every EXPIRY_INTERVAL seconds) to book
them out. What lapses inside a later write (a release, capture or refund giving credits
back to a grant that has expired) is booked by that write."""

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, TypeVar

from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.testclient import TestClient

from graphql_ledger import Limit, Settings, create_app
from graphql_ledger.storage import create_engine
from healthai.operations import HealthAIOperation
from tests.support import (
    CAPTURE_HOLD,
    CREATE_ENTRY_FULL,
    REFUND_ENTRY,
    RELEASE_HOLD,
    RESERVE_CREDITS,
    ROOT,
    TEST_SECRET,
    create_entry_request,
    database_now,
    service_headers,
    sql,
    user_headers,
    verify_books,
    wait_for_database_clock,
)

# Hypothesis keeps its caches (the unicode tables behind st.characters) out of the tree.
set_hypothesis_home_dir(ROOT / ".cache" / "hypothesis")

SETTINGS = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    database=None,  # nothing to replay between runs: every run explores afresh
    suppress_health_check=[HealthCheck.too_slow],
)


# Credits expiring within this many seconds: those 1 or 2 days after the run's start.
WITHIN = 2 * 24 * 3600
BALANCES = (
    "query($ids: [ID!]!, $o0: ID!, $o1: ID!, $o2: ID!) { balances(ownerIds: $ids)"
    f" {{ ownerId balance held available lastUpdated expiringWithin(seconds: {WITHIN}) }}"
    + "".join(
        f" g{n}: owner(id: $o{n})"
        " { grants(first: 100) { edges { node { id remaining } } } }"
        for n in range(3)
    )
    + " }"
)
HOLDS_STORED = "SELECT count(*) FROM holds"
# Entries of this example's owners, and the others' but EXPIRY entries: the server books
# the expiry of an earlier example's grant whenever it lapses (one that failed before its
# grant expired, while Hypothesis shrinks it).
ENTRIES_STORED = (
    "SELECT count(*) FROM entries"
    " WHERE kind IS DISTINCT FROM 'expiry' OR owner_id = ANY(CAST(:owners AS text[]))"
)
LEDGER_ENTRY = (
    "id ownerId operation amount balanceAfter nonce createdOn kind quantity expiresAt"
    " remaining expiryOf { id }"
)
GRANT_ENTRY = (
    "mutation G($input: CreateEntryInput!) { createEntry(input: $input) { __typename"
    f" ... on LedgerEntry {{ {LEDGER_ENTRY} }} ... on LedgerError {{ code message }}"
    " ... on InvalidInput { field } ... on LimitReached { retryAfter } } }"
)
ENTRIES = (
    "query E($ownerId: ID!) { entries(ownerId: $ownerId, first: 100)"
    f" {{ edges {{ node {{ {LEDGER_ENTRY} }} }} }} }}"
)
# Every owner's entries at once, as e0, e1 and e2.
ALL_ENTRIES = (
    "query A($o0: ID!, $o1: ID!, $o2: ID!) {"
    + "".join(
        f" e{n}: entries(ownerId: $o{n}, first: 100) {{ edges {{ node {{ {LEDGER_ENTRY} }} }} }}"
        for n in range(3)
    )
    + " }"
)

# The entry fields createEntry's answers carry; other answers are compared on these.
ENTRY_KEYS = ("id", "ownerId", "operation", "amount", "balanceAfter", "nonce", "createdOn")
HOLD_KEYS = ("id", "ownerId", "operation", "quantity", "amount", "status", "nonce")

# The operations a hold may reserve: spends without a limit.
SPENDS = [op for op in HealthAIOperation if op.amount < 0 and op.limit is None]

# Holds left to expire wait on the database clock (up to a second each): a budget per run
# keeps the test's time bounded.
EXPIRIES_PER_RUN = 4

# Grants left to expire wait on the database clock (1 to 3 s each): a run's budget of
# seconds keeps the test's time bounded.
GRANT_WAITS_SECONDS = 5.0
# The seconds the server's expiry pass (Settings.expiry_interval) sleeps between passes.
EXPIRY_INTERVAL = 0.1

# Operations whose credits a service may make expire, and how many days ahead of the run's
# start the credits given days ahead expire (ties included: then the older is spent first).
GRANTING = [op for op in HealthAIOperation if op.amount > 0]
LIFETIMES = [1, 1, 2, 3]

STORED = """
SELECT o.owner_id, b.balance, e.id, e.nonce, e.operation, e.amount, e.balance_after,
       (SELECT count(*) FROM entries
         WHERE kind IS DISTINCT FROM 'expiry' OR owner_id = ANY(CAST(:owners AS text[]))),
       (SELECT count(*) FROM holds)
  FROM unnest(CAST(:owners AS text[])) AS o(owner_id)
  LEFT JOIN balances b ON b.owner_id = o.owner_id
  LEFT JOIN entries e ON e.owner_id = o.owner_id
 ORDER BY e.id
"""
# What the EXPIRY entries of the example's owners have booked out of each grant.
LAPSED_STORED = """
SELECT expiry_of, sum(amount)::integer FROM entries
 WHERE owner_id = ANY(CAST(:owners AS text[])) AND kind = 'expiry' GROUP BY expiry_of
"""

OPERATIONS = list(HealthAIOperation)

# Which of the holds or entries a rule acts on: an index, taken modulo how many there are.
# What a rule draws must not depend on what earlier answers left (a hold granted or not):
# the run's budgets of waits make two examples that drew the same get other answers, and
# Hypothesis, finding other draws after the same ones, would call its data generation flaky.
PICK = st.integers(0, 255)
T = TypeVar("T")


def picked(choices: Sequence[T], pick: int) -> T:
    """The `pick`th of `choices` (counted round), with a note of it in a failure's report."""
    choice = choices[pick % len(choices)]
    note(f"picked {choice}")
    return choice


# Identifiers the ledger accepts: anything but control, format and surrogate characters,
# so also 4-byte characters, combining marks and unassigned code points.
VALID_CHARACTERS = st.characters(exclude_categories=("Cc", "Cf", "Cs"))
VALID_TEXT = st.text(VALID_CHARACTERS, min_size=1, max_size=12)

# Identifiers it refuses with InvalidInput: empty, over 255 characters, or with a control
# (C0, DEL, C1) or format character (RTL/LTR marks and overrides, zero-width joiner and
# space, BOM). Lone surrogates cannot be sent as JSON text; test_bad_input.py sends them.
BAD_IDENTIFIERS = st.one_of(
    st.just(""),
    st.builds(
        lambda before, bad, after: before + bad + after,
        st.text(VALID_CHARACTERS, max_size=4),
        st.characters(categories=("Cc", "Cf")),
        st.text(VALID_CHARACTERS, max_size=4),
    ),
    st.builds(lambda char, length: char * length, VALID_CHARACTERS, st.integers(256, 600)),
)


def next_utc_midnight(day: date) -> datetime:
    following = day + timedelta(days=1)
    return datetime(following.year, following.month, following.day, tzinfo=UTC)


def clear_of_utc_midnight(margin: timedelta = timedelta(seconds=90)) -> None:
    """Waits past the next UTC midnight if it is near, so that the whole test falls on one
    UTC day and the model's once-per-day limit does not depend on when it runs."""
    now = datetime.now(UTC)
    until = next_utc_midnight(now.date()) - now
    if until < margin:
        time.sleep(until.total_seconds() + 1)


@dataclass
class Run:
    """What all the examples of one test run share: the app, its database, the figures."""

    client: TestClient
    database: str
    anchor: datetime  # the database's clock as the run starts: grants days ahead count from it
    figures: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    newest_id: int = 0  # ids only grow: every new entry's id is above all earlier ones
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    waited: float = 0.0  # seconds spent waiting for grants left to expire
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    engine: AsyncEngine = field(init=False)

    def __post_init__(self) -> None:
        self.engine = create_engine(self.database, pool_size=1)

    def create_entry(
        self, headers: dict[str, str], owner_id: str, operation: str, nonce: str
    ) -> dict[str, Any]:
        body = self.send(headers, create_entry_request(owner_id, operation, nonce))
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["createEntry"]
        self.outcomes[result["__typename"]] += 1
        return result

    def mutate(
        self, document: str, name: str, headers: dict[str, str] | None = None, **input_: Any
    ) -> dict[str, Any]:
        """One of the hold and refund mutations (or createEntry with every field), as a
        backend service unless `headers` say otherwise."""
        body = self.post(headers or service_headers("healthai"), document, input=input_)
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"][name]
        self.outcomes[f"{name}: {result['__typename']}"] += 1
        return result

    def post(self, headers: dict[str, str], query: str, **variables: Any) -> dict[str, Any]:
        return self.send(headers, {"query": query, "variables": variables})

    def send(self, headers: dict[str, str], request: dict[str, Any]) -> dict[str, Any]:
        self.figures["requests"] += 1
        response = self.client.post("/graphql", json=request, headers=headers)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def rows(self, statement: str, **parameters: Any) -> list[Any]:
        """One statement's rows, on the run's own connection to its database, kept open:
        the model reads the stored rows after every step, and a connection per read
        (tests.support.sql) costs more than the step."""

        async def run() -> list[Any]:
            async with self.engine.connect() as connection:
                result = await connection.execute(text(statement), parameters)
                return list(result) if result.returns_rows else []

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        self.loop.run_until_complete(self.engine.dispose())
        self.loop.close()

    def user(self, owner_id: str) -> dict[str, str]:
        if owner_id not in self.headers:
            self.headers[owner_id] = user_headers("healthai", owner_id)
        return self.headers[owner_id]


@dataclass
class Grant:
    """An entry that added credits, as the model sees it. For a grant that expires,
    `remaining` is what is neither spent, nor held by an open hold, nor lapsed; what is left
    of credits that never expire is the owner's (they are spent oldest first, so the newest
    such entries hold it)."""

    entry: dict[str, Any]
    expires_at: datetime | None = None  # None: never
    remaining: int = 0
    expired: bool = False
    refunded: bool = False

    @property
    def id(self) -> str:
        value: str = self.entry["id"]
        return value

    @property
    def owner_id(self) -> str:
        value: str = self.entry["ownerId"]
        return value

    def order(self) -> tuple[datetime, int]:
        """Where spends take it: expiring grants soonest first, ties oldest first."""
        assert self.expires_at is not None
        return self.expires_at, int(self.id)


Uses = list[tuple[str, int]]  # (grant id, credits) that a spend, hold or refund took


class LedgerMachine(RuleBasedStateMachine):
    """The model: each owner's balance, entries by (owner, nonce), and the entries that use
    up a limit; the server's answer to each request must be the one the model predicts."""

    run: ClassVar[Run]

    def __init__(self) -> None:
        super().__init__()
        prefix = f"model-{uuid.uuid4().hex[:12]}"
        # Owners unique to this example; the NFC and NFD spellings of "café" are two owners.
        self.owners = [f"{prefix}-plain-\U0001f600", f"{prefix}-caf\u00e9", f"{prefix}-cafe\u0301"]
        self.balances = dict.fromkeys(self.owners, 0)
        self.entries: dict[tuple[str, str], dict[str, Any]] = {}
        self.nonces: set[str] = set()  # every nonce sent, granted or refused
        # Holds by id, and the (owner, nonce) each claims; capture entries (their nonce is
        # the hold's); each entry's kind and quantity; refunds by the id they refund.
        self.holds: dict[str, dict[str, Any]] = {}
        self.hold_nonces: dict[tuple[str, str], str] = {}
        self.captures: dict[str, tuple[int | None, dict[str, Any]]] = {}
        self.kinds: dict[str, str] = {}
        self.quantities: dict[str, int] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        # Entries that added credits, by id; which grants each spend, capture and refund
        # (by entry id) and each hold (by hold id) took credits from; the EXPIRY entries
        # booked, and what they must book out of each grant, in total.
        self.grants: dict[str, Grant] = {}
        self.uses: dict[str, Uses] = {}
        self.hold_uses: dict[str, Uses] = {}
        self.expiries: list[dict[str, Any]] = []
        self.lapsed: Counter[str] = Counter()
        self.expiry_of: dict[str, str] = {}  # EXPIRY entry id -> its grant's id
        self.unbooked: set[str] = set()  # grants the expiry pass has credits to book out of
        [(self.earlier_holds,)] = self.run.rows(HOLDS_STORED)
        self.service = service_headers("healthai")
        # Entries of earlier examples but their EXPIRY entries; this one's are in `written`.
        [(self.earlier,)] = self.run.rows(ENTRIES_STORED, owners=self.owners)
        self.written = 0
        self.run.figures["examples"] += 1

    # -- drawing -------------------------------------------------------------------------

    def draw_nonce(self, data: st.DataObject) -> str:
        """A fresh nonce, or (about half of the time) one already sent, of any owner."""
        choices = [VALID_TEXT]
        if self.nonces:
            choices.insert(0, st.sampled_from(sorted(self.nonces)))
        nonce: str = data.draw(st.one_of(choices), label="nonce")
        self.nonces.add(nonce)
        return nonce

    # -- the model -----------------------------------------------------------------------

    def owner_entries(self, owner_id: str) -> list[dict[str, Any]]:
        captured = [entry for _, entry in self.captures.values()]
        return sorted(
            [entry for (owner, _), entry in self.entries.items() if owner == owner_id]
            + [entry for entry in captured if entry["ownerId"] == owner_id]
            + [entry for entry in self.expiries if entry["ownerId"] == owner_id],
            key=lambda entry: int(entry["id"]),
        )

    def held(self, owner_id: str) -> int:
        return sum(
            -hold["amount"]
            for hold in self.holds.values()
            if hold["ownerId"] == owner_id and hold["status"] == "OPEN"
        )

    def available(self, owner_id: str) -> int:
        return self.balances[owner_id] - self.held(owner_id)

    # -- the model of grants -------------------------------------------------------------

    def expiring(self, owner_id: str) -> list[Grant]:
        """The owner's unexpired grants with credits left, in the order spends take them."""
        return sorted(
            (
                grant
                for grant in self.grants.values()
                if grant.owner_id == owner_id
                and grant.expires_at is not None
                and not grant.expired
                and grant.remaining > 0
            ),
            key=Grant.order,
        )

    def take(self, owner_id: str, credits: int, first: str | None = None) -> Uses:
        """Takes up to `credits` from the owner's expiring grants, soonest-expiring first
        (`first`, a grant being refunded, first of all); credits that never expire pay the
        rest. Answers what it took from which grant."""
        uses = []
        for grant in sorted(self.expiring(owner_id), key=lambda grant: grant.id != first):
            taken = min(credits, grant.remaining)
            if taken == 0:
                break
            grant.remaining -= taken
            credits -= taken
            uses.append((grant.id, taken))
        return uses

    def give_back(self, uses: Uses) -> Uses:
        """Gives credits back to the grants they were taken from; answers what lapses at
        once (given back to grants that have expired), in the order it is booked out."""
        lapsing: Counter[str] = Counter()
        for grant_id, credits in uses:
            grant = self.grants[grant_id]
            if grant.expired:
                lapsing[grant_id] += credits
            else:
                grant.remaining += credits
        return sorted(lapsing.items(), key=lambda lapse: self.grants[lapse[0]].order())

    def spend_held(self, uses: Uses, credits: int) -> tuple[Uses, Uses]:
        """What a capture of `credits` spends of what its hold took from grants (soonest-
        expiring first), and what goes back."""
        spent, back = [], []
        for grant_id, held in sorted(uses, key=lambda use: self.grants[use[0]].order()):
            taken = min(credits, held)
            credits -= taken
            if taken:
                spent.append((grant_id, taken))
            if held > taken:
                back.append((grant_id, held - taken))
        return spent, back

    def never_expiring_credits(self, owner_id: str) -> int:
        """The owner's credits that never expire and no open hold holds."""
        left = self.available(owner_id) - sum(
            grant.remaining
            for grant in self.grants.values()
            if grant.owner_id == owner_id and grant.expires_at is not None
        )
        assert left >= 0, "the model holds more expiring credits than are available"
        return left

    def never_expiring(self, owner_id: str) -> list[tuple[Grant, int]]:
        """What each entry of credits that never expire has left, oldest first: they are
        spent oldest first, so the newest hold what the owner has of them (an entry
        refunded holds none)."""
        left = self.never_expiring_credits(owner_id)
        found = []
        for grant in sorted(self.grants.values(), key=lambda grant: -int(grant.id)):
            if grant.owner_id != owner_id or grant.expires_at is not None or grant.refunded:
                continue
            if left == 0:
                break
            share = min(grant.entry["amount"], left)
            left -= share
            found.append((grant, share))
        return found[::-1]

    def listed_grants(self, owner_id: str) -> list[dict[str, Any]]:
        """Owner.grants as the model has it: ids and remaining, in the order spends take."""
        return [
            {"id": grant.id, "remaining": grant.remaining} for grant in self.expiring(owner_id)
        ] + [{"id": grant.id, "remaining": share} for grant, share in self.never_expiring(owner_id)]

    def expiring_within(self, owner_id: str) -> int:
        """Balance.expiringWithin(WITHIN): what grants expiring 1 or 2 days after the run's
        start (which is before now) have left."""
        horizon = self.run.anchor + timedelta(seconds=WITHIN)
        return sum(
            grant.remaining
            for grant in self.expiring(owner_id)
            if grant.expires_at is not None and grant.expires_at <= horizon
        )

    def expire(self, grant: Grant) -> None:
        """The grant's expiresAt has passed: what it has left lapses, for the server's
        expiry pass to book out (what open holds hold of it lapses when they end)."""
        grant.expired = True
        self.run.figures["grants expired"] += 1
        if grant.remaining:
            self.lapse(grant.id, grant.remaining)
            self.unbooked.add(grant.id)
            grant.remaining = 0

    def lapse(self, grant_id: str, credits: int) -> None:
        self.lapsed[grant_id] += credits

    def wait_for_the_expiry_pass(self) -> None:
        """Polls until the EXPIRY entries stored book out what the model has lapsed, then
        checks and books them (what lapsed of one grant at two instants, its own remaining
        and then what a hold that expired gave back, the pass books as one entry or two)."""
        if not self.unbooked:
            return
        expected = {int(grant_id): -credits for grant_id, credits in self.lapsed.items()}
        deadline = time.monotonic() + 10
        while (stored := dict(self.run.rows(LAPSED_STORED, owners=self.owners))) != (expected):
            assert time.monotonic() < deadline, f"booked {stored}, lapsed {expected}"
            time.sleep(EXPIRY_INTERVAL)
        owners = {self.grants[grant_id].owner_id for grant_id in self.unbooked}
        found = [node for owner_id in sorted(owners) for node in self.new_expiries(owner_id)]
        for node in sorted(found, key=lambda node: int(node["id"])):
            assert node["expiryOf"]["id"] in self.unbooked, node
            self.book_expiry(node)
        self.unbooked.clear()

    def new_expiries(self, owner_id: str) -> list[dict[str, Any]]:
        """The owner's EXPIRY entries the model has not booked, oldest first."""
        body = self.run.post(self.service, ENTRIES, ownerId=owner_id)
        assert "errors" not in body, body
        booked = {entry["id"] for entry in self.expiries}
        return sorted(
            (
                edge["node"]
                for edge in body["data"]["entries"]["edges"]
                if edge["node"]["kind"] == "EXPIRY" and edge["node"]["id"] not in booked
            ),
            key=lambda node: int(node["id"]),
        )

    def book_expiry(self, node: dict[str, Any]) -> None:
        """Checks an EXPIRY entry (of its grant's operation and nonce) and books it."""
        grant = self.grants[node["expiryOf"]["id"]]
        assert node["amount"] < 0, node
        assert (node["operation"], node["nonce"], node["expiresAt"], node["remaining"]) == (
            grant.entry["operation"],
            grant.entry["nonce"],
            None,
            None,
        ), node
        entry = self.book(node, "EXPIRY", 1)
        self.expiries.append(entry)
        self.expiry_of[entry["id"]] = grant.id
        self.run.figures["expiries booked"] += 1

    def book_lapsed_by_the_write(self, owner_id: str, lapsing: Uses) -> None:
        """A write gave credits back to grants that had expired: it booked them out, one
        EXPIRY per grant, soonest-expiring first, right after its own entry."""
        if not lapsing:
            return
        found = self.new_expiries(owner_id)
        assert [(node["expiryOf"]["id"], -node["amount"]) for node in found] == lapsing, found
        for node in found:
            self.book_expiry(node)
        for grant_id, credits in lapsing:
            self.lapse(grant_id, credits)
        self.run.figures["expiries booked by a write"] += len(found)

    def book(self, entry: dict[str, Any], kind: str, quantity: int) -> dict[str, Any]:
        """Checks a new entry's place in its owner's books and records it; its fields."""
        owner_id = entry["ownerId"]
        assert int(entry["id"]) > self.run.newest_id
        assert entry["balanceAfter"] == self.balances[owner_id] + entry["amount"] >= 0
        assert (entry["kind"], entry["quantity"]) == (kind, quantity), entry
        self.run.newest_id = int(entry["id"])
        self.written += 1
        self.run.figures["entries written"] += 1
        self.balances[owner_id] = entry["balanceAfter"]
        self.kinds[entry["id"]] = kind
        self.quantities[entry["id"]] = quantity
        return {key: entry[key] for key in ENTRY_KEYS}

    def check_insufficient(self, result: dict[str, Any], owner_id: str, required: int) -> None:
        assert result == {
            "__typename": "InsufficientCredits",
            "code": "INSUFFICIENT_CREDITS",
            "message": result["message"],
            "balance": self.available(owner_id),
            "required": required,
        }

    def check_hold_not_open(self, result: dict[str, Any], hold: dict[str, Any]) -> None:
        assert (result["__typename"], result["code"]) == ("HoldNotOpen", "HOLD_NOT_OPEN"), result
        assert {key: result["hold"][key] for key in HOLD_KEYS} == hold

    def check_write(
        self, owner_id: str, operation: HealthAIOperation, nonce: str, result: dict[str, Any]
    ) -> None:
        """Checks the answer to a write the caller may make, and applies it to the model."""
        self.run.figures["writes"] += 1
        name = operation.name
        if (owner_id, nonce) in self.hold_nonces:  # one nonce space: a hold has it
            assert (result["__typename"], result["code"]) == (
                "HoldNonceConflict",
                "NONCE_CONFLICT",
            ), result
            return
        existing = self.entries.get((owner_id, nonce))
        if existing is not None:
            if existing["operation"] == name:
                assert result == {"__typename": "LedgerEntry", **existing}, "replay"
                self.run.outcomes["of which replays"] += 1
            else:
                assert result["__typename"] == "NonceConflict", result
                assert result["code"] == "NONCE_CONFLICT"
                assert result["existing"] == existing
            return

        if self.limit_reached(owner_id, operation, result):
            return

        balance = self.balances[owner_id]
        if self.available(owner_id) + operation.amount < 0:  # spends count against available
            self.check_insufficient(result, owner_id, -operation.amount)
            return

        assert result["__typename"] == "LedgerEntry", result
        entry = {k: v for k, v in result.items() if k != "__typename"}
        assert entry["ownerId"] == owner_id  # exactly, whatever its characters
        assert entry["nonce"] == nonce
        assert (entry["operation"], entry["amount"]) == (name, operation.amount)
        assert entry["balanceAfter"] == balance + operation.amount
        assert int(entry["id"]) > self.run.newest_id
        created_on = datetime.fromisoformat(entry["createdOn"])
        assert created_on.utcoffset() == timedelta(0)
        previous = self.owner_entries(owner_id)
        if previous:
            assert created_on >= datetime.fromisoformat(previous[-1]["createdOn"])
        self.run.newest_id = int(entry["id"])
        self.written += 1
        self.run.figures["entries written"] += 1
        self.balances[owner_id] = entry["balanceAfter"]
        self.entries[(owner_id, nonce)] = entry
        self.kinds[entry["id"]] = "OPERATION"
        self.quantities[entry["id"]] = 1
        if operation.amount > 0:
            self.grants[entry["id"]] = Grant(entry)
        elif operation.amount < 0:
            self.uses[entry["id"]] = self.take(owner_id, -operation.amount)

    def limit_reached(
        self, owner_id: str, operation: HealthAIOperation, result: dict[str, Any]
    ) -> bool:
        """Whether the operation's limit refuses this write; checks the refusal if so."""
        today = datetime.now(UTC).date()
        used = [
            e
            for e in self.owner_entries(owner_id)
            if e["operation"] == operation.name and self.kinds[e["id"]] == "OPERATION"
        ]
        if operation.limit is Limit.ONCE and used:
            assert (result["__typename"], result["code"]) == ("LimitReached", "LIMIT_REACHED")
            assert result["retryAfter"] is None, result
            return True
        if operation.limit is Limit.ONCE_PER_UTC_DAY and any(
            datetime.fromisoformat(e["createdOn"]).astimezone(UTC).date() == today for e in used
        ):
            assert (result["__typename"], result["code"]) == ("LimitReached", "LIMIT_REACHED")
            assert datetime.fromisoformat(result["retryAfter"]) == next_utc_midnight(today)
            return True
        return False

    def check_not_allowed(self, result: dict[str, Any]) -> None:
        assert result == {
            "__typename": "OperationNotAllowed",
            "code": "OPERATION_NOT_ALLOWED",
            "message": result["message"],
        }

    # -- rules ---------------------------------------------------------------------------

    @rule(
        owner=st.integers(0, 2),
        operation=st.sampled_from(OPERATIONS),
        data=st.data(),
    )
    def a_service_creates_an_entry(
        self, owner: int, operation: HealthAIOperation, data: st.DataObject
    ) -> None:
        owner_id, nonce = self.owners[owner], self.draw_nonce(data)
        result = self.run.create_entry(self.service, owner_id, operation.name, nonce)
        self.check_write(owner_id, operation, nonce, result)

    @rule(
        owner=st.integers(0, 2),
        operation=st.sampled_from(OPERATIONS),
        data=st.data(),
    )
    def an_end_user_creates_an_entry_of_its_own(
        self, owner: int, operation: HealthAIOperation, data: st.DataObject
    ) -> None:
        owner_id, nonce = self.owners[owner], self.draw_nonce(data)
        result = self.run.create_entry(self.run.user(owner_id), owner_id, operation.name, nonce)
        if operation.user_may_invoke:
            self.check_write(owner_id, operation, nonce, result)
        else:  # a service-only operation, refused even when the nonce names an entry
            self.check_not_allowed(result)

    @rule(
        caller=st.integers(0, 2),
        offset=st.integers(1, 2),
        operation=st.sampled_from(OPERATIONS),
        data=st.data(),
    )
    def an_end_user_may_not_create_another_owners_entry(
        self, caller: int, offset: int, operation: HealthAIOperation, data: st.DataObject
    ) -> None:
        owner_id = self.owners[(caller + offset) % len(self.owners)]
        headers = self.run.user(self.owners[caller])
        result = self.run.create_entry(headers, owner_id, operation.name, self.draw_nonce(data))
        self.check_not_allowed(result)

    @rule(
        bad_field=st.sampled_from(["ownerId", "nonce"]),
        bad=BAD_IDENTIFIERS,
        caller=st.sampled_from(["service", "owner", "another owner"]),
        owner=st.integers(0, 2),
        operation=st.sampled_from(OPERATIONS),
        data=st.data(),
    )
    def a_bad_identifier_is_invalid_input_whoever_asks(
        self,
        bad_field: str,
        bad: str,
        caller: str,
        owner: int,
        operation: HealthAIOperation,
        data: st.DataObject,
    ) -> None:
        owner_id, nonce = self.owners[owner], self.draw_nonce(data)
        if bad_field == "ownerId":
            owner_id = bad
        else:
            nonce = bad
        headers = {
            "service": self.service,
            "owner": self.run.user(self.owners[owner]),
            "another owner": self.run.user(self.owners[(owner + 1) % len(self.owners)]),
        }[caller]
        result = self.run.create_entry(headers, owner_id, operation.name, nonce)
        assert result == {
            "__typename": "InvalidInput",
            "code": "INVALID_INPUT",
            "message": result["message"],
            "field": bad_field,
        }

    # -- holds and refunds ---------------------------------------------------------------

    @initialize(credits=st.lists(st.integers(0, 4), min_size=3, max_size=3))
    def owners_start_with_some_credits(self, credits: list[int]) -> None:
        """CREDIT_ADD of a few units (quantity), so that holds are not all refused."""
        for owner_id, quantity in zip(self.owners, credits, strict=True):
            if quantity == 0:
                continue
            nonce = f"funding-{uuid.uuid4().hex}"  # never drawn: no replay to predict
            result = self.run.mutate(
                CREATE_ENTRY_FULL,
                "createEntry",
                ownerId=owner_id,
                operation="CREDIT_ADD",
                nonce=nonce,
                quantity=quantity,
            )
            assert result["__typename"] == "LedgerEntry", result
            assert (result["amount"], result["nonce"]) == (10 * quantity, nonce)
            entry = self.book(result, "OPERATION", quantity)
            self.entries[(owner_id, nonce)] = entry
            self.grants[entry["id"]] = Grant(entry)

    def check_reserve(
        self,
        owner_id: str,
        operation: HealthAIOperation,
        quantity: int,
        nonce: str,
        result: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Checks a reserve's answer and records a new hold; the hold granted, if any."""
        existing = self.entries.get((owner_id, nonce))
        if existing is not None:
            assert (result["__typename"], result["code"]) == ("NonceConflict", "NONCE_CONFLICT")
            assert {key: result["existing"][key] for key in ENTRY_KEYS} == existing
            return None
        if (owner_id, nonce) in self.hold_nonces:
            hold = self.holds[self.hold_nonces[(owner_id, nonce)]]
            if (hold["operation"], hold["quantity"]) == (operation.name, quantity):
                assert result["__typename"] == "Hold", result
                assert {key: result[key] for key in HOLD_KEYS} == hold, "a replay"
                self.run.outcomes["of which hold replays"] += 1
            else:
                assert (result["__typename"], result["code"]) == (
                    "HoldNonceConflict",
                    "NONCE_CONFLICT",
                ), result
                assert {key: result["existingHold"][key] for key in HOLD_KEYS} == hold
            return None
        amount = operation.amount * quantity
        if self.available(owner_id) + amount < 0:
            self.check_insufficient(result, owner_id, -amount)
            return None
        assert result["__typename"] == "Hold", result
        hold = {key: result[key] for key in HOLD_KEYS}
        assert hold == {
            "id": hold["id"],
            "ownerId": owner_id,
            "operation": operation.name,
            "quantity": quantity,
            "amount": amount,
            "status": "OPEN",
            "nonce": nonce,
        }
        assert result["capture"] is None
        self.holds[hold["id"]] = hold
        self.hold_nonces[(owner_id, nonce)] = hold["id"]
        self.hold_uses[hold["id"]] = self.take(owner_id, -amount)
        self.run.figures["holds reserved"] += 1
        return hold

    @rule(
        owner=st.integers(0, 2),
        operation=st.sampled_from(SPENDS),
        quantity=st.integers(1, 3),
        data=st.data(),
    )
    def a_service_reserves_credits(
        self, owner: int, operation: HealthAIOperation, quantity: int, data: st.DataObject
    ) -> None:
        owner_id, nonce = self.owners[owner], self.draw_nonce(data)
        result = self.run.mutate(
            RESERVE_CREDITS,
            "reserveCredits",
            ownerId=owner_id,
            operation=operation.name,
            nonce=nonce,
            quantity=quantity,
        )
        self.check_reserve(owner_id, operation, quantity, nonce, result)

    @rule(
        pick=PICK,
        asked_as=st.sampled_from(["omitted", "units", "zero", "too many"]),
        units=st.integers(1, 3),
    )
    def a_service_captures_a_hold(self, pick: int, asked_as: str, units: int) -> None:
        if not self.holds:
            return
        hold = self.holds[picked(sorted(self.holds), pick)]
        reserved = hold["quantity"]
        # All of it (left out), some of it, or (of an open hold only) too few or too many.
        asked = {"omitted": None, "zero": 0, "too many": reserved + 1}.get(
            asked_as, min(units, reserved)
        )
        if hold["status"] != "OPEN" and asked in (0, reserved + 1):
            asked = min(units, reserved)
        self.capture(hold, asked)

    def capture(self, hold: dict[str, Any], asked: int | None) -> None:
        """captureHold of `asked` units (None: the quantity left out), checked and applied."""
        reserved = hold["quantity"]
        if hold["id"] in self.captures:
            first, _ = self.captures[hold["id"]]
            # Leaving the quantity out and naming all of it are one capture: send the same.
            if (asked or reserved) == (first or reserved):
                asked = first
        input_ = {"holdId": hold["id"]} | ({} if asked is None else {"quantity": asked})
        result = self.run.mutate(CAPTURE_HOLD, "captureHold", **input_)

        if hold["status"] == "CAPTURED" and self.captures[hold["id"]][0] == asked:
            assert result["__typename"] == "LedgerEntry", result
            assert {key: result[key] for key in ENTRY_KEYS} == self.captures[hold["id"]][1]
            return
        if hold["status"] != "OPEN":
            self.check_hold_not_open(result, hold)
            return
        quantity = reserved if asked is None else asked
        if not 1 <= quantity <= reserved:
            assert (result["__typename"], result["field"]) == ("InvalidInput", "quantity")
            return
        assert result["__typename"] == "LedgerEntry", result
        amount = hold["amount"] // reserved * quantity
        assert (result["operation"], result["amount"], result["nonce"]) == (
            hold["operation"],
            amount,
            hold["nonce"],
        )
        hold["status"] = "CAPTURED"  # before booking: the hold no longer counts in held
        entry = self.book(result, "CAPTURE", quantity)
        self.captures[hold["id"]] = (asked, entry)
        self.run.figures["holds captured"] += 1
        # What it took from grants pays first, soonest-expiring first; the rest goes back.
        spent, back = self.spend_held(self.hold_uses.pop(hold["id"]), -amount)
        self.uses[entry["id"]] = spent
        self.book_lapsed_by_the_write(hold["ownerId"], self.give_back(back))

    @rule(pick=PICK)
    def a_service_releases_a_hold(self, pick: int) -> None:
        if not self.holds:
            return
        self.release(self.holds[picked(sorted(self.holds), pick)])

    def release(self, hold: dict[str, Any]) -> None:
        """releaseHold, checked and applied."""
        result = self.run.mutate(RELEASE_HOLD, "releaseHold", holdId=hold["id"])
        if hold["status"] in ("CAPTURED", "EXPIRED"):
            self.check_hold_not_open(result, hold)
            return
        opened, hold["status"] = hold["status"] == "OPEN", "RELEASED"  # again: answered again
        assert result["__typename"] == "Hold", result
        assert {key: result[key] for key in HOLD_KEYS} == hold
        assert result["capture"] is None
        if opened:
            lapsing = self.give_back(self.hold_uses.pop(hold["id"]))
            self.book_lapsed_by_the_write(hold["ownerId"], lapsing)

    @rule(owner=st.integers(0, 2), operation=st.sampled_from(SPENDS), quantity=st.integers(1, 2))
    def a_hold_is_left_to_expire(
        self, owner: int, operation: HealthAIOperation, quantity: int
    ) -> None:
        # The run's budget of waits is state outside the example: a precondition on it
        # would make the same draws enable other rules on a replay (FlakyStrategyDefinition),
        # so an example past the budget draws the same and does nothing.
        if self.run.figures["holds left to expire"] >= EXPIRIES_PER_RUN:
            return
        owner_id, nonce = self.owners[owner], f"expiring-{uuid.uuid4().hex}"
        result = self.run.mutate(
            RESERVE_CREDITS,
            "reserveCredits",
            ownerId=owner_id,
            operation=operation.name,
            nonce=nonce,
            quantity=quantity,
            expiresIn=1,
        )
        hold = self.check_reserve(owner_id, operation, quantity, nonce, result)
        if hold is None:
            return
        self.run.figures["holds left to expire"] += 1
        wait_for_database_clock(self.run.database, result["expiresAt"])
        self.hold_expires(hold)
        self.wait_for_the_expiry_pass()

    def hold_expires(self, hold: dict[str, Any]) -> None:
        """Its credits go back to their grants at its expiresAt; what lapses then, of grants
        that had expired, is the expiry pass's to book out."""
        hold["status"] = "EXPIRED"
        for grant_id, credits in self.give_back(self.hold_uses.pop(hold["id"])):
            self.lapse(grant_id, credits)
            self.unbooked.add(grant_id)

    @rule(pick=PICK, replay=st.booleans())
    def a_service_refunds_an_entry(self, pick: int, replay: bool) -> None:
        # Not entries of a limited operation: whether a refund gives the limit back is not
        # the contract's to say.
        limited = {op.name for op in OPERATIONS if op.limit is not None}
        candidates = sorted(
            (entry for entry in self.all_entries() if entry["operation"] not in limited),
            key=lambda entry: int(entry["id"]),
        )
        if not candidates:
            return
        self.refund(picked(candidates, pick), replay)

    def refund(self, original: dict[str, Any], replay: bool) -> None:
        """refundEntry of `original` (with its refund's nonce again, if it has one and
        `replay`), checked and applied."""
        owner_id, refund = original["ownerId"], self.refunds.get(original["id"])
        replay = replay and refund is not None
        nonce = refund["nonce"] if replay and refund else f"refund-{uuid.uuid4().hex}"
        result = self.run.mutate(REFUND_ENTRY, "refundEntry", entryId=original["id"], nonce=nonce)

        if self.kinds[original["id"]] in ("REFUND", "EXPIRY"):
            assert (result["__typename"], result["code"]) == ("NotRefundable", "NOT_REFUNDABLE")
            return
        if refund is not None:
            if replay:
                assert result["__typename"] == "LedgerEntry", result
                assert {key: result[key] for key in ENTRY_KEYS} == refund
            else:
                assert (result["__typename"], result["code"]) == (
                    "AlreadyRefunded",
                    "ALREADY_REFUNDED",
                ), result
                assert {key: result["refund"][key] for key in ENTRY_KEYS} == refund
            return
        amount = -original["amount"]
        if amount < 0 and self.available(owner_id) + amount < 0:
            self.check_insufficient(result, owner_id, -amount)
            return
        assert result["__typename"] == "LedgerEntry", result
        assert (result["operation"], result["amount"], result["nonce"]) == (
            original["operation"],
            amount,
            nonce,
        )
        assert result["refundOf"]["id"] == original["id"]
        # A credit's refund takes back its own credits first: for one that never expires,
        # credits that never expire (they are fungible), as the owner has them before it.
        grant = self.grants.get(original["id"])
        own = self.never_expiring_credits(owner_id)
        entry = self.book(result, "REFUND", self.quantities[original["id"]])
        self.entries[(owner_id, nonce)] = entry
        self.refunds[original["id"]] = entry
        self.run.figures["refunds"] += 1
        if grant is not None:
            grant.refunded = True
            if grant.expires_at is None:
                taken = max(0, grant.entry["amount"] - own)
                self.uses[entry["id"]] = self.take(owner_id, taken)
            else:
                self.uses[entry["id"]] = self.take(owner_id, grant.entry["amount"], grant.id)
            self.run.figures["grants refunded"] += 1
        elif amount > 0:  # a spend's refund gives back what it took, to the same grants
            lapsing = self.give_back(self.uses.get(original["id"], []))
            self.book_lapsed_by_the_write(owner_id, lapsing)

    # -- grants that expire --------------------------------------------------------------

    @rule(
        owner=st.integers(0, 2),
        operation=st.sampled_from(GRANTING),
        quantity=st.integers(1, 3),
        days=st.sampled_from(LIFETIMES),
    )
    def a_service_gives_credits_that_expire_in_days(
        self, owner: int, operation: HealthAIOperation, quantity: int, days: int
    ) -> None:
        expires_at = self.run.anchor + timedelta(days=days)
        self.give_expiring(self.owners[owner], operation, quantity, expires_at)

    def give_expiring(
        self, owner_id: str, operation: HealthAIOperation, quantity: int, expires_at: datetime
    ) -> Grant | None:
        """createEntry with expiresAt, by a service; the grant given, if the operation's
        limit allows it."""
        nonce = f"grant-{uuid.uuid4().hex}"  # never drawn: no replay to predict
        quantity = 1 if operation.limit is not None else quantity
        result = self.run.mutate(
            GRANT_ENTRY,
            "createEntry",
            ownerId=owner_id,
            operation=operation.name,
            nonce=nonce,
            quantity=quantity,
            expiresAt=expires_at.isoformat(),
        )
        if self.limit_reached(owner_id, operation, result):
            return None
        assert result["__typename"] == "LedgerEntry", result
        amount = operation.amount * quantity
        assert (result["operation"], result["amount"], result["nonce"]) == (
            operation.name,
            amount,
            nonce,
        )
        assert (result["remaining"], result["expiryOf"]) == (amount, None), result
        assert datetime.fromisoformat(result["expiresAt"]) == expires_at
        entry = self.book(result, "OPERATION", quantity)
        self.entries[(owner_id, nonce)] = entry
        grant = Grant(entry | {"expiresAt": result["expiresAt"]}, expires_at, remaining=amount)
        self.grants[entry["id"]] = grant
        self.run.figures["grants that expire"] += 1
        return grant

    @rule(
        owner=st.integers(0, 2),
        operation=st.sampled_from(GRANTING),
        quantity=st.integers(1, 3),
        milliseconds=st.integers(1000, 3000),
        spent=st.integers(0, 3),
        held=st.integers(0, 3),
        hold_lasts=st.sampled_from([1, 900]),
        afterwards=st.sampled_from(["nothing", "release", "capture one", "refund the spend"]),
        also=st.sampled_from(["nothing", "a tie", "every owner"]),
    )
    def credits_that_expire_in_seconds_are_left_to_expire(
        self,
        owner: int,
        operation: HealthAIOperation,
        quantity: int,
        milliseconds: int,
        spent: int,
        held: int,
        hold_lasts: int,
        afterwards: str,
        also: str,
    ) -> None:
        """A grant expiring a second or three after the database's clock, some of it spent
        (CREDIT_SPEND of `spent`) and some held (a hold of `held`, which lasts a second or
        900), all soonest-expiring first: then the test waits for it to expire, and for the
        server's expiry pass to book out what lapsed; and `afterwards` gives some credits
        back to the expired grant, which lapse at once (or a later step does). `also` gives
        another grant expiring at the same instant: to the same owner (a tie, the older
        spent first) or to each other owner."""
        # The run's budget, as for holds: no precondition, the same draws and nothing done.
        lasts = timedelta(milliseconds=milliseconds)
        if self.run.waited + lasts.total_seconds() > GRANT_WAITS_SECONDS:
            return
        owner_id = self.owners[owner]
        waiting = time.monotonic()
        expires_at = datetime.fromisoformat(database_now(self.run.database)) + lasts
        grant = self.give_expiring(owner_id, operation, quantity, expires_at)
        if grant is None:
            return
        alike = {
            "nothing": [],
            "a tie": [owner_id],
            "every owner": [other for other in self.owners if other != owner_id],
        }[also]
        grants = [grant] + [
            given
            for other in alike
            if (given := self.give_expiring(other, HealthAIOperation.CREDIT_ADD, 1, expires_at))
        ]
        self.run.figures["grants left to expire"] += len(grants)
        spend = hold = None
        if spent:
            nonce = f"spent-{uuid.uuid4().hex}"
            result = self.run.mutate(
                CREATE_ENTRY_FULL,
                "createEntry",
                ownerId=owner_id,
                operation="CREDIT_SPEND",
                nonce=nonce,
                quantity=spent,
            )
            self.before(expires_at, result)
            spend = self.check_spend(owner_id, nonce, spent, result)
        if held:
            nonce = f"held-{uuid.uuid4().hex}"
            result = self.run.mutate(
                RESERVE_CREDITS,
                "reserveCredits",
                ownerId=owner_id,
                operation="CREDIT_SPEND",
                nonce=nonce,
                quantity=held,
                expiresIn=hold_lasts,
            )
            self.before(expires_at, result)
            hold = self.check_reserve(owner_id, HealthAIOperation.CREDIT_SPEND, held, nonce, result)
        # The grant and a hold of a second expire in the order of their expiresAt.
        hold_ends = None
        if hold is not None and hold_lasts == 1:
            hold_ends = datetime.fromisoformat(result["expiresAt"])
            self.run.figures["holds of a grant left to expire"] += 1
        if hold is not None and hold_ends is not None and hold_ends < expires_at:
            wait_for_database_clock(self.run.database, result["expiresAt"])
            self.hold_expires(hold)
        wait_for_database_clock(self.run.database, grant.entry["expiresAt"], timeout=5)
        for each in grants:
            self.expire(each)
        if hold is not None and hold_ends is not None and hold_ends >= expires_at:
            wait_for_database_clock(self.run.database, result["expiresAt"])
            self.hold_expires(hold)
        self.run.waited += time.monotonic() - waiting
        self.wait_for_the_expiry_pass()
        if afterwards == "release" and hold is not None and hold["status"] == "OPEN":
            self.release(hold)
        elif afterwards == "capture one" and hold is not None and hold["status"] == "OPEN":
            self.capture(hold, 1)
        elif afterwards == "refund the spend" and spend is not None:
            self.refund(spend, replay=False)

    @staticmethod
    def before(expires_at: datetime, result: dict[str, Any]) -> None:
        """What the model predicted of a write holds only if it ran before the grant it
        just gave expired (a second or more after it was given)."""
        if "createdOn" in result:
            assert datetime.fromisoformat(result["createdOn"]) < expires_at, (
                "a write ran after the grant expired: the machine stalled for a second"
            )

    def check_spend(
        self, owner_id: str, nonce: str, credits: int, result: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Checks a CREDIT_SPEND of `credits` with a fresh nonce, and applies it: it takes
        the soonest-expiring credits first, unless fewer are available. The entry, if any."""
        if self.available(owner_id) < credits:
            self.check_insufficient(result, owner_id, credits)
            return None
        assert result["__typename"] == "LedgerEntry", result
        assert (result["operation"], result["amount"], result["nonce"]) == (
            "CREDIT_SPEND",
            -credits,
            nonce,
        )
        entry = self.book(result, "OPERATION", credits)
        self.entries[(owner_id, nonce)] = entry
        self.uses[entry["id"]] = self.take(owner_id, credits)
        return entry

    @rule(
        owner=st.integers(0, 2),
        refused=st.sampled_from(
            ["an end user's", "a spend's", "no credits'", "past", "too far", "no offset"]
        ),
    )
    def an_expiry_the_ledger_refuses_writes_nothing(self, owner: int, refused: str) -> None:
        owner_id, nonce = self.owners[owner], f"refused-{uuid.uuid4().hex}"
        ahead = (self.run.anchor + timedelta(days=1)).isoformat()
        operation, expires_at = {
            "an end user's": ("DAILY_REWARD", ahead),
            "a spend's": ("CONTENT_CREATION", ahead),
            "no credits'": ("CONTENT_ACCESS", ahead),
            "past": ("CREDIT_ADD", (self.run.anchor - timedelta(seconds=1)).isoformat()),
            "too far": ("CREDIT_ADD", (self.run.anchor + timedelta(days=11 * 366)).isoformat()),
            "no offset": (
                "CREDIT_ADD",
                (self.run.anchor + timedelta(days=1)).replace(tzinfo=None).isoformat(),
            ),
        }[refused]
        by_user = refused == "an end user's"
        result = self.run.mutate(
            GRANT_ENTRY,
            "createEntry",
            self.run.user(owner_id) if by_user else None,
            ownerId=owner_id,
            operation=operation,
            nonce=nonce,
            expiresAt=expires_at,
        )
        if by_user:
            self.check_not_allowed(result)
        else:
            assert result == {
                "__typename": "InvalidInput",
                "code": "INVALID_INPUT",
                "message": result["message"],
                "field": "expiresAt",
            }

    def all_entries(self) -> list[dict[str, Any]]:
        return [entry for owner_id in self.owners for entry in self.owner_entries(owner_id)]

    def teardown(self) -> None:
        """At the end of an example: the EXPIRY entries read through the API are the ones
        the model booked, each naming its grant, and together they book out of each grant
        exactly what lapsed of it."""
        owners = {f"o{n}": owner_id for n, owner_id in enumerate(self.owners)}
        body = self.run.post(self.service, ALL_ENTRIES, **owners)
        assert "errors" not in body, body
        for n, owner_id in enumerate(self.owners):
            found = sorted(
                (
                    ({key: node[key] for key in ENTRY_KEYS}, node["expiryOf"]["id"])
                    for edge in body["data"][f"e{n}"]["edges"]
                    if (node := edge["node"])["kind"] == "EXPIRY"
                ),
                key=lambda expiry: int(expiry[0]["id"]),
            )
            assert found == [
                (entry, self.expiry_of[entry["id"]])
                for entry in self.expiries
                if entry["ownerId"] == owner_id
            ]
        booked: Counter[str] = Counter()
        for entry in self.expiries:
            booked[self.expiry_of[entry["id"]]] -= entry["amount"]
        assert booked == +self.lapsed

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def balances_read_through_the_api_are_the_models(self) -> None:
        owners = {f"o{n}": owner_id for n, owner_id in enumerate(self.owners)}
        answer = self.run.post(self.service, BALANCES, ids=self.owners, **owners)
        expected = []
        for owner_id in self.owners:
            entries = self.owner_entries(owner_id)
            created = [e["createdOn"] for e in entries]
            newest = max(created, default=None, key=datetime.fromisoformat)
            expected.append(
                {
                    "ownerId": owner_id,
                    "balance": self.balances[owner_id],
                    "held": self.held(owner_id),
                    "available": self.available(owner_id),
                    "lastUpdated": newest,
                    "expiringWithin": self.expiring_within(owner_id),
                }
            )
        grants = {
            f"g{n}": {"grants": {"edges": [{"node": g} for g in self.listed_grants(owner_id)]}}
            for n, owner_id in enumerate(self.owners)
        }
        assert answer == {"data": {"balances": expected, **grants}}

    @invariant()
    def stored_rows_are_the_models_and_the_books_balance(self) -> None:
        rows = self.run.rows(STORED, owners=self.owners)
        self.run.figures["database checks"] += 1
        assert rows[0][7] == self.earlier + self.written, "the model wrote no such entry"
        assert rows[0][8] == self.earlier_holds + len(self.holds), "the model reserved no such hold"
        for owner_id in self.owners:
            mine = [row for row in rows if row[0] == owner_id]
            stored = {row[1] for row in mine}
            entries = [row[2:7] for row in mine if row[2] is not None]
            expected = [
                (int(e["id"]), nonce, e["operation"], e["amount"], e["balanceAfter"])
                for e in self.owner_entries(owner_id)
                # An EXPIRY has no nonce of its own: the API answers its grant's.
                for nonce in [None if self.kinds[e["id"]] == "EXPIRY" else e["nonce"]]
            ]
            assert entries == expected
            self.run.figures["entry rows checked"] += len(entries)
            if not entries:
                assert stored <= {None}, f"a balance row without entries: {stored}"
                continue
            running = 0
            for _, _, _, amount, balance_after in entries:
                running += amount
                assert balance_after == running >= 0
            assert stored == {running} == {entries[-1][4]} == {self.balances[owner_id]}


def test_random_create_entry_sequences_answer_exactly_as_a_model_of_the_ledger_predicts(
    new_database: Callable[..., str], figures: Callable[[str], None]
) -> None:
    database = new_database("model")
    [(before,)] = sql(database, "SELECT count(*) FROM entries")
    assert before == 0
    clear_of_utc_midnight()
    config = Settings(
        app_database_urls={"healthai": database},
        jwt_secret=TEST_SECRET,
        expiry_interval=EXPIRY_INTERVAL,
    )
    started = time.perf_counter()
    with TestClient(create_app("healthai", HealthAIOperation, config)) as client:
        run = Run(client, database, datetime.fromisoformat(database_now(database)))
        machine = type("LedgerModel", (LedgerMachine,), {"run": run})
        try:
            run_state_machine_as_test(machine, settings=SETTINGS)
        finally:
            run.close()
            counts, answers = run.figures, dict(sorted(run.outcomes.items()))
            figures(
                f"model test: {counts['examples']} examples, {counts['writes']} writes the"
                f" model predicted, {counts['requests']} requests sent,"
                f" {counts['entries written']} entries written,"
                f" {counts['entry rows checked']} entry rows checked against the model in"
                f" {counts['database checks']} database checks, {counts['holds reserved']}"
                f" holds ({counts['holds captured']} captured, {counts['holds left to expire']}"
                f" left to expire), {counts['refunds']} refunds"
                f" ({counts['grants refunded']} of credits), {counts['grants that expire']}"
                f" grants that expire ({counts['grants left to expire']} left to expire in"
                f" {run.waited:.1f} s, {counts['holds of a grant left to expire']} with a hold"
                f" of theirs), {counts['expiries booked']} EXPIRY entries"
                f" ({counts['expiries booked by a write']} by a release, capture or refund),"
                f" in {time.perf_counter() - started:.1f} s; answers: {answers}"
            )
    verify_books("healthai", database)
