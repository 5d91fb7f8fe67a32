"""How much one GraphQL document may ask for, and whether clients may introspect the
schema: the validation rules, schema extensions and config that enforce it, from the
settings.

Depth and aliases are counted by rules of our own rather than Strawberry's
QueryDepthLimiter and MaxAliasesLimiter, which count the same way but walk a fragment again
at every spread of it: twenty fragments that each spread the previous one twice (under 1 KB
of query) took them seconds per level, doubling, on the event loop. Ours count each
fragment once per document.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)
from strawberry.extensions import DisableIntrospection
from strawberry.schema.config import StrawberryConfig

from graphql_ledger.config import Settings

__all__ = ["CACHED_DOCUMENTS", "QueryLimits"]

# Distinct documents kept parsed and validated; bounded, so unique query texts from a
# hostile client cannot grow memory.
CACHED_DOCUMENTS = 256


@dataclass(frozen=True)
class QueryLimits:
    """Defaults a legitimate frontend never meets. Introspection stays on by default:
    clients generate code from it."""

    max_depth: int = 10
    max_aliases: int = 100
    max_tokens: int = 2000
    introspection: bool = True

    @classmethod
    def of(cls, settings: Settings) -> "QueryLimits":
        return cls(
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_tokens,
            introspection=settings.introspection,
        )

    @functools.cached_property
    def validation_rules(self) -> tuple[type[ASTValidationRule], ...]:
        """The rules beyond the specification's that every document must pass. Made once:
        Strawberry's limiters make a new rule class per instance, and the validation cache
        is keyed by the rule classes, so fresh ones per request would never hit it."""
        rules: list[type[ASTValidationRule]] = [
            depth_limit(self.max_depth),
            alias_limit(self.max_aliases),
        ]
        if not self.introspection:
            rules += DisableIntrospection().validation_rules
        return tuple(rules)

    def config(self) -> StrawberryConfig:
        # Suggestions ("Did you mean ...?") would give away the schema introspection hides.
        return StrawberryConfig(disable_field_suggestions=not self.introspection)


class _Measure:
    """Sizes of a document's selection sets, each fragment's measured once: `depth`, the
    nesting of fields with selections (introspection fields count as leaves), and
    `aliases`, the aliased fields once fragments are spread. A spread of a fragment being
    measured (a cycle, which validation refuses anyway) counts 0."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._depths: dict[str, int] = {}
        self._aliases: dict[str, int] = {}

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        deepest = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                if selection.selection_set and not selection.name.value.startswith("__"):
                    deepest = max(deepest, 1 + self.depth(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.depth(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, self._fragment(selection, self._depths, self.depth))
        return deepest

    def aliases(self, selection_set: SelectionSetNode | None) -> int:
        count = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                count += bool(selection.alias) + self.aliases(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                count += self.aliases(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                count += self._fragment(selection, self._aliases, self.aliases)
        return count

    def _fragment(
        self,
        spread: FragmentSpreadNode,
        known: dict[str, int],
        measure: Callable[[SelectionSetNode | None], int],
    ) -> int:
        name = spread.name.value
        if name not in known:
            fragment = self.fragments.get(name)
            known[name] = 0  # while measuring it: a cycle counts 0
            known[name] = measure(fragment.selection_set) if fragment else 0
        return known[name]


def _operations(context: ValidationContext) -> list[OperationDefinitionNode]:
    return [d for d in context.document.definitions if isinstance(d, OperationDefinitionNode)]


def depth_limit(max_depth: int) -> type[ASTValidationRule]:
    """A rule refusing operations nested deeper than `max_depth` fields."""

    class DepthLimit(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            measure = _Measure(context.document)
            for operation in _operations(context):
                if measure.depth(operation.selection_set) > max_depth:
                    name = operation.name.value if operation.name else "anonymous"
                    context.report_error(
                        GraphQLError(
                            f"'{name}' exceeds maximum operation depth of {max_depth}",
                            operation,
                        )
                    )

    return DepthLimit


def alias_limit(max_aliases: int) -> type[ASTValidationRule]:
    """A rule refusing documents with more than `max_aliases` aliased fields, counted with
    fragments spread."""

    class AliasLimit(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            measure = _Measure(context.document)
            total = sum(measure.aliases(o.selection_set) for o in _operations(context))
            if total > max_aliases:
                context.report_error(GraphQLError(f"{total} aliases found. Allowed: {max_aliases}"))

    return AliasLimit
