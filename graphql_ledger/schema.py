"""The GraphQL schema factory: `build_schema` turns an app's operation enum into its
Strawberry schema. Types that mention the enum are made per app inside the factory; the
rest are shared by every app. No SQL here: resolvers reach storage through the request's
`LedgerContext`.

This module must not use `from __future__ import annotations`: Strawberry resolves
annotations at runtime, and string annotations cannot see the factory's local classes.
"""

import dataclasses
import enum
import logging
from datetime import datetime
from typing import Annotated, Union

import strawberry
from graphql import GraphQLError
from strawberry.dataloader import DataLoader
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from graphql_ledger import ledger
from graphql_ledger.operations import LedgerOperation
from graphql_ledger.storage import LedgerRepository

__all__ = [
    "MAX_BALANCES_PER_QUERY",
    "BadUserInput",
    "LedgerContext",
    "LedgerSchema",
    "build_schema",
]

logger = logging.getLogger(__name__)

MAX_BALANCES_PER_QUERY = 100


class BadUserInput(GraphQLError):
    """A query argument breaks the input rules: a GraphQL error whose
    `extensions.code` is BAD_USER_INPUT, shown to the client as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": "BAD_USER_INPUT"})


def is_unexpected(error: GraphQLError) -> bool:
    """True for errors raised by a bug or an outage rather than by the request itself;
    these are logged and masked. Syntax, validation and our own GraphQLErrors are not."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


class MaskUnexpectedErrors(MaskErrors):
    """Masks unexpected errors, keeping a code clients can branch on."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message="Unexpected error.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked


class LedgerSchema(strawberry.Schema):
    """Logs unexpected errors with their context; expected ones are the client's business
    and stay out of the server log."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if is_unexpected(error):
                logger.error(
                    "unexpected error in operation %s at %s: %s",
                    execution_context.operation_name if execution_context else None,
                    ".".join(str(key) for key in error.path or ()),
                    error.message,
                    exc_info=error.original_error,
                )


@strawberry.enum(description="What a LedgerError is about; clients branch on it.")
class LedgerErrorCode(enum.Enum):
    INSUFFICIENT_CREDITS = "INSUFFICIENT_CREDITS"
    NONCE_CONFLICT = "NONCE_CONFLICT"
    INVALID_INPUT = "INVALID_INPUT"
    OPERATION_NOT_ALLOWED = "OPERATION_NOT_ALLOWED"
    LIMIT_REACHED = "LIMIT_REACHED"


@strawberry.type(description="An owner's current credit balance.")
class Balance:
    owner_id: strawberry.ID
    balance: int = strawberry.field(description="0 for an owner with no entries.")
    last_updated: datetime | None = strawberry.field(
        description="createdOn of the newest entry; null when there is none."
    )

    @classmethod
    def of(cls, record: ledger.Balance) -> "Balance":
        return cls(
            owner_id=strawberry.ID(record.owner_id),
            balance=record.balance,
            last_updated=record.last_updated,
        )


@strawberry.interface(description="A refusal: nothing was written.")
class LedgerError:
    code: LedgerErrorCode
    message: str


@strawberry.type(description="The entry would take the balance below zero.")
class InsufficientCredits(LedgerError):
    balance: int = strawberry.field(description="The owner's balance now.")
    required: int = strawberry.field(description="Credits the operation takes.")


@strawberry.type(description="An input field breaks the input rules.")
class InvalidInput(LedgerError):
    field: str = strawberry.field(description="The input field at fault, e.g. ownerId.")


@dataclasses.dataclass
class LedgerContext:
    """What resolvers of one request share: the repository and per-request DataLoaders."""

    repository: LedgerRepository
    balances: DataLoader[str, Balance]

    @classmethod
    def for_request(cls, repository: LedgerRepository) -> "LedgerContext":
        async def load_balances(owner_ids: list[str]) -> list[Balance]:
            return [Balance.of(record) for record in await repository.balances_of(owner_ids)]

        return cls(repository=repository, balances=DataLoader(load_fn=load_balances))


def _checked_owner_id(owner_id: str) -> str:
    problem = ledger.identifier_problem("ownerId", owner_id)
    if problem is not None:
        raise BadUserInput(problem.message)
    return owner_id


