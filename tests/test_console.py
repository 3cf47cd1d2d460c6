"""The management console at /console, driven in a real headless Chromium against the real
stack (gateway on a socket, Postgres, Redis, matcher shards): what a content manager does with
it, checked against what the API itself answers."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, ViewportSize, expect

from cloudreco.cli.sources import identifier_for
from gateway.pages import STATIC
from shared.codes import ResultCode
from tests.api import Api
from tests.browser import chromium
from tests.console_page import sign_in, try_photo
from tests.images import bench_photo, flat, target

WAIT = 20_000  # ms: an AddImage or FindImage on a busy 2-core machine takes seconds
# A benchmark photo and the catalog image it shows (truth.csv)
PHOTO, SHOWN = "q00000", "pub.Garden.1"


async def test_the_console_is_served_with_its_files_and_policy(api: Api) -> None:
    page = await api.client.get("/console")
    assert page.status == 200 and page.content_type == "text/html"
    assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'self'
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    html = await page.text()
    sources = re.findall(r'(?:src|href)="(/console/[^"]+)"', html)
    modules = [f"/console/{p.name}" for p in (STATIC / "console").glob("*.js")]
    for path in {*sources, *modules}:
        resp = await api.client.get(path)
        assert resp.status == 200, path
        assert resp.headers["Content-Type"].split("/")[0] in ("text", "image"), path
        assert "Content-Security-Policy" in resp.headers
    for missing in ("/console/nothing.js", "/console/..%2Fpages.py", "/console/"):
        resp = await api.client.get(missing)
        assert resp.status == 404, missing
        assert (await resp.json())["returncode"] == ResultCode.NOT_FOUND


@pytest.fixture
async def page(api: Api) -> AsyncIterator[Page]:
    """The console in Chromium; the test fails on any script error or failed load."""
    problems: list[str] = []
    async with chromium() as browser:
        page = await browser.new_page(viewport=ViewportSize(width=1280, height=900))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        await page.goto(api.url + "console")
        yield page
        await page.close()
    assert not problems, problems


async def _drop(page: Page, files: dict[str, bytes]) -> None:
    """Drop ``files`` on the drop zone, as a file manager would."""
    transfer = await page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, data] of files) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
            }
            return transfer;
        }""", [[name, base64.b64encode(data).decode()] for name, data in files.items()])
    await page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})


