"""Whatever a client sends, the gateway answers a documented result code as JSON."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import time

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from arq.connections import ArqRedis

from cloudreco.embedded import free_port
from gateway.app import create_app
from shared.codes import ResultCode
from shared.settings import Settings
from tests.api import Api
from tests.conftest import Shards
from tests.images import target


async def _raw(api: Api, method: str, path: str, body: bytes = b"",
               content_type: str | None = None) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": content_type} if content_type else {}
    resp = await api.client.request(method, path, data=io.BytesIO(body), headers=headers)
    return resp.status, await resp.json()


async def test_unknown_endpoints_and_methods_answer_json(api: Api) -> None:
    status, body = await _raw(api, "POST", "/DeleteEverything")
    assert (status, body["returncode"]) == (404, ResultCode.NOT_FOUND)
    status, body = await _raw(api, "GET", "/FindImage")
    assert (status, body["returncode"]) == (405, ResultCode.NOT_FOUND)


@pytest.mark.parametrize(("body", "ctype"), [
    (b"garbage", "multipart/form-data"),  # no boundary
    (b"--xx\r\nno headers end", "multipart/form-data; boundary=xx"),
    (b'{"username": "alice"}', "application/json"),
    (b"", None),
])
async def test_malformed_bodies_answer_multipart_needed(api: Api, body: bytes,
                                                        ctype: str | None) -> None:
    for endpoint in ("/FindImage", "/GetImages"):
        status, answer = await _raw(api, "POST", endpoint, body, ctype)
        assert status == 200
        assert answer["returncode"] in (ResultCode.MULTIPART_NEEDED, ResultCode.FIELD_MISSING)


@pytest.mark.parametrize("ctype", ["application/x-www-form-urlencoded",
                                   "Application/X-WWW-Form-Urlencoded ; charset=UTF-8"])
async def test_a_media_type_is_read_whatever_its_case_and_parameters(api: Api, ctype: str
                                                                    ) -> None:
    body = b"username=nobody&secretkey=wrong&channel=posters"
    status, answer = await _raw(api, "POST", "/GetImages", body, ctype)
    assert (status, answer["returncode"]) == (200, ResultCode.BAD_SECRET)


async def test_huge_text_bodies_are_refused_without_reading_them(api: Api) -> None:
    body = b"username=" + b"a" * (4 << 20)
    status, answer = await _raw(api, "POST", "/GetImages", body,
                                "application/x-www-form-urlencoded")
    assert (status, answer["returncode"]) == (200, ResultCode.BAD_FIELD)


async def test_too_many_parts_and_non_utf8_fields_are_refused(api: Api) -> None:
    boundary = "b0undary"
    parts = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nv\r\n'.encode()
        for i in range(40))
    body = parts + f"--{boundary}--\r\n".encode()
    ctype = f"multipart/form-data; boundary={boundary}"
    assert (await _raw(api, "POST", "/GetImages", body, ctype))[1]["returncode"] == \
        ResultCode.BAD_FIELD
    latin = (f'--{boundary}\r\nContent-Disposition: form-data; name="username"\r\n\r\n'
             ).encode() + b"\xff\xfe\r\n" + f"--{boundary}--\r\n".encode()
    assert (await _raw(api, "POST", "/GetImages", latin, ctype))[1]["returncode"] == \
        ResultCode.BAD_FIELD


def _multipart(parts: list[tuple[bytes, bytes]], boundary: str = "b0undary") -> bytes:
    return b"".join(f"--{boundary}\r\nContent-Disposition: form-data; ".encode() + head
                    + b"\r\n\r\n" + body + b"\r\n" for head, body in parts
                    ) + f"--{boundary}--\r\n".encode()


async def test_a_form_of_32_parts_is_read(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    fields = [(f'name="{k}"'.encode(), v.encode())
              for k, v in {**alice.credentials, "channel": "posters"}.items()]
    fields += [(f'name="f{i}"'.encode(), b"v") for i in range(32 - len(fields))]
    ctype = "multipart/form-data; boundary=b0undary"
    assert (await _raw(api, "POST", "/GetImages", _multipart(fields), ctype))[1][
        "returncode"] == ResultCode.SUCCESS


@pytest.mark.parametrize("body", [
    b"username=%FF%FE&secretkey=x&channel=c",  # percent-escapes that are not UTF-8
    b"username=a&username=%FF",  # every occurrence of a name is checked, not only the first
    b"username=a&secretkey=b&" + b"&".join(b"f%d=v" % i for i in range(40)),
])
async def test_urlencoded_fields_follow_the_multipart_rules(
        api: Api, body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    status, answer = await _raw(api, "POST", "/GetImages", body,
                                "application/x-www-form-urlencoded")
    assert (status, answer["returncode"]) == (200, ResultCode.BAD_FIELD)


async def test_a_malformed_content_disposition_leaves_its_field_out(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    ctype = "multipart/form-data; boundary=b0undary"
    for i in range(3):  # aiohttp warns of each, with the client's text (see forms.py)
        body = _multipart([(f'name\xff{i}="username"'.encode(), b"alice"),
                           (f'name="image"; filename="{i}\\"'.encode(), b"\xff\xd8\xff")])
        status, answer = await _raw(api, "POST", "/FindImage", body, ctype)
        assert (status, answer["returncode"]) == (200, ResultCode.FIELD_MISSING)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_charset_part_is_malformed_multipart(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    ctype = "multipart/form-data; boundary=b0undary"
    for charset in (b"utf-8", b"x" * 40):  # aiohttp reads neither well; the long one raised
        body = _multipart([(b'name="_charset_"', charset), (b'name="username"', b"alice")])
        status, answer = await _raw(api, "POST", "/GetImages", body, ctype)
        assert (status, answer["returncode"]) == (200, ResultCode.MULTIPART_NEEDED)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_an_image_part_sent_to_a_text_endpoint_is_a_text_field(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    fields = {**alice.credentials, "channel": "posters"}
    # chunked, so that no Content-Length refuses it before the parts are read
    data = aiohttp.FormData(fields)
    data.add_field("image", io.BytesIO(b"\xff\xd8\xff" + b"\x00" * (3 << 20)), filename="a.jpg")
    resp = await api.client.post("/GetImages", data=data, chunked=True)
    assert (await resp.json())["returncode"] == ResultCode.BAD_FIELD


async def _exchange(port: int, head: bytes, body: bytes) -> tuple[bytes, float]:
    """Send ``head``, then ``body`` in a packet of its own; the answer and its delay."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(body)
        start = time.monotonic()
        answer = await asyncio.wait_for(reader.read(65536), 10)
        return answer, time.monotonic() - start
    finally:
        writer.close()


