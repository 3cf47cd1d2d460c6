"""The one settings object, read from ``CLOUDRECO_*`` environment variables."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# What a browser sends in Origin: a scheme, a host and an optional port, with no path.
ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s,]+")


def _items(value: str) -> list[str]:
    """The non-empty items of a comma-separated setting, stripped."""
    return [item.strip() for item in value.split(",") if item.strip()]


class Settings(BaseSettings):
    """Configuration shared by every process of the stack.

    Built once in each entry point and passed down; nothing reads the environment elsewhere.
    """

    model_config = SettingsConfigDict(env_prefix="CLOUDRECO_", frozen=True)

    data_dir: Path = Path(".cloudreco")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # A shard uses every core of its machine; more shards spread a catalog over machines.
    # Every process must agree with the count stored in Postgres (see shared/cluster.py).
    shards: int = Field(1, ge=1, le=1024)
    # Matcher processes per shard that `cloudreco run` starts; each holds the whole shard.
    replicas: int = Field(1, ge=1, le=64)
    # Gateway processes that `cloudreco run` starts, all listening on `port` (SO_REUSEPORT):
    # the kernel spreads new connections over them, and while one is restarted the others
    # take every new connection. Two, so that a gateway dying leaves one serving.
    gateways: int = Field(2, ge=1, le=64)
    database_url: str | None = None
    redis_url: str | None = None

    # Uploads larger than this are refused while they stream in (20006).
    max_image_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    # Decoded images larger than this many pixels are refused before decoding (20006): a
    # 2 MiB PNG can otherwise inflate to gigabytes.
    max_image_pixels: int = Field(40_000_000, ge=10_000)
    # Seconds a client has to send a request's whole body; one still incomplete then is
    # refused (20005), so that a stalled or broken upload holds no connection for longer.
    # 2 MiB in 60 s is 280 kbit/s, slower than any phone network that uploads photos.
    body_timeout: float = Field(60.0, gt=0)
    # A PNG's image data once inflated (its rows of samples), over which it is refused (20006):
    # unlike a JPEG, a PNG cannot be decoded reduced, and inflating and unfiltering it is what
    # costs (BENCHMARKS.md, "Photo size"). 24 MiB: a 4K RGB screenshot, a 25 MP grey image.
    max_png_inflated_bytes: int = Field(24 * 1024 * 1024, ge=1024)
    # How long the gateway waits for the matchers on one request before answering 20015.
    job_timeout: float = Field(5.0, gt=0)
    # The longest an idle matcher worker waits on its queue's doorbell before looking at the
    # queue anyway, in seconds. The gateway rings on every enqueue, so this bounds only jobs
    # enqueued by something else (and how long a stopping matcher takes to notice).
    poll_delay: float = Field(0.25, gt=0, le=0.9)
    # Threads a matcher process uses for decoding, feature extraction, search and verification.
    matcher_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # Threads one query may use inside feature extraction (OpenCV) and the index lookup
    # (hnswlib): a lone query uses every core.
    query_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # Search and extract jobs each of a replica's workers runs at once. One job already uses
    # every core (query_threads); a replica that takes one at a time leaves the next job to an
    # idle replica instead of sharing its cores with it.
    matcher_jobs: int = Field(1, ge=1)
    # FindImage requests in flight per live replica of each shard (the mean over shards)
    # before FindImage answers 20015 at once. One request already uses a replica's cores
    # (query_threads); a second only shares them, each answer slower: measured on 2 cores at
    # 32 users, 1 kept the answered p95 at 1.8x its unloaded value and refused in 20 ms (p50),
    # 2 let it reach 2.7x (BENCHMARKS.md, "Load test"). Raise it for throughput over latency.
    max_inflight: int = Field(1, ge=1)
    # The nice value (0-19) of the process that extracts AddImage's features beside each
    # replica. At 10 a search running at the same time gets about nine tenths of the cores
    # and a lone add all of them; at 19 adds all but stop while searches keep the cores busy
    # (BENCHMARKS.md, "AddImage below FindImage's priority").
    add_nice: int = Field(10, ge=0, le=19)
    # AddImage jobs each replica extracts at once, each in its own extraction process (a
    # target's extraction uses about one core). Half the cores by default: on 2 cores a
    # second add at once took the answered FindImage p95 at 64 users to 1.8-2.2x its
    # one-user value, against 1.3-1.7x with one (BENCHMARKS.md, "AddImage below FindImage's
    # priority"). Raise it for a bulk import, to its core count. A replica holds one job
    # more, whose Postgres write and index add run while the others extract.
    add_jobs: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 1) // 2), ge=1)
    # FindImage requests per second per user; 0 turns the limit off. Past it: 20022.
    find_rate_limit: float = Field(0.0, ge=0)
    # Where replicas keep index snapshots (default: <data_dir>/snapshots), and how often each
    # saves one when its indexes changed, in seconds. They also save one when they stop.
    snapshot_dir: Path | None = None
    snapshot_interval: float = Field(300.0, gt=0)
    # Seconds a shard's change log keeps a change that a snapshot already covers. A replica
    # whose snapshot is older than what the log keeps rebuilds from Postgres instead.
    change_retention: float = Field(7 * 24 * 3600.0, ge=0)
    # Failed authentications a minute per username and per client address (GetImage's
    # anonymous lookups of a missing channel or image count too) before every attempt from
    # either is refused with 20023 for the rest of the minute; 0 turns the limit off.
    auth_failure_limit: int = Field(20, ge=0)
    # Proxies whose X-Forwarded-For names the client, as comma-separated addresses or
    # networks (e.g. "10.0.0.0/8,127.0.0.1"); requests from anywhere else are counted by
    # their own address.
    trusted_proxies: str = ""
    # Web origins (scheme://host[:port]) whose pages may call the API from the browser
    # (CORS), comma-separated; "*" lets any origin. Empty (the default): no other origin, so
    # only the pages the gateway serves itself (/scan, /docs) may.
    cors_origins: str = ""
    log_level: str = "INFO"
    # "text" lines, or "json": one JSON object a line, with the access log's fields as keys.
    log_format: Literal["text", "json"] = "text"

    @field_validator("trusted_proxies")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        for network in _items(value):
            ipaddress.ip_network(network, strict=False)  # ValueError: refused
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_parse(cls, value: str) -> str:
        for origin in _items(value):
            if origin != "*" and not ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], or *)")
        return value

    @property
    def cors_origin_list(self) -> list[str]:
        """The allowed origins as browsers send them (hosts in lower case)."""
        return [origin.lower() for origin in _items(self.cors_origins)]

    @property
    def trusted_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(n, strict=False) for n in _items(self.trusted_proxies)]

    @property
    def postgres_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def snapshots(self) -> Path:
        return self.snapshot_dir or self.data_dir / "snapshots"
