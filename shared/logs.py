"""Log records of every process: plain text or JSON lines, each carrying its request id.

The gateway sets the id of the request it serves, and a matcher the id its job carries (see
``shared/jobs.py``), in ``REQUEST_ID``; every record logged meanwhile, by any logger, carries
it as ``request_id`` ("-" outside a request).
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from shared.settings import Settings

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
TEXT_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s [%(request_id)s] %(message)s"
# JSON lines: these fields, then whatever a record carries in ``extra``.
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(request_id)s %(message)s"
JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


class RequestIdFilter(logging.Filter):
    """Gives each record the request id of the context it was logged in."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


def handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing ``log_format`` ("text" or "json") records to ``stream`` (stderr)."""
    out = logging.StreamHandler(stream or sys.stderr)
    out.addFilter(RequestIdFilter())
    if log_format == "json":
        out.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields=JSON_NAMES))
    else:
        out.setFormatter(logging.Formatter(TEXT_FORMAT))
    return out


def configure(settings: Settings) -> None:
    """Send every logger's records to stderr in ``settings.log_format`` at
    ``settings.log_level``; called once by each process's entry point."""
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler(settings.log_format))
    root.setLevel(settings.log_level)
