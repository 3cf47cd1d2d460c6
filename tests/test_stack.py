"""`cloudreco run` (what `make run` starts): the whole stack with embedded Postgres and Redis,
stopped and started again with nothing lost."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import psutil
from prometheus_client.parser import text_string_to_metric_families

from cloudreco.local import LocalStack
from shared.jobs import LIVENESS
from tests.images import photo_of, target


def _post(port: int, endpoint: str, fields: dict[str, str], image: bytes | None = None
          ) -> dict[str, object]:
    boundary = uuid.uuid4().hex
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items())
    if image is not None:
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                 f'filename="p.jpg"\r\nContent-Type: image/jpeg\r\n\r\n').encode() + image + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/{endpoint}", data=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        answer: dict[str, object] = json.load(resp)
        return answer


def _find(stack: LocalStack, secret: str, name: str) -> dict[str, object]:
    return _post(stack.port, "FindImage", {"username": "alice", "secretkey": secret},
                 photo_of(name)[0])


def _found_count(stack: LocalStack) -> float:
    """FindImage requests answered 0, by the stack's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == "cloudreco_requests_total"
               and sample.labels == {"endpoint": "/FindImage", "returncode": "0"})


def _children(stack: LocalStack, part: str) -> list[psutil.Process]:
    assert stack.proc is not None
    return [p for p in psutil.Process(stack.proc.pid).children() if part in p.cmdline()]


def _restarted(stack: LocalStack, part: str, count: int) -> None:
    """Wait until ``count`` processes play ``part`` and the stack serves, not before a killed
    replica's liveness has lapsed (until then /health counts it)."""
    time.sleep(LIVENESS)
    deadline = time.monotonic() + 60
    while not stack.healthy() or len(_children(stack, part)) < count:
        assert time.monotonic() < deadline, f"{part} not restarted"
        time.sleep(0.2)


def test_stack_keeps_images_and_statistics_across_a_restart(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path / "data", shards=2)
    stack.start()
    try:
        secret = stack.cli("user", "create", "alice").strip().splitlines()[-1]
        stack.cli("channel", "create", "alice", "posters")
        for identifier, name in (("home", "pub.home.0"), ("fruits", "pub.fruits.0")):
            added = _post(stack.port, "AddImage", {"username": "alice", "secretkey": secret,
                                                   "channel": "posters",
                                                   "identifier": identifier}, target(name))
            assert added["returncode"] == 0, added
        assert _find(stack, secret, "pub.home.0")["identifier"] == "home"
    finally:
        assert stack.stop() == 0
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout == "", "processes outlived the stack"

    stack.start()
    try:
        assert _find(stack, secret, "pub.fruits.0")["identifier"] == "fruits"
        # a matcher that dies is restarted by the supervisor and reloads its shard
        matchers = _children(stack, "matcher")
        matchers[0].kill()
        matchers[0].wait(10)
        _restarted(stack, "matcher", 2)
        assert _find(stack, secret, "pub.home.0")["identifier"] == "home"
        # two gateways share the port: while one is dead the other takes every connection
        gateways = _children(stack, "gateway")
        assert len(gateways) == 2
        gateways[0].kill()
        gateways[0].wait(10)
        for name, identifier in [("pub.home.0", "home"), ("pub.fruits.0", "fruits")] * 2:
            assert _find(stack, secret, name)["identifier"] == identifier
        _restarted(stack, "gateway", 2)
        listed = _post(stack.port, "GetImages", {"username": "alice", "secretkey": secret,
                                                 "channel": "posters"})
        assert listed["totalcount"] == 2
        stats = _post(stack.port, "Statistics", {"username": "alice", "secretkey": secret,
                                                 "startdate": "2000", "enddate": "2100"})
        assert sum(r["count"] for r in stats["records"]) == 7  # type: ignore[attr-defined]
        # every scrape, whichever gateway takes it, counts all six finds since this start,
        # the killed gateway's included
        for _ in range(4):
            assert _found_count(stack) == 6
    finally:
        assert stack.stop() == 0
