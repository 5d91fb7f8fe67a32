"""A model-based test of the ledger's writes: Hypothesis draws random sequences of
createEntry (every healthai operation, several owners, fresh and reused nonces, service and
end-user tokens, bad identifiers), reserveCredits, captureHold (all or some), releaseHold,
holds left to expire, and refundEntry, and sends each through the real API on a fresh
PostgreSQL database. A plain Python model of the ledger predicts every answer (the entry
and its balanceAfter, the hold, the original of a replay, InsufficientCredits against
available, NonceConflict, HoldNonceConflict, HoldNotOpen, AlreadyRefunded, NotRefundable,
LimitReached, OperationNotAllowed, InvalidInput), and after every step the balance, held and
available read through the API and the rows stored in the database must be the model's."""

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from starlette.testclient import TestClient

from graphql_ledger import Limit, Settings, create_app
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
    service_headers,
    sql,
    user_headers,
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


BALANCES = (
    "query($ids: [ID!]!) { balances(ownerIds: $ids)"
    " { ownerId balance held available lastUpdated } }"
)
HOLDS_STORED = "SELECT count(*) FROM holds"

# The entry fields createEntry's answers carry; other answers are compared on these.
ENTRY_KEYS = ("id", "ownerId", "operation", "amount", "balanceAfter", "nonce", "createdOn")
HOLD_KEYS = ("id", "ownerId", "operation", "quantity", "amount", "status", "nonce")

# The operations a hold may reserve: spends without a limit.
SPENDS = [op for op in HealthAIOperation if op.amount < 0 and op.limit is None]

# Holds left to expire wait on the database clock (up to a second each): a budget per run
# keeps the test's time bounded.
EXPIRIES_PER_RUN = 4

STORED = """
SELECT o.owner_id, b.balance, e.id, e.nonce, e.operation, e.amount, e.balance_after,
       (SELECT count(*) FROM entries), (SELECT count(*) FROM holds)
  FROM unnest(CAST(:owners AS text[])) AS o(owner_id)
  LEFT JOIN balances b ON b.owner_id = o.owner_id
  LEFT JOIN entries e ON e.owner_id = o.owner_id
 ORDER BY e.id
"""

