"""The service's logs, for the ledger's own records and uvicorn's: one JSON object per line
in production, one short human line (time, level, message) in development; LEDGER_LOG_FORMAT
chooses. Each HTTP request is one line, and never carries a token or the request's variables,
which may hold personal data."""

import datetime
import logging
from typing import Any

import orjson

__all__ = ["REQUEST_FIELDS", "JsonFormatter", "TextFormatter", "configure_logging"]

# The fields a request record carries (logging's `extra`), in the order JSON prints them.
REQUEST_FIELDS = ("request_id", "app", "operation", "outcome", "status", "duration_ms")
_LOGGERS = ("graphql_ledger", "uvicorn", "uvicorn.error")


class JsonFormatter(logging.Formatter):
    """Everything, for machines: the request's fields as they are, times in UTC."""

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
    """For people: `09:30:00 INFO  message`, local time; a request reads
    `healthai POST /graphql 200 CreateEntry 3.1 ms` (its outcome too when not ok)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(message)s", datefmt="%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        if hasattr(record, "duration_ms"):
            parts = [getattr(record, "app", ""), record.message]
            operation, outcome = getattr(record, "operation", None), getattr(record, "outcome", "")
            parts += [operation] if operation else []
            parts += [outcome] if outcome not in ("ok", "page") else []
            record.message = " ".join([*parts, f"{record.duration_ms:g} ms"])
        return super().formatMessage(record)


def configure_logging(log_format: str | None, *, development: bool = False) -> None:
    """Sends the ledger's and uvicorn's records to stderr in `log_format` ("json" or
    "text"; None: text in development, json otherwise). The ledger writes one line per
    request itself, so uvicorn's access log, which would repeat it with less, is silenced;
    in development so are uvicorn's start-up lines, which the start-up summary replaces.
    Idempotent."""
    text = log_format == "text" or (log_format is None and development)
    # No line shows where a record was made, nor its thread or process: not looking them
    # up is the logging HOWTO's own optimization, and a quarter of each request's log cost.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(TextFormatter() if text else JsonFormatter())
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        if logger.level == logging.NOTSET or name == "graphql_ledger":
            logger.setLevel(logging.INFO)
    logging.getLogger("uvicorn.access").disabled = True
    if development:
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
