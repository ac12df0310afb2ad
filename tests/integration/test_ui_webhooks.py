"""The admins' webhook page in Chromium: register one, see its secret once, watch its status
turn ok when a delivery arrives (signed with that secret); refused to non-admins.

Screenshots land in ``tests/output/screenshots/``."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared.auth import AuthenticationToken, TokenCodec
from shared.auth.tokens import utcnow
from shared.webhooks import SIGNATURE_HEADER, verify
from tests.harness.browser import new_page
from tests.harness.fixtures_ui import UiStack, shot
from tests.harness.receiver import Receiver


def admin_headers(ui: UiStack) -> dict[str, str]:
    codec = TokenCodec(ui.settings.secret, ui.settings.jwt_algorithm, {})
    token = AuthenticationToken(
        exp=utcnow() + timedelta(hours=1),
        primary_namespace="root",
        role_bindings={"*/*": ["admin"]},
    )
    return {"Authorization": f"Bearer {codec.encode(token)}"}


async def test_admins_register_a_webhook_and_watch_it_deliver(
    ui: UiStack, browser: Any, request: pytest.FixtureRequest
) -> None:
    receiver = Receiver().start()
    headers = admin_headers(ui)
    try:
        async with new_page(browser, extra_http_headers=headers) as page:
            await page.goto(f"{ui.url}/")
            await page.click("#webhooks-nav")
            await page.wait_for_url(f"{ui.url}/webhook/")
            assert "No webhooks yet" in (await page.text_content("#webhooks") or "")

            await page.fill("#webhook-url", "ftp://nowhere/")
            await page.click("#webhook-add")
            await page.wait_for_selector("#webhook-error:not([hidden])")
            assert "http:// or https://" in (await page.text_content("#webhook-error") or "")

            await page.fill("#webhook-url", receiver.url)
            await page.fill("#webhook-types", "NamespaceCreated")
            await page.fill("#webhook-description", "chat notifications")
            await page.click("#webhook-add")
            await page.wait_for_selector("#webhook-secret-box:not([hidden])")
            secret = (await page.text_content("#webhook-secret") or "").strip()
            assert secret.startswith("whsec_")
            await shot(page, "webhooks_secret_shown_once")
            await page.click("#webhook-done")
            await page.wait_for_selector("#webhooks tr[data-webhook]")
            assert secret not in await page.content()

            async with httpx.AsyncClient(base_url=ui.url, headers=headers) as client:
                r = await client.post("/api/v1/namespace/hooked/")
                assert r.status_code == 200, r.text
            deadline = time.monotonic() + 20
            while not receiver.accepted and time.monotonic() < deadline:
                await page.wait_for_timeout(100)
            assert receiver.accepted, "no delivery"
            got = receiver.accepted[0]
            assert verify(secret, got.body, got.headers[SIGNATURE_HEADER])

            await page.reload()
            row = page.locator("#webhooks tr[data-webhook]")
            assert await row.get_attribute("data-status") == "ok"
            assert "NamespaceCreated" in (await row.text_content() or "")
            await shot(page, request)
    finally:
        receiver.stop()


async def test_the_webhook_page_is_for_admins_only(ui: UiStack, browser: Any) -> None:
    """Anonymous visitors and editors (the dummy login makes everyone an admin) get 403."""
    client = await ui.client()
    minted = await client.post(
        "/api/v1/token/",
        json={"primary_namespace": "alice", "role_bindings": {"alice/*": ["editor"]}},
    )
    await client.aclose()
    editor = {"Authorization": f"Bearer {minted.json()['data']['token']}"}
    for headers in ({}, editor):
        async with new_page(browser, extra_http_headers=headers) as page:
            await page.goto(f"{ui.url}/")
            assert not await page.query_selector("#webhooks-nav")
            response = await page.goto(f"{ui.url}/webhook/")
            assert response.status == 403
            assert "not authorized" in (await page.text_content("#api-error") or "")
