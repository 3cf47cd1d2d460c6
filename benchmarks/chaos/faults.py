"""The faults the chaos benchmark injects into a running local stack, each a SIGKILL of one of
its processes (which the supervisor must start again)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from cloudreco.local import LocalStack

SHARD = 0  # the shard whose replica is killed


def _replicas(stack: LocalStack) -> list[psutil.Process]:
    found = []
    for p in stack.processes("matcher"):
        with contextlib.suppress(psutil.NoSuchProcess):
            if p.cmdline()[-2:] == ["--shard", str(SHARD)]:
                found.append(p)
    return found


def _postmaster(stack: LocalStack) -> list[psutil.Process]:
    found = stack.postmaster()
    return [] if found is None else [found]


@dataclass(frozen=True)
class Fault:
    name: str
    how: str  # what is done, for the report
    victims: Callable[[LocalStack], list[psutil.Process]]  # the first one is killed
    min_replicas: int = 1  # replicas per shard the fault needs to make sense
    # Whether the clients go through nginx (deploy/nginx.conf) when it is installed, as they
    # would to a deployment whose gateways fail; otherwise they call the gateways directly.
    through_front: bool = False

    def pids(self, stack: LocalStack) -> set[int]:
        return {p.pid for p in self.victims(stack)}

    def inject(self, stack: LocalStack) -> None:
        """SIGKILL the victim."""
        victims = self.victims(stack)
        if not victims:
            raise RuntimeError(f"{self.name}: no process to kill")
        victims[0].kill()


FAULTS = {f.name: f for f in (
    Fault("replica", f"SIGKILL of one matcher replica of shard {SHARD}; another is live",
          _replicas, min_replicas=2),
    Fault("redis", "SIGKILL of the embedded redis-server", lambda s: s.processes("redis")),
    Fault("postgres", "SIGKILL of the embedded Postgres postmaster", _postmaster),
    Fault("gateway", "SIGKILL of one of the two gateway processes",
          lambda s: s.processes("gateway"), through_front=True),
)}
