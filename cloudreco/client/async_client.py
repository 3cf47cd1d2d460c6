"""``AsyncClient``: the API over one aiohttp session (connections kept open and reused)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import aiohttp

from cloudreco.client import wire
from cloudreco.client.config import Connection
from cloudreco.client.models import (
    AddedImage,
    Channel,
    FindResult,
    Image,
    ImagesPage,
    Statistics,
)
from cloudreco.client.retry import Retry
from cloudreco.client.wire import Day, ImageSource, Metadata
from shared.codes import ResultCode

log = logging.getLogger("cloudreco.client")


class AsyncClient:
    """A client of one cloudreco service, for asyncio code.

    ``url``, ``username`` and ``secretkey`` default to ``CLOUDRECO_URL`` (else the local
    stack), ``CLOUDRECO_USERNAME`` and ``CLOUDRECO_SECRETKEY``. Every method raises the
    ``ApiError`` subclass of a non-zero result code; 20015 is first retried ``retries``
    times with exponential backoff from ``backoff`` seconds (capped at ``max_backoff``).
    ``connections`` bounds the requests in flight at once; ``timeout`` is each request's
    limit in seconds. Use it as ``async with AsyncClient() as client:``, or call ``close``.
    """

    def __init__(self, url: str | None = None, username: str | None = None,
                 secretkey: str | None = None, *, retries: int = 3, backoff: float = 0.5,
                 max_backoff: float = 8.0, timeout: float = 30.0,
                 connections: int = 10) -> None:
        self.connection = Connection.resolve(url, username, secretkey)
        self.retry = Retry(retries, backoff, max_backoff)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def add_image(self, channel: str, identifier: str, image: ImageSource, *,
                        metadata: Metadata = None) -> AddedImage:
        """AddImage: store and index a target (JPEG or PNG: bytes, a path or a binary file).
        ``metadata`` is a JSON text, or a dict or list to encode as one."""
        upload = await _load(image)
        body = await self._call(wire.add_image(channel, identifier, upload, metadata))
        return wire.read_added(body, channel, identifier)

    async def remove_image(self, channel: str, identifier: str) -> None:
        """RemoveImage: once this returns, no FindImage returns the image."""
        await self._call(wire.remove_image(channel, identifier))

    async def get_images(self, channel: str, position: int = 0) -> ImagesPage:
        """GetImages: the page of up to 100 images from ``position``, by identifier."""
        return wire.read_page(await self._call(wire.get_images(channel, position)), position)

    async def iter_images(self, channel: str) -> AsyncIterator[Image]:
        """Every image of the channel, by identifier, one GetImages page at a time. Pages are
        read by position: images added or removed meanwhile may shift one out or in twice."""
        position: int | None = 0
        while position is not None:
            page = await self.get_images(channel, position)
            for image in page.images:
                yield image
            position = page.next_position

    async def get_image(self, channel: str, identifier: str) -> Image:
        """GetImage: one image's identifier, metadata and level (credentials optional)."""
        return wire.read_image(await self._call(wire.get_image(channel, identifier)))

    async def get_original(self, channel: str, identifier: str, *,
                           max_side: int | None = None) -> bytes:
        """GetOriginal: the image's bytes exactly as uploaded (JPEG or PNG), or with
        ``max_side`` (16 to 4096) a JPEG thumbnail no larger on its long side. Raises
        ``NotFoundError`` 20024 for an image added before originals were kept."""
        return wire.read_original(await self._call(wire.get_original(channel, identifier,
                                                                     max_side)))

    async def statistics(self, start: Day, end: Day, *, channel: str | None = None,
                         identifier: str | None = None) -> Statistics:
        """Statistics: daily match counts from ``start`` to ``end`` inclusive (``yyyy``,
        ``yyyyMM``, ``yyyyMMdd`` or a date), per channel, or per identifier of ``channel``."""
        call = wire.statistics(start, end, channel, identifier)
        return wire.read_statistics(await self._call(call))

    async def find_image(self, image: ImageSource, *, channel: str | None = None
                         ) -> FindResult:
        """FindImage: which target of ``channel`` (default: of every channel the credentials
        may search) is in the photo."""
        upload = await _load(image)
        return wire.read_found(await self._call(wire.find_image(upload, channel)))

    async def get_channels(self) -> list[Channel]:
        """GetChannels (added by cloudreco): the user's channels by name, with their counts."""
        return wire.read_channels(await self._call(wire.get_channels()))

    async def set_metadata(self, channel: str, identifier: str, metadata: Metadata) -> None:
        """SetMetadata (added by cloudreco): replace an image's metadata (a JSON text, or a
        dict or list to encode as one); None leaves it none."""
        await self._call(wire.set_metadata(channel, identifier, metadata))

    async def _call(self, call: wire.Call) -> dict[str, Any]:
        attempts = 0
        while True:
            code, body = await self._post(call)
            attempts += 1
            if code == ResultCode.SUCCESS:
                return body
            if code != ResultCode.SYSTEM_BUSY or attempts > self.retry.retries:
                raise wire.error(code, body, attempts)
            delay = self.retry.delay(attempts - 1)
            log.info("%s: 20015 system busy; retry %d of %d in %.2f s", call.endpoint,
                     attempts, self.retry.retries, delay)
            await asyncio.sleep(delay)

    async def _post(self, call: wire.Call) -> tuple[int, dict[str, Any]]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=self._connections))
        data = wire.form(call, self.connection.credentials())
        async with self._session.post(self.connection.endpoint(call.endpoint),
                                      data=data) as resp:
            return wire.answer(resp.status, resp.content_type, await resp.read())


async def _load(image: ImageSource) -> wire.Upload:
    if isinstance(image, bytes):
        return wire.load(image)
    return await asyncio.to_thread(wire.load, image)
