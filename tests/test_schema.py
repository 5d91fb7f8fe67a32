"""The schema factory builds exactly the contract's API for each app; apps differ only in
their operation enum."""

import re

import pytest
from graphql import build_schema as parse_sdl
from graphql import find_breaking_changes, find_dangerous_changes

from graphql_ledger import build_schema
from graphql_ledger.operations import LedgerOperation
from healthai.operations import HealthAIOperation
from travelai.operations import TravelAIOperation

# CONTRACT.md section 2, verbatim but for the enum's name and values, plus what later
# issues added: history and as-of balances (issue 3), authorization refusals and
# operation limits (issue 4), live balances (issue 5), quantities, metadata, holds and
# refunds (section 4, issue 14).
CONTRACT_SDL = """
scalar DateTime
scalar JSON
enum {enum} {{ {values} }}
enum EntryKind {{ OPERATION CAPTURE REFUND EXPIRY }}
enum HoldStatus {{ OPEN CAPTURED RELEASED EXPIRED }}
type Balance {{
  ownerId: ID!  balance: Int!  lastUpdated: DateTime  held: Int!  available: Int!
  expiringWithin(seconds: Int!): Int!
}}
type LedgerEntry {{
  id: ID!  ownerId: ID!  operation: {enum}!  amount: Int!  balanceAfter: Int!
  nonce: String!  createdOn: DateTime!
  quantity: Int!  kind: EntryKind!  metadata: JSON  refundOf: LedgerEntry
  refundedBy: LedgerEntry  expiresAt: DateTime  remaining: Int  expiryOf: LedgerEntry
}}
type Hold {{
  id: ID!  ownerId: ID!  operation: {enum}!  quantity: Int!  amount: Int!
  status: HoldStatus!  nonce: String!  metadata: JSON  createdOn: DateTime!
  expiresAt: DateTime!  capture: LedgerEntry
}}
type OperationInfo {{ operation: {enum}!  amount: Int! }}
input CreateEntryInput {{
  ownerId: ID!  operation: {enum}!  nonce: String!  quantity: Int = 1  metadata: JSON
  expiresAt: DateTime
}}
input ReserveCreditsInput {{
  ownerId: ID!  operation: {enum}!  nonce: String!  quantity: Int = 1  expiresIn: Int = 900
  metadata: JSON
}}
input CaptureHoldInput {{ holdId: ID!  quantity: Int  metadata: JSON }}
input ReleaseHoldInput {{ holdId: ID! }}
input RefundEntryInput {{ entryId: ID!  nonce: String!  metadata: JSON }}
enum LedgerErrorCode {{
  INSUFFICIENT_CREDITS NONCE_CONFLICT INVALID_INPUT OPERATION_NOT_ALLOWED LIMIT_REACHED
  NOT_FOUND HOLD_NOT_OPEN ALREADY_REFUNDED NOT_REFUNDABLE
}}
interface LedgerError {{ code: LedgerErrorCode!  message: String! }}
type InsufficientCredits implements LedgerError {{
  code: LedgerErrorCode!  message: String!  balance: Int!  required: Int!
}}
type NonceConflict implements LedgerError {{
  code: LedgerErrorCode!  message: String!  existing: LedgerEntry!
}}
type InvalidInput implements LedgerError {{
  code: LedgerErrorCode!  message: String!  field: String!
}}
type OperationNotAllowed implements LedgerError {{ code: LedgerErrorCode!  message: String! }}
type LimitReached implements LedgerError {{
  code: LedgerErrorCode!  message: String!  retryAfter: DateTime
}}
type NotFound implements LedgerError {{ code: LedgerErrorCode!  message: String! }}
type HoldNotOpen implements LedgerError {{ code: LedgerErrorCode!  message: String!  hold: Hold! }}
type AlreadyRefunded implements LedgerError {{
  code: LedgerErrorCode!  message: String!  refund: LedgerEntry!
}}
type NotRefundable implements LedgerError {{ code: LedgerErrorCode!  message: String! }}
type HoldNonceConflict implements LedgerError {{
  code: LedgerErrorCode!  message: String!  existing: Hold!
}}
union CreateEntryResult = LedgerEntry | InsufficientCredits | NonceConflict | InvalidInput
  | OperationNotAllowed | LimitReached | HoldNonceConflict
union ReserveCreditsResult = Hold | InsufficientCredits | NonceConflict | HoldNonceConflict
  | InvalidInput | OperationNotAllowed | LimitReached
union CaptureHoldResult = LedgerEntry | HoldNotOpen | NotFound | InvalidInput
  | OperationNotAllowed
union ReleaseHoldResult = Hold | HoldNotOpen | NotFound | OperationNotAllowed
union RefundEntryResult = LedgerEntry | AlreadyRefunded | NotRefundable | InsufficientCredits
  | NonceConflict | HoldNonceConflict | InvalidInput | NotFound | OperationNotAllowed
input SetBalanceAlertInput {{ ownerId: ID!  below: Int }}
type BalanceAlert {{ ownerId: ID!  below: Int  belowInForce: Int  available: Int! }}
union SetBalanceAlertResult = BalanceAlert | InvalidInput | OperationNotAllowed
type PageInfo {{
  hasNextPage: Boolean!  hasPreviousPage: Boolean!  startCursor: String  endCursor: String
}}
type LedgerEntryEdge {{ cursor: String!  node: LedgerEntry! }}
type LedgerEntryConnection {{ edges: [LedgerEntryEdge!]!  pageInfo: PageInfo! }}
type HoldEdge {{ cursor: String!  node: Hold! }}
type HoldConnection {{ edges: [HoldEdge!]!  pageInfo: PageInfo! }}
type Owner {{
  id: ID!  balance: Int!  lastUpdated: DateTime  held: Int!  available: Int!
  entries(first: Int = 20, after: String, operation: {enum}, since: DateTime,
          until: DateTime, metadata: JSON): LedgerEntryConnection!
  holds(status: HoldStatus = OPEN, first: Int = 20, after: String): HoldConnection!
  grants(first: Int = 20, after: String): LedgerEntryConnection!
}}
type Query {{
  balance(ownerId: ID!, at: DateTime): Balance!
  balances(ownerIds: [ID!]!): [Balance!]!
  operations: [OperationInfo!]!
  entries(ownerId: ID!, first: Int = 20, after: String, operation: {enum}, since: DateTime,
          until: DateTime, metadata: JSON): LedgerEntryConnection!
  owner(id: ID!): Owner!
  hold(id: ID!): Hold
  holds(ownerId: ID!, status: HoldStatus = OPEN, first: Int = 20, after: String):
    HoldConnection!
}}
type Mutation {{
  createEntry(input: CreateEntryInput!): CreateEntryResult!
  reserveCredits(input: ReserveCreditsInput!): ReserveCreditsResult!
  captureHold(input: CaptureHoldInput!): CaptureHoldResult!
  releaseHold(input: ReleaseHoldInput!): ReleaseHoldResult!
  refundEntry(input: RefundEntryInput!): RefundEntryResult!
  setBalanceAlert(input: SetBalanceAlertInput!): SetBalanceAlertResult!
}}
type Subscription {{ balanceChanged(ownerId: ID!): Balance! }}
"""


