"""The API's wire format, client side: each endpoint's fields, the multipart body, and the
JSON answers read into ``models``. Nothing else in the client knows a field name."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

from cloudreco.client.errors import ApiError, ProtocolError, error_for
from cloudreco.client.models import (
    AddedImage,
    Channel,
    DailyCount,
    FindResult,
    Image,
    ImagesPage,
    Match,
    Statistics,
)
from shared.imageformat import sniff

# What an image argument may be: its bytes, a path, or an open binary file.
ImageSource = bytes | str | os.PathLike[str] | IO[bytes]
# Metadata: a JSON text sent as it is, or a value this client encodes as JSON.
Metadata = str | dict[str, Any] | list[Any] | None
# A Statistics bound: "yyyy", "yyyyMM", "yyyyMMdd", or a day.
Day = str | dt.date


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str


@dataclass(frozen=True)
class Call:
    """One request: ``POST /<endpoint>`` with these fields (None ones left out)."""

    endpoint: str
    fields: dict[str, str | None] = field(default_factory=dict)
    image: Upload | None = None


def load(source: ImageSource) -> Upload:
    """The bytes of an image argument (reads a path or a file: call it off the event loop)."""
    if isinstance(source, bytes):
        return Upload(source, "image")
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        return Upload(path.read_bytes(), path.name)
    return Upload(source.read(), Path(getattr(source, "name", "image")).name)


def form(call: Call, credentials: dict[str, str]) -> aiohttp.FormData:
    """The multipart body of ``call``; every endpoint accepts multipart."""
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in {**credentials, **call.fields}.items():
        if value is not None:
            data.add_field(name, value)
    if call.image is not None:
        kind = sniff(call.image.data[:16])
        # A stream, not bytes: aiohttp warns about large bytes bodies, and a retry needs a
        # fresh body.
        data.add_field("image", io.BytesIO(call.image.data), filename=call.image.filename,
                       content_type=f"image/{kind}" if kind else "application/octet-stream")
    return data


def answer(status: int, content_type: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    """(returncode, body) of an answer; ProtocolError when it is not the API's JSON. An image
    answered as itself (GetOriginal) is a success whose body holds it under ``image``."""
    if status == 200 and content_type.startswith("image/"):
        return 0, {"image": raw}
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("returncode"), int):
        raise ProtocolError(status, text)
    return body["returncode"], body


def error(code: int, body: dict[str, Any], attempts: int) -> ApiError:
    """The ApiError of a refusal."""
    return error_for(code, str(body.get("message", "")), attempts)


def metadata_text(metadata: Metadata) -> str | None:
    return metadata if metadata is None or isinstance(metadata, str) else json.dumps(metadata)


def day_text(day: Day) -> str:
    return day.strftime("%Y%m%d") if isinstance(day, dt.date) else day


def add_image(channel: str, identifier: str, image: Upload, metadata: Metadata) -> Call:
    return Call("AddImage", {"channel": channel, "identifier": identifier,
                             "metadata": metadata_text(metadata)}, image)


def remove_image(channel: str, identifier: str) -> Call:
    return Call("RemoveImage", {"channel": channel, "identifier": identifier})


def get_images(channel: str, position: int) -> Call:
    return Call("GetImages", {"channel": channel, "position": str(position)})


def get_image(channel: str, identifier: str) -> Call:
    return Call("GetImage", {"channel": channel, "identifier": identifier})


def statistics(start: Day, end: Day, channel: str | None, identifier: str | None) -> Call:
    return Call("Statistics", {"startdate": day_text(start), "enddate": day_text(end),
                               "channel": channel, "identifier": identifier})


def find_image(image: Upload, channel: str | None) -> Call:
    return Call("FindImage", {"channel": channel}, image)


def get_channels() -> Call:
    return Call("GetChannels")


def set_metadata(channel: str, identifier: str, metadata: Metadata) -> Call:
    return Call("SetMetadata", {"channel": channel, "identifier": identifier,
                                "metadata": metadata_text(metadata)})


def get_original(channel: str, identifier: str, max_side: int | None) -> Call:
    return Call("GetOriginal", {"channel": channel, "identifier": identifier,
                                "maxside": None if max_side is None else str(max_side)})


def read_original(body: dict[str, Any]) -> bytes:
    image: bytes = body["image"]
    return image


def read_added(body: dict[str, Any], channel: str, identifier: str) -> AddedImage:
    return AddedImage(channel, identifier, int(body["level"]))


def read_image(body: dict[str, Any]) -> Image:
    ratio = body.get("matchratio")
    return Image(identifier=body["identifier"], metadata=body.get("metadata"),
                 level=body.get("level"), matchratio=None if ratio is None else float(ratio),
                 sha256=body.get("sha256"))


def read_page(body: dict[str, Any], position: int) -> ImagesPage:
    return ImagesPage(position, int(body["totalcount"]), [read_image(i) for i in body["images"]])


def read_statistics(body: dict[str, Any]) -> Statistics:
    records = [DailyCount(dt.datetime.strptime(r["date"], "%Y%m%d").date(), int(r["count"]),
                          channel=r.get("channel"), identifier=r.get("identifier"))
               for r in body["records"]]
    return Statistics(body["username"], body.get("channel"), records)


def read_channels(body: dict[str, Any]) -> list[Channel]:
    return [Channel(c["channel"], int(c["imagecount"]), int(c["maximages"]))
            for c in body["channels"]]


def read_found(body: dict[str, Any]) -> FindResult:
    level = body.get("level")
    if "identifier" not in body:
        return FindResult(None, level)
    match = Match(identifier=body["identifier"], channel=body["channel"],
                  metadata=body.get("metadata"), score=float(body["score"]),
                  corners=[(float(x), float(y)) for x, y in body["corners"]])
    return FindResult(match, level)
