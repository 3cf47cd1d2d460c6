"""Driving the console in a Chromium page, for its test and for ``make screenshots``."""

from __future__ import annotations

from playwright.async_api import FilePayload, Page


async def sign_in(page: Page, username: str, secret: str) -> None:
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Secret key").fill(secret)
    await page.get_by_role("button", name="Sign in").click()


async def try_photo(page: Page, jpeg: bytes) -> None:
    """Choose ``jpeg`` as the photo to search, as the file picker would."""
    photo = FilePayload(name="photo.jpg", mimeType="image/jpeg", buffer=jpeg)
    await page.get_by_label("A photo to search").set_input_files(files=[photo])
