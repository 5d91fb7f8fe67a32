"""travelai's ledger operations: the four shared ones and its travel rewards."""

from graphql_ledger import LedgerOperation, credits, shared


class TravelAIOperation(LedgerOperation):
    DAILY_REWARD = shared()
    SIGNUP_CREDIT = shared()
    CREDIT_SPEND = shared()
    CREDIT_ADD = shared()
    BOOKING_REWARD = credits(5)
    LOYALTY_BONUS = credits(2)
