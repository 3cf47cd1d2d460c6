"""A real headless Chromium for the page tests, driven by Playwright.

The browser is Debian's ``chromium`` (``.ci/run`` installs it), or the one named by
``CLOUDRECO_CHROMIUM``; Playwright's own browser downloads are never used. Where no Chromium is
installed the tests that ask for one skip themselves, saying why.
"""

import os
import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

# Without the background-networking flags Chromium keeps trying hosts this network refuses.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str:
    """The Chromium executable, or a skip of the calling test with the reason."""
    named = os.environ.get("CLOUDRECO_CHROMIUM")
    found = named or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).exists():
        pytest.skip("Chromium not installed (.ci/run installs Debian's chromium as root)")
    return found


@asynccontextmanager
async def chromium(extra_flags: Sequence[str] = ()) -> AsyncIterator[Browser]:
    """A headless Chromium, closed on the way out; ``extra_flags`` are added to its command."""
    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=[*FLAGS, *extra_flags], headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()
