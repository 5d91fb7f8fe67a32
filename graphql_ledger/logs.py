"""The service's logs: one JSON object per line by default (LEDGER_LOG_FORMAT=text for
people), for the ledger's own records and uvicorn's. Each HTTP request is one line with
its request id, app, GraphQL operation name, outcome, status and duration, and never a
token or the request's variables, which may hold personal data."""

import datetime
import logging
from typing import Any

import orjson

__all__ = ["REQUEST_FIELDS", "configure_logging"]

# The fields a request record carries (logging's `extra`), in the order they are printed.
REQUEST_FIELDS = ("request_id", "app", "operation", "outcome", "status", "duration_ms")
_LOGGERS = ("graphql_ledger", "uvicorn", "uvicorn.error")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in REQUEST_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = [f"{n}={getattr(record, n)}" for n in REQUEST_FIELDS if hasattr(record, n)]
        return f"{text} {' '.join(fields)}" if fields else text


def configure_logging(log_format: str) -> None:
    """Sends the ledger's and uvicorn's records to stderr in `log_format` ("json" or
    "text"). The ledger writes one line per request itself, so uvicorn's access log,
    which would repeat it with less, is silenced. Idempotent."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        if logger.level == logging.NOTSET or name == "graphql_ledger":
            logger.setLevel(logging.INFO)
    logging.getLogger("uvicorn.access").disabled = True