@pytest.mark.parametrize("operations", [HealthAIOperation, TravelAIOperation])
def test_each_app_schema_is_exactly_the_contract(operations: type[LedgerOperation]) -> None:
    contract = parse_sdl(
        CONTRACT_SDL.format(enum=operations.__name__, values=" ".join(op.name for op in operations))
    )
    ours = build_schema(operations)._schema

    assert find_breaking_changes(contract, ours) == []
    assert find_breaking_changes(ours, contract) == []
    assert find_dangerous_changes(contract, ours) == []
    assert set(contract.type_map) == set(ours.type_map)


def test_the_two_apps_differ_only_in_their_operation_enum() -> None:
    def normalised(operations: type[LedgerOperation]) -> str:
        sdl = build_schema(operations).as_str()
        enum = re.search(rf"\n\nenum {operations.__name__} {{[^}}]*}}", sdl)
        assert enum is not None
        return sdl.replace(enum.group(0), "").replace(operations.__name__, "Operation")

    assert normalised(HealthAIOperation) == normalised(TravelAIOperation)
    assert "enum HealthAIOperation {\n  DAILY_REWARD\n  SIGNUP_CREDIT\n  CREDIT_SPEND\n" in (
        build_schema(HealthAIOperation).as_str()
    )


def test_a_third_app_is_one_enum_away() -> None:
    from graphql_ledger import credits, shared

    class ZooAIOperation(LedgerOperation):
        DAILY_REWARD = shared()
        SIGNUP_CREDIT = shared()
        CREDIT_SPEND = shared()
        CREDIT_ADD = shared()
        FEEDING = credits(-2)

    sdl = build_schema(ZooAIOperation).as_str()
    assert "enum ZooAIOperation {" in sdl and "  FEEDING\n}" in sdl
    assert "operation: ZooAIOperation!" in sdl
