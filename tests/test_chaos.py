"""``make chaos``, short: the real stack (2 gateways, 1 shard x 2 replicas) under a steady
FindImage, AddImage and RemoveImage load keeps its promises while a replica, Redis, Postgres and
a gateway are each SIGKILLed and started again by the supervisor."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.chaos.faults import FAULTS
from benchmarks.chaos.scenarios import STACK_ENV, Chaos, Outcome, front, prepare, run_scenario
from cloudreco.local import LocalStack
from tests.images import BENCH

REPLICAS = 2
TARGETS = 16  # catalog targets tried: about half stay in, the rest are added and removed
BEFORE = 2.0  # seconds of load before the fault
AFTER = 8.0  # seconds of load after it: enough to see Redis or Postgres come back


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    scratch = tmp_path_factory.mktemp("chaos")
    stack = LocalStack(scratch / "data", shards=1, CLOUDRECO_REPLICAS=str(REPLICAS),
                       **STACK_ENV)
    stack.start()
    try:
        with front(stack, scratch / "nginx") as nginx:
            yield prepare(stack, BENCH, TARGETS, REPLICAS, nginx)
    finally:
        assert stack.stop() == 0


def _kept_promises(o: Outcome, *, no_answer: tuple[str, ...] = ()) -> None:
    assert o.wrong == [], "a photo answered with another target's identifier"
    assert o.lost == [], "acknowledged images not there, or not found, after the fault"
    assert o.removed_returned == [], "acknowledged removals answered again"
    assert {code.split()[1] for code in o.failed_codes} <= {"20015"}, o.failed_codes
    assert set(o.no_answer) <= set(no_answer), o.no_answer


def test_a_replica_killed_fails_over_to_the_live_one_within_2_s(chaos: Chaos) -> None:
    o = run_scenario(chaos, FAULTS["replica"], before=BEFORE, after=AFTER / 2, clients=4)
    _kept_promises(o)
    assert o.window <= 2.0


@pytest.mark.parametrize("fault", ["redis", "postgres"])
def test_the_stack_serves_again_within_15_s_of_redis_or_postgres_dying(chaos: Chaos,
                                                                     fault: str) -> None:
    o = run_scenario(chaos, FAULTS[fault], before=BEFORE, after=AFTER, clients=4)
    _kept_promises(o)
    assert o.recovery is not None and o.recovery <= 15.0, o


def test_a_gateway_killed_leaves_the_other_serving(chaos: Chaos) -> None:
    o = run_scenario(chaos, FAULTS["gateway"], before=BEFORE, after=AFTER / 2, clients=4)
    # Behind nginx every request is answered. Called directly, the other gateway takes every
    # new connection: only the requests the killed one held are dropped, none is refused.
    _kept_promises(o, no_answer=() if chaos.front is not None else ("dropped",))
    assert o.recovery is not None
