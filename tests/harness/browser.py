"""Debian's Chromium, driven by Playwright without a browser download."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Error as PlaywrightError

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


LOG_PLACEHOLDER = "Waiting for the build to start…"
"""What the build page's log panel says before its first line arrives (not log text)."""


@dataclass
class BuildPageWatch:
    """What a visitor saw on a build page while the build ran."""

    status: str = ""
    statuses: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    live_logs: list[str] = field(default_factory=list)
    """Log texts seen while the page said QUEUED or BUILDING."""


async def follow_build_page(page: Any, timeout_s: float = 180.0) -> BuildPageWatch:
    """Stay on a build page until the build ends (COMPLETED with its artifacts listed, FAILED
    or CANCELED), recording each status and log text shown. The page reloads itself when the
    build ends; a read that lands in that navigation is tried again, not a failure."""
    watch = BuildPageWatch()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        try:
            status = await page.get_attribute("#build-facts", "data-status") or ""
            log = await page.text_content("#build-log") or ""
            listed = await page.query_selector("#artifacts") is not None
        except PlaywrightError as exc:
            if "context was destroyed" not in str(exc):
                raise
            await asyncio.sleep(0.1)
            continue
        if not watch.statuses or watch.statuses[-1] != status:
            watch.statuses.append(status)
        text = log.strip()
        if text and text != LOG_PLACEHOLDER and (not watch.logs or watch.logs[-1] != log):
            watch.logs.append(log)
            if status in ("QUEUED", "BUILDING"):
                watch.live_logs.append(log)
        watch.status = status
        if status in ("FAILED", "CANCELED") or (status == "COMPLETED" and listed):
            return watch
        await asyncio.sleep(0.1)
    raise AssertionError(f"the build page never showed an ended build: {watch.statuses}")
