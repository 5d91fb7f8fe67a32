"""travelai's ASGI app: `uvicorn travelai.app:app`."""

from graphql_ledger import create_app
from travelai.operations import TravelAIOperation

app = create_app("travelai", TravelAIOperation)
