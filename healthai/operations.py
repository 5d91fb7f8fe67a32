"""healthai's ledger operations: the four shared ones and its content operations."""

from graphql_ledger import LedgerOperation, credits, shared


class HealthAIOperation(LedgerOperation):
    DAILY_REWARD = shared()
    SIGNUP_CREDIT = shared()
    CREDIT_SPEND = shared()
    CREDIT_ADD = shared()
    CONTENT_CREATION = credits(-5)
    CONTENT_ACCESS = credits(0)
