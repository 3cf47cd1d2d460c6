"""The gateway's web pages in a real headless Chromium: /scan finds a target in what a (fake)
camera shows and outlines it, /docs lists the API; neither loads anything from elsewhere.

With ``CLOUDRECO_SCREENSHOTS=DIR`` the scan test also saves DIR/scan.png (``make
screenshots`` writes docs/images/ so)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import asyncpg
import cv2
import numpy as np
from arq.connections import ArqRedis
from playwright.async_api import Page, Request, Response, expect

from cloudreco import admin
from shared.codes import ResultCode
from shared.settings import Settings
from tests.api import Api, User, own_gateway
from tests.browser import chromium
from tests.camera import fake_camera
from tests.images import bench_photo, target

TARGET, PHOTO = "pub.building.0", "q00048"  # an easy benchmark photo of that target
METADATA = '{"title": "Office building", "url": "https://example.com/building"}'
KEY_SECRET = "scan-page-key-secret-0123456789abcdef"
CORNER_TOLERANCE = 6.0  # px: the page sends its own JPEG of the video frame, not the photo
SCREENSHOT_BYTES = 200_000  # the README's picture stays small


async def _scan_page(api: Api, tmp_path: Path, page_of: str, rate_limit: float | None = None
                     ) -> tuple[User, bytes, list[str]]:
    """alice's channel "posters" holding the target, an app key for it (with ``rate_limit``),
    the photo, and the Chromium flags of a camera that shows the photo."""
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    added = await api.add(alice, "posters", "building", target(TARGET), metadata=METADATA)
    assert added["returncode"] == 0, added
    key = User(await admin.create_key(api.db, "alice", KEY_SECRET, ["posters"], rate_limit),
               KEY_SECRET)
    photo = bench_photo(PHOTO)
    return key, photo, fake_camera(photo, tmp_path / f"{page_of}.y4m")


def _same_origin(page: Page, base: str) -> list[str]:
    """The URLs of the page's requests that went anywhere but ``base`` (filled as it runs)."""
    elsewhere: list[str] = []

    def seen(request: Request) -> None:
        if not request.url.startswith(base):
            elsewhere.append(request.url)

    page.on("request", seen)
    return elsewhere


async def test_scan_is_served_with_a_policy_that_runs_only_its_own_files(api: Api) -> None:
    for path in ("/scan", "/scan/scan.js"):
        policy = (await api.client.get(path)).headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
        assert "unsafe" not in policy and "script-src" not in policy, path


async def test_scan_outlines_the_target_the_camera_shows_and_shows_its_metadata(
        api: Api, tmp_path: Path) -> None:
    key, photo, camera = await _scan_page(api, tmp_path, "scan")
    answer = await api.find(key, photo, "posters")
    assert answer["identifier"] == "building"

    async with chromium(camera) as browser:
        page = await browser.new_page(viewport={"width": 720, "height": 780})
        elsewhere = _same_origin(page, api.url)
        await page.goto(f"{api.url}scan#username={key.name}&secretkey={key.secret}"
                        "&channel=posters")
        await page.wait_for_selector("body[data-state=found]")
        assert await page.text_content("#identifier") == "building"
        assert '"title": "Office building"' in (await page.text_content("#metadata") or "")
        points = await page.get_attribute("#outline", "points") or ""
        drawn = np.array([[float(v) for v in p.split(",")] for p in points.split()])
        # the video is the photo's size, so its pixels are the photo's
        assert await page.get_attribute("#overlay", "viewBox") == "0 0 640 480"
        assert np.abs(drawn - np.array(answer["corners"])).max() < CORNER_TOLERANCE
        outline = await page.locator("#outline").bounding_box()
        video = await page.locator("#video").bounding_box()
        assert outline is not None and video is not None and outline["width"] > 100
        assert video["x"] <= outline["x"] and outline["x"] + outline["width"] <= (
            video["x"] + video["width"])
        if os.environ.get("CLOUDRECO_SCREENSHOTS"):
            _save_screenshot(await page.screenshot(),
                             Path(os.environ["CLOUDRECO_SCREENSHOTS"]) / "scan.png")
    assert elsewhere == []


