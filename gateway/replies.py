"""The wire format of every answer: HTTP 200 (unless the endpoint itself is unknown), JSON,
``returncode`` and ``message`` first; or, from GetOriginal alone, an image as itself. Every
handler and error path answers through here."""

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


class Answer(web.Response):
    """An answer of the API, which keeps its result code for the access log and metrics."""

    returncode: ResultCode


class RawJson(str):
    """A field's value that is JSON text already (written by Postgres), placed into an
    answer as it is."""


class Reply(Answer):
    """A JSON answer."""

    def __init__(self, code: ResultCode, body: dict[str, Any], status: int) -> None:
        super().__init__(text=_json(body), status=status, content_type="application/json")
        self.returncode = code


def _json(body: dict[str, Any]) -> str:
    if not any(isinstance(v, RawJson) for v in body.values()):
        return json.dumps(body)
    fields = (f"{json.dumps(k)}: {v if isinstance(v, RawJson) else json.dumps(v)}"
              for k, v in body.items())
    return "{" + ", ".join(fields) + "}"


# Headers of an image answered as itself: a browser shows it only as the image it says it
# is (an upload is checked to be a JPEG or PNG, but may carry anything after its end).
_IMAGE_HEADERS = {"X-Content-Type-Options": "nosniff",
                  "Content-Security-Policy": "default-src 'none'; sandbox"}


class ImageReply(Answer):
    """An image answered as itself: HTTP 200, its own media type, result code 0."""

    def __init__(self, data: bytes, media_type: str) -> None:
        super().__init__(body=data, content_type=media_type, headers=_IMAGE_HEADERS)
        self.returncode = ResultCode.SUCCESS


def reply(code: ResultCode = ResultCode.SUCCESS, *, status: int = 200,
          **fields: Any) -> Reply:
    """``{"returncode": code, "message": ..., **fields}`` as JSON; None fields are left out."""
    body = {"returncode": int(code), "message": code.message}
    body.update({k: v for k, v in fields.items() if v is not None})
    return Reply(code, body, status)
