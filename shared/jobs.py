"""The job contract between gateway and matchers: queue names, job names, payloads, encoding.

Payloads are dataclasses sent as msgpack maps carrying a wire version; nothing is pickled.
Each job's payload carries ``request_id``, the id of the HTTP request it serves, so that the
matcher's log lines of the job carry it too (``shared/logs.py``).
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any, Self

import msgpack

# 2: extract_query searches the extracting shard too; 3: features on request; 4: deadlines,
# log positions, no remove job (replicas follow the shard's change log); 5: request ids
WIRE_VERSION = 5
EXTRACT_QUEUE = "cloudreco:extract"


def shard_queue(shard: int) -> str:
    """The arq queue of searches that any replica of shard ``shard`` serves."""
    return f"cloudreco:shard:{shard}"


def add_queue(shard: int) -> str:
    """The arq queue of AddImage jobs of shard ``shard``. Apart from searches, and extracted
    ``Settings.add_jobs`` at a time per replica, so that a bulk import cannot starve
    FindImage."""
    return f"cloudreco:shard:{shard}:add"


def replicas_key(shard: int) -> str:
    """A sorted set of the shard's live replicas, each scored by when its liveness lapses
    (ms since the epoch). A replica joins once its indexes are loaded and its workers run,
    refreshes its entry every ``HEARTBEAT`` and leaves when it stops."""
    return f"cloudreco:replicas:{shard}"


def owner_key(job_id: str) -> str:
    """Which replica (``shard/replica``) took a job: the gateway retries a job whose replica
    died instead of waiting out its deadline."""
    return f"cloudreco:owner:{job_id}"


class JobName(StrEnum):
    EXTRACT_QUERY = "extract_query"
    ADD_IMAGE = "add_image"
    SEARCH = "search"


class WireError(ValueError):
    """A payload of another wire version or shape than this code speaks."""


class Wire:
    """Mixin for payload dataclasses: ``to_wire`` / ``from_wire`` with a version check."""

    def to_wire(self) -> dict[str, Any]:
        assert dataclasses.is_dataclass(self)
        return {"v": WIRE_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_wire(cls, data: object) -> Self:
        if not isinstance(data, dict) or data.get("v") != WIRE_VERSION:
            raise WireError(f"{cls.__name__}: expected wire version {WIRE_VERSION}")
        assert dataclasses.is_dataclass(cls)
        try:  # a field with a default may be missing: it was added after the version
            return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)
                          if f.name in data or not _has_default(f)})
        except KeyError as e:
            raise WireError(f"{cls.__name__}: missing {e}") from e


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


@dataclasses.dataclass(frozen=True)
class ExtractQuery(Wire):
    """A query photo, for whichever matcher is free: it extracts the features and searches
    its own shard's ``channel_ids``, so the other shards only get the features."""

    image: bytes
    channel_ids: list[int]
    # Whether to send the features back (other shards need them; with one shard, nobody).
    want_features: bool
    # Each shard's change-log head when the request came in: the index searched must reflect it.
    positions: list[int]
    deadline: float  # wall-clock time (epoch seconds) after which nobody waits for the answer
    request_id: str = ""


@dataclasses.dataclass(frozen=True)
class AddImage(Wire):
    channel_id: int
    identifier: str
    metadata: str | None
    shard: int
    image: bytes
    deadline: float
    request_id: str = ""


@dataclasses.dataclass(frozen=True)
class AddResult(Wire):
    code: int
    level: int = 0
    image_id: int = 0


@dataclasses.dataclass(frozen=True)
class Search(Wire):
    channel_ids: list[int]
    features: bytes
    position: int  # the shard's change-log head when the request came in
    deadline: float
    request_id: str = ""


@dataclasses.dataclass(frozen=True)
class Found(Wire):
    image_id: int
    channel_id: int
    score: float
    corners: list[list[float]]
    centred: bool = False  # the target's outline holds the photo's centre (see answer_order)


def answer_order(m: Found) -> tuple[bool, float]:
    """Sort key of matches, best first: the targets the photo is centred on (their outline
    holds its centre), then by score. A photo of one cover lying beside another answers the
    one it is aimed at, even when the other gives more inliers."""
    return (not m.centred, -m.score)


@dataclasses.dataclass(frozen=True)
class SearchResult(Wire):
    matches: list[dict[str, Any]]

    def found(self) -> list[Found]:
        return [Found.from_wire(m) for m in self.matches]


@dataclasses.dataclass(frozen=True)
class ExtractResult(Wire):
    """The photo's level and features, and the matches in the extracting ``shard``."""

    code: int
    level: int = 0
    features: bytes = b""
    shard: int = -1
    matches: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def found(self) -> list[Found]:
        return [Found.from_wire(m) for m in self.matches]


def reply_key(job_id: str) -> str:
    """The list a job's reply is pushed to. The gateway blocks on it (BLPOP) instead of
    polling arq for results: it wakes the moment the reply lands."""
    return f"cloudreco:reply:{job_id}"


def doorbell_key(queue: str) -> str:
    """The list the gateway pushes to after enqueuing on ``queue``. Idle workers of the queue
    block on it (BLPOP) instead of polling arq's queue on a timer: they wake the moment a job
    lands, and an idle stack costs no CPU."""
    return f"{queue}:doorbell"


# Rings a doorbell keeps when nobody answers (a burst of jobs needs one ring to be noticed).
DOORBELL_DEPTH = 64


@dataclasses.dataclass(frozen=True)
class Reply(Wire):
    """What a job pushes to its reply list: its result, or the text of its failure."""

    ok: bool
    result: Any = None
    error: str = ""


def _fallback(obj: object) -> object:
    # A failed job's result is an exception: send its text, the gateway only logs it.
    return repr(obj)


def pack(data: object) -> bytes:
    packed: bytes = msgpack.packb(data, use_bin_type=True, default=_fallback)
    return packed


def unpack(raw: bytes) -> Any:
    return msgpack.unpackb(raw, raw=False)


def serialize(data: dict[str, Any]) -> bytes:
    """arq serializer. Result records drop the job's arguments: they may hold a 2 MiB photo."""
    if "s" in data:
        data = {**data, "a": (), "k": {}}
    return pack(data)


class Payload(dict[str, Any]):
    """A job's payload as a worker receives it. arq logs each job it starts with its
    arguments' repr, cut to 80 characters only after it is made: for a photo or a catalog
    image that is megabytes of text on every job. This repr names the fields."""

    def __repr__(self) -> str:
        return f"<{', '.join(self)}>"


def deserialize(raw: bytes) -> dict[str, Any]:
    """arq deserializer: a job's map arguments arrive as ``Payload``."""
    data: dict[str, Any] = unpack(raw)
    if "a" in data:
        data["a"] = [Payload(a) if isinstance(a, dict) else a for a in data["a"]]
    return data


# A replica refreshes its liveness this often, and it lapses after ``LIVENESS`` seconds: a
# replica killed without a word is known dead within a second, and its jobs are retried.
HEARTBEAT = 0.25
LIVENESS = 1.0
