"""The load test: Locust against a fresh local stack at rising user counts, with 1 and with 2
replicas per matcher shard; throughput, share of 20015 and latency per step into BENCHMARKS.md.

    python -m benchmarks.loadtest --data ../shared/bench/public [--users 1 2 4 8 16 32 64]
        [--step-seconds 30] [--warmup 5] [--replicas 1 2] [--shards 1] [--add-share 0.05]
        [--busy-pause 1]

For each replica count it starts a stack (``CLOUDRECO_REPLICAS``), adds the public catalog, and
runs one headless ``locust`` process per user count (``benchmarks/locustfile.py``: users that
send their next request as soon as the last is answered, or ``--busy-pause`` seconds after a
20015; FindImage of the benchmark photos, and in ``--add-share`` of turns an AddImage of a
catalog image under a new identifier, then its RemoveImage). Each step is measured for
``--step-seconds`` after ``--warmup`` seconds at its user count. Locust runs on the same
machine as the stack, so its CPU is reported beside each step. Appends a dated section to
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil

from benchmarks.recognition import (
    CHANNEL,
    REPORT,
    ROOT,
    USER,
    Client,
    Run,
    add_all,
    host_speed,
    machine,
    open_channel,
    write_report,
)
from cloudreco.local import LocalStack

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
BUSY = "20015"  # the service's "system busy", recorded by the locustfile as "<endpoint> 20015"
# seconds past the warm-up and measure after which Locust is stopped even if the locustfile did
# not quit (it starts a step's users over one second, then warms up, measures and quits)
RUN_TIME_SLACK = 30


@dataclass(frozen=True)
class Step:
    """One user count's measured window, as Locust recorded it (by request name)."""

    users: int
    seconds: float
    counts: Counter[str]
    times: dict[str, Counter[int]]  # response times in Locust's rounded milliseconds
    cores: tuple[float, float, float]  # CPU cores busy over the step: stack, Locust, the rest
    locust_lag: Counter[int]  # how late Locust's event loop woke (rounded ms: samples)
    parts: dict[str, float]  # CPU cores busy in each part of the stack (gateway, matcher...)

    def answered(self, endpoint: str = "") -> int:
        """Requests answered with returncode 0: those of ``endpoint``, or of every endpoint."""
        return sum(n for name, n in self.counts.items()
                   if " " not in name and name.startswith(endpoint))

    def share(self, outcome: str) -> float:
        """The share of all requests answered with returncode ``outcome``."""
        return sum(n for name, n in self.counts.items()
                   if name.endswith(f" {outcome}")) / max(1, sum(self.counts.values()))

    def errors(self) -> Counter[str]:
        """Requests answered neither 0 nor 20015, by request name."""
        return Counter({name: n for name, n in self.counts.items()
                        if " " in name and not name.endswith(f" {BUSY}")})


