"""`cloudreco run` (what `make run` starts): the whole stack with embedded Postgres and Redis,
stopped and started again with nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from cloudreco.embedded import free_port
from tests.images import photo_of, target

STARTUP = 90.0


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


class Stack:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("CLOUDRECO_") and k != "XDG_RUNTIME_DIR"}
        self.env.update(CLOUDRECO_DATA_DIR=str(data_dir), CLOUDRECO_PORT=str(self.port),
                        CLOUDRECO_SHARDS="2")
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "cloudreco", *args], env=self.env,
                              capture_output=True, text=True, timeout=60, check=True)
        return done.stdout

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "cloudreco", "run"], env=self.env)
        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "cloudreco run exited"
            try:
                # ready when a find passes through every shard
                answer = _post(self.port, "FindImage", {"username": "-", "secretkey": "-"},
                               target("pub.home.0"))
                if answer["returncode"] == 20001:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError("stack did not come up")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(60) == 0


def _find(stack: Stack, secret: str, name: str) -> dict[str, object]:
    for _ in range(40):  # shards may still be loading just after start
        answer = _post(stack.port, "FindImage", {"username": "alice", "secretkey": secret},
                       photo_of(name)[0])
        if answer["returncode"] != 20015:
            return answer
        time.sleep(0.25)
    return answer


def test_stack_keeps_images_and_statistics_across_a_restart(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "data")
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
        stack.stop()
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout == "", "processes outlived the stack"

    stack.start()
    try:
        assert _find(stack, secret, "pub.fruits.0")["identifier"] == "fruits"
        listed = _post(stack.port, "GetImages", {"username": "alice", "secretkey": secret,
                                                 "channel": "posters"})
        assert listed["totalcount"] == 2
        stats = _post(stack.port, "Statistics", {"username": "alice", "secretkey": secret,
                                                 "startdate": "2000", "enddate": "2100"})
        assert sum(r["count"] for r in stats["records"]) == 2  # type: ignore[attr-defined]
    finally:
        stack.stop()
