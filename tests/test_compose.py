"""The Docker Compose deployment: docker-compose.yml as Compose reads it, and deploy/nginx.conf
as nginx reads it and behaves with it. Both tools are Debian packages that .ci/run installs;
no Docker engine is needed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.nginx import (
    NGINX_CONF,
    ROOT,
    UPSTREAM_SERVER,
    Nginx,
    local_config,
    nginx_args,
    nginx_binary,
)

COMPOSE_FILE = ROOT / "docker-compose.yml"
# The first nginx whose upstream `server` takes `resolve` (Debian 12 has 1.22).
NGINX_RESOLVE = (1, 27, 3)

Services = dict[str, dict[str, Any]]


def _tool(name: str) -> str:
    path = nginx_binary() if name == "nginx" else shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed; .ci/run installs it on Debian")
    return path


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("docker-compose"), "-f", str(COMPOSE_FILE), *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.fixture(scope="module")
def services() -> Services:
    """The services as Compose resolves them: anchors merged, variables filled in."""
    config = _compose("config")
    assert config.returncode == 0, config.stderr
    resolved: Services = yaml.safe_load(config.stdout)["services"]
    return resolved


def _by_command(services: Services, command: str) -> Services:
    return {name: s for name, s in services.items() if s.get("command", [None])[0] == command}


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read-only) of a service's volumes, short or long syntax."""
    mounts = {}
    for v in service.get("volumes", []):
        if isinstance(v, str):
            source, target, *mode = v.split(":")
            mounts[target] = (source, mode == ["ro"])
        else:
            mounts[v["target"]] = (v["source"], bool(v.get("read_only")))
    return mounts


def test_compose_file_is_valid() -> None:
    check = _compose("config", "-q")
    assert check.returncode == 0, check.stderr


def test_two_gateways_behind_nginx_on_8080(services: Services) -> None:
    gateways = _by_command(services, "gateway")
    assert len(gateways) == 2
    for gateway in gateways.values():
        assert "ports" not in gateway  # reached through nginx only
        assert gateway["environment"]["CLOUDRECO_HOST"] == "0.0.0.0"
        assert gateway["environment"]["CLOUDRECO_PORT"] == "8080"
    nginx = services["nginx"]
    assert [(str(p["published"]), p["target"]) for p in nginx["ports"]] == [("8080", 8080)]
    source, read_only = _mounts(nginx)["/etc/nginx/nginx.conf"]
    assert Path(source) == NGINX_CONF and read_only
    assert {n: d["condition"] for n, d in nginx["depends_on"].items()} == dict.fromkeys(
        gateways, "service_healthy")
    upstream = [m[2] for m in UPSTREAM_SERVER.finditer(NGINX_CONF.read_text())]
    assert sorted(upstream) == sorted(gateways)


def test_two_shards_of_two_replicas_share_snapshots(services: Services) -> None:
    matchers = _by_command(services, "matcher")
    assert sorted(m["command"] for m in matchers.values()) == (
        [["matcher", "--shard", "0"]] * 2 + [["matcher", "--shard", "1"]] * 2)
    for matcher in matchers.values():
        assert matcher["environment"]["CLOUDRECO_SNAPSHOT_DIR"] == "/snapshots"
        assert _mounts(matcher)["/snapshots"] == ("snapshots", False)
        assert matcher["stop_grace_period"] == "30s"  # time to save a snapshot


def test_every_app_service_agrees_on_settings(services: Services) -> None:
    apps = {n: s for n, s in services.items() if s.get("image") == "cloudreco:latest"}
    assert set(apps) == {"migrate", *_by_command(services, "gateway"),
                         *_by_command(services, "matcher")}
    for name, app in apps.items():
        env = app["environment"]
        assert env["CLOUDRECO_SHARDS"] == "2", name
        assert env["CLOUDRECO_JOB_TIMEOUT"] == "5", name
        assert env["CLOUDRECO_DATABASE_URL"].endswith("@postgres:5432/cloudreco"), name
        assert env["CLOUDRECO_REDIS_URL"] == "redis://redis:6379/0", name
    assert services["migrate"]["command"] == ["migrate"]


def test_state_on_volumes_with_health_checks(services: Services) -> None:
    postgres, redis = services["postgres"], services["redis"]
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert _mounts(postgres)["/var/lib/postgresql/data"] == ("pgdata", False)
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert _mounts(redis)["/data"] == ("redisdata", False)
    assert redis["command"][-2:] == ["--appendonly", "yes"]  # queued jobs survive a restart
    for gateway in _by_command(services, "gateway").values():
        assert "/healthz" in " ".join(gateway["healthcheck"]["test"])


def test_restart_policies(services: Services) -> None:
    assert services["migrate"]["restart"] == "no"
    assert {n: s["restart"] for n, s in services.items() if n != "migrate"} == dict.fromkeys(
        set(services) - {"migrate"}, "unless-stopped")


