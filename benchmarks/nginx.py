"""deploy/nginx.conf run on this machine in front of local gateways, for the chaos benchmark and
the tests. nginx is a Debian package (``.ci/run`` installs it); nothing here needs root."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from cloudreco.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
# A `server` line of the gateways' upstream block; groups: its indent, the host name.
UPSTREAM_SERVER = re.compile(r"^(\s*)server ([\w.-]+):8080\b[^;]*;", re.MULTILINE)
START_TIMEOUT = 10.0  # seconds nginx gets to listen
# Whole request bodies (up to client_max_body_size) and answers stay in memory: nginx's
# temporary files would go to its packaged directories, which only root may write.
IN_MEMORY = "http {\n    client_body_buffer_size 3m;\n    proxy_max_temp_file_size 0;\n"


def nginx_binary() -> str | None:
    """The installed nginx (in /usr/sbin, which is not on every user's PATH), or None."""
    return shutil.which("nginx", path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin")


def local_config(listen: int, upstream_ports: list[int]) -> str:
    """deploy/nginx.conf listening on 127.0.0.1:``listen``, with the gateways' names (which
    resolve only inside Docker) replaced by local ports, one per ``server`` line.

    A port given more than once is one that several gateways share (SO_REUSEPORT, as
    ``cloudreco run`` starts them): its lines are never marked failed (``max_fails=0``), as
    nginx would otherwise do for 10 s after one error, though the next connection to the port
    reaches a gateway that still listens."""
    ports = iter(upstream_ports)

    def server(m: re.Match[str]) -> str:
        port = next(ports)
        shared = " max_fails=0" if upstream_ports.count(port) > 1 else ""
        return f"{m[1]}server 127.0.0.1:{port}{shared};"

    text, replaced = UPSTREAM_SERVER.subn(server, NGINX_CONF.read_text())
    if replaced != len(upstream_ports):
        raise ValueError(f"deploy/nginx.conf names {replaced} gateways, not "
                         f"{len(upstream_ports)}")
    text, replaced = re.subn(r"listen 8080;", f"listen 127.0.0.1:{listen};", text)
    if replaced != 1:
        raise ValueError("deploy/nginx.conf has no `listen 8080;`")
    return text.replace("http {\n", IN_MEMORY, 1)


def nginx_args(binary: str, conf: Path, prefix: Path) -> list[str]:
    """The command line that runs ``conf`` in the foreground, with its pid file and relative
    paths in ``prefix``."""
    return [binary, "-e", "stderr", "-p", str(prefix), "-c", str(conf),
            "-g", f"daemon off; pid {prefix / 'nginx.pid'};"]


class Nginx:
    """nginx with ``local_config`` in the folder ``prefix``, in the foreground of a child
    process: its access log (a line per request, with every gateway tried) in
    ``prefix/access.log``, its errors in ``prefix/error.log``."""

    def __init__(self, binary: str, prefix: Path, upstream_ports: list[int]) -> None:
        self.port = free_port()
        self.prefix = prefix
        prefix.mkdir(parents=True, exist_ok=True)
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(local_config(self.port, upstream_ports))
        self.args = nginx_args(binary, self.conf, prefix)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    def start(self) -> None:
        with self.access_log.open("ab") as out, (self.prefix / "error.log").open("ab") as err:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("nginx did not start: "
                                       + (self.prefix / "error.log").read_text()) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: nginx's fast shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Nginx:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
