"""The gateway application: routes, error handling, and the resources it opens and closes."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from aiohttp import web
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from gateway import handlers, observe, pages
from gateway.auth import FailureLimit
from gateway.backend import Backend
from gateway.cors import allow_origins
from gateway.forms import FORM_OVERHEAD, SERVER_OPTIONS
from gateway.keys import BACKEND, DB, FAILURES, METRICS, OPENAPI, SETTINGS, THUMBNAILS
from gateway.metrics import RequestMetrics
from gateway.openapi import describe
from gateway.quiet import quiet_client_faults
from gateway.replies import ApiError, ClientGone, reply
from gateway.thumbnails import Thumbnails
from shared.cluster import shard_map
from shared.codes import ResultCode
from shared.db import create_pool
from shared.queue import connect
from shared.settings import Settings

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ROUTES: dict[str, Handler] = {
    "/AddImage": handlers.add_image,
    "/RemoveImage": handlers.remove_image,
    "/GetImages": handlers.get_images,
    "/GetImage": handlers.get_image,
    "/Statistics": handlers.statistics,
    "/FindImage": handlers.find_image,
    "/GetChannels": handlers.get_channels,
    "/SetMetadata": handlers.set_metadata,
    "/GetOriginal": handlers.get_original,
}


@web.middleware
async def answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a documented result code: no request gets a 500."""
    try:
        return await handler(request)
    except ClientGone:
        log.info("%s %s: the client went away before its request was read",
                 request.method, request.path)
        return reply(ResultCode.BAD_FIELD)
    except ApiError as e:
        return reply(e.code)
    except web.HTTPNotFound:
        return reply(ResultCode.NOT_FOUND, status=404)
    except web.HTTPMethodNotAllowed:
        return reply(ResultCode.NOT_FOUND, status=405)
    except web.HTTPRequestEntityTooLarge:
        return reply(ResultCode.FILE_TOO_LARGE)
    except web.HTTPException as e:
        return reply(ResultCode.BAD_FIELD, status=e.status)
    except (ConnectionError, TimeoutError, OSError, asyncpg.PostgresError,
            asyncpg.InterfaceError, asyncpg.InternalClientError, RedisError) as e:
        log.error("%s %s: backend failure: %r", request.method, request.path, e)
        return reply(ResultCode.SYSTEM_BUSY)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return reply(ResultCode.SYSTEM_BUSY)


def create_app(settings: Settings, *, db: asyncpg.Pool | None = None,
               redis: ArqRedis | None = None) -> web.Application:
    """The gateway. ``db`` and ``redis`` are used as given (and left open) when passed;
    otherwise they are opened from ``settings`` and closed with the app."""
    quiet_client_faults()
    app = web.Application(middlewares=[observe.observe, answer_errors],
                          handler_args=SERVER_OPTIONS,
                          client_max_size=settings.max_image_bytes + FORM_OVERHEAD)
    app[SETTINGS] = settings
    app[METRICS] = RequestMetrics()
    app[OPENAPI] = json.dumps(describe(settings)).encode()

    async def resources(app: web.Application) -> AsyncIterator[None]:
        pool = db
        if pool is None:
            assert settings.database_url is not None, "CLOUDRECO_DATABASE_URL is not set"
            pool = await create_pool(settings.database_url, max_size=20)
        queue = redis
        if queue is None:
            assert settings.redis_url is not None, "CLOUDRECO_REDIS_URL is not set"
            queue = await connect(settings.redis_url)
        await shard_map(pool, settings.shards)  # refuses to serve under another shard count
        app[DB] = pool
        app[BACKEND] = Backend(queue, settings)
        app[FAILURES] = FailureLimit(queue, settings.auth_failure_limit,
                                     settings.trusted_networks)
        app[THUMBNAILS] = Thumbnails(settings)
        yield
        app[THUMBNAILS].close()
        if redis is None:
            await queue.aclose()
        if db is None:
            await pool.close()

    app.cleanup_ctx.append(resources)
    api = [app.router.add_post(path, handler) for path, handler in ROUTES.items()]
    api.append(app.router.add_get("/openapi.json", handlers.openapi))
    allow_origins(app, settings.cors_origin_list, api)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/health", handlers.readyz)
    app.router.add_get("/metrics", observe.metrics)
    pages.add_pages(app)
    return app


def main(settings: Settings) -> None:
    """Process entry point: serve HTTP on ``settings.host:port`` until SIGINT or SIGTERM.

    The port is opened with SO_REUSEPORT, so that several gateways of one machine share it
    (``cloudreco run`` starts ``settings.gateways``): Linux spreads new connections over the
    listening processes, and a gateway that dies takes only its own connections with it.
    The port is bound once the app's resources are open, so no connection reaches a gateway
    that cannot serve it yet."""
    web.run_app(create_app(settings), host=settings.host, port=settings.port,
                reuse_port=True, print=None, access_log=None)
