"""What operators rely on: /metrics (Prometheus text, counters that move, the cluster's state
from Redis), the access log, and a request id that follows a request into the matcher."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator

import aiohttp
import pytest
from arq.connections import ArqRedis
from arq.constants import job_key_prefix
from prometheus_client.parser import text_string_to_metric_families

from shared import logs
from shared.jobs import JobName, add_queue
from tests.api import Api, User
from tests.conftest import Shards
from tests.images import photo_of, target

GARDEN = "pub.building.0"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(api: Api) -> Samples:
    resp = await api.client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(await resp.text())
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


@pytest.fixture
def logged(request: pytest.FixtureRequest) -> Iterator[Callable[[], list[str]]]:
    """Every log line of the test, as the processes write them (``log_format`` "text", or
    "json" when the test is parametrized with ``log_format``)."""
    log_format = getattr(request, "param", "text")
    stream = io.StringIO()
    handler = logs.handler(log_format, stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lambda: stream.getvalue().splitlines()
    root.removeHandler(handler)
    root.setLevel(level)


async def find(api: Api, user: User, photo: bytes, headers: dict[str, str] | None = None
               ) -> aiohttp.ClientResponse:
    data = aiohttp.FormData(default_to_multipart=True)
    for name, field in {**user.credentials, "channel": "posters"}.items():
        data.add_field(name, field)
    data.add_field("image", io.BytesIO(photo), filename="photo.jpg")
    resp = await api.client.post("/FindImage", data=data, headers=headers)
    assert resp.status == 200
    return resp


async def test_metrics_parse_and_their_counters_move_with_requests(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    before = await scrape(api)
    for _ in range(2):
        await api.post("GetImages", {**alice.credentials, "channel": "posters"})
    await api.post("GetImages", {"username": "alice", "secretkey": "wrong", "channel": "posters"})
    await api.post("NoSuchThing", expect_status=404)
    after = await scrape(api)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("cloudreco_requests_total", endpoint="/GetImages", returncode="0") == 2
    assert moved("cloudreco_requests_total", endpoint="/GetImages", returncode="20001") == 1
    assert moved("cloudreco_requests_total", endpoint="other", returncode="20021") == 1
    assert moved("cloudreco_request_duration_seconds_count", endpoint="/GetImages") == 3
    assert moved("cloudreco_request_duration_seconds_bucket", endpoint="/GetImages",
                 le="+Inf") == 3
    assert value(after, "cloudreco_cluster_up") == 1
    assert value(after, "cloudreco_live_replicas", shard="0") == 1
    assert value(after, "cloudreco_live_replicas", shard="1") == 1
    assert value(after, "process_resident_memory_bytes") > 0  # the gateway's own


async def indexed(api: Api, images: int) -> Samples:
    """A scrape once the replicas publish ``images`` indexed images in all (they publish with
    their heartbeat, every 0.25 s)."""
    for _ in range(40):
        samples = await scrape(api)
        if sum(series(samples, "cloudreco_replica_indexed_images").values()) == images:
            return samples
        await asyncio.sleep(0.1)
    raise AssertionError(f"the replicas never published {images} indexed images")


async def test_metrics_show_each_replica_and_the_queues(api: Api, shards: Shards,
                                                        redis: ArqRedis) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    assert (await api.add(alice, "posters", "garden", target(GARDEN)))["returncode"] == 0
    samples = await indexed(api, 1)
    memory = series(samples, "cloudreco_replica_resident_bytes")
    assert {dict(labels)["shard"] for labels in memory} == {"0", "1"}
    assert all(rss > 10 * 2**20 for rss in memory.values())
    assert not series(samples, "cloudreco_replica_snapshot_age_seconds")  # none saved yet

    await shards.stop(1)  # it saves a snapshot as it stops
    job = await redis.enqueue_job(JobName.ADD_IMAGE, {}, _queue_name=add_queue(1))
    assert job is not None
    samples = await scrape(api)
    assert value(samples, "cloudreco_live_replicas", shard="1") == 0
    assert value(samples, "cloudreco_queued_jobs", queue=add_queue(1)) == 1
    assert {dict(labels)["shard"] for labels in
            series(samples, "cloudreco_replica_indexed_images")} == {"0"}
    await redis.delete(add_queue(1), job_key_prefix + job.job_id)

    await shards.start(1)  # loads that snapshot
    samples = await indexed(api, 1)
    ages = series(samples, "cloudreco_replica_snapshot_age_seconds")
    assert [dict(labels)["shard"] for labels in ages] == ["1"]
    assert 0 <= next(iter(ages.values())) < 60


async def test_a_find_image_request_id_is_in_the_gateway_and_matcher_logs_and_the_answer(
        api: Api, logged: Callable[[], list[str]]) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    await api.add(alice, "posters", "garden", target(GARDEN))
    resp = await find(api, alice, photo_of(GARDEN, seed=1)[0], {"X-Request-Id": "trace-42.a"})
    assert (await resp.json())["identifier"] == "garden"
    assert resp.headers["X-Request-Id"] == "trace-42.a"
    tagged = [line for line in logged() if "[trace-42.a]" in line]
    assert [line.split(" INFO [trace-42.a] ")[1].rsplit(" ", 3)[0] for line in tagged
            if " gateway.access " in line] == ["POST /FindImage 0 200"]
    assert any(" matcher.worker " in line and "extract_query job" in line for line in tagged)


@pytest.mark.parametrize("given", ["", "two words", "x" * 129, "line\u00e9"])
async def test_a_request_without_a_sane_id_gets_a_new_one(
        api: Api, logged: Callable[[], list[str]], given: str) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    resp = await api.client.post("/GetImages", data={**alice.credentials, "channel": "posters"},
                                 headers={"X-Request-Id": given} if given else None)
    made = resp.headers["X-Request-Id"]
    assert made != given and len(made) == 32
    assert any(f"[{made}] POST /GetImages 0 200 " in line for line in logged())


@pytest.mark.parametrize("logged", ["json"], indirect=True)
async def test_json_logs_carry_the_access_fields(api: Api,
                                                 logged: Callable[[], list[str]]) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    resp = await api.client.post("/GetImages", data={**alice.credentials, "channel": "posters"})
    records = [json.loads(line) for line in logged()]
    access = [r for r in records if r["logger"] == "gateway.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == resp.headers["X-Request-Id"]
    assert {k: access[0][k] for k in ("level", "method", "path", "returncode", "status",
                                      "client")} == \
        {"level": "INFO", "method": "POST", "path": "/GetImages", "returncode": "0",
         "status": 200, "client": "127.0.0.1"}
    assert access[0]["duration_ms"] >= 0


async def test_no_log_line_holds_a_secret_key(api: Api,
                                              logged: Callable[[], list[str]]) -> None:
    alice = await api.user("alice", secret="s3cret-never-logged-0123456789")
    await api.channel(alice, "posters")
    await api.add(alice, "posters", "garden", target(GARDEN), metadata='{"k": "meta-value"}')
    await find(api, alice, photo_of(GARDEN, seed=2)[0])
    await api.post("GetImages?secretkey=s3cret-never-logged-0123456789",
                   {**alice.credentials, "channel": "posters"})
    await api.post("GetImages", {"username": "alice", "secretkey": "s3cret-never-logged-wrong",
                                 "channel": "posters"})
    # aiohttp's own access log, which logs the query string, is on in the test server only
    # (gateway.app.main serves with access_log=None)
    lines = [line for line in logged() if " aiohttp.access " not in line]
    assert sum(" gateway.access " in line for line in lines) == 4
    assert not [line for line in lines if "s3cret" in line or "meta-value" in line]
