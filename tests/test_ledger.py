"""The input rules every ownerId and nonce obey. Pure domain; no I/O."""

import pytest

from graphql_ledger.ledger import InvalidInput, identifier_problem


@pytest.mark.parametrize(
    "value", ["a", "x" * 255, "user-42", "ünïcødé", "\U0001f600", "with space", "日本語"]
)
def test_printable_values_of_1_to_255_characters_are_accepted(value: str) -> None:
    assert identifier_problem("ownerId", value) is None


def test_empty_is_refused() -> None:
    assert identifier_problem("nonce", "") == InvalidInput("nonce", "nonce must not be empty")


def test_more_than_255_characters_is_refused_with_the_length() -> None:
    problem = identifier_problem("ownerId", "x" * 256)
    assert problem is not None
    assert problem.field == "ownerId"
    assert "256" in problem.message and "255" in problem.message


@pytest.mark.parametrize(
    ("value", "code_point", "position"),
    [
        ("\x00", "U+0000", 0),
        ("ab\tc", "U+0009", 2),
        ("a\x7f", "U+007F", 1),
        ("a\x9b", "U+009B", 1),
        ("a\u200fb", "U+200F", 1),
        ("\ufeffbom", "U+FEFF", 0),
        ("a\ud800", "U+D800", 1),
    ],
)
def test_control_format_and_surrogate_characters_are_refused_by_code_point(
    value: str, code_point: str, position: int
) -> None:
    problem = identifier_problem("nonce", value)
    assert problem is not None
    assert code_point in problem.message
    assert f"position {position}" in problem.message
