"""When to ask again after 20015 system busy: exponential backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Retry:
    """Up to ``retries`` more attempts after 20015. The n-th retry (from 0) waits between
    half and all of ``min(cap, base * 2**n)`` seconds, drawn at random so that clients
    refused together do not come back together.

    Only 20015 is retried: it means nothing was done (or, for an AddImage whose time ran out
    after the matcher began, that a retry answers 20016). Every other code is the answer.
    """

    retries: int = 3
    base: float = 0.5
    cap: float = 8.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.base < 0 or self.cap < 0:
            raise ValueError("retries, base and cap must not be negative")

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.base * 2 ** attempt)
        return random.uniform(ceiling / 2, ceiling)
