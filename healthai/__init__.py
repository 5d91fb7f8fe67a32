"""healthai: its ledger operations (`operations.py`) and its ASGI app (`app.py`)."""