_URLENCODED = (b"POST /GetImages HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/x-www-form-urlencoded\r\n")
_GZIPPED = gzip.compress(b"username=alice", mtime=0)


@pytest.mark.parametrize(("headers", "body", "at_once"), [
    # aiohttp would have raised its error where the request never saw it: no answer ever
    (b"Content-Encoding: deflate\r\nContent-Length: 1\r\n", b"x", True),
    (b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(_GZIPPED), _GZIPPED, True),
    (b"Transfer-Encoding: chunked\r\n", b"zz\r\nusername=alice\r\n0\r\n\r\n", False),
    (b"Content-Length: 100\r\n", b"username=alice", False),  # and then nothing
])
async def test_a_compressed_broken_or_stalled_body_answers_multipart_needed(
        settings: Settings, db: asyncpg.Pool, redis: ArqRedis, headers: bytes, body: bytes,
        at_once: bool, caplog: pytest.LogCaptureFixture) -> None:
    quick = settings.model_copy(update={"body_timeout": 1.0})
    server = TestServer(create_app(quick, db=db, redis=redis))
    await server.start_server()
    try:
        answer, delay = await _exchange(server.port, _URLENCODED + headers + b"\r\n", body)
    finally:
        await server.close()
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["returncode"] == \
        ResultCode.MULTIPART_NEEDED
    assert delay < 0.5 if at_once else 0.5 < delay < 3
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_requests_aiohttp_cannot_parse_are_logged_at_info(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.server")
    assert api.client.port is not None
    answer, _ = await _exchange(api.client.port, _URLENCODED + b"Bad Header\r\n\r\n", b"")
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r for r in caplog.records if r.name == "aiohttp.server" and r.levelname == "INFO"]


