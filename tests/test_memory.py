"""When a replica gives freed heap back while it adds (matcher/memory.py)."""

from __future__ import annotations

import time

from matcher.memory import TrimSchedule


def test_a_trim_is_due_at_once_then_once_per_interval() -> None:
    schedule = TrimSchedule(interval=0.2)
    assert schedule.due()
    assert not schedule.due()
    time.sleep(0.25)
    assert schedule.due()
    assert not schedule.due()
