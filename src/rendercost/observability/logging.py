"""Structured JSON logs: one JSON object per line, carrying the current request id.

``configure_logging`` installs the JSON formatter on the root logger once per process. The API's
middleware sets ``request_id_var`` for the life of a request; every record logged inside it (in the
loop or in a thread started with the context copied, as ``anyio.to_thread`` does) carries the id.
Extra fields go through ``logger.info("msg", extra={"fields": {...}})``.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

request_id_var: ContextVar[str | None] = ContextVar("rendercost_request_id", default=None)

_HANDLER_NAME = "rendercost-json"


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: ts, level, logger, message, request_id, fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            payload["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when the handler was made
    (a command run under a captured stderr must not leave a handler on a closed stream)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(level: str | int = "INFO", stream: IO[str] | None = None) -> None:
    """Send the root logger's records to ``stream`` (default: the current stderr) as JSON lines;
    idempotent."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if handler.get_name() == _HANDLER_NAME:
            return
    handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderr()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
