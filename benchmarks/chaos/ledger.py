"""What the chaos benchmark checks answers against: every identifier it ever sent to AddImage
with the target it shows, what the service acknowledged and when, and every answer it got."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Answer:
    """One request and what came of it. ``code`` is None when no HTTP answer came back."""

    endpoint: str
    sent: float  # time.monotonic()
    done: float
    code: int | None
    ok: bool  # an answer the service promises when healthy (0, or 20014 for a removed image)
    no_answer: str = ""  # why none came: "refused", "dropped" (mid-request) or "timed out"


@dataclass
class Ledger:
    """The catalog as the service acknowledged it. Base targets are added before the chaos
    under their own names and never removed; pool targets are added and removed under it."""

    target_of: dict[str, str] = field(default_factory=dict)  # every identifier ever sent
    base: set[str] = field(default_factory=set)
    added: dict[str, float] = field(default_factory=dict)  # acknowledged AddImage: when
    removed: dict[str, float] = field(default_factory=dict)  # acknowledged RemoveImage: when
    # Writes that got no answer 0: the image may or may not be stored (or removed).
    unsure_adds: set[str] = field(default_factory=set)
    unsure_removes: set[str] = field(default_factory=set)

    def live(self) -> list[str]:
        """Acknowledged pool identifiers not (even possibly) removed, oldest first."""
        return [i for i in sorted(self.added, key=self.added.__getitem__)
                if i not in self.removed and i not in self.unsure_removes]

    def busy_targets(self) -> set[str]:
        """Pool targets that have, or may have, an identifier in the catalog."""
        held = set(self.live()) | self.unsure_adds | self.unsure_removes
        return {self.target_of[i] for i in held}

    def removed_before(self, identifier: str, when: float) -> bool:
        """Whether RemoveImage of ``identifier`` was acknowledged before ``when``."""
        return identifier in self.removed and self.removed[identifier] < when


@dataclass
class Tally:
    """Every answer of one scenario, and what checking them found."""

    answers: list[Answer] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)  # "photo's target -> identifier answered"
    # No identifier for a photo of a target surely in the catalog: (target, photo, when
    # sent); and those photos that the audit, once the stack served again, missed again.
    misses: list[tuple[str, int, float]] = field(default_factory=list)
    missed_again: set[tuple[str, int]] = field(default_factory=set)
    lost: set[str] = field(default_factory=set)  # acknowledged, then not there
    removed_returned: set[str] = field(default_factory=set)
    unacknowledged_stored: int = 0  # AddImage without answer 0 whose image was stored

    def record(self, endpoint: str, sent: float, code: int | None, *, ok: bool,
               no_answer: str = "") -> None:
        self.answers.append(Answer(endpoint, sent, time.monotonic(), code, ok, no_answer))

    def serving(self) -> bool:
        """Whether the latest FindImage answer was one a healthy stack gives."""
        return next((a.ok for a in reversed(self.answers) if a.endpoint == "FindImage"), False)

    def by_code(self) -> dict[str, Counter[str]]:
        """Answers per endpoint by code ("none" where no HTTP answer came)."""
        counts: dict[str, Counter[str]] = {}
        for a in self.answers:
            counts.setdefault(a.endpoint, Counter())[str(a.code) if a.code is not None
                                                     else "none"] += 1
        return counts

    def failures(self, since: float) -> list[Answer]:
        """The answers (or their absence) not promised to a healthy stack, from ``since``."""
        return sorted((a for a in self.answers if not a.ok and a.done >= since),
                      key=lambda a: a.done)

    def window(self, since: float) -> float:
        """Seconds from the first to the last failure after ``since`` (0 if none)."""
        failed = self.failures(since)
        return failed[-1].done - failed[0].done if failed else 0.0

    def recovery(self, since: float) -> float | None:
        """Seconds from ``since`` until a FindImage answered 0 after the last failure; None
        if none did."""
        failed = self.failures(since)
        after = failed[-1].done if failed else since
        found = [a.done for a in self.answers
                 if a.endpoint == "FindImage" and a.ok and a.done > after and a.sent >= since]
        return min(found) - since if found else None
