"""The wire format of every answer: HTTP 200 (unless the endpoint itself is unknown), JSON,
``returncode`` and ``message`` first. Every handler and error path answers through here."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from shared.codes import ResultCode


class ApiError(Exception):
    """Raised anywhere in a request to answer ``code`` with no other fields."""

    def __init__(self, code: ResultCode) -> None:
        super().__init__(code.message)
        self.code = code


class ClientGone(ApiError):
    """The client closed the connection before its request was read: nobody to answer."""

    def __init__(self) -> None:
        super().__init__(ResultCode.BAD_FIELD)


class Reply(web.Response):
    """An answer of the API, which keeps its result code for the access log and metrics."""

    def __init__(self, code: ResultCode, body: dict[str, Any], status: int) -> None:
        super().__init__(text=json.dumps(body), status=status, content_type="application/json")
        self.returncode = code


def reply(code: ResultCode = ResultCode.SUCCESS, *, status: int = 200,
          **fields: Any) -> Reply:
    """``{"returncode": code, "message": ..., **fields}`` as JSON; None fields are left out."""
    body = {"returncode": int(code), "message": code.message}
    body.update({k: v for k, v in fields.items() if v is not None})
    return Reply(code, body, status)
