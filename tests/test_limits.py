"""The ledger's depth and alias rules (graphql_ledger/schema/limits.py) measure documents
exactly as Strawberry's QueryDepthLimiter and MaxAliasesLimiter do, which they replace
because those walk a fragment again at every spread of it. Hypothesis draws documents of
nested and aliased fields, introspection fields, inline fragments, chains of fragments
spreading earlier ones, and several operations; both must find the same depth and the same
number of aliases."""

from collections.abc import Callable

from graphql import ASTValidationRule, GraphQLSchema, build_schema, parse, validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter

from graphql_ledger.schema.limits import alias_limit, depth_limit
from tests.support import ROOT

set_hypothesis_home_dir(ROOT / ".cache" / "hypothesis")

# The rules read the document only; any schema will do for validate().
SCHEMA: GraphQLSchema = build_schema("type Query { a: Int }")
NAMES = st.sampled_from(["a", "b", "c", "__typename"])
ALIASES = st.sampled_from(["x", "y"])

Rule = Callable[[int], type[ASTValidationRule]]


def selection(fragments: list[str]) -> st.SearchStrategy[str]:
    """One selection: a field (aliased or not, with or without a selection set), an inline
    fragment, or a spread of one of `fragments`."""
    atoms = [NAMES, st.builds(lambda a, n: f"{a}: {n}", ALIASES, NAMES)]
    if fragments:
        atoms.append(st.sampled_from(fragments).map(lambda name: f"...{name}"))

    def nested(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        selections = st.lists(children, min_size=1, max_size=3).map(" ".join)
        return st.one_of(
            st.builds(lambda n, s: f"{n} {{ {s} }}", NAMES, selections),
            st.builds(lambda a, n, s: f"{a}: {n} {{ {s} }}", ALIASES, NAMES, selections),
            st.builds(lambda s: f"... on Query {{ {s} }}", selections),
        )

    return st.recursive(st.one_of(atoms), nested, max_leaves=6)


def selection_set(fragments: list[str]) -> st.SearchStrategy[str]:
    return st.lists(selection(fragments), min_size=1, max_size=3).map(
        lambda s: "{ " + " ".join(s) + " }"
    )


@st.composite
def documents(draw: st.DrawFn) -> str:
    """Up to four fragments, each spreading only earlier ones (no cycles), and one to
    three operations."""
    fragments: list[str] = []
    definitions = []
    for number in range(draw(st.integers(0, 4))):
        body = draw(selection_set(fragments))
        definitions.append(f"fragment F{number} on Query {body}")
        fragments.append(f"F{number}")
    operations = draw(st.integers(1, 3))
    for number in range(operations):
        name = f"query Q{number} " if operations > 1 else ""
        definitions.insert(0, f"{name}{draw(selection_set(fragments))}")
    return "\n".join(definitions)


def strawberry_depth(limit: int) -> type[ASTValidationRule]:
    [rule] = QueryDepthLimiter(max_depth=limit).validation_rules
    return rule


def strawberry_aliases(limit: int) -> type[ASTValidationRule]:
    [rule] = MaxAliasesLimiter(max_alias_count=limit).validation_rules
    return rule


def refuses(rule: type[ASTValidationRule], document: str) -> bool:
    return bool(validate(SCHEMA, parse(document), [rule]))


def depth_of(document: str) -> int:
    """The document's depth as the ledger's rule finds it: the least limit it accepts."""
    depth = 0
    while refuses(depth_limit(depth), document):
        depth += 1
    return depth


def aliases_of(rule: Rule, document: str) -> int:
    """The aliases `rule` counts: its refusal under a limit of 0 says how many."""
    errors = validate(SCHEMA, parse(document), [rule(0)])
    if not errors:
        return 0
    [error] = errors
    count, _ = error.message.split(" aliases found", 1)
    return int(count)


@settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(document=documents())
def test_depth_and_aliases_are_measured_as_strawberry_measures_them(document: str) -> None:
    depth = depth_of(document)
    assert not refuses(strawberry_depth(depth), document), document
    if depth:
        assert refuses(strawberry_depth(depth - 1), document), document
    assert aliases_of(alias_limit, document) == aliases_of(strawberry_aliases, document), document


def test_the_measures_are_not_trivial() -> None:
    """The comparison above compares something: a known document's depth and aliases."""
    document = """
        { a x: b { ...F1 } }
        fragment F0 on Query { y: a { b { c } } }
        fragment F1 on Query { ...F0 ...F0 x: c }
    """
    assert depth_of(document) == 3
    assert refuses(strawberry_depth(2), document)
    assert not refuses(strawberry_depth(3), document)
    assert aliases_of(alias_limit, document) == aliases_of(strawberry_aliases, document) == 4