async def test_concurrent_adds_never_overfill_a_channel(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "small", max_images=2)
    names = ["pub.building.0", "pub.home.0", "pub.fruits.0", "pub.board.0"]
    answers = await asyncio.gather(*(api.add(alice, "small", f"img{i}", target(n))
                                     for i, n in enumerate(names)))
    codes = sorted(a["returncode"] for a in answers)
    assert codes == [0, 0, ResultCode.TOO_MANY_IMAGES, ResultCode.TOO_MANY_IMAGES]
    listed = await api.post("GetImages", {**alice.credentials, "channel": "small"})
    assert listed["totalcount"] == 2


async def test_readiness_reports_each_shards_live_replicas(api: Api, shards: Shards) -> None:
    for path in ("/readyz", "/health"):
        resp = await api.client.get(path)
        assert (resp.status, (await resp.json())["replicas"]) == (200, [1, 1])
    await shards.stop(1)
    for path in ("/readyz", "/health"):
        resp = await api.client.get(path)
        body = await resp.json()
        assert (resp.status, body["returncode"], body["replicas"]) == \
            (503, ResultCode.SYSTEM_BUSY, [1, 0])
        assert body["reasons"] == ["shard 1 has no live replica"]
    resp = await api.client.get("/healthz")  # the gateway itself is alive
    assert resp.status == 200


async def _ask(api: Api, endpoint: str, fields: dict[str, str]) -> int:
    answer = await api.post(endpoint, fields)
    code: int = answer["returncode"]
    return code


@pytest.mark.parametrize("position", ["²", "٣", "1e3", "-1", " 1"])
async def test_a_position_that_is_not_plain_digits_is_a_bad_field(
        api: Api, position: str, caplog: pytest.LogCaptureFixture) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    fields = {**alice.credentials, "channel": "posters", "position": position}
    assert await _ask(api, "GetImages", fields) == ResultCode.BAD_FIELD
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_metadata_nested_past_any_parser_is_bad_metadata(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    deep = "[" * 30_000 + "]" * 30_000
    answer = await api.add(alice, "posters", "deep", target("pub.home.0"), metadata=deep)
    assert answer["returncode"] == ResultCode.BAD_METADATA
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.parametrize("field", ["username", "secretkey", "channel", "identifier"])
async def test_a_nul_character_in_a_field_is_a_bad_field(
        api: Api, field: str, caplog: pytest.LogCaptureFixture) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    fields = {**alice.credentials, "channel": "posters", "identifier": "garden"}
    fields[field] += "\x00"
    assert await _ask(api, "RemoveImage", fields) == ResultCode.BAD_FIELD
    metadata = {**alice.credentials, "channel": "posters", "identifier": "garden",
                "metadata": '{"a": "\x00"}'}
    assert await _ask(api, "RemoveImage", metadata) == ResultCode.BAD_METADATA
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_client_that_hangs_up_mid_upload_is_logged_at_info(
        settings: Settings, db: asyncpg.Pool, redis: ArqRedis,
        caplog: pytest.LogCaptureFixture) -> None:
    # served as `cloudreco gateway` serves (aiohttp's test server cancels handlers instead)
    caplog.set_level(logging.INFO, logger="gateway")
    runner = web.AppRunner(create_app(settings, db=db, redis=redis))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        head = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
        writer.write(b"POST /FindImage HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n\r\n" + head
                     + b"\xff\xd8" + b"x" * 100_000)
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()
        for _ in range(100):
            if any("went away" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    assert [r.levelname for r in caplog.records if "went away" in r.getMessage()] == ["INFO"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
