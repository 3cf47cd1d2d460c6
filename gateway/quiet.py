"""Keeping what clients get wrong out of the gateway's ERROR lines and warnings.

aiohttp reports, with the client's own bytes, a request it cannot parse (malformed HTTP, a
body that does not decode as its Content-Encoding says) as an ERROR line, and a malformed
Content-Disposition in a multipart part as a warning. Operators' alerts must not fire on what
any client can send: those lines become one-line INFO records, and the warnings are dropped.
"""

from __future__ import annotations

import logging
import warnings

from aiohttp import multipart
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import RequestPayloadError

# What aiohttp raises for a request whose bytes are wrong, as opposed to a fault of the server.
CLIENT_FAULTS = (HttpProcessingError, RequestPayloadError)


def _demote(record: logging.LogRecord) -> bool:
    fault = record.exc_info[1] if record.exc_info else None
    if isinstance(fault, CLIENT_FAULTS) and record.levelno > logging.INFO:
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.msg, record.args = f"{record.getMessage()}: {fault!r}", None
        record.exc_info, record.exc_text = None, None
    return True


def quiet_client_faults() -> None:
    """Install the filters (idempotent; the gateway's ``create_app`` calls it)."""
    logging.getLogger("aiohttp.server").addFilter(_demote)
    # aiohttp then reads the part without the bad parameter (a field it names is missing).
    # Left on, each distinct warning is printed and kept in a registry that never shrinks:
    # a client could grow the gateway's memory at will.
    for bad in (multipart.BadContentDispositionHeader, multipart.BadContentDispositionParam):
        warnings.filterwarnings("ignore", category=bad)
