"""``make screenshots``: docs/images/console.png, the console on a fresh local stack (a channel
of benchmark catalog images, a month of matches, a benchmark photo searched and outlined),
taken in the same headless Chromium as the browser tests. Not a test: run it after changing
the console's looks, and commit the picture."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from playwright.async_api import ViewportSize, expect

from cloudreco.client import Client
from cloudreco.embedded import running_postgres
from cloudreco.local import LocalStack
from gateway import catalog
from shared.db import create_pool
from tests.browser import chromium
from tests.console_page import sign_in, try_photo
from tests.images import bench_photo, png_chunk, raw_png, target

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "console.png"
MAX_BYTES = 200 * 1024  # README's pictures stay small
COLOURS = 256  # of the palette PNG: a screenshot's flat colours and a few photos
SAMPLE = 100_000  # pixels the palette is fitted on
CHANNEL = "posters"
# Catalog images of the benchmark; the photo searched (truth.csv) shows the first.
TARGETS = ["pub.Garden.1", "pub.Dune.0", "pub.Elephants.0", "pub.Flow.1", "pub.Aqua.3",
           "pub.home.0", "pub.fruits.0", "pub.building.0"]
PHOTO = "q00000"
HISTORY_DAYS = 30
VIEWPORT = ViewportSize(width=1240, height=800)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalStack(Path(tmp) / "data", shards=1)
        stack.start()
        try:
            secret = stack.cli("user", "create", "alice").strip().splitlines()[-1]
            stack.cli("channel", "create", "alice", CHANNEL, "--max-images", "500")
            with Client(stack.url, "alice", secret) as client:
                for name in TARGETS:
                    identifier = name.removeprefix("pub.").lower()
                    client.add_image(CHANNEL, identifier, target(name),
                                     metadata={"url": f"https://example.com/{identifier}"})
            asyncio.run(_history(stack))
            asyncio.run(_shoot(stack.url, secret))
        finally:
            stack.stop()
    size = OUT.stat().st_size
    print(f"{OUT}: {size // 1024} KiB")
    if size > MAX_BYTES:
        sys.exit(f"{OUT} is over {MAX_BYTES // 1024} KiB: narrow the viewport")


async def _history(stack: LocalStack) -> None:
    """A month of matches before today, counted as FindImage counts them."""
    dsn = running_postgres(Path(stack.env["CLOUDRECO_DATA_DIR"]) / "postgres")
    if dsn is None:
        raise RuntimeError("the stack's Postgres is not running")
    pool = await create_pool(dsn, max_size=2)
    try:
        channel = await catalog.channel_named(pool, CHANNEL)
        if channel is None:
            raise RuntimeError(f"no channel {CHANNEL}")
        rng = np.random.default_rng(7)
        today = dt.datetime.now(dt.UTC).date()
        for back in range(1, HISTORY_DAYS):
            day = today - dt.timedelta(days=back)
            weekly = 1.6 if day.weekday() >= 5 else 1.0
            for _ in range(int(rng.poisson(6 * weekly))):
                name = TARGETS[min(int(rng.exponential(2.0)), len(TARGETS) - 1)]
                await catalog.count_match(pool, channel.id, name.removeprefix("pub.").lower(),
                                          day)
    finally:
        await pool.close()


async def _shoot(url: str, secret: str) -> None:
    async with chromium() as browser:
        page = await browser.new_page(viewport=VIEWPORT)
        await page.goto(f"{url}/console")
        await sign_in(page, "alice", secret)
        await expect(page.locator("#grid .tile")).to_have_count(len(TARGETS))
        await try_photo(page, bench_photo(PHOTO))
        await expect(page.locator("#outline[data-found]")).to_have_count(1, timeout=30_000)
        await page.wait_for_load_state("networkidle")
        shot = await page.screenshot()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    decoded = cv2.imdecode(np.frombuffer(shot, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        sys.exit("Chromium's screenshot did not decode")
    OUT.write_bytes(_palette_png(decoded.astype(np.uint8)))


def _palette_png(bgr: npt.NDArray[np.uint8]) -> bytes:
    """``bgr`` as an 8-bit palette PNG, a third the size of the RGB one: ``COLOURS`` colours
    fitted by k-means on a sample of its pixels, each pixel the nearest of them."""
    pixels = bgr.reshape(-1, 3).astype(np.float32)
    sample = np.random.default_rng(0).choice(pixels, min(SAMPLE, len(pixels)), replace=False)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    labels = np.zeros((len(sample), 1), np.int32)
    _, _, centres = cv2.kmeans(sample, COLOURS, labels, criteria, 1, cv2.KMEANS_PP_CENTERS)
    index = np.concatenate([  # by blocks: a block's distances to every colour fit in memory
        ((block[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
        for block in np.array_split(pixels, max(1, len(pixels) // 65536))]).astype(np.uint8)
    height, width = bgr.shape[:2]
    rows = index.reshape(height, width)
    raw = b"".join(b"\0" + row.tobytes() for row in rows)  # filter 0 on every row
    palette = np.clip(np.rint(centres[:, ::-1]), 0, 255).astype(np.uint8).tobytes()
    return raw_png(width, height, zlib.compress(raw, 9), colour=3,  # 3: palette indices
                   extra=png_chunk(b"PLTE", palette))


if __name__ == "__main__":
    main()
