"""The endpoints of the API, POST /<Name>: the seed's six, GetOriginal, and GetChannels and
SetMetadata, which a console needs and the seed lacks."""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg
from aiohttp import web
from redis.exceptions import RedisError

from gateway import auth, catalog, validate
from gateway.auth import Caller
from gateway.catalog import Channel
from gateway.forms import Form, read_form
from gateway.keys import BACKEND, DB, FAILURES, OPENAPI, SETTINGS, THUMBNAILS
from gateway.replies import ApiError, ImageReply, RawJson, reply
from shared import changes
from shared.cluster import shard_of
from shared.codes import ResultCode
from shared.jobs import AddImage


async def _form(request: web.Request, *, takes_image: bool) -> Form:
    settings = request.app[SETTINGS]
    return await read_form(request, takes_image=takes_image,
                           max_image_bytes=settings.max_image_bytes,
                           body_timeout=settings.body_timeout)


async def _caller(request: web.Request, form: Form, *, app_keys: bool = False) -> Caller:
    """Who sent ``form``'s credentials: 20001 unless they are an owner's secret, or an app
    key where ``app_keys`` (FindImage and GetImage); 20023 after too many failures."""
    username, secret = form.required("username"), form.required("secretkey")
    failures = request.app[FAILURES]
    address = failures.address(request)
    if await failures.exceeded(address, username):
        raise ApiError(ResultCode.AUTH_LIMITED)
    caller = await auth.authenticate(request.app[DB], username, secret)
    if caller is None:
        await failures.failed(address, username)
        raise ApiError(ResultCode.BAD_SECRET)
    if caller.is_app_key and not app_keys:
        raise ApiError(ResultCode.BAD_SECRET)
    return caller


async def _channel(db: asyncpg.Pool, name: str, caller: Caller | None) -> Channel:
    """The named channel; ``caller`` must be allowed to use it unless that is None."""
    channel = await catalog.channel_named(db, name)
    if channel is None:
        raise ApiError(ResultCode.CHANNEL_NOT_FOUND)
    if caller is not None and not caller.may_use(channel):
        raise ApiError(ResultCode.NOT_YOUR_CHANNEL)
    return channel


async def add_image(request: web.Request) -> web.Response:
    """Register a target image in a channel; answers its ``level``."""
    db, backend = request.app[DB], request.app[BACKEND]
    form = await _form(request, takes_image=True)
    caller = await _caller(request, form)
    channel = await _channel(db, form.required("channel"), caller)
    identifier = validate.identifier(form.required("identifier"))
    metadata = validate.metadata(form.optional("metadata"))
    image = form.required_image()
    # Cheap checks before the costly extraction; the matcher repeats them atomically.
    if await catalog.image(db, channel.id, identifier) is not None:
        raise ApiError(ResultCode.IDENTIFIER_TAKEN)
    if channel.image_count >= channel.max_images:
        raise ApiError(ResultCode.TOO_MANY_IMAGES)
    shard = shard_of(channel.id, identifier, backend.settings.shards)
    result = await backend.add(AddImage(channel.id, identifier, metadata, shard, image, 0.0))
    if result.code != ResultCode.SUCCESS:
        raise ApiError(ResultCode(result.code))
    return reply(level=result.level)


async def remove_image(request: web.Request) -> web.Response:
    """Remove a target; once this answers 0 no FindImage returns it (Postgres has the last
    word on every answer, and the replicas drop it as they follow the shard's log)."""
    db = request.app[DB]
    form = await _form(request, takes_image=False)
    caller = await _caller(request, form)
    channel = await _channel(db, form.required("channel"), caller)
    if not await catalog.delete_image(db, channel.id, form.required("identifier")):
        raise ApiError(ResultCode.IDENTIFIER_NOT_FOUND)
    return reply()


async def get_images(request: web.Request) -> web.Response:
    """A page of the channel's images, ordered by identifier, from ``position``."""
    db = request.app[DB]
    form = await _form(request, takes_image=False)
    caller = await _caller(request, form)
    channel = await _channel(db, form.required("channel"), caller)
    position = validate.position(form.optional("position"))
    total, images = await catalog.images_page(db, channel.id, position)
    return reply(totalcount=total, images=images)


