"""What each matcher replica publishes about itself for the gateways' ``/metrics``.

Each replica writes a small Redis hash beside its liveness heartbeat (``replicas_key`` in
``shared/jobs.py``), refreshed with it and expiring by itself when the replica dies. Any
gateway reads the hashes of the live replicas when it is scraped, so one scrape of any
gateway shows the whole cluster, whatever the number of replicas and gateways.
"""

from __future__ import annotations

import dataclasses

# A replica's hash outlives its last refresh by this many seconds. The gateway reads only
# the hashes of replicas that are live (``LIVENESS``); this only bounds a dead one's leftovers.
STATS_TTL = 10.0


def stats_key(shard: int, replica: str) -> str:
    """The hash of replica ``replica`` (its name in the shard's live set) of ``shard``."""
    return f"cloudreco:replica:{shard}:{replica}"


@dataclasses.dataclass(frozen=True)
class ReplicaStats:
    images: int  # images in the replica's indexes
    channels: int  # channels with an index in the replica
    resident_bytes: int  # the replica process's resident memory (RSS)
    snapshot_time: float  # epoch seconds the newest snapshot saved or loaded was written; 0: none

    def to_redis(self) -> dict[str, float]:
        return {k: float(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes]) -> ReplicaStats | None:
        """The stats in a hash read back, or None when it is missing or not of this shape."""
        try:
            values = {f.name: float(raw[f.name.encode()]) for f in dataclasses.fields(cls)}
        except (KeyError, ValueError):
            return None
        return cls(int(values["images"]), int(values["channels"]),
                   int(values["resident_bytes"]), values["snapshot_time"])
