"""Reading request fields, multipart or urlencoded, with every size bounded while it streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, StreamReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.replies import ApiError, ClientGone
from shared.codes import ResultCode
from shared.imageformat import sniff

# metadata may be 64 KiB; no other text field comes near that.
MAX_FIELD_BYTES = 64 * 1024
# A form has a handful of fields; more is a malformed or hostile request.
MAX_PARTS = 32
# Room for the non-image fields and multipart framing beside the image.
FORM_OVERHEAD = 16 * MAX_FIELD_BYTES
CHUNK = 64 * 1024


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


async def read_form(request: web.Request, *, takes_image: bool, max_image_bytes: int) -> Form:
    """Parse the request body into a Form.

    Endpoints that take an image accept only multipart (20005); the others accept urlencoded
    too. An image larger than ``max_image_bytes`` is refused (20006) as soon as that many
    bytes have arrived, never after buffering the rest.
    """
    limit = max_image_bytes + FORM_OVERHEAD if takes_image else FORM_OVERHEAD
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(ResultCode.FILE_TOO_LARGE if takes_image else ResultCode.BAD_FIELD)
    try:
        form = await _read(request, takes_image, max_image_bytes)
    except ConnectionResetError as e:
        raise ClientGone from e
    for name, value in form.fields.items():
        if "\x00" in value:  # Postgres text cannot hold NUL, and no field needs it
            raise ApiError(ResultCode.BAD_METADATA if name == "metadata" else ResultCode.BAD_FIELD)
    return form


def _media_type(request: web.Request) -> str:
    """The Content-Type's media type, lower case, without its parameters. aiohttp's
    ``request.content_type`` runs the header through the standard library's email parser,
    which took an eighth of a gateway's CPU with 64 load-test users."""
    return request.headers.get(hdrs.CONTENT_TYPE, "").partition(";")[0].strip().lower()


async def _read(request: web.Request, takes_image: bool, max_image_bytes: int) -> Form:
    ctype = _media_type(request)
    if ctype == "multipart/form-data":
        try:
            return await _read_multipart(request, max_image_bytes)
        except (ValueError, AssertionError, LookupError, HttpProcessingError) as e:  # framing
            raise ApiError(ResultCode.MULTIPART_NEEDED) from e
    if ctype == "application/x-www-form-urlencoded" and not takes_image:
        body = await _read_limited(request.content, FORM_OVERHEAD, ResultCode.BAD_FIELD)
        try:
            pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError as e:
            raise ApiError(ResultCode.BAD_FIELD) from e
        form = Form()
        for name, value in pairs:
            form.fields.setdefault(name, value)
        _check_field_sizes(form)
        return form
    raise ApiError(ResultCode.MULTIPART_NEEDED)


async def _read_multipart(request: web.Request, max_image_bytes: int) -> Form:
    reader = await request.multipart()
    form = Form()
    for _ in range(MAX_PARTS):
        part = await reader.next()
        if part is None:
            return form
        if not isinstance(part, BodyPartReader):  # nested multipart
            raise ApiError(ResultCode.MULTIPART_NEEDED)
        name = part.name or ""
        if name == "image":
            data = await _read_limited(part, max_image_bytes, ResultCode.FILE_TOO_LARGE)
            if form.image is None:
                form.image = data
            continue
        over = ResultCode.BAD_METADATA if name == "metadata" else ResultCode.BAD_FIELD
        raw = await _read_limited(part, MAX_FIELD_BYTES, over)
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ApiError(over) from e
        form.fields.setdefault(name, value)
    raise ApiError(ResultCode.BAD_FIELD)


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


def _check_field_sizes(form: Form) -> None:
    for name, value in form.fields.items():
        if len(value.encode()) > MAX_FIELD_BYTES:
            raise ApiError(ResultCode.BAD_METADATA if name == "metadata" else ResultCode.BAD_FIELD)
