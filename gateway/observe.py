"""What the gateway tells its operators about each request: a request id, an access log line
and the request metrics, and ``GET /metrics`` itself.

The request id is the client's ``X-Request-Id`` when it is sane, else a new one; it is set in
``shared.logs.REQUEST_ID`` while the request runs (so every log line of the request carries
it), sent with each matcher job of the request, and returned in the ``X-Request-Id`` header.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.keys import BACKEND, FAILURES, METRICS
from gateway.metrics import exposition
from gateway.replies import Answer
from shared.logs import REQUEST_ID

access_log = logging.getLogger("gateway.access")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_HEADER = "X-Request-Id"
# A client's id is kept when it is 1 to 128 visible ASCII characters: it goes into log lines
# and job payloads, so nothing long and no line breaks or spaces.
SANE_ID = re.compile(r"[!-~]{1,128}")
UNROUTED = "other"  # the endpoint label of paths without a route: labels stay few


def request_id(request: web.Request) -> str:
    """The request's id: the client's, if sane, else a new random one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if SANE_ID.fullmatch(given) else uuid.uuid4().hex


def endpoint(request: web.Request) -> str:
    """The path of the request's route (never the client's own path, which is unbounded)."""
    if request.match_info.http_exception is not None:
        return UNROUTED
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNROUTED


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run the request under its id, then count it and log one access line (method, path,
    result code, HTTP status, duration, client address, request id; no field values)."""
    rid = request_id(request)
    token = REQUEST_ID.set(rid)
    started = time.perf_counter()
    try:
        response = await handler(request)
        seconds = time.perf_counter() - started
        code = str(int(response.returncode)) if isinstance(response, Answer) else "-"
        request.app[METRICS].observe(endpoint(request), code, seconds)
        client = request.app[FAILURES].address(request)
        access_log.info("%s %s %s %d %.1f ms %s", request.method, request.path, code,
                        response.status, seconds * 1000, client,
                        extra={"method": request.method, "path": request.path,
                               "returncode": code, "status": response.status,
                               "duration_ms": round(seconds * 1000, 1), "client": client})
        response.headers[REQUEST_ID_HEADER] = rid
        return response
    finally:
        # requests of one keep-alive connection run in one task, one after another
        REQUEST_ID.reset(token)


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus's text format (see ``gateway/metrics.py``)."""
    backend = request.app[BACKEND]
    body = await exposition(request.app[METRICS].scraped(), backend.redis,
                            backend.settings.shards)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
