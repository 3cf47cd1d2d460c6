"""The metrics ``GET /metrics`` shows, in Prometheus's text format.

Two kinds of metrics: this gateway process's own (requests by endpoint and result code,
latency histograms, its process's CPU and memory), kept in a registry of the app; and the
cluster's (queue depths, FindImage requests in flight, live replicas per shard, each live
replica's index size, memory and snapshot age), read from Redis at each scrape. Every
gateway shows the same cluster metrics, so one scrape of any gateway shows the whole stack.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable

from arq.connections import ArqRedis
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from gateway.backend import INFLIGHT_KEY
from shared.jobs import EXTRACT_QUEUE, add_queue, replicas_key, shard_queue
from shared.replica_stats import ReplicaStats, stats_key

log = logging.getLogger(__name__)
# Seconds: from a GetImage's milliseconds to a FindImage at its job timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CLUSTER_TIMEOUT = 2.0  # seconds the Redis reads of one scrape may take


class RequestMetrics:
    """This gateway's counters, in a registry of their own (one per app, none global).

    Gateways sharing a port (``cloudreco run`` starts several) each answer some scrapes; with
    ``PROMETHEUS_MULTIPROC_DIR`` set (``cloudreco run`` sets it for them) every process writes
    its counters to files there and a scrape of any one sums them all, killed ones included.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.shared_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        self.requests = Counter("cloudreco_requests", "Requests answered, by endpoint and "
                                "result code (- for answers without one)",
                                ["endpoint", "returncode"], registry=self.registry)
        self.latency = Histogram("cloudreco_request_duration_seconds",
                                 "Time from a request's arrival to its answer",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        if self.shared_dir is None:
            ProcessCollector(registry=self.registry)

    def scraped(self) -> CollectorRegistry:
        """The registry to expose: this process's, or every gateway's summed."""
        if self.shared_dir is None:
            return self.registry
        summed = CollectorRegistry()
        MultiProcessCollector(  # type: ignore[no-untyped-call]
            summed, path=self.shared_dir)
        return summed

    def observe(self, endpoint: str, returncode: str, seconds: float) -> None:
        self.requests.labels(endpoint, returncode).inc()
        self.latency.labels(endpoint).observe(seconds)


class _Gauges(Collector):
    """Metrics already read, for one exposition."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"cloudreco_{name}", doc, labels=labels)


async def cluster_metrics(redis: ArqRedis, shards: int) -> list[Metric]:
    """The cluster's state now, as Prometheus gauges."""
    now = time.time()
    queues = [EXTRACT_QUEUE] + [q(s) for s in range(shards) for q in (shard_queue, add_queue)]
    async with redis.pipeline(transaction=False) as pipe:
        for s in range(shards):
            pipe.zrangebyscore(replicas_key(s), now * 1000, "+inf")
        for queue in queues:
            pipe.zcard(queue)  # arq keeps a job in its queue's set until it has run
        pipe.zcount(INFLIGHT_KEY, now * 1000, "+inf")
        read = await pipe.execute()
    live: list[list[bytes]] = read[:shards]
    depths, inflight = read[shards:-1], read[-1]
    async with redis.pipeline(transaction=False) as pipe:
        for s, names in enumerate(live):
            for name in names:
                pipe.hgetall(stats_key(s, name.decode()))
        hashes = iter(await pipe.execute())

    queued = _gauge("queued_jobs", "Jobs queued or running, by queue "
                    "(extract: FindImage; shard:N: its searches; shard:N:add: AddImage)",
                    ["queue"])
    for queue, depth in zip(queues, depths, strict=True):
        queued.add_metric([queue], depth)
    replicas = _gauge("live_replicas", "Live matcher replicas of each shard", ["shard"])
    images = _gauge("replica_indexed_images", "Images in a live replica's indexes",
                    ["shard", "replica"])
    memory = _gauge("replica_resident_bytes", "A live replica's resident memory (RSS)",
                    ["shard", "replica"])
    age = _gauge("replica_snapshot_age_seconds", "Age of the newest snapshot a live replica "
                 "saved or loaded (absent before its first)", ["shard", "replica"])
    for s, names in enumerate(live):
        replicas.add_metric([str(s)], len(names))
        for name in names:
            stats = ReplicaStats.from_redis(next(hashes))
            if stats is None:  # it has not published yet
                continue
            labels = [str(s), name.decode()]
            images.add_metric(labels, stats.images)
            memory.add_metric(labels, stats.resident_bytes)
            if stats.snapshot_time:
                age.add_metric(labels, max(0.0, now - stats.snapshot_time))
    flight = _gauge("findimage_inflight", "FindImage requests admitted and not yet answered, "
                    "across every gateway")
    flight.add_metric([], inflight)
    return [queued, flight, replicas, images, memory, age]


async def exposition(registry: CollectorRegistry, redis: ArqRedis, shards: int) -> bytes:
    """``registry``'s metrics, then the cluster's (``cloudreco_cluster_up`` is 0, and the
    cluster's are left out, when Redis could not be read), in the text format."""
    up = _gauge("cluster_up", "Whether the cluster's state was read from Redis at this scrape")
    try:
        async with asyncio.timeout(CLUSTER_TIMEOUT):
            cluster = await cluster_metrics(redis, shards)
        up.add_metric([], 1)
    except (ConnectionError, TimeoutError, OSError, RedisError) as e:
        log.warning("metrics: the cluster's state not read from Redis: %r", e)
        cluster = []
        up.add_metric([], 0)
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_Gauges([up, *cluster]))
    return generate_latest(registry) + generate_latest(scraped)
