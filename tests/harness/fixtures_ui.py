"""The web UI in a real browser: Debian's Chromium driven by Playwright, against the real API
gateway and ui apps under uvicorn, with the solver and packer building on the tiny channel.

``ui`` takes options by indirect parametrization (``ui_options``): a URL prefix, and
environment variables the gateway reads when it is created (deploy-time setting defaults).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from services.packer.linker import StoreLinker
from services.packer.worker import PackerWorker
from services.solver.resolve import Resolver
from services.solver.updates import UpdateChecker
from services.solver.worker import SolverWorker
from shared.artifacts import artifact_store_from_settings
from shared.embedded.ports import free_port
from shared.eventstore import EventStore
from shared.settings import Settings
from tests.harness.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, new_page
from tests.harness.serving import serve_healthy


@dataclass
class UiOptions:
    url_prefix: str = ""
    environ: dict[str, str] = field(default_factory=dict)


@dataclass
class UiStack:
    url: str
    """What the browser opens: the gateway, with the URL prefix if any."""
    api_url: str
    ui_url: str
    channel: str
    settings: Settings
    store: EventStore
    stack: Any

    async def client(self, username: str | None = "alice") -> httpx.AsyncClient:
        """An HTTP client on the gateway, logged in as ``username`` (dummy authenticator)."""
        client = httpx.AsyncClient(base_url=self.url, timeout=30)
        if username:
            response = await client.post(
                "/login/", json={"username": username, "password": "password"}
            )
            assert response.status_code == 200, response.text
        return client

    async def submit(self, client: httpx.AsyncClient, namespace: str, text: str) -> int:
        response = await client.post(
            "/api/v1/specification/", json={"namespace": namespace, "specification": text}
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]["build_id"]


def spec_text(name: str, channel: str, *deps: str) -> str:
    lines = [f"name: {name}", "channels:", f"  - {channel}", "dependencies:"]
    lines += [f"  - {d}" for d in deps or ("libfoo",)]
    return "\n".join(lines) + "\n"


def _workers(settings: Settings, store: EventStore) -> list[Any]:
    """The solver and packer as their services wire them, on the test's database."""
    artifacts = artifact_store_from_settings(settings)
    resolver = Resolver.from_settings(settings, store.pool)
    return [
        # A short pause before the solve commits, so the browser sees the build running.
        SolverWorker(resolver, artifacts, store.pool, 0.8),
        UpdateChecker(resolver),
        PackerWorker(settings, artifacts, store.pool),
        StoreLinker(settings.store_root, store.pool),
    ]


@pytest.fixture
def ui_options(request: pytest.FixtureRequest) -> UiOptions:
    return getattr(request, "param", UiOptions())


@pytest.fixture
async def ui(
    stack: Any,
    settings: Settings,
    event_store: EventStore,
    tiny_channel: Any,
    ui_options: UiOptions,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[UiStack]:
    """API gateway + ui under uvicorn, solver and packer running, on free ports."""
    from services.api.app import create_app as create_api
    from services.ui.app import create_app as create_ui

    for name, value in ui_options.environ.items():
        monkeypatch.setenv(name, value)
    api_port, ui_port = free_port(), free_port()
    api_url, ui_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ui_port}"
    settings = settings.model_copy(
        update={
            "api_port": api_port,
            "ui_port": ui_port,
            "api_url": api_url,
            "ui_url": ui_url,
            "external_url": api_url + ui_options.url_prefix,
            "url_prefix": ui_options.url_prefix,
            "secret": "ui-test-secret-0123456789abcdef0123456789",
        }
    )
    await stack.run_workers(*_workers(settings, event_store))
    bindings = {**settings.authenticated_role_bindings, "zz-*/*": ["admin"]}
    gateway = create_api(
        settings.model_copy(update={"authenticated_role_bindings": bindings}), store=event_store
    )
    served = [
        await serve_healthy(create_ui(settings), ui_port),
        await serve_healthy(gateway, api_port),
    ]
    base = api_url + ui_options.url_prefix
    # The browser goes through the gateway, as users do: it must serve the ui's pages,
    # its login page included.
    async with httpx.AsyncClient() as client:
        login_page = await client.get(f"{base}/login/")
    assert 'id="login-form"' in login_page.text, login_page.text[:500]
    try:
        yield UiStack(base, api_url, ui_url, tiny_channel.url, settings, event_store, stack)
    finally:
        for task, stop in served:
            stop.set()
            await asyncio.wait_for(task, 10)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    async with new_page(browser) as page:
        yield page


async def shot(page: Any, name: str | pytest.FixtureRequest) -> None:
    """A full-page screenshot in ``tests/output/screenshots/<name>.png`` (a test's name)."""
    if not isinstance(name, str):
        name = name.node.name
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.evaluate("window.scrollTo(0, 0)")  # the sticky header belongs at the top
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def login(page: Any, base: str, username: str = "alice") -> None:
    await page.goto(f"{base}/login/")
    # Behind the gateway, GET /login/ may be the API's own minimal form rather than the
    # ui's page: both have these inputs and post JSON to POST /login/.
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", "password")
    await page.click("#login-submit, form#login button")
    await page.wait_for_url(f"{base}/")
    await page.wait_for_selector("#user-button")