def _save_screenshot(png: bytes, path: Path) -> None:
    """``png`` with its colours reduced until it is under SCREENSHOT_BYTES (a camera picture
    is noise to PNG's compression)."""
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    for step in (1, 8, 16, 32):
        ok, out = cv2.imencode(".png", (img // step) * step + step // 2 if step > 1 else img,
                               [cv2.IMWRITE_PNG_COMPRESSION, 9])
        assert ok
        if len(out) < SCREENSHOT_BYTES:
            break
    assert len(out) < SCREENSHOT_BYTES, len(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out.tobytes())


async def test_scan_asks_one_frame_at_a_time_and_less_often_when_limited(
        api: Api, tmp_path: Path) -> None:
    key, _, camera = await _scan_page(api, tmp_path, "limited", rate_limit=1)
    events: list[tuple[str, float]] = []
    answers: list[Response] = []

    def sent(request: Request) -> None:
        if request.url.endswith("/FindImage"):
            events.append(("sent", time.monotonic()))

    def answered(response: Response) -> None:
        if response.url.endswith("/FindImage"):
            events.append(("answered", time.monotonic()))
            answers.append(response)

    async with chromium(camera) as browser:
        page = await browser.new_page()
        page.on("request", sent)
        page.on("response", answered)
        await page.goto(f"{api.url}scan#username={key.name}&secretkey={key.secret}")
        limited = ResultCode.RATE_LIMITED
        await expect(page.locator("#error")).to_have_text(f"{int(limited)} {limited.message}",
                                                          timeout=30_000)
        await page.wait_for_selector("body[data-state=found]")
        codes = [(await a.json())["returncode"] for a in answers]
    # never two requests at once: each is sent after the answer to the one before
    kinds = [kind for kind, _ in events]
    assert kinds[: 2 * len(codes)] == ["sent", "answered"] * len(codes)
    # the pause after an answer: 300 ms, doubled after a 20022
    pauses = [events[2 * i + 2][1] - events[2 * i + 1][1] for i in range(len(codes) - 1)]
    after = {code: min(p for c, p in zip(codes, pauses, strict=False) if c == code)
             for code in (0, limited)}
    assert after[0] >= 0.28 and after[limited] >= 0.58, (codes, pauses)


async def test_scan_shows_a_refusal_with_its_code_and_stops(api: Api, tmp_path: Path) -> None:
    key, _, camera = await _scan_page(api, tmp_path, "refused")
    async with chromium(camera) as browser:
        page = await browser.new_page()
        await page.goto(f"{api.url}scan?username={key.name}&secretkey=wrong-secret")
        await page.wait_for_selector("body[data-state=stopped]")
        bad = ResultCode.BAD_SECRET
        assert await page.text_content("#error") == f"{int(bad)} {bad.message}"
        assert await page.is_visible("#key")  # the form, to give another key

        # a user's own secret is refused by the page itself: nothing is sent
        sent: list[str] = []
        page.on("request", lambda request: sent.append(request.url))
        await page.fill("input[name=username]", "alice")
        await page.fill("input[name=secretkey]", "alice-secret-0123456789")
        await page.click("button[type=submit]")
        await expect(page.locator("#error")).to_contain_text("ak_")
        assert sent == []


async def test_docs_lists_every_endpoint_from_the_packaged_swagger_ui(
        settings: Settings, db: asyncpg.Pool, redis: ArqRedis) -> None:
    async with own_gateway(settings, db, redis) as api, chromium() as browser:
        described = (await (await api.client.get("/openapi.json")).json())["paths"]
        page = await browser.new_page()
        elsewhere = _same_origin(page, api.url)
        await page.goto(f"{api.url}docs")
        await page.wait_for_selector(".opblock-summary-path")
        listed = await page.eval_on_selector_all(
            ".opblock-summary-path", "nodes => nodes.map(n => n.dataset.path)")
    assert sorted(listed) == sorted(described)
    assert "/FindImage" in listed
    assert elsewhere == []