OPERATIONS = list(HealthAIOperation)

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
    figures: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    newest_id: int = 0  # ids only grow: every new entry's id is above all earlier ones
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def create_entry(
        self, headers: dict[str, str], owner_id: str, operation: str, nonce: str
    ) -> dict[str, Any]:
        body = self.send(headers, create_entry_request(owner_id, operation, nonce))
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["createEntry"]
        self.outcomes[result["__typename"]] += 1
        return result

    def mutate(self, document: str, name: str, **input_: Any) -> dict[str, Any]:
        """One of the hold and refund mutations, as a backend service."""
        body = self.post(service_headers("healthai"), document, input=input_)
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

    def user(self, owner_id: str) -> dict[str, str]:
        if owner_id not in self.headers:
            self.headers[owner_id] = user_headers("healthai", owner_id)
        return self.headers[owner_id]


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
        [(self.earlier_holds,)] = sql(self.run.database, HOLDS_STORED)
        self.service = service_headers("healthai")
        # Entries of earlier examples; this one's are counted in `written`.
        [(self.earlier,)] = sql(self.run.database, "SELECT count(*) FROM entries")
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
            + [entry for entry in captured if entry["ownerId"] == owner_id],
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

        today = datetime.now(UTC).date()
        used = [
            e
            for e in self.owner_entries(owner_id)
            if e["operation"] == name and self.kinds[e["id"]] == "OPERATION"
        ]
        if operation.limit is Limit.ONCE and used:
            assert (result["__typename"], result["code"]) == ("LimitReached", "LIMIT_REACHED")
            assert result["retryAfter"] is None, result
            return
        if operation.limit is Limit.ONCE_PER_UTC_DAY and any(
            datetime.fromisoformat(e["createdOn"]).astimezone(UTC).date() == today for e in used
        ):
            assert (result["__typename"], result["code"]) == ("LimitReached", "LIMIT_REACHED")
            assert datetime.fromisoformat(result["retryAfter"]) == next_utc_midnight(today)
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
            self.entries[(owner_id, nonce)] = self.book(result, "OPERATION", quantity)

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

    @precondition(lambda self: bool(self.holds))
    @rule(data=st.data())
    def a_service_captures_a_hold(self, data: st.DataObject) -> None:
        hold = self.holds[data.draw(st.sampled_from(sorted(self.holds)), label="hold")]
        reserved = hold["quantity"]
        valid = st.one_of(st.none(), st.integers(1, reserved))
        if hold["status"] == "OPEN":
            asked = data.draw(st.one_of(valid, st.sampled_from([0, reserved + 1])), label="q")
        else:
            asked = data.draw(valid, label="quantity")
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

    @precondition(lambda self: bool(self.holds))
    @rule(data=st.data())
    def a_service_releases_a_hold(self, data: st.DataObject) -> None:
        hold = self.holds[data.draw(st.sampled_from(sorted(self.holds)), label="hold")]
        result = self.run.mutate(RELEASE_HOLD, "releaseHold", holdId=hold["id"])
        if hold["status"] in ("CAPTURED", "EXPIRED"):
            self.check_hold_not_open(result, hold)
            return
        hold["status"] = "RELEASED"  # releasing a released hold answers it again
        assert result["__typename"] == "Hold", result
        assert {key: result[key] for key in HOLD_KEYS} == hold
        assert result["capture"] is None

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
        hold["status"] = "EXPIRED"

    @precondition(lambda self: bool(self.kinds))
    @rule(data=st.data())
    def a_service_refunds_an_entry(self, data: st.DataObject) -> None:
        # Not entries of a limited operation: whether a refund gives the limit back is not
        # the contract's to say.
        limited = {op.name for op in OPERATIONS if op.limit is not None}
        candidates = sorted(
            (entry for entry in self.all_entries() if entry["operation"] not in limited),
            key=lambda entry: int(entry["id"]),
        )
        if not candidates:
            return
        original = data.draw(st.sampled_from(candidates), label="entry")
        owner_id, refund = original["ownerId"], self.refunds.get(original["id"])
        replay = refund is not None and data.draw(st.booleans(), label="replay")
        nonce = refund["nonce"] if replay and refund else f"refund-{uuid.uuid4().hex}"
        result = self.run.mutate(REFUND_ENTRY, "refundEntry", entryId=original["id"], nonce=nonce)

        if self.kinds[original["id"]] == "REFUND":
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
        entry = self.book(result, "REFUND", self.quantities[original["id"]])
        self.entries[(owner_id, nonce)] = entry
        self.refunds[original["id"]] = entry
        self.run.figures["refunds"] += 1

    def all_entries(self) -> list[dict[str, Any]]:
        return [entry for owner_id in self.owners for entry in self.owner_entries(owner_id)]

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def balances_read_through_the_api_are_the_models(self) -> None:
        answer = self.run.post(self.service, BALANCES, ids=self.owners)
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
                }
            )
        assert answer == {"data": {"balances": expected}}

    @invariant()
    def stored_rows_are_the_models_and_the_books_balance(self) -> None:
        rows = sql(self.run.database, STORED, owners=self.owners)
        self.run.figures["database checks"] += 1
        assert rows[0][7] == self.earlier + self.written, "the model wrote no such entry"
        assert rows[0][8] == self.earlier_holds + len(self.holds), "the model reserved no such hold"
        for owner_id in self.owners:
            mine = [row for row in rows if row[0] == owner_id]
            stored = {row[1] for row in mine}
            entries = [row[2:7] for row in mine if row[2] is not None]
            expected = [
                (int(e["id"]), e["nonce"], e["operation"], e["amount"], e["balanceAfter"])
                for e in self.owner_entries(owner_id)
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
    config = Settings(app_database_urls={"healthai": database}, jwt_secret=TEST_SECRET)
    started = time.perf_counter()
    with TestClient(create_app("healthai", HealthAIOperation, config)) as client:
        run = Run(client, database)
        machine = type("LedgerModel", (LedgerMachine,), {"run": run})
        try:
            run_state_machine_as_test(machine, settings=SETTINGS)
        finally:
            counts, answers = run.figures, dict(sorted(run.outcomes.items()))
            figures(
                f"model test: {counts['examples']} examples, {counts['writes']} writes the"
                f" model predicted, {counts['requests']} requests sent,"
                f" {counts['entries written']} entries written,"
                f" {counts['entry rows checked']} entry rows checked against the model in"
                f" {counts['database checks']} database checks, {counts['holds reserved']}"
                f" holds ({counts['holds captured']} captured, {counts['holds left to expire']}"
                f" left to expire), {counts['refunds']} refunds,"
                f" in {time.perf_counter() - started:.1f} s; answers: {answers}"
            )