def build_schema(operations: type[LedgerOperation]) -> LedgerSchema:
    """Builds the GraphQL schema of the app whose operations are `operations`; the enum is
    named after the class (`HealthAIOperation`). Apps' schemas differ only in that enum."""
    strawberry.enum(operations, name=operations.__name__)

    @strawberry.type(description="One append-only line of an owner's ledger.")
    class LedgerEntry:
        id: strawberry.ID
        owner_id: strawberry.ID
        operation: LedgerOperation = strawberry.field(graphql_type=operations)
        amount: int
        balance_after: int = strawberry.field(
            description="The owner's balance right after this entry."
        )
        nonce: str
        created_on: datetime

        @classmethod
        def of(cls, entry: ledger.Entry) -> "LedgerEntry":
            return cls(
                id=strawberry.ID(str(entry.id)),
                owner_id=strawberry.ID(entry.owner_id),
                operation=entry.operation,
                amount=entry.amount,
                balance_after=entry.balance_after,
                nonce=entry.nonce,
                created_on=entry.created_on,
            )

    @strawberry.type(description="The nonce already identifies another operation's entry.")
    class NonceConflict(LedgerError):
        existing: LedgerEntry

    @strawberry.type(description="An operation and the credits one entry of it adds or takes.")
    class OperationInfo:
        operation: LedgerOperation = strawberry.field(graphql_type=operations)
        amount: int

    @strawberry.input
    class CreateEntryInput:
        owner_id: strawberry.ID
        operation: LedgerOperation = strawberry.field(graphql_type=operations)
        nonce: str = strawberry.field(
            description="Chosen by the client; the same ownerId and nonce is the same entry."
        )

    CreateEntryResult = Annotated[
        Union[LedgerEntry, InsufficientCredits, NonceConflict, InvalidInput],  # noqa: UP007
        strawberry.union("CreateEntryResult"),
    ]

    def result_of(
        outcome: ledger.EntryOutcome,
    ) -> LedgerEntry | InsufficientCredits | NonceConflict | InvalidInput:
        match outcome:
            case ledger.Entry():
                return LedgerEntry.of(outcome)
            case ledger.InsufficientCredits(balance=balance, required=required):
                return InsufficientCredits(
                    code=LedgerErrorCode.INSUFFICIENT_CREDITS,
                    message=outcome.message,
                    balance=balance,
                    required=required,
                )
            case ledger.NonceConflict(existing=existing):
                return NonceConflict(
                    code=LedgerErrorCode.NONCE_CONFLICT,
                    message=outcome.message,
                    existing=LedgerEntry.of(existing),
                )
            case ledger.InvalidInput(field=field, message=message):
                return InvalidInput(
                    code=LedgerErrorCode.INVALID_INPUT, message=message, field=field
                )

    @strawberry.type
    class Query:
        @strawberry.field(description="An owner's balance.")
        async def balance(self, info: strawberry.Info, owner_id: strawberry.ID) -> Balance:
            context: LedgerContext = info.context
            return await context.balances.load(_checked_owner_id(owner_id))

        @strawberry.field(
            description=f"Several owners' balances, in the order asked; at most "
            f"{MAX_BALANCES_PER_QUERY} ids."
        )
        async def balances(
            self, info: strawberry.Info, owner_ids: list[strawberry.ID]
        ) -> list[Balance]:
            if len(owner_ids) > MAX_BALANCES_PER_QUERY:
                raise BadUserInput(
                    f"ownerIds holds {len(owner_ids)} ids; at most {MAX_BALANCES_PER_QUERY}"
                )
            context: LedgerContext = info.context
            return await context.balances.load_many([_checked_owner_id(o) for o in owner_ids])

        @strawberry.field(description="Every operation of this app and its amount.")
        def operations(self) -> list[OperationInfo]:
            return [OperationInfo(operation=op, amount=op.amount) for op in operations]

    @strawberry.type
    class Mutation:
        @strawberry.mutation(
            description="Appends an entry, or answers with the original one for a replayed "
            "nonce, or with a LedgerError and writes nothing."
        )
        async def create_entry(
            self, info: strawberry.Info, input: CreateEntryInput
        ) -> CreateEntryResult:
            problem = ledger.identifier_problem(
                "ownerId", input.owner_id
            ) or ledger.identifier_problem("nonce", input.nonce)
            if problem is not None:
                return result_of(problem)
            context: LedgerContext = info.context
            outcome = await context.repository.create_entry(
                input.owner_id, input.operation, input.nonce
            )
            return result_of(outcome)

    return LedgerSchema(query=Query, mutation=Mutation, extensions=[MaskUnexpectedErrors])
