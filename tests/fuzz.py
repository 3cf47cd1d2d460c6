"""Running a hypothesis fuzzer for a bounded number of cases (``make test``) or for a duration
(``make fuzz``, which sets ``CLOUDRECO_FUZZ_SECONDS``), and reporting how many cases ran."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T = TypeVar("T")

# Each fuzz test runs this long when set (seconds); unset, each runs its short count of cases.
SECONDS = float(os.environ.get("CLOUDRECO_FUZZ_SECONDS", "0") or 0)
# Cases per hypothesis run in a timed fuzz: each run draws with a new random seed.
ROUND = 200
NOTE = 3000  # characters of a failing case to print


@dataclass
class Tally:
    cases: int = 0
    seconds: float = 0.0


def fuzz(strategy: st.SearchStrategy[T], check: Callable[[T], Any], *, examples: int,
         seconds: float = SECONDS) -> Tally:
    """Feed ``check`` cases drawn from ``strategy``: ``examples`` of them, or as many as
    ``seconds`` allow when that is set. A failing case is shrunk and raised by hypothesis."""
    tally = Tally()

    @settings(max_examples=ROUND if seconds else examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(strategy)
    def run(case: T) -> None:
        tally.cases += 1
        try:
            check(case)
        except Exception as e:  # hypothesis prints large cases as nothing; say what it was
            e.add_note(f"case: {case!r}"[:NOTE])
            raise

    start = time.monotonic()
    run()
    while time.monotonic() - start < seconds:
        run()
    tally.seconds = time.monotonic() - start
    return tally


def documented_codes(description: dict[str, Any]) -> dict[str, set[int]]:
    """The returncodes an OpenAPI description lists for each path, over its methods and
    HTTP statuses."""
    codes: dict[str, set[int]] = {}
    for path, item in description["paths"].items():
        listed = codes.setdefault(path, set())
        for operation in item.values():
            for response in operation["responses"].values():
                if "application/json" not in response["content"]:
                    continue  # /metrics: Prometheus's text
                schema = response["content"]["application/json"]["schema"]
                for variant in schema.get("oneOf", [schema]):
                    listed.update(variant.get("properties", {}).get("returncode", {})
                                  .get("enum", []))
    return codes


def report(capsys: pytest.CaptureFixture[str], name: str, tally: Tally) -> None:
    """Print the count of cases past pytest's capture (make fuzz records it)."""
    with capsys.disabled():
        print(f"\nfuzz {name}: {tally.cases} cases in {tally.seconds:.0f} s, no finding")
