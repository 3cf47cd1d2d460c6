"""``Client``: the same API for blocking code, driving an ``AsyncClient`` on a private event
loop (so its connections are kept open and reused between calls)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from types import TracebackType
from typing import Any, TypeVar

from cloudreco.client.async_client import AsyncClient
from cloudreco.client.config import Connection
from cloudreco.client.models import (
    AddedImage,
    Channel,
    FindResult,
    Image,
    ImagesPage,
    Statistics,
)
from cloudreco.client.wire import Day, ImageSource, Metadata

T = TypeVar("T")


class Client:
    """A blocking client; takes ``AsyncClient``'s arguments and has its methods.

    One thread at a time, and not from inside a running event loop (use ``AsyncClient``
    there). Use it as ``with Client() as client:``, or call ``close``.
    """

    def __init__(self, url: str | None = None, username: str | None = None,
                 secretkey: str | None = None, *, retries: int = 3, backoff: float = 0.5,
                 max_backoff: float = 8.0, timeout: float = 30.0,
                 connections: int = 10) -> None:
        self._client = AsyncClient(url, username, secretkey, retries=retries, backoff=backoff,
                                   max_backoff=max_backoff, timeout=timeout,
                                   connections=connections)
        self._runner = asyncio.Runner()

    @property
    def connection(self) -> Connection:
        return self._client.connection

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._run(self._client.close())
        self._runner.close()

    def add_image(self, channel: str, identifier: str, image: ImageSource, *,
                  metadata: Metadata = None) -> AddedImage:
        """See ``AsyncClient.add_image``."""
        return self._run(self._client.add_image(channel, identifier, image, metadata=metadata))

    def remove_image(self, channel: str, identifier: str) -> None:
        """See ``AsyncClient.remove_image``."""
        self._run(self._client.remove_image(channel, identifier))

    def get_images(self, channel: str, position: int = 0) -> ImagesPage:
        """See ``AsyncClient.get_images``."""
        return self._run(self._client.get_images(channel, position))

    def iter_images(self, channel: str) -> Iterator[Image]:
        """See ``AsyncClient.iter_images``."""
        position: int | None = 0
        while position is not None:
            page = self.get_images(channel, position)
            yield from page.images
            position = page.next_position

    def get_image(self, channel: str, identifier: str) -> Image:
        """See ``AsyncClient.get_image``."""
        return self._run(self._client.get_image(channel, identifier))

    def get_original(self, channel: str, identifier: str, *,
                     max_side: int | None = None) -> bytes:
        """See ``AsyncClient.get_original``."""
        return self._run(self._client.get_original(channel, identifier, max_side=max_side))

    def statistics(self, start: Day, end: Day, *, channel: str | None = None,
                   identifier: str | None = None) -> Statistics:
        """See ``AsyncClient.statistics``."""
        return self._run(self._client.statistics(start, end, channel=channel,
                                                 identifier=identifier))

    def find_image(self, image: ImageSource, *, channel: str | None = None) -> FindResult:
        """See ``AsyncClient.find_image``."""
        return self._run(self._client.find_image(image, channel=channel))

    def get_channels(self) -> list[Channel]:
        """See ``AsyncClient.get_channels``."""
        return self._run(self._client.get_channels())

    def set_metadata(self, channel: str, identifier: str, metadata: Metadata) -> None:
        """See ``AsyncClient.set_metadata``."""
        self._run(self._client.set_metadata(channel, identifier, metadata))

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(work)