async def get_image(request: web.Request) -> web.Response:
    """One image's identifier, metadata and level. Credentials are optional (a client app
    reads a recognised target's metadata); when sent, they are checked, and an app key's
    are accepted. Anonymous lookups that name no channel or image count as failed
    authentications of the client's address, so that names cannot be listed by guessing."""
    db = request.app[DB]
    form = await _form(request, takes_image=False)
    if form.optional("username") or form.optional("secretkey"):
        caller = await _caller(request, form, app_keys=True)
        row = await _image(db, form, caller)
    else:
        failures = request.app[FAILURES]
        address = failures.address(request)
        if await failures.exceeded(address, None):
            raise ApiError(ResultCode.AUTH_LIMITED)
        try:
            row = await _image(db, form, None)
        except ApiError as e:
            if e.code in (ResultCode.CHANNEL_NOT_FOUND, ResultCode.IDENTIFIER_NOT_FOUND):
                await failures.failed(address, None)
            raise
    return reply(identifier=row["identifier"], metadata=row["metadata"], level=row["level"])


async def _image(db: asyncpg.Pool, form: Form, caller: Caller | None) -> asyncpg.Record:
    channel = await _channel(db, form.required("channel"), caller)
    row = await catalog.image(db, channel.id, form.required("identifier"))
    if row is None:
        raise ApiError(ResultCode.IDENTIFIER_NOT_FOUND)
    return row


async def get_original(request: web.Request) -> web.Response:
    """An image as it was uploaded, byte for byte with its own media type; or, with
    ``maxside``, a JPEG thumbnail no larger than that on its long side. The owner's
    credentials only (an app key answers 20001); 20024 for an image added before originals
    were kept. Failures answer JSON as every endpoint does."""
    db = request.app[DB]
    form = await _form(request, takes_image=False)
    caller = await _caller(request, form)
    channel = await _channel(db, form.required("channel"), caller)
    max_side = validate.max_side(form.optional("maxside"))
    found = await catalog.original(db, channel.id, form.required("identifier"))
    if found is None:
        raise ApiError(ResultCode.IDENTIFIER_NOT_FOUND)
    if found.data is None or found.media_type is None:
        raise ApiError(ResultCode.NO_ORIGINAL)
    if max_side is None:
        return ImageReply(found.data, found.media_type)
    return ImageReply(await request.app[THUMBNAILS].make(found.data, max_side), "image/jpeg")


async def statistics(request: web.Request) -> web.Response:
    """Daily match counts: per channel and day, or per identifier and day within a channel;
    at most ``catalog.STATISTICS_PAGE`` records from ``position``, ``truncated`` when more
    follow."""
    db = request.app[DB]
    form = await _form(request, takes_image=False)
    caller = await _caller(request, form)
    start, end = validate.date_range(form.required("startdate"), form.required("enddate"))
    position = validate.position(form.optional("position"))
    username = form.required("username")
    name, identifier = form.optional("channel"), form.optional("identifier")
    if name is None:
        if identifier is not None:
            raise ApiError(ResultCode.FIELD_MISSING)  # an identifier is only unique in a channel
        page = await catalog.daily_by_channel(db, caller.user_id, start, end, position)
        return reply(username=username, records=RawJson(page.json), truncated=page.truncated)
    channel = await _channel(db, name, caller)
    if identifier is not None and not await catalog.identifier_known(db, channel.id, identifier):
        raise ApiError(ResultCode.IDENTIFIER_NOT_FOUND)
    page = await catalog.daily_by_identifier(db, channel.id, start, end, identifier, position)
    return reply(username=username, channel=channel.name, records=RawJson(page.json),
                 truncated=page.truncated)


