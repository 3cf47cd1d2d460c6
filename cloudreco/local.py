"""A local stack as a child process (``cloudreco run``), for the benchmark and the tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from cloudreco.embedded import free_port


class LocalStack:
    """``cloudreco run`` with its own data directory and port, isolated from any
    ``CLOUDRECO_*`` variables of the calling environment except those given."""

    def __init__(self, data_dir: Path, *, shards: int = 1, **env: str) -> None:
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("CLOUDRECO_") and k != "XDG_RUNTIME_DIR"}
        self.env.update({"CLOUDRECO_DATA_DIR": str(data_dir), "CLOUDRECO_PORT": str(self.port),
                         "CLOUDRECO_SHARDS": str(shards), "CLOUDRECO_LOG_LEVEL": "WARNING",
                         **env})
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        """Run a ``cloudreco`` command against this stack; its standard output."""
        done = subprocess.run([sys.executable, "-m", "cloudreco", *args], env=self.env,
                              capture_output=True, text=True, timeout=120, check=True)
        return done.stdout

    def start(self, timeout: float = 120.0) -> None:
        """Start the stack and wait until ``/health`` says every shard is serving."""
        self.proc = subprocess.Popen([sys.executable, "-m", "cloudreco", "run"], env=self.env,
                                     stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cloudreco run exited with {self.proc.returncode}")
            if self.healthy():
                return
            time.sleep(0.25)
        self.stop()
        raise RuntimeError("the stack did not become healthy")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=5) as resp:
                return bool(json.load(resp)["returncode"] == 0)
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, as Ctrl-C or an orchestrator would; the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def _parts(self) -> list[tuple[str, psutil.Process]]:
        """The stack's processes, each with the part it plays: gateway, matcher, redis,
        postgres or other (by its command and name, not by a path that may contain them)."""
        assert self.proc is not None
        procs = psutil.Process(self.proc.pid).children(recursive=True)
        postmaster = self.postmaster()
        if postmaster is not None:  # it runs detached from the supervisor
            with contextlib.suppress(psutil.NoSuchProcess):
                procs += [postmaster, *postmaster.children(recursive=True)]
        parts = []
        for child in procs:
            try:
                argv, name = child.cmdline(), child.name()
            except psutil.NoSuchProcess:
                continue
            command = argv[3] if argv[1:3] == ["-m", "cloudreco"] and len(argv) > 3 else ""
            part = command if command in ("gateway", "matcher") else next(
                (p for p in ("redis", "postgres") if p in name), "other")
            parts.append((part, child))
        return parts

    def processes(self, part: str) -> list[psutil.Process]:
        """The stack's processes that play ``part`` (gateway, matcher, redis, postgres)."""
        return [p for found, p in self._parts() if found == part]

    def postmaster(self) -> psutil.Process | None:
        """The embedded Postgres server's main process, by its pid file; None if none runs."""
        pid_file = Path(self.env["CLOUDRECO_DATA_DIR"]) / "postgres" / "postmaster.pid"
        try:
            return psutil.Process(int(pid_file.read_text().split()[0]))
        except (OSError, psutil.NoSuchProcess, ValueError, IndexError):
            return None

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each part of the stack, in seconds."""
        used: dict[str, float] = {}
        for part, child in self._parts():
            try:
                times = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            used[part] = used.get(part, 0.0) + times.user + times.system
        return used

    def matcher_rss(self) -> int:
        """Resident memory of the matcher processes, in bytes."""
        total = 0
        for part, child in self._parts():
            if part == "matcher":
                try:
                    total += child.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
        return total
