"""The app developer's guide (docs/app-developer.md) runs as written: its Python example
against the stack, and its fetch() example in Chromium from a page of another origin, which
reads the answer when CLOUDRECO_CORS_ORIGINS lists that origin and cannot otherwise."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from arq.connections import ArqRedis
from playwright.async_api import Error as BrowserError

from cloudreco import admin
from shared.settings import Settings
from tests.api import Api, User, own_gateway
from tests.browser import chromium
from tests.conftest import Shards
from tests.images import bench_photo, target

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "app-developer.md"
KEY_SECRET = "guide-key-secret-0123456789abcdef"


def _example(language: str) -> str:
    """The guide's first code block in ``language``."""
    found = re.search(rf"```{language}\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    assert found, f"no {language} example in {GUIDE}"
    return found.group(1)


async def _catalog(api: Api) -> User:
    """alice's "posters" with the building in it, and an app key for it."""
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    assert (await api.add(alice, "posters", "building", target("pub.building.0")))[
        "returncode"] == 0
    return User(await admin.create_key(api.db, "alice", KEY_SECRET, ["posters"], None),
                KEY_SECRET)


async def test_the_python_example_finds_the_image(
        api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    key = await _catalog(api)
    (tmp_path / "photo.jpg").write_bytes(bench_photo("q00048"))
    monkeypatch.chdir(tmp_path)
    for name, value in (("URL", api.url), ("USERNAME", key.name), ("SECRETKEY", key.secret)):
        monkeypatch.setenv(f"CLOUDRECO_{name}", value)
    code = compile(_example("python"), str(GUIDE), "exec")
    await asyncio.to_thread(exec, code, {})  # Client runs an event loop of its own
    assert capsys.readouterr().out == "building\n"


async def test_the_fetch_example_works_from_an_allowed_origin_only(
        settings: Settings, db: asyncpg.Pool, redis: ArqRedis, shards: Shards) -> None:
    async def blank(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>an app</title>",
                            content_type="text/html")

    other = web.Application()
    other.router.add_get("/", blank)
    pages = TestServer(other, host="127.0.0.1")
    await pages.start_server()
    # the same server is another origin by the name "localhost": one the gateway does not allow
    allowed = f"http://127.0.0.1:{pages.port}"
    settings = settings.model_copy(update={"cors_origins": allowed})
    try:
        async with own_gateway(settings, db, redis) as api, chromium() as browser:
            key = await _catalog(api)
            call = ("async ([api, username, secretkey, photo]) => {\n" + _example("js")
                    + "\nconst bytes = Uint8Array.from(atob(photo), (c) => c.charCodeAt(0));"
                    "\nreturn findImage(api, username, secretkey,"
                    " new Blob([bytes], {type: 'image/jpeg'}), 'posters'); }")
            args = [api.url.rstrip("/"), key.name, key.secret,
                    base64.b64encode(bench_photo("q00048")).decode()]
            page = await browser.new_page()
            await page.goto(f"{allowed}/")
            answer = await page.evaluate(call, args)
            assert (answer["identifier"], answer["channel"]) == ("building", "posters")

            await page.goto(f"http://localhost:{pages.port}/")
            with pytest.raises(BrowserError, match="Failed to fetch"):
                await page.evaluate(call, args)
    finally:
        await pages.close()
