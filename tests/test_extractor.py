"""The child process that extracts catalog images' features below the searches' priority."""

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator

import numpy as np
import psutil
import pytest

from matcher import features
from matcher.extractor import ExtractorDied, TargetExtractor
from matcher.imaging import ImageRejected, Limits
from matcher.shard import Expired
from shared.codes import ResultCode
from tests.images import target

LIMITS = Limits(40_000_000, 24 * 1024 * 1024)
COVER = "pub.home.0"


@pytest.fixture
async def extractor() -> AsyncIterator[TargetExtractor]:
    running = TargetExtractor(nice=10, threads=1)
    yield running
    await running.close()


async def test_the_child_runs_at_its_lower_priority_and_extracts_as_the_replica_would(
        extractor: TargetExtractor) -> None:
    pid = await extractor.start()
    assert pid != os.getpid()
    assert psutil.Process(pid).nice() == 10
    image = target(COVER)
    found = await extractor.extract(image, LIMITS, time.time() + 30)
    here = features.target_features(image, LIMITS)
    assert np.array_equal(found.xy, here.xy) and np.array_equal(found.desc, here.desc)
    assert (found.width, found.height) == (here.width, here.height)


async def test_a_refused_image_and_a_late_job_come_back_as_the_replica_expects(
        extractor: TargetExtractor) -> None:
    with pytest.raises(ImageRejected) as refused:
        await extractor.extract(b"\xff\xd8\xff\xe0 not a jpeg", LIMITS, time.time() + 30)
    assert refused.value.code == ResultCode.BAD_IMAGE_FORMAT
    with pytest.raises(Expired):
        await extractor.extract(target(COVER), LIMITS, time.time() - 1)


async def test_a_killed_child_costs_at_most_the_job_it_held(extractor: TargetExtractor) -> None:
    pid = await extractor.start()
    child = psutil.Process(pid)
    os.kill(pid, signal.SIGKILL)
    psutil.wait_procs([child], timeout=5)
    image = target(COVER)
    # the pool may or may not have noticed the death before this job was handed over
    with contextlib.suppress(ExtractorDied):
        await extractor.extract(image, LIMITS, time.time() + 30)
    again = await extractor.extract(image, LIMITS, time.time() + 30)
    assert len(again.xy) > 0
    assert await extractor.start() != pid



async def test_adds_at_once_run_in_children_of_their_own_at_the_lower_priority() -> None:
    extractor = TargetExtractor(nice=10, threads=1, jobs=2)
    try:
        image = target(COVER)
        both = [asyncio.create_task(extractor.extract(image, LIMITS, time.time() + 60))
                for _ in range(2)]
        nice: list[int] = []
        for _ in range(500):  # until both children have started (and set their priority)
            nice = [psutil.Process(pid).nice() for pid in extractor._pool._processes]
            if nice == [10, 10] or all(t.done() for t in both):
                break
            await asyncio.sleep(0.02)
        assert nice == [10, 10]
        first, second = await asyncio.gather(*both)
        assert np.array_equal(first.desc, second.desc)
    finally:
        await extractor.close()


CHILD_NICE = """
import asyncio, psutil
from matcher.extractor import TargetExtractor
async def main():
    extractor = TargetExtractor(nice=10, threads=1)
    print(psutil.Process(await extractor.start()).nice())
    await extractor.close()
asyncio.run(main())
"""


async def test_a_replica_already_below_the_setting_keeps_its_own_priority() -> None:
    """An operator who runs the whole stack at nice 15 gets adds at 15, never a child that
    fails to start because only root may raise a priority."""
    replica = await asyncio.create_subprocess_exec(
        "nice", "-n", "15", sys.executable, "-c", CHILD_NICE, stdout=asyncio.subprocess.PIPE)
    out, _ = await replica.communicate()
    assert replica.returncode == 0 and out.split() == [b"15"]


REPLICA = """
import asyncio, psutil
from matcher.extractor import TargetExtractor
async def main():
    extractor = TargetExtractor(nice=10, threads=1)
    child = psutil.Process(await extractor.start())
    print(child.pid, child.ppid(), flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
"""


async def test_a_replica_killed_outright_leaves_no_extraction_processes_behind() -> None:
    replica = await asyncio.create_subprocess_exec(
        sys.executable, "-c", REPLICA, stdout=asyncio.subprocess.PIPE)
    assert replica.stdout is not None
    child, server = (psutil.Process(int(pid)) for pid in (await replica.stdout.readline()).split())
    assert server.pid != replica.pid and server.ppid() == replica.pid
    replica.kill()
    await replica.wait()
    _, alive = psutil.wait_procs([child, server], timeout=10)
    assert not alive, [p.cmdline() for p in alive]
