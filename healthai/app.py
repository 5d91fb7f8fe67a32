"""healthai's ASGI app: `uvicorn healthai.app:app`."""

from graphql_ledger import create_app
from healthai.operations import HealthAIOperation

app = create_app("healthai", HealthAIOperation)
