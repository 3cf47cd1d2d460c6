"""What the endpoints answer, as typed values."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class AddedImage:
    """AddImage's answer: the target is stored and indexed, at ``level`` 1 (hard to
    recognise) to 5 (easy)."""

    channel: str
    identifier: str
    level: int


@dataclass(frozen=True)
class Channel:
    """One of the user's channels (GetChannels): its name, the images it holds and the most
    it may hold."""

    name: str
    image_count: int
    max_images: int


@dataclass(frozen=True)
class Image:
    """A target of a channel. ``metadata`` is the JSON text given at AddImage, if any;
    ``matchratio`` (GetImages only) is its share of the channel's matches, 0 to 1;
    ``sha256`` (GetImages only) the hex SHA-256 of its original, None when none was kept."""

    identifier: str
    metadata: str | None
    level: int | None = None
    matchratio: float | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ImagesPage:
    """One GetImages page (up to 100 images from ``position``, ordered by identifier) and the
    channel's ``totalcount``."""

    position: int
    totalcount: int
    images: list[Image]

    @property
    def next_position(self) -> int | None:
        """Where the next page starts, or None after the last."""
        end = self.position + len(self.images)
        return end if self.images and end < self.totalcount else None


@dataclass(frozen=True)
class Match:
    """The target FindImage found: ``score`` is its count of geometrically consistent
    feature matches; ``corners`` are the target's (0,0), (w,0), (w,h), (0,h) in the photo."""

    identifier: str
    channel: str
    metadata: str | None
    score: float
    corners: list[tuple[float, float]]


@dataclass(frozen=True)
class FindResult:
    """FindImage's answer: the ``match`` (None when no target is in the photo), and the
    photo's ``level`` when no channel was named."""

    match: Match | None
    level: int | None = None


@dataclass(frozen=True)
class DailyCount:
    """Matches on one day (UTC) of a ``channel`` (Statistics without a channel) or of an
    ``identifier`` (with one)."""

    date: dt.date
    count: int
    channel: str | None = None
    identifier: str | None = None


@dataclass(frozen=True)
class Statistics:
    """Statistics' answer: daily counts ordered by date, then name."""

    username: str
    channel: str | None
    records: list[DailyCount]
