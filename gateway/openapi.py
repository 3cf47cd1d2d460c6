"""The OpenAPI 3 description of the API, served at ``GET /openapi.json``.

Built from what the gateway enforces: the limits come from ``Settings`` and ``gateway.forms``,
the codes and messages from ``shared.codes``. ``tests/test_openapi.py`` checks it is valid
and that every route is described, and fuzzes the running stack against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from gateway.catalog import PAGE_SIZE, STATISTICS_PAGE
from gateway.forms import MAX_FIELD_BYTES, MAX_PARTS
from gateway.validate import IDENTIFIER, MAX_POSITION, MAX_SIDE, MIN_SIDE
from shared.codes import ResultCode as C
from shared.settings import Settings

Schema = dict[str, Any]

# Codes any endpoint may answer: reading the form, and the service being unable to answer.
_FORM = (C.MULTIPART_NEEDED, C.FIELD_MISSING, C.BAD_METADATA, C.BAD_FIELD, C.SYSTEM_BUSY)
_OWNER = (C.BAD_SECRET, C.AUTH_LIMITED, C.CHANNEL_NOT_FOUND, C.NOT_YOUR_CHANNEL)
_UPLOAD = (C.FILE_TOO_LARGE, C.BAD_IMAGE_FORMAT, C.FEATURES_INSUFFICIENT)


@dataclass(frozen=True)
class _Endpoint:
    name: str
    summary: str
    fields: dict[str, Schema]
    required: tuple[str, ...]
    success: dict[str, Schema]  # the fields a returncode 0 answer may carry
    codes: tuple[C, ...]
    takes_image: bool = False
    always: tuple[str, ...] = ()  # of ``success``, those every returncode 0 answer carries
    answers_image: bool = False  # success is the image itself; JSON only for failures


def describe(settings: Settings) -> Schema:
    """The whole description, for a gateway running with ``settings``."""
    paths: Schema = {f"/{e.name}": {"post": _operation(e)} for e in _endpoints(settings)}
    paths |= _probes()
    return {
        "openapi": "3.0.3",
        "info": {"title": "cloudreco: image cloud recognition API",
                 "version": version("cloudreco"), "description": _intro(settings),
                 "license": {"name": "Apache-2.0"}},
        "paths": paths,
        "components": {"schemas": {"Image": _IMAGE, "Corners": _CORNERS}},
    }


def _intro(settings: Settings) -> str:
    when = _WHEN | {
        C.MULTIPART_NEEDED: "the body is not multipart (nor urlencoded, where there is no "
                            "file), is malformed, claims a Content-Encoding, or did not all "
                            f"arrive within {settings.body_timeout:g} s",
        C.RATE_LIMITED: _rate_limit(settings), C.AUTH_LIMITED: _auth_limit(settings)}
    codes = "\n".join(f"| {int(c)} | `{c.message}` | {when.get(c, '')} |" for c in C)
    return (
        "Register target images in channels, then find them in phone photos.\n\n"
        "Every endpoint is `POST /<Name>` with `multipart/form-data` fields; those that take "
        "no file also accept `application/x-www-form-urlencoded`. Text fields are UTF-8, at "
        f"most {MAX_FIELD_BYTES // 1024} KiB each, with no NUL character; a form has at most "
        f"{MAX_PARTS} parts, and of a field sent twice the first counts. An image is a JPEG or "
        "PNG (recognised by its content, not its name or part type) of at most "
        f"{_limits(settings)}. Bodies are sent uncompressed (no Content-Encoding).\n\n"
        "Every answer is HTTP 200 with a JSON object whose `returncode` says what happened and "
        "`message` says it in words; other fields come only with returncode 0. An unknown path "
        "answers HTTP 404 and another method HTTP 405, both with returncode 20021.\n\n"
        "| returncode | message | when |\n|---|---|---|\n" + codes
    )


def _limits(settings: Settings) -> str:
    size = settings.max_image_bytes
    return (f"{size} bytes ({size / 2**20:.3g} MiB) and {settings.max_image_pixels} pixels "
            f"({settings.max_image_pixels / 1e6:.3g} MP)")


def _rate_limit(settings: Settings) -> str:
    if settings.find_rate_limit <= 0:
        return "the user sent too many FindImage requests in one second (no limit is set here)"
    return f"the user sent more than {settings.find_rate_limit:g} FindImage requests in a second"


def _auth_limit(settings: Settings) -> str:
    if settings.auth_failure_limit <= 0:
        return "too many failed authentications (no limit is set here)"
    return (f"the username or the client address failed {settings.auth_failure_limit} times "
            "in a minute (GetImage's anonymous lookups of a missing channel or image count)")


_WHEN: dict[C, str] = {
    C.BAD_SECRET: "unknown user or wrong secret key, or an app key on an endpoint other than "
                  "FindImage and GetImage",
    C.NOT_YOUR_CHANNEL: "the channel belongs to another user",

    C.FILE_TOO_LARGE: "the image is over the byte limit, or over the pixel limit by its header",
    C.BAD_IMAGE_FORMAT: "not a JPEG or PNG by content, or one that does not decode",
    C.BAD_IDENTIFIER: f"identifier outside `{IDENTIFIER.pattern}`",
    C.TOO_MANY_IMAGES: "the channel holds as many images as it may",
    C.FEATURES_INSUFFICIENT: "a target or photo with too few features to recognise",
    C.SYSTEM_BUSY: "a shard has no live replica, the matchers are full, Postgres or Redis is "
                   "unreachable, or the matchers did not answer in time: retry later",
    C.FIELD_MISSING: "a mandatory field is absent or empty (also `identifier` without "
                     "`channel` in Statistics)",
    C.BAD_METADATA: "metadata is not JSON, is over 64 KiB, is not UTF-8 or holds a NUL",
    C.BAD_DATE: "a date other than yyyy, yyyyMM or yyyyMMdd, or a start after the end",
    C.BAD_FIELD: "a bad `position`, a text field over 64 KiB, a text body over 1 MiB, a "
                 f"field not UTF-8 or holding a NUL, more than {MAX_PARTS} parts",
    C.NOT_FOUND: "no such endpoint (HTTP 404) or method (HTTP 405)",
    C.NO_ORIGINAL: "GetOriginal of an image added before originals were kept",
}


def _text(description: str) -> Schema:
    return {"type": "string", "minLength": 1, "maxLength": MAX_FIELD_BYTES,
            "description": description}


_USERNAME = _text("The user's name, or (FindImage and GetImage only) an app key's.")
_SECRET = _text("The user's secret key, or the app key's secret.")
_CHANNEL = _text("The channel's name.")
_LEVEL: Schema = {"type": "integer", "minimum": 1, "maximum": 5,
                  "description": "How reliably the image can be recognised, 1 (hard) to 5."}
_METADATA: Schema = {**_text("User-defined JSON text, kept and answered as sent."),
                     "example": '{"url": "https://example.com/poster"}'}
_IMAGE: Schema = {
    "type": "object", "additionalProperties": False,
    "required": ["identifier", "metadata", "level", "matchratio", "sha256"],
    "properties": {
        "identifier": {"type": "string"},
        "metadata": {"type": "string", "nullable": True},
        "level": _LEVEL,
        "matchratio": {"type": "number", "minimum": 0, "maximum": 1,
                       "description": "The image's share of all FindImage matches ever "
                                      "counted in the channel; 0 while there are none."},
        "sha256": {"type": "string", "nullable": True, "pattern": "^[0-9a-f]{64}$",
                   "description": "The SHA-256 (hex) of the image's original, which "
                                  "GetOriginal answers; null when none was kept."},
    },
}
_CORNERS: Schema = {
    "type": "array", "minItems": 4, "maxItems": 4,
    "description": "The target's (0,0), (w,0), (w,h), (0,h) in the photo's pixel coordinates.",
    "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}},
}
_CHANNEL_COUNTS: Schema = {
    "type": "object", "additionalProperties": False,
    "required": ["channel", "imagecount", "maximages"],
    "properties": {"channel": {"type": "string"},
                   "imagecount": {"type": "integer", "minimum": 0},
                   "maximages": {"type": "integer", "minimum": 1,
                                 "description": "The most images the channel may hold."}},
}
_DATE: Schema = {"type": "string", "pattern": "^[0-9]{4}([0-9]{2}([0-9]{2})?)?$",
                 "description": "yyyy, yyyyMM or yyyyMMdd (UTC); a year or month covers all "
                                "of it.", "example": "202601"}
_RECORD: Schema = {
    "type": "object", "additionalProperties": False, "required": ["date", "count"],
    "properties": {
        "date": {"type": "string", "pattern": "^[0-9]{8}$"},
        "channel": {"type": "string", "description": "Without channel in the request."},
        "identifier": {"type": "string", "description": "With channel in the request."},
        "count": {"type": "integer", "minimum": 1},
    },
}


def _endpoints(settings: Settings) -> list[_Endpoint]:
    owner = {"username": _USERNAME, "secretkey": _SECRET}
    image = {"type": "string", "format": "binary", "maxLength": settings.max_image_bytes,
             "description": f"A JPEG or PNG of at most {_limits(settings)}."}
    identifier = _text("The image's identifier in the channel.")
    return [
        _Endpoint(
            "AddImage", "Register a target image in a channel",
            {**owner, "channel": _CHANNEL,
             "identifier": {"type": "string", "pattern": f"^{IDENTIFIER.pattern}$",
                            "description": "User-defined ID, unique in the channel."},
             "metadata": _METADATA, "image": image},
            ("username", "secretkey", "channel", "identifier", "image"),
            {"level": _LEVEL}, (*_FORM, *_OWNER, *_UPLOAD, C.BAD_IDENTIFIER,
                                C.TOO_MANY_IMAGES, C.IDENTIFIER_TAKEN),
            takes_image=True, always=("level",)),
        _Endpoint(
            "RemoveImage", "Remove a target; no FindImage returns it once this answers 0",
            {**owner, "channel": _CHANNEL, "identifier": identifier},
            ("username", "secretkey", "channel", "identifier"),
            {}, (*_FORM, *_OWNER, C.IDENTIFIER_NOT_FOUND)),
        _Endpoint(
            "GetImages", f"A page of {PAGE_SIZE} of the channel's images, by identifier",
            {**owner, "channel": _CHANNEL,
             "position": {"type": "integer", "minimum": 0, "maximum": MAX_POSITION,
                          "description": "0-based index of the page's first image; "
                                         "default 0."}},
            ("username", "secretkey", "channel"),
            {"totalcount": {"type": "integer", "minimum": 0},
             "images": {"type": "array", "maxItems": PAGE_SIZE,
                        "items": {"$ref": "#/components/schemas/Image"}}},
            (*_FORM, *_OWNER), always=("totalcount", "images")),
        _Endpoint(
            "GetImage", "One image's metadata and level; credentials optional (checked if sent)",
            {"channel": _CHANNEL, "identifier": identifier, **owner},
            ("channel", "identifier"),
            {"identifier": {"type": "string"}, "metadata": {"type": "string"}, "level": _LEVEL},
            (*_FORM, *_OWNER, C.IDENTIFIER_NOT_FOUND), always=("identifier", "level")),
        _Endpoint(
            "Statistics", "Daily FindImage match counts, per channel or per identifier",
            {**owner, "startdate": _DATE, "enddate": _DATE,
             "channel": {**_CHANNEL, "description": "Count per identifier in this channel "
                                                    "instead of per channel."},
             "identifier": {**identifier, "description": "Only this image (needs channel)."},
             "position": {"type": "integer", "minimum": 0, "maximum": MAX_POSITION,
                          "description": "0-based index of the answer's first record; "
                                         "default 0."}},
            ("username", "secretkey", "startdate", "enddate"),
            {"username": {"type": "string"}, "channel": {"type": "string"},
             "records": {"type": "array", "maxItems": STATISTICS_PAGE, "items": _RECORD},
             "truncated": {"type": "boolean",
                           "description": "More records follow: ask again from `position` "
                                          f"+ {STATISTICS_PAGE}."}},
            (*_FORM, *_OWNER, C.BAD_DATE, C.IDENTIFIER_NOT_FOUND),
            always=("username", "records")),
        _Endpoint(
            "FindImage", "Which target of a channel, or of all the user's channels, a photo shows",
            {**owner, "image": image,
             "channel": {**_CHANNEL, "description": "Search this channel only; without it, "
                                                    "every channel of the user."}},
            ("username", "secretkey", "image"),
            {"identifier": {"type": "string"}, "channel": {"type": "string"},
             "metadata": {"type": "string"},
             "score": {"type": "number", "description": "Geometrically consistent matches."},
             "corners": {"$ref": "#/components/schemas/Corners"},
             "level": {**_LEVEL, "description": "The photo's own level; only without channel."}},
            (*_FORM, *_OWNER, *_UPLOAD, C.RATE_LIMITED), takes_image=True),
        _Endpoint(
            "GetOriginal", "An image as it was uploaded, or a JPEG thumbnail of it; the owner's "
                           "credentials only",
            {**owner, "channel": _CHANNEL, "identifier": identifier,
             "maxside": {"type": "integer", "minimum": MIN_SIDE, "maximum": MAX_SIDE,
                         "description": "Answer a JPEG thumbnail whose long side is at most "
                                        "this many pixels (never enlarged); without it, the "
                                        "original bytes with their own media type."}},
            ("username", "secretkey", "channel", "identifier"),
            {}, (*_FORM, *_OWNER, C.IDENTIFIER_NOT_FOUND, C.NO_ORIGINAL, C.FILE_TOO_LARGE,
                 C.BAD_IMAGE_FORMAT), answers_image=True),
        _Endpoint(
            "GetChannels", "The user's channels by name, with their image counts (added)",
            owner, ("username", "secretkey"),
            {"channels": {"type": "array", "items": _CHANNEL_COUNTS}},
            (*_FORM, C.BAD_SECRET, C.AUTH_LIMITED), always=("channels",)),
        _Endpoint(
            "SetMetadata", "Replace an image's metadata; without metadata it has none (added)",
            {**owner, "channel": _CHANNEL, "identifier": identifier, "metadata": _METADATA},
            ("username", "secretkey", "channel", "identifier"),
            {}, (*_FORM, *_OWNER, C.IDENTIFIER_NOT_FOUND)),
    ]


def _operation(e: _Endpoint) -> Schema:
    form: Schema = {"type": "object", "required": list(e.required), "properties": e.fields}
    content: Schema = {"multipart/form-data": {"schema": form}}
    if e.takes_image:
        content["multipart/form-data"]["encoding"] = {
            "image": {"contentType": "image/jpeg, image/png, application/octet-stream"}}
    else:
        content["application/x-www-form-urlencoded"] = {"schema": form}
    answer = (_image_or_failure(e.codes) if e.answers_image else
              _answer("The outcome, by returncode.", _outcome(e.codes, e.success, e.always)))
    return {
        "operationId": e.name, "summary": e.summary,
        "requestBody": {"required": True, "content": content},
        "responses": {"200": answer},
    }


def _image_or_failure(codes: tuple[C, ...]) -> Schema:
    """An answer that is the image itself on success, and a JSON refusal otherwise."""
    image: Schema = {"schema": {"type": "string", "format": "binary"}}
    failure = _answer("", _result(codes, {}, ()))["content"]
    return {"description": "The image (JPEG or PNG as uploaded; JPEG with `maxside`), or "
                           "a refusal as JSON, by returncode.",
            "content": {"image/jpeg": image, "image/png": image, **failure}}


def _outcome(codes: tuple[C, ...], success: dict[str, Schema], always: tuple[str, ...]
             ) -> Schema:
    """Either success with its fields, or one of ``codes`` alone."""
    return {"oneOf": [_result((C.SUCCESS,), success, always), _result(codes, {}, ())]}


def _result(codes: tuple[C, ...], fields: dict[str, Schema], always: tuple[str, ...]
            ) -> Schema:
    listing = "; ".join(f"{int(c)}: {c.message}" for c in codes)
    return {
        "type": "object", "additionalProperties": False,
        "required": ["returncode", "message", *always],
        "properties": {
            "returncode": {"type": "integer", "enum": [int(c) for c in codes],
                           "description": listing},
            "message": {"type": "string", "enum": [c.message for c in codes]},
            **fields,
        },
    }


def _answer(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _probes() -> Schema:
    replicas: Schema = {"type": "array", "items": {"type": "integer", "minimum": 0},
                        "description": "Live replicas of each shard."}
    ready = {"200": _answer("Postgres and Redis answer and every shard has a live replica.",
                            _result((C.SUCCESS,), {"replicas": replicas}, ("replicas",))),
             "503": _answer("Not ready; `reasons` says what is missing.",
                            _result((C.SYSTEM_BUSY,),
                                    {"replicas": replicas,
                                     "reasons": {"type": "array", "items": {"type": "string"}}},
                                    ("replicas", "reasons")))}
    return {
        "/healthz": {"get": {"operationId": "healthz", "summary": "Liveness: the gateway serves",
                             "responses": {"200": _answer("Serving.",
                                                          _result((C.SUCCESS,), {}, ()))}}},
        "/readyz": {"get": {"operationId": "readyz", "summary": "Readiness of the whole stack",
                            "responses": ready}},
        "/health": {"get": {"operationId": "health", "summary": "The same as /readyz",
                            "responses": ready}},
        "/metrics": {"get": {"operationId": "metrics",
                             "summary": "Prometheus metrics of this gateway and the cluster",
                             "responses": {"200": {
                                 "description": "Prometheus text exposition format.",
                                 "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This description",
                                  "responses": {"200": _answer("OpenAPI 3.0 document.",
                                                               {"type": "object"})}}},
    }
