"""The wire format of every answer: HTTP 200 (unless the endpoint itself is unknown), JSON,
``returncode`` and ``message`` first. Every handler and error path answers through here."""

from __future__ import annotations

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


def reply(code: ResultCode = ResultCode.SUCCESS, *, status: int = 200,
          **fields: Any) -> web.Response:
    """``{"returncode": code, "message": ..., **fields}`` as JSON; None fields are left out."""
    body = {"returncode": int(code), "message": code.message}
    body.update({k: v for k, v in fields.items() if v is not None})
    return web.json_response(body, status=status)