def percentile(times: Counter[int], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of a {milliseconds: requests} histogram."""
    total = sum(times.values())
    if not total:
        return math.nan
    rank, seen = math.ceil(q / 100 * total), 0
    for bucket in sorted(times):
        seen += times[bucket]
        if seen >= rank:
            return float(bucket)
    return float(max(times))


def read_step(path: Path, users: int) -> tuple[float, Counter[str], dict[str, Counter[int]]]:
    """The measured seconds, request counts and response times of a Locust ``--json-file``."""
    entries = json.loads(path.read_text())
    if not entries:
        raise RuntimeError(f"Locust recorded no request at {users} users")
    started = min(e["start_time"] for e in entries)  # the restart after the warm-up
    ended = max(e["last_request_timestamp"] for e in entries)
    counts = Counter({e["name"]: e["num_requests"] for e in entries})
    times = {e["name"]: Counter({int(ms): n for ms, n in e["response_times"].items()})
             for e in entries}
    return ended - started, counts, times


def run_step(stack: LocalStack, args: argparse.Namespace, secret: str, users: int,
             scratch: Path) -> Step:
    """One headless Locust process at ``users`` users; its measured window."""
    out = scratch / f"step-{users}"
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--host", stack.url, "-u", str(users), "-r", str(users),
        "-t", f"{args.warmup + args.step_seconds + RUN_TIME_SLACK}s",
        "--json-file", str(out), "--exit-code-on-error", "0", "--loglevel", "WARNING",
        "--photos", str(args.data / "queries"), "--targets", str(args.data / "catalog"),
        "--username", USER, "--channel", CHANNEL, "--add-share", str(args.add_share),
        "--warmup", str(args.warmup), "--measure", str(args.step_seconds),
        "--busy-pause", str(args.busy_pause), "--lag-file", str(out) + "-lag.json",
    ]
    stack_before, locust_before = stack.cpu_seconds(), children_cpu()
    busy_before, started = busy_cpu(), time.monotonic()
    with (scratch / f"step-{users}.log").open("w") as log:
        done = subprocess.run(command, env={**os.environ, "LOCUST_SECRETKEY": secret},
                              stdout=log, stderr=subprocess.STDOUT, check=False)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"locust exited with {done.returncode} at {users} users: "
                           + (scratch / f"step-{users}.log").read_text()[-2000:])
    busy = busy_cpu() - busy_before
    locust = children_cpu() - locust_before  # the stack's processes are not reaped yet
    parts = {part: (used - stack_before.get(part, 0.0)) / wall
             for part, used in sorted(stack.cpu_seconds().items())}
    stack_cpu = sum(parts.values()) * wall
    seconds, counts, times = read_step(out.with_suffix(".json"), users)
    cores = (stack_cpu / wall, locust / wall, max(0.0, busy - stack_cpu - locust) / wall)
    lag = Counter(round(ms) for ms in json.loads(Path(str(out) + "-lag.json").read_text()))
    return Step(users, seconds, counts, times, cores, lag, parts)


def children_cpu() -> float:
    """CPU seconds of this process's finished children (the Locust processes)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def busy_cpu() -> float:
    """CPU seconds the whole machine has been busy, whoever used them."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq)


def load_catalog(stack: LocalStack, secret: str, data: Path) -> Run:
    """AddImage of every catalog image, as ``make bench`` adds them."""
    async def add() -> Run:
        run = Run()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            await add_all(Client(session, stack.url, secret),
                          sorted((data / "catalog").glob("*.jpg")), run)
        return run

    return asyncio.run(add())


@dataclass(frozen=True)
class Ladder:
    """Every step at one replica count, with what the stack really ran."""

    replicas: int
    shards: int
    matchers: int  # matcher processes the stack started
    gateways: int  # gateway processes, likewise
    catalog: Run  # the catalog's AddImage answers
    steps: list[Step]


def ladder(args: argparse.Namespace, replicas: int) -> Ladder:
    """A fresh stack with ``replicas`` per shard and the catalog, loaded at each user count."""
    with tempfile.TemporaryDirectory(prefix="cloudreco-load-") as tmp:
        # ERROR: every 20015 is logged as a warning, and under overload they are the answer
        options = {"CLOUDRECO_MAX_INFLIGHT": args.max_inflight,
                   "CLOUDRECO_GATEWAYS": args.gateways}
        stack = LocalStack(Path(tmp) / "data", shards=args.shards,
                           CLOUDRECO_REPLICAS=str(replicas), CLOUDRECO_LOG_LEVEL="ERROR",
                           **{k: str(v) for k, v in options.items() if v is not None})
        stack.start()
        try:
            secret = open_channel(stack)
            run = load_catalog(stack, secret, args.data)
            matchers = len(stack.processes("matcher"))
            gateways = len(stack.processes("gateway"))
            steps = []
            for users in args.users:
                steps.append(run_step(stack, args, secret, users, Path(tmp)))
                print(f"{row(steps[-1])} measured {steps[-1].seconds:.1f} s", flush=True)
        finally:
            stack.stop()
    return Ladder(replicas, args.shards, matchers, gateways, run, steps)


def row(s: Step) -> str:
    """One step as a row of the section's table."""
    find = s.times.get("FindImage", Counter())
    refused = s.times.get(f"FindImage {BUSY}", Counter())
    add = s.times.get("AddImage", Counter())
    errors = s.errors()
    detail = ", ".join(f"{name} {n}" for name, n in sorted(errors.items()))
    return " | ".join([
        f"| {s.users}", f"{s.answered() / s.seconds:.1f}",
        f"{s.answered('FindImage') / s.seconds:.1f}", f"{s.share(BUSY):.1%}",
        f"{ms(percentile(refused, 50))} / {ms(percentile(refused, 95))}",
        f"{sum(errors.values())}" + (f" ({detail})" if detail else ""),
        *(ms(percentile(find, q)) for q in (50, 95, 99)),
        f"{ms(percentile(add, 50))} / {ms(percentile(add, 95))}",
        " + ".join(f"{c:.2f}" for c in s.cores),
        f"{ms(percentile(s.locust_lag, 50))} / {ms(percentile(s.locust_lag, 95))} |",
    ])


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


def revision() -> str:
    """The commit measured, marked when the code differs from it (BENCHMARKS.md aside)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()

    return f"commit {git('rev-parse', '--short', 'HEAD') or 'unknown'}" + (
        " with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no", "--",
                                           ".", ":!BENCHMARKS.md") else "")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 'es' if word.endswith('s') else 's'}"


def section(runs: list[Ladder], args: argparse.Namespace, command: str, minutes: float,
            host_ms: tuple[float, float]) -> str:
    """The Markdown for BENCHMARKS.md: how the run was made, then one table per replica count."""
    header = ("| users | answered /s | FindImage /s | 20015 | 20015 p50 / p95 ms | other errors "
              "| p50 ms | p95 ms | p99 ms | AddImage p50 / p95 ms "
              "| CPU cores: stack + Locust + other | Locust lag p50 / p95 ms |")
    photos = len(list((args.data / "queries").glob("*.jpg")))
    lines = [
        f"## Load test, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"`{command}` at {revision()} on {machine()}, "
        f"Locust {importlib.metadata.version('locust')}; "
        f"{minutes:.1f} minutes in all. Host speed (one photo's extraction, 1 thread) before / "
        f"after: {host_ms[0]:.1f} / {host_ms[1]:.1f} ms.",
        "",
        "Each user sends its next request as soon as the last is answered (or "
        f"{args.busy_pause:g} s after a 20015): FindImage of one of the {photos} benchmark "
        f"photos, or in {args.add_share:.0%} of turns an AddImage of a catalog image under a "
        "new identifier followed by its RemoveImage. Each step runs "
        f"{args.warmup:g} s at its user count, then measures {args.step_seconds} s. "
        "Answered: returncode 0, all three endpoints (FindImage /s: those of FindImage). "
        "20015: the share of all requests answered \"system busy\", and how long a FindImage "
        "took to be told so. Other errors: any other "
        "returncode, HTTP status or broken connection. p50 / p95 / p99: FindImage answered 0, "
        "as the client saw it. CPU: cores busy over the step (warm-up included) in the stack, "
        "in Locust (on the same cores) and in anything else on the machine. Locust lag: how "
        "late Locust's event loop woke a greenlet that slept 10 ms, over the measured window: "
        "time Locust adds to every response time it takes.",
    ]
    for run in runs:
        ran = run.matchers / run.shards
        note = "" if ran == run.replicas else (
            f". **This code started {plural(run.matchers, 'matcher process')} for "
            f"{plural(run.shards, 'shard')}: it does not read CLOUDRECO_REPLICAS, so this "
            f"ladder ran {ran:g} per shard.**")
        lines += [
            "",
            f"### {plural(run.replicas, 'replica')} per shard",
            "",
            f"{plural(run.gateways, 'gateway process')}, {plural(run.shards, 'shard')}, "
            f"{plural(run.matchers, 'matcher process')}, "
            f"{len(run.catalog.levels)} catalog images"
            + (f" (refused: {dict(run.catalog.add_failed)})" if run.catalog.add_failed else "")
            + note,
            "",
            header,
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            *(row(s) for s in run.steps),
            "",
            "The stack's CPU cores by process: " + "; ".join(
                f"{s.users} users: " + ", ".join(f"{part} {c:.2f}" for part, c in s.parts.items())
                for s in run.steps) + ".",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--users", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    p.add_argument("--step-seconds", type=int, default=30, help="measured seconds per step")
    p.add_argument("--warmup", type=int, default=5, help="seconds before each step's measure")
    p.add_argument("--replicas", type=int, nargs="+", default=[1, 2],
                   help="replicas per shard, one ladder each")
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--max-inflight", type=int, help="CLOUDRECO_MAX_INFLIGHT (default: the "
                                                     "service's)")
    p.add_argument("--gateways", type=int, help="CLOUDRECO_GATEWAYS (default: the service's)")
    p.add_argument("--add-share", type=float, default=0.05)
    p.add_argument("--busy-pause", type=float, default=1.0,
                   help="seconds a user waits after a 20015 before its next request")
    p.add_argument("--no-report", action="store_true", help="print only, leave BENCHMARKS.md")
    args = p.parse_args()
    started, host_before = time.monotonic(), host_speed(args.data)
    runs = []
    for replicas in args.replicas:
        print(f"{plural(replicas, 'replica')} per shard, {plural(args.shards, 'shard')}",
              flush=True)
        runs.append(ladder(args, replicas))
    command = "python -m benchmarks.loadtest " + " ".join(sys.argv[1:])
    body = section(runs, args, command, (time.monotonic() - started) / 60,
                   (host_before, host_speed(args.data)))
    print(body)
    if not args.no_report:
        write_report(f"load:{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M}", body)
        print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