def _nginx_version(nginx: str) -> tuple[int, ...]:
    banner = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", banner)
    assert found is not None, banner
    return tuple(int(part) for part in found.groups())


def _nginx_test(nginx: str, conf: Path, prefix: Path) -> None:
    check = subprocess.run([*nginx_args(nginx, conf, prefix), "-t", "-q"],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr


def test_nginx_config_is_valid(tmp_path: Path) -> None:
    nginx = _tool("nginx")
    local = tmp_path / "local.conf"
    local.write_text(local_config(8080, [1, 2]))
    _nginx_test(nginx, local, tmp_path)
    if _nginx_version(nginx) >= NGINX_RESOLVE:
        _nginx_test(nginx, NGINX_CONF, tmp_path)  # as shipped, `resolve` included


class Gateway(ThreadingHTTPServer):
    """A stand-in gateway that counts the POSTs it is sent; ``hang_up`` closes the connection
    without answering, as a gateway that dies mid-request does."""

    def __init__(self, name: str) -> None:
        self.name, self.posts, self.hang_up = name, 0, False
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                gateway.posts += 1
                if gateway.hang_up:
                    self.close_connection = True
                    return
                body = json.dumps({"returncode": 0, "gateway": gateway.name}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.stopped = False
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        """Stop serving and close the socket: connections are refused from now on."""
        if not self.stopped:
            self.stopped = True
            self.shutdown()
            self.server_close()


@dataclass
class Front:
    """deploy/nginx.conf running in front of two stand-in gateways."""

    nginx: Nginx
    gateways: list[Gateway]

    def post(self, body: bytes = b"x", endpoint: str = "FindImage") -> tuple[int, Any]:
        """POST ``body`` to ``endpoint``: the HTTP status and the JSON answer."""
        req = urllib.request.Request(f"{self.nginx.url}/{endpoint}", data=body)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)


@pytest.fixture
def front(tmp_path: Path) -> Iterator[Front]:
    gateways = [Gateway("a"), Gateway("b")]
    try:
        with Nginx(_tool("nginx"), tmp_path, [g.server_address[1] for g in gateways]) as nginx:
            yield Front(nginx, gateways)
    finally:
        for g in gateways:
            g.stop()


BUSY = (200, {"returncode": 20015, "message": "system busy"})  # as the API answers it


def test_nginx_balances_over_both_gateways(front: Front) -> None:
    assert {front.post()[1]["gateway"] for _ in range(4)} == {"a", "b"}


def test_nginx_passes_a_post_on_when_a_gateway_refuses_it(front: Front) -> None:
    a, b = front.gateways
    b.stop()
    for endpoint in ("FindImage", "AddImage"):
        assert [front.post(endpoint=endpoint) for _ in range(3)] == [
            (200, {"returncode": 0, "gateway": "a"})] * 3
    tried_both = f"127.0.0.1:{b.server_address[1]}, 127.0.0.1:{a.server_address[1]}"
    assert tried_both in front.nginx.access_log.read_text()
    a.stop()
    assert front.post() == BUSY
    assert front.post(endpoint="RemoveImage") == BUSY


def test_nginx_health_checks_keep_503_when_no_gateway_answers(front: Front) -> None:
    for g in front.gateways:
        g.stop()
    for path in ("/readyz", "/health", "/healthz"):
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(front.nginx.url + path, timeout=10)
        assert (answer.value.code, json.load(answer.value)) == (503, BUSY[1])


@pytest.mark.parametrize("endpoint", ["FindImage", "GetImage", "GetImages", "GetOriginal",
                                      "GetChannels", "Statistics"])
def test_nginx_passes_a_read_on_when_its_gateway_dies_with_it(front: Front, endpoint: str
                                                             ) -> None:
    a, b = front.gateways
    b.hang_up = True  # takes the POST and dies, as a gateway can mid-request
    assert [front.post(endpoint=endpoint) for _ in range(4)] == [
        (200, {"returncode": 0, "gateway": "a"})] * 4
    assert b.posts == 1 and a.posts == 4


@pytest.mark.parametrize("endpoint", ["AddImage", "RemoveImage", "SetMetadata"])
def test_nginx_never_sends_a_write_twice(front: Front, endpoint: str) -> None:
    a, b = front.gateways
    b.hang_up = True
    answers = [front.post(endpoint=endpoint) for _ in range(4)]
    assert answers.count(BUSY) == 1
    assert a.posts + b.posts == len(answers) and b.posts == 1


def test_nginx_answers_an_oversized_upload_as_the_gateway_does(front: Front) -> None:
    too_large = 3 * 1024 * 1024 + 1  # past client_max_body_size 3m
    assert front.post(b"x" * too_large) == (
        200, {"returncode": 20006, "message": "file size limit exceeded"})
    assert sum(g.posts for g in front.gateways) == 0