async def test_a_content_manager_works_a_channel_in_the_console(api: Api, page: Page) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    await api.channel(alice, "flyers")

    await sign_in(page, "alice", "not-the-key")
    await expect(page.locator("#sign-in-error")).to_have_text(
        re.compile(r"^20001 user secret key not correct\. Check"))
    await sign_in(page, alice.name, alice.secret)
    posters = page.get_by_role("button", name=re.compile("^posters"))
    await expect(posters).to_have_text(re.compile("0 images of 100"))
    await posters.click()
    await expect(posters).to_have_attribute("aria-current", "page")

    # add: one target, and a featureless image refused with 20013 in words
    await _drop(page, {"garden.jpg": target(SHOWN), "grey.jpg": flat(ext=".jpg")})
    refused = page.locator("#uploads li.refused")
    await expect(refused).to_have_text(
        re.compile(r"grey.*20013 image feature insufficient\. Too few distinct details"),
        timeout=WAIT)
    added = page.locator("#uploads li.added")
    await expect(added).to_have_count(1, timeout=WAIT)
    listed = await api.post("GetImages", {**alice.credentials, "channel": "posters"})
    [image] = listed["images"]
    assert image["identifier"] == "garden"
    assert await added.get_attribute("data-level") == str(image["level"])
    tile = page.locator('#grid .tile[data-identifier="garden"]')
    await expect(tile.locator(".level-text")).to_have_text(f"Level {image['level']} of 5")
    await expect(tile.locator(".ratio")).to_have_text("Match ratio 0.0 %")
    thumbnail = tile.locator(".thumb img")  # GetOriginal's thumbnail of the upload
    await expect(thumbnail).to_have_attribute("src", re.compile("^blob:"))
    sides = await thumbnail.evaluate("async (img) => { await img.decode();"
                                     " return [img.naturalWidth, img.naturalHeight]; }")
    assert min(sides) > 0 and max(sides) == 240
    await expect(posters).to_have_text(re.compile("1 image of 100"))

    # edit metadata
    # markup in metadata is shown as text, never run
    metadata = '{"url": "https://example.com/garden", "note": "<img src=x onerror=alert(1)>"}'
    await tile.get_by_role("button", name="Edit metadata").click()
    await page.get_by_label("JSON text; leave it empty for none").fill("{not json")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#edit-error")).to_have_text(re.compile("^20018 "))
    await page.get_by_label("JSON text; leave it empty for none").fill(metadata)
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#edit-dialog")).not_to_be_visible()
    read = await api.post("GetImage", {"channel": "posters", "identifier": "garden"})
    assert read["metadata"] == metadata

    await _try_photo(page)
    await expect(page.locator("#try-result")).to_contain_text(f"Metadata: {metadata}")
    assert await page.locator("main img:not([src^='blob:'])").count() == 0
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    await expect(page.locator(f'#chart rect[data-date="{today}"]')).to_have_attribute(
        "data-count", "1", timeout=WAIT)
    await expect(tile.locator(".ratio")).to_have_text("Match ratio 100.0 %")

    # remove, after confirming
    await tile.get_by_role("button", name="Remove").click()
    await page.locator("#remove-dialog").get_by_role("button", name="Remove").click()
    await expect(tile).to_have_count(0)
    await expect(posters).to_have_text(re.compile("0 images of 100"))
    listed = await api.post("GetImages", {**alice.credentials, "channel": "posters"})
    assert listed["totalcount"] == 0

    # an image kept without its original (added before originals were) has no picture
    await api.stored("flyers", ["legacy"])
    await page.get_by_role("button", name=re.compile("^flyers")).click()
    legacy = page.locator('#grid .tile[data-identifier="legacy"] .thumb')
    await expect(legacy).to_have_attribute("title", re.compile("^No picture: .* before"))

    # the key was in this tab's sessionStorage only, and signing out forgets it
    assert await page.evaluate("JSON.parse(sessionStorage.getItem('cloudreco.console'))") \
        == {"username": "alice", "secretkey": alice.secret}
    assert await page.evaluate("localStorage.length + document.cookie.length") == 0
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0


async def _try_photo(page: Page) -> None:
    """Search the benchmark photo of the target; its outline is drawn at the corners that the
    page's FindImage answered, and over the photo where it is shown."""
    async with page.expect_response(lambda r: r.url.endswith("/FindImage")) as response:
        await try_photo(page, bench_photo(PHOTO))
    answer = await (await response.value).json()
    assert (answer["returncode"], answer["identifier"]) == (0, "garden")
    outline = page.locator('#outline[data-found="garden"]')
    await expect(outline).to_have_count(1)
    points = (await outline.get_attribute("points") or "").split()
    drawn = [tuple(float(v) for v in p.split(",")) for p in points]
    assert drawn == [tuple(c) for c in answer["corners"]]

    photo = await page.locator("#try-photo").bounding_box()
    box = await outline.bounding_box()
    assert photo is not None and box is not None
    natural = await page.locator("#try-photo").evaluate("(img) => img.naturalWidth")
    stroke = float(await outline.evaluate("(p) => parseFloat(getComputedStyle(p).strokeWidth)"))
    scale = photo["width"] / natural
    xs, ys = [x for x, _ in drawn], [y for _, y in drawn]
    # the stroke, centred on the outline, reaches half its width past it
    expected = (photo["x"] + min(xs) * scale - stroke / 2,
                photo["y"] + min(ys) * scale - stroke / 2,
                (max(xs) - min(xs)) * scale + stroke, (max(ys) - min(ys)) * scale + stroke)
    got = (box["x"], box["y"], box["width"], box["height"])
    assert all(abs(a - b) < 1 for a, b in zip(got, expected, strict=True)), (got, expected)


async def test_the_console_names_files_as_cloudreco_add_does(api: Api, page: Page) -> None:
    names = ["poster.001.jpg", "home sweet home.jpeg", "Café à la carte.png", "x.jpg",
             ".hidden", "name.", "a:b c?.png", "ünïcödé-" * 8 + ".jpg", "長い名前" * 20 + ".png"]
    got = await page.evaluate(
        "async (names) => { const m = await import('/console/identifier.js');"
        " return names.map(m.identifierFor); }", names)
    assert got == [identifier_for(Path(n)) for n in names]
