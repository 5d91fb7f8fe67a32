"""How much one GraphQL document may ask for, and whether clients may introspect the
schema: the schema extensions and config that enforce it, from the settings."""

import functools
from collections.abc import Callable
from dataclasses import dataclass

from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig

from graphql_ledger.config import Settings

__all__ = ["QueryLimits"]


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

    def extensions(self) -> list[Callable[[], SchemaExtension]]:
        """Factories, not instances: an extension instance holds one request's state."""
        made: list[Callable[[], SchemaExtension]] = [
            functools.partial(QueryDepthLimiter, max_depth=self.max_depth),
            functools.partial(MaxAliasesLimiter, max_alias_count=self.max_aliases),
            functools.partial(MaxTokensLimiter, max_token_count=self.max_tokens),
        ]
        if not self.introspection:
            made.append(DisableIntrospection)
        return made

    def config(self) -> StrawberryConfig:
        # Suggestions ("Did you mean ...?") would give away the schema introspection hides.
        return StrawberryConfig(disable_field_suggestions=not self.introspection)
