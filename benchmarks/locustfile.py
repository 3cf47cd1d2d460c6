"""Locust users for ``benchmarks.loadtest``: FindImage with the benchmark photos and, in a share
of turns, AddImage of a catalog image under a new identifier, removed again at once so that the
channel holds the same images at every step.

``python -m benchmarks.loadtest`` runs this file in one headless ``locust`` process per step and
passes the options below (the secret key through ``LOCUST_SECRETKEY``). It is not imported by
the project: Locust monkey-patches the standard library with gevent when it is imported.

Every answer is recorded under a name that says what it was, so that each name's response
times hold one kind of answer: ``FindImage`` (returncode 0), ``FindImage 20015`` (system busy,
the expected answer under overload: a success, counted apart), ``FindImage 20013`` and any other
returncode, or ``FindImage error`` (an HTTP status other than 200, a body without a returncode,
a broken connection), the last two as failures. Statistics restart ``--warmup`` seconds after
every user has started, so that the step is measured in its steady state, and Locust quits
``--measure`` seconds later.
"""

from __future__ import annotations

import functools
import json
import random
import time
import uuid
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, events, task
from locust.env import Environment
from urllib3 import encode_multipart_formdata

BUSY = 20015  # the service's "system busy": its answer when the matchers are behind
LAG_TICK = 0.01  # seconds the lag sampler sleeps; how much later it wakes is the lag


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--photos", default="", help="folder of FindImage photos (*.jpg)")
    parser.add_argument("--targets", default="", help="folder of AddImage images (*.jpg)")
    parser.add_argument("--username", default="bench")
    parser.add_argument("--channel", default="bench")
    parser.add_argument("--secretkey", default="", env_var="LOCUST_SECRETKEY", is_secret=True)
    parser.add_argument("--add-share", type=float, default=0.05,
                        help="share of turns that add (and then remove) an image")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds after the last user started before statistics restart")
    parser.add_argument("--measure", type=float, default=0.0,
                        help="seconds measured after the warm-up, then quit (0: --run-time)")
    parser.add_argument("--busy-pause", type=float, default=1.0,
                        help="seconds a user waits after a 20015 before its next request")
    parser.add_argument("--lag-file", default="",
                        help="write the event loop's lag over the measured window here (JSON "
                             "list of milliseconds)")


def _sample_lag(lags: list[float]) -> None:
    """How late the gevent loop wakes a greenlet that slept ``LAG_TICK``: the delay Locust
    itself adds to every response time it takes (its own work, or no core free for it)."""
    while True:
        started = time.perf_counter()
        gevent.sleep(LAG_TICK)
        lags.append((time.perf_counter() - started - LAG_TICK) * 1000)


@events.init.add_listener
def _measure_after_warmup(environment: Environment, **_: Any) -> None:
    opts = environment.parsed_options

    def measure() -> None:
        environment.stats.reset_all()
        if opts and opts.lag_file:
            lags: list[float] = []
            gevent.spawn(_sample_lag, lags)
            environment.events.quitting.add_listener(
                lambda **_: Path(opts.lag_file).write_text(json.dumps(lags)))
        if opts and opts.measure and environment.runner:
            gevent.spawn_later(opts.measure, environment.runner.quit)

    def on_spawned(user_count: int, **_: Any) -> None:
        gevent.spawn_later(opts.warmup if opts else 0.0, measure)

    environment.events.spawning_complete.add_listener(on_spawned)


@functools.cache
def images(folder: str) -> list[bytes]:
    """Every JPEG of ``folder``, read once per Locust process."""
    found = [p.read_bytes() for p in sorted(Path(folder).glob("*.jpg"))]
    if not found:
        raise RuntimeError(f"no *.jpg in {folder!r}")
    return found


def returncode(response: Any) -> int | None:
    """The answer's returncode, or None if the request failed below the API."""
    if response.status_code != 200:
        return None
    try:
        return int(response.json()["returncode"])
    except (ValueError, KeyError, TypeError):
        return None


class ApiUser(FastHttpUser):
    """A client that sends its next request as soon as the last one is answered, or
    ``--busy-pause`` seconds after a 20015, as a client that backs off when told the service
    is busy (without the pause, users answered 20015 at once by the gateway's in-flight bound
    would spin on it)."""

    busy = False  # the last request of this user's turn was answered 20015

    def wait_time(self) -> float:
        return float(self.environment.parsed_options.busy_pause) if self.busy else 0.0

    @task
    def turn(self) -> None:
        opts = self.environment.parsed_options
        if random.random() < opts.add_share:
            fields = {"channel": opts.channel, "identifier": f"load.{uuid.uuid4().hex[:24]}"}
            code = self.call("AddImage", fields, random.choice(images(opts.targets)))
            if code == 0:
                code = self.call("RemoveImage", fields)
        else:
            code = self.call("FindImage", {"channel": opts.channel},
                             random.choice(images(opts.photos)))
        self.busy = code == BUSY

    def call(self, endpoint: str, fields: dict[str, str], image: bytes | None = None
             ) -> int | None:
        """POST one multipart request and record it under the name of its outcome."""
        opts = self.environment.parsed_options
        form: dict[str, Any] = {"username": opts.username, "secretkey": opts.secretkey, **fields}
        if image is not None:
            form["image"] = ("image.jpg", image, "image/jpeg")
        body, content_type = encode_multipart_formdata(form)
        with self.client.post(f"/{endpoint}", data=body, name=endpoint, catch_response=True,
                              headers={"Content-Type": content_type}) as response:
            code = returncode(response)
            if code == 0:
                response.success()
            elif code == BUSY:
                response.request_meta["name"] = f"{endpoint} {BUSY}"
                response.success()
            else:
                response.request_meta["name"] = f"{endpoint} {code or 'error'}"
                response.failure(f"returncode {code}" if code else
                                 f"HTTP {response.status_code}")
        return code
