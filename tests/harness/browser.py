"""Debian's Chromium, driven by Playwright without a browser download."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "output" / "screenshots"


@asynccontextmanager
async def new_page(browser: Any, timeout_ms: int = 15_000, **options: Any) -> AsyncIterator[Any]:
    """A page in a fresh context (own cookies, downloads allowed; ``options`` go to
    ``new_context``, e.g. ``extra_http_headers``); JavaScript errors on it fail the test when
    the block ends."""
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True, **options
    )
    page = await context.new_page()
    page.set_default_timeout(timeout_ms)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        await context.close()
    assert not errors, f"JavaScript errors: {errors}"