async def find_image(request: web.Request) -> web.Response:
    """Which target of the channel (or of all the user's channels) is in the photo."""
    db, backend = request.app[DB], request.app[BACKEND]
    form = await _form(request, takes_image=True)
    if await backend.saturated():
        raise ApiError(ResultCode.SYSTEM_BUSY)
    caller = await _caller(request, form, app_keys=True)
    name = form.optional("channel")
    channels = ([await _channel(db, name, caller)] if name
                else [c for c in await catalog.user_channels(db, caller.user_id)
                      if caller.may_use(c)])
    image = form.required_image()
    if await backend.over_rate(*caller.find_limit(backend.settings.find_rate_limit)):
        raise ApiError(ResultCode.RATE_LIMITED)
    positions = await changes.heads(db, backend.settings.shards)
    extracted, found = await backend.find(image, [c.id for c in channels], positions)
    if extracted.code != ResultCode.SUCCESS:
        raise ApiError(ResultCode(extracted.code))
    level = None if name else extracted.level  # the seed answers level only without channel
    if not found:
        return reply(level=level)
    allowed = {c.id for c in channels}
    rows = await catalog.images_by_id(db, [m.image_id for m in found])
    for match in found:
        # Postgres has the last word: a shard's index may still hold a just-removed image.
        row = rows.get(match.image_id)
        if row is None or row["channel_id"] not in allowed:
            continue
        await catalog.count_match(db, row["channel_id"], row["identifier"],
                                  dt.datetime.now(dt.UTC).date())
        return reply(identifier=row["identifier"], channel=row["channel"],
                     metadata=row["metadata"], score=match.score, corners=match.corners,
                     level=level)
    return reply(level=level)


async def get_channels(request: web.Request) -> web.Response:
    """The caller's channels by name, each with its image count and limit (the seed has no
    way to list them; Statistics names only channels with matches)."""
    form = await _form(request, takes_image=False)
    caller = await _caller(request, form)
    channels = await catalog.user_channels(request.app[DB], caller.user_id)
    return reply(channels=[{"channel": c.name, "imagecount": c.image_count,
                            "maximages": c.max_images} for c in channels])


async def set_metadata(request: web.Request) -> web.Response:
    """Replace an image's metadata, which the seed sets only at AddImage; a form without
    ``metadata`` leaves the image none, as AddImage would. FindImage and GetImage answer
    the new metadata from the next request on (it is read from Postgres, not the index)."""
    db = request.app[DB]
    form = await _form(request, takes_image=False)
    caller = await _caller(request, form)
    channel = await _channel(db, form.required("channel"), caller)
    identifier = form.required("identifier")
    metadata = validate.metadata(form.optional("metadata"))
    if not await catalog.set_metadata(db, channel.id, identifier, metadata):
        raise ApiError(ResultCode.IDENTIFIER_NOT_FOUND)
    return reply()


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 while the gateway process serves (liveness)."""
    return reply()


async def openapi(request: web.Request) -> web.Response:
    """``GET /openapi.json``: the OpenAPI 3 description of this API (gateway/openapi.py)."""
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


READY_TIMEOUT = 2.0  # seconds each readiness check may take


async def readyz(request: web.Request) -> web.Response:
    """``GET /readyz`` (and ``/health``): 200 when Postgres and Redis answer and every shard
    has a live replica with its index loaded, else 503 with 20015 and what is missing. For
    load balancers, orchestrators and scripts that wait for the stack."""
    reasons: list[str] = []
    live: list[int] = []
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            live = await request.app[BACKEND].live_replicas()
        reasons += [f"shard {s} has no live replica" for s, n in enumerate(live) if not n]
    except (ConnectionError, TimeoutError, OSError, RedisError) as e:
        reasons.append(f"redis unreachable: {e!r}")
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await request.app[DB].fetchval("SELECT 1")
    except (ConnectionError, TimeoutError, OSError, asyncpg.PostgresError,
            asyncpg.InterfaceError) as e:
        reasons.append(f"postgres unreachable: {e!r}")
    if reasons:
        return reply(ResultCode.SYSTEM_BUSY, status=503, replicas=live, reasons=reasons)
    return reply(replicas=live)
