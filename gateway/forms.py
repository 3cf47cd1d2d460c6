"""Reading request fields, multipart or urlencoded, with every size bounded while it streams."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, StreamReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import RequestPayloadError

from gateway.replies import ApiError, ClientGone
from shared.codes import ResultCode
from shared.imageformat import sniff

log = logging.getLogger(__name__)

# metadata may be 64 KiB; no other text field comes near that.
MAX_FIELD_BYTES = 64 * 1024
# A form has a handful of fields; more is a malformed or hostile request.
MAX_PARTS = 32
# Room for the non-image fields and multipart framing beside the image.
FORM_OVERHEAD = 16 * MAX_FIELD_BYTES
CHUNK = 64 * 1024
# For the app's request handlers: bodies are read as sent, aiohttp decompressing none, and
# one that claims a Content-Encoding is refused (20005). No form needs compressing (images
# are compressed already), nothing then inflates past what was sent, and a short deflate
# body cannot leave its request waiting for data that never comes (aiohttp 3.14 raises that
# error where the request never sees it; a broken chunked body waits for body_timeout).
SERVER_OPTIONS = {"auto_decompress": False}


@dataclass
class Form:
    """The fields of one request; ``image`` holds the uploaded file when there is one."""

    fields: dict[str, str] = field(default_factory=dict)
    image: bytes | None = None

    def required(self, name: str) -> str:
        value = self.fields.get(name, "")
        if not value:
            raise ApiError(ResultCode.FIELD_MISSING)
        return value

    def optional(self, name: str) -> str | None:
        return self.fields.get(name) or None

    def required_image(self) -> bytes:
        if not self.image:
            raise ApiError(ResultCode.FIELD_MISSING)
        if sniff(self.image[:16]) is None:
            raise ApiError(ResultCode.BAD_IMAGE_FORMAT)
        return self.image


async def read_form(request: web.Request, *, takes_image: bool, max_image_bytes: int,
                    body_timeout: float) -> Form:
    """Parse the request body into a Form.

    Endpoints that take an image accept only multipart (20005); the others accept urlencoded
    too. An image larger than ``max_image_bytes`` is refused (20006) as soon as that many
    bytes have arrived, never after buffering the rest; a body not all there within
    ``body_timeout`` seconds is refused (20005).
    """
    if request.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        raise ApiError(ResultCode.MULTIPART_NEEDED)
    limit = max_image_bytes + FORM_OVERHEAD if takes_image else FORM_OVERHEAD
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(ResultCode.FILE_TOO_LARGE if takes_image else ResultCode.BAD_FIELD)
    try:
        async with asyncio.timeout(body_timeout):
            return await _read(request, takes_image, max_image_bytes)
    except TimeoutError as e:
        log.info("%s %s: the body did not arrive within %.0f s", request.method, request.path,
                 body_timeout)
        raise ApiError(ResultCode.MULTIPART_NEEDED) from e
    except ConnectionResetError as e:
        raise ClientGone from e
    except RequestPayloadError as e:  # the body's framing is broken (chunked encoding)
        raise ApiError(ResultCode.MULTIPART_NEEDED) from e


def _media_type(request: web.Request) -> str:
    """The Content-Type's media type, lower case, without its parameters. aiohttp's
    ``request.content_type`` runs the header through the standard library's email parser,
    which took an eighth of a gateway's CPU with 64 load-test users."""
    return request.headers.get(hdrs.CONTENT_TYPE, "").partition(";")[0].strip().lower()


async def _read(request: web.Request, takes_image: bool, max_image_bytes: int) -> Form:
    ctype = _media_type(request)
    if ctype == "multipart/form-data":
        try:
            return await _read_multipart(request, takes_image, max_image_bytes)
        # Framing. A part named `_charset_` (RFC 7578's default charset) is one too: aiohttp
        # raises RuntimeError when it is over 31 bytes, and cannot read the part after it.
        except (ValueError, AssertionError, LookupError, RuntimeError,
                HttpProcessingError) as e:
            raise ApiError(ResultCode.MULTIPART_NEEDED) from e
    if ctype == "application/x-www-form-urlencoded" and not takes_image:
        body = await _read_limited(request.content, FORM_OVERHEAD, ResultCode.BAD_FIELD)
        try:
            # surrogateescape keeps bytes that are not UTF-8 for _text to refuse by field
            pairs = parse_qsl(body.decode("utf-8", "surrogateescape"), keep_blank_values=True,
                              errors="surrogateescape", max_num_fields=MAX_PARTS)
        except ValueError as e:  # more than MAX_PARTS fields
            raise ApiError(ResultCode.BAD_FIELD) from e
        form = Form()
        for name, value in pairs:
            form.fields.setdefault(name, _text(name, value.encode("utf-8", "surrogateescape")))
        return form
    raise ApiError(ResultCode.MULTIPART_NEEDED)


async def _read_multipart(request: web.Request, takes_image: bool, max_image_bytes: int
                          ) -> Form:
    reader = await request.multipart()
    form = Form()
    parts = 0
    while (part := await reader.next()) is not None:
        parts += 1
        if parts > MAX_PARTS:
            raise ApiError(ResultCode.BAD_FIELD)
        if not isinstance(part, BodyPartReader):  # nested multipart
            raise ApiError(ResultCode.MULTIPART_NEEDED)
        name = part.name or ""
        if name == "image" and takes_image:
            data = await _read_limited(part, max_image_bytes, ResultCode.FILE_TOO_LARGE)
            if form.image is None:
                form.image = data
            continue
        raw = await _read_limited(part, MAX_FIELD_BYTES, _over(name))
        form.fields.setdefault(name, _text(name, raw))
    return form


def _over(name: str) -> ResultCode:
    """The code of a field ``name`` that breaks the rules of text fields."""
    return ResultCode.BAD_METADATA if name == "metadata" else ResultCode.BAD_FIELD


def _text(name: str, raw: bytes) -> str:
    """A text field's value: UTF-8, at most MAX_FIELD_BYTES, without NUL (Postgres text
    cannot hold it, and no field needs it). Every occurrence of a name is checked, though
    only the first counts."""
    if len(raw) > MAX_FIELD_BYTES or b"\x00" in raw:
        raise ApiError(_over(name))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(_over(name)) from e


async def _read_limited(source: BodyPartReader | StreamReader, limit: int,
                        over: ResultCode) -> bytes:
    """Read ``source`` to its end, failing with ``over`` once more than ``limit`` bytes came."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if isinstance(source, BodyPartReader):
            chunk = await source.read_chunk(CHUNK)
        else:
            chunk = await source.read(CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ApiError(over)
        chunks.append(chunk)

