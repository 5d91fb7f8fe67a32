"""Operation enums: the contract's amounts, and the class statement refusing an enum that
lacks a shared operation or an amount. Pure domain; no I/O."""

import pytest

from graphql_ledger import SHARED_AMOUNTS, LedgerOperation, credits, shared
from healthai.operations import HealthAIOperation
from travelai.operations import TravelAIOperation


def test_apps_have_the_amounts_of_the_contract() -> None:
    assert {op.name: op.amount for op in HealthAIOperation} == {
        "DAILY_REWARD": 1,
        "SIGNUP_CREDIT": 3,
        "CREDIT_SPEND": -1,
        "CREDIT_ADD": 10,
        "CONTENT_CREATION": -5,
        "CONTENT_ACCESS": 0,
    }
    assert {op.name: op.amount for op in TravelAIOperation} == {
        "DAILY_REWARD": 1,
        "SIGNUP_CREDIT": 3,
        "CREDIT_SPEND": -1,
        "CREDIT_ADD": 10,
        "BOOKING_REWARD": 5,
        "LOYALTY_BONUS": 2,
    }


def test_shared_amounts_live_in_the_core() -> None:
    assert dict(SHARED_AMOUNTS) == {
        "DAILY_REWARD": 1,
        "SIGNUP_CREDIT": 3,
        "CREDIT_SPEND": -1,
        "CREDIT_ADD": 10,
    }


def test_an_enum_lacking_shared_operations_fails_naming_them() -> None:
    with pytest.raises(TypeError) as refusal:

        class Incomplete(LedgerOperation):
            DAILY_REWARD = shared()
            CREDIT_SPEND = shared()
            MAGIC = credits(7)

    message = str(refusal.value)
    assert "Incomplete" in message
    assert "SIGNUP_CREDIT" in message and "CREDIT_ADD" in message
    assert "DAILY_REWARD" not in message and "MAGIC" not in message


def test_an_operation_without_an_amount_fails_naming_it() -> None:
    with pytest.raises(TypeError) as refusal:

        class NoAmount(LedgerOperation):
            DAILY_REWARD = shared()
            SIGNUP_CREDIT = shared()
            CREDIT_SPEND = shared()
            CREDIT_ADD = shared()
            FORGOTTEN = "FORGOTTEN"
            ALSO_FORGOTTEN = shared()

    message = str(refusal.value)
    assert "FORGOTTEN" in message and "ALSO_FORGOTTEN" in message
    assert "credits(n)" in message


def test_a_shared_operation_cannot_set_its_own_amount() -> None:
    with pytest.raises(TypeError, match="CREDIT_ADD"):

        class Generous(LedgerOperation):
            DAILY_REWARD = shared()
            SIGNUP_CREDIT = shared()
            CREDIT_SPEND = shared()
            CREDIT_ADD = credits(1000)


def test_operations_with_equal_amounts_stay_distinct() -> None:
    class Twins(LedgerOperation):
        DAILY_REWARD = shared()
        SIGNUP_CREDIT = shared()
        CREDIT_SPEND = shared()
        CREDIT_ADD = shared()
        LEFT = credits(2)
        RIGHT = credits(2)

    assert [op.name for op in Twins][-2:] == ["LEFT", "RIGHT"]
    assert Twins.LEFT is not Twins.RIGHT
    assert Twins["RIGHT"].amount == 2


@pytest.mark.parametrize("amount", [1.5, "3", True, None])
def test_credits_takes_only_whole_numbers(amount: object) -> None:
    with pytest.raises(TypeError):
        credits(amount)  # type: ignore[arg-type]
