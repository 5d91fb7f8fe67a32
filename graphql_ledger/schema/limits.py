"""How much one GraphQL document may ask for, and whether clients may introspect the
schema: the schema extensions and config that enforce it, from the settings."""

import functools
from collections.abc import Callable
from dataclasses import dataclass

from graphql import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
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
        rules = [
            *QueryDepthLimiter(max_depth=self.max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=self.max_aliases).validation_rules,
        ]
        if not self.introspection:
            rules += DisableIntrospection().validation_rules
        return tuple(rules)

    def extensions(self) -> list[Callable[[], SchemaExtension]]:
        """The same limits as Strawberry extensions, for the operations Strawberry's own
        pipeline runs (those on WebSocket). Factories, not instances: an extension
        instance holds one request's state."""
        return [
            functools.partial(AddValidationRules, list(self.validation_rules)),
            functools.partial(MaxTokensLimiter, max_token_count=self.max_tokens),
            functools.partial(ParserCache, maxsize=CACHED_DOCUMENTS),
            functools.partial(ValidationCache, maxsize=CACHED_DOCUMENTS),
        ]

    def config(self) -> StrawberryConfig:
        # Suggestions ("Did you mean ...?") would give away the schema introspection hides.
        return StrawberryConfig(disable_field_suggestions=not self.introspection)
