"""The web UI for admins and for people who do not write YAML, in Chromium: settings pages,
the guided editor, descriptions, image status, and keyboard/screen-reader basics.

Screenshots land in ``tests/output/screenshots/`` (fixtures in ``tests/harness/fixtures_ui.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.registry.builder import ImageBuilder
from shared.artifacts import artifact_store_from_settings
from shared.embedded.ports import free_port
from shared.events import ImagePushed, new_event
from tests.harness.browser import follow_build_page, new_page
from tests.harness.fixtures_ui import UiOptions, UiStack, login, shot, spec_text

DEPLOYED = UiOptions(
    url_prefix="/conda-store",
    environ={"CONDA_STORE_SETTING_CONDA_COMMAND": "micromamba"},
)


async def focused(page: Any) -> str:
    """The id (or class) of the element with keyboard focus."""
    return await page.evaluate("document.activeElement.id || document.activeElement.className")


async def wait_completed(page: Any) -> str:
    """Stay on a build page until the build ends; its final status."""
    return (await follow_build_page(page, timeout_s=120)).status


async def package_names(page: Any) -> dict[str, str]:
    return dict(
        await page.eval_on_selector_all(
            "#packages .pkg-row",
            "rows => rows.map(r => [r.dataset.name, r.children[1].textContent])",
        )
    )


async def stream_types(ui: UiStack, build_id: int) -> list[str]:
    return [e.type for e in await ui.store.read_stream(f"build-{build_id}")]


@pytest.mark.parametrize("ui_options", [DEPLOYED], indirect=True, ids=["prefixed"])
async def test_settings_pages_show_sources_and_a_build_obeys_a_change(
    ui: UiStack, page: Any, request: pytest.FixtureRequest
) -> None:
    """Under a URL prefix, through the gateway: the deployment's default shows as such, a bad
    value is refused on its field with nothing written, and a namespace setting changed in
    the page is obeyed by the next build there."""
    await login(page, ui.url)
    await page.click("#settings-nav")
    await page.wait_for_url(f"{ui.url}/setting/")
    assert await page.input_value("#setting-conda_command") == "micromamba"
    assert await page.text_content("#src-conda_command") == "deployment"
    assert await page.text_content("#src-conda_included_packages") == "default"
    assert "added to every specification" in (
        await page.text_content("#desc-conda_included_packages") or ""
    )

    before = await ui.store.last_position()
    await page.fill("#setting-storage_threshold", "lots")
    await page.click("#settings-save")
    error = page.locator("#err-storage_threshold")
    await error.wait_for()
    assert "valid integer" in (await error.text_content() or "")
    assert await page.get_attribute("#setting-storage_threshold", "aria-invalid") == "true"
    assert await focused(page) == "setting-storage_threshold"
    await shot(page, "settings_global_field_error")
    assert await ui.store.last_position() == before

    await page.goto(f"{ui.url}/setting/alice/")
    assert await page.is_disabled("#setting-storage_threshold")  # global-only below global
    await page.fill("#setting-conda_included_packages", "baz")
    await page.click("#settings-save")
    await page.wait_for_selector("#flash.ok")
    assert await page.text_content("#src-conda_included_packages") == "namespace"
    assert await page.input_value("#setting-conda_included_packages") == "baz"
    await shot(page, "settings_namespace_saved")

    client = await ui.client()
    merged = (await client.get("/api/v1/setting/alice/")).json()["data"]
    assert merged["conda_included_packages"] == ["baz"]
    build_id = await ui.submit(client, "alice", spec_text("obeys", ui.channel, "libfoo"))
    await client.aclose()
    await page.goto(f"{ui.url}/build/{build_id}/")
    assert await wait_completed(page) == "COMPLETED"
    assert "baz" in await package_names(page)  # the namespace's setting added it
    await page.goto(f"{ui.url}/environment/alice/obeys/")
    await page.click("#env-settings")
    await page.wait_for_url(f"{ui.url}/setting/alice/obeys/")
    assert await page.text_content("#src-conda_included_packages") == "namespace"
    await shot(page, request)


async def test_settings_need_their_permissions(
    ui: UiStack, browser: Any, request: pytest.FixtureRequest
) -> None:
    async with new_page(browser) as page:
        response = await page.goto(f"{ui.url}/setting/")
        assert response.status == 403
        assert "not authorized" in (await page.text_content("#api-error") or "")
        assert not await page.query_selector("#settings-nav")

    client = await ui.client()
    minted = await client.post(
        "/api/v1/token/",
        json={"primary_namespace": "alice", "role_bindings": {"alice/*": ["editor"]}},
    )
    await client.aclose()
    token = minted.json()["data"]["token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with new_page(browser, extra_http_headers=headers) as page:
        response = await page.goto(f"{ui.url}/setting/alice/")
        assert response.ok
        assert await page.query_selector("#read-only-note")
        assert not await page.query_selector("#settings-save")
        disabled = await page.eval_on_selector_all(
            ".setting input, .setting textarea", "els => els.map(e => e.matches(':disabled'))"
        )
        assert disabled and all(disabled)
        await shot(page, request)
        assert (await page.goto(f"{ui.url}/setting/")).status == 403


async def _index_the_channel(ui: UiStack) -> None:
    """A first build makes the solver read (and index) the tiny channel."""
    client = await ui.client()
    build_id = await ui.submit(client, "alice", spec_text("indexer", ui.channel, "libfoo"))
    await ui.stack.wait_build(build_id)
    for _ in range(100):
        found = await client.get("/api/v1/package/", params={"search": "libfoo", "exact": "1"})
        if found.json()["count"]:
            break
        await asyncio.sleep(0.1)
    await client.aclose()


async def test_guided_editor_creates_an_environment_without_yaml(
    ui: UiStack, page: Any, request: pytest.FixtureRequest
) -> None:
    """Keyboard only, never touching the YAML: name, description, channel, a package found
    by search with a version picked from the channel, a variable; the YAML written is the
    one a person would write, and the build obeys it."""
    await _index_the_channel(ui)
    await login(page, ui.url)
    await page.goto(f"{ui.url}/create/")
    await page.wait_for_selector("#validity.ok-text")
    await page.focus("#editor-yaml")
    await page.keyboard.press("ArrowLeft")  # the radio group: Guided
    await page.wait_for_selector("#guided", state="visible")
    await page.keyboard.press("Tab")
    assert await focused(page) == "g-name"
    await page.keyboard.press("Control+a")
    await page.keyboard.type("bad name")
    await page.wait_for_selector("#g-name-error:not([hidden])")
    assert "invalid environment name" in (await page.text_content("#g-name-error") or "")
    assert await page.is_disabled("#submit")
    await page.keyboard.press("Control+a")
    await page.keyboard.type("guided-env")
    await page.keyboard.press("Tab")
    assert await focused(page) == "g-description"
    await page.keyboard.type("Made with the guided editor")
    await page.keyboard.press("Tab")
    assert await focused(page) == "g-channel"
    await page.keyboard.press("Control+a")
    await page.keyboard.type(ui.channel)

    # the example's packages go: Remove is reached from each row's name by Tab
    for _ in range(2):
        await page.focus("#g-packages > li:first-child .g-remove")
        await page.keyboard.press("Enter")
    assert await page.locator("#g-packages > li").count() == 0
    assert await focused(page) == "g-add-package"
    await page.keyboard.press("Enter")
    assert await focused(page) == "g-pkg-name"
    await page.keyboard.type("libf")
    await page.wait_for_function(
        "[...document.querySelectorAll('#g-packages datalist.g-pkg-names option')]"
        ".some(o => o.value === 'libfoo')"
    )
    await page.keyboard.type("oo")
    await page.keyboard.press("Tab")  # leaving the name looks its versions up
    await page.select_option("#g-packages > li:first-child .g-pkg-op", "<")
    await page.wait_for_function(
        "document.querySelector('#g-packages > li:first-child').dataset.versions === '1.0 0.9'"
    )
    await page.focus("#g-packages > li:first-child .g-pkg-version")
    await page.keyboard.type("1.0")
    await page.focus("#g-add-package")
    await page.keyboard.press("Enter")
    await page.keyboard.type("baz")
    await page.focus("#g-add-variable")
    await page.keyboard.press("Space")
    await page.keyboard.type("GREETING")
    await page.keyboard.press("Tab")
    await page.keyboard.type("hello")
    await page.wait_for_selector("#validity.ok-text")
    await page.wait_for_function(
        "document.querySelector('#spec').value.includes('GREETING: hello')"
    )
    assert await page.input_value("#spec") == (
        "name: guided-env\n"
        "description: Made with the guided editor\n"
        "channels:\n"
        f"  - {ui.channel}\n"
        "dependencies:\n"
        "  - libfoo <1.0\n"
        "  - baz\n"
        "variables:\n"
        "  GREETING: hello\n"
    )
    assert await page.is_hidden("#spec")  # written for the user, never typed by them
    await shot(page, "guided_editor")
    await page.focus("#submit")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{ui.url}/build/*/")
    assert await wait_completed(page) == "COMPLETED"
    packages = await package_names(page)
    assert packages.get("libfoo") == "0.9" and "baz" in packages  # <1.0 was obeyed
    await shot(page, request)
    await page.goto(f"{ui.url}/environment/alice/guided-env/")
    assert await page.text_content("#env-description") == "Made with the guided editor"


ROUNDTRIP = """# the team's environment
name: roundtrip
channels:
  - {channel}
dependencies:
  - libfoo>=0.9,<2   # any recent one
  - conda-forge::baz
  - pip:
    - --index-url https://pypi.example/simple
    - requests>=2
variables:
  THREADS: 4
prefix: /opt/envs/roundtrip
"""


async def test_switching_editors_loses_nothing(
    ui: UiStack, page: Any, request: pytest.FixtureRequest
) -> None:
    text = ROUNDTRIP.format(channel=ui.channel)
    await login(page, ui.url)
    await page.goto(f"{ui.url}/create/")
    await page.fill("#spec", text)
    await page.wait_for_selector("#validity.ok-text")
    await page.check("#editor-guided")
    await page.wait_for_selector("#guided", state="visible")
    assert await page.input_value("#g-name") == "roundtrip"
    rows = page.locator("#g-packages > li")
    assert await rows.count() == 2
    assert await rows.nth(0).locator(".g-pkg-op").input_value() == "range"
    assert await rows.nth(0).locator(".g-pkg-upper").input_value() == "2"
    assert await page.locator("#g-pip .g-pip").count() == 2
    assert await page.locator("#g-variables .g-var-value").input_value() == "4"
    await shot(page, "guided_editor_from_yaml")
    await page.check("#editor-yaml")
    await page.wait_for_selector("#yaml-editor", state="visible")
    assert await page.input_value("#spec") == text  # unchanged: comments and all

    await page.check("#editor-guided")
    await page.wait_for_selector("#guided", state="visible")
    await rows.nth(0).locator(".g-pkg-upper").fill("1.0")
    await page.check("#editor-yaml")
    await page.wait_for_selector("#yaml-editor", state="visible")
    assert await page.input_value("#spec") == (
        "name: roundtrip\n"
        "channels:\n"
        f"  - {ui.channel}\n"
        "dependencies:\n"
        "  - libfoo >=0.9,<1.0\n"
        "  - conda-forge::baz\n"
        "  - pip:\n"
        "      - --index-url https://pypi.example/simple\n"
        "      - requests>=2\n"
        "variables:\n"
        "  THREADS: 4\n"
        "prefix: /opt/envs/roundtrip\n"
    )

    await page.fill("#spec", "name: odd\ndependencies:\n  - {conda: numpy}\n")
    await page.click("#editor-guided")  # refused: the choice goes back to YAML
    await page.wait_for_selector("#switch-error:not([hidden])")
    assert "has no field in the guided editor" in (await page.text_content("#switch-error") or "")
    assert await page.is_checked("#editor-yaml") and await page.is_visible("#spec")
    await shot(page, request)


async def test_description_is_edited_without_a_rebuild(
    ui: UiStack, page: Any, request: pytest.FixtureRequest
) -> None:
    client = await ui.client()
    build_id = await ui.submit(client, "alice", spec_text("described", ui.channel, "libfoo"))
    await ui.stack.wait_build(build_id)
    await ui.stack.projected()
    builds_before = await ui.store.pool.fetchval("SELECT count(*) FROM builds")

    await login(page, ui.url)
    await page.goto(f"{ui.url}/environment/alice/described/")
    assert await page.text_content("#env-description") == "No description."
    await page.focus("#edit-description")
    await page.keyboard.press("Enter")
    assert await focused(page) == "description-input"
    await page.keyboard.type("Reference environment for the tutorial")
    await page.keyboard.press("Tab")  # Cancel
    await page.keyboard.press("Tab")  # Save
    assert await focused(page) == "save-description"
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#flash.ok")
    assert await page.text_content("#env-description") == "Reference environment for the tutorial"
    await shot(page, request)

    assert await ui.store.pool.fetchval("SELECT count(*) FROM builds") == builds_before
    assert await stream_types(ui, build_id + 1) == []  # no build was submitted
    api_env = (await client.get("/api/v1/environment/alice/described/")).json()["data"]
    await client.aclose()
    assert api_env["description"] == "Reference environment for the tutorial"
    assert api_env["current_build_id"] == build_id
    await page.goto(f"{ui.url}/?search=described")
    row = page.locator(".env-row[data-name='alice/described'] .desc")
    assert await row.text_content() == "Reference environment for the tutorial"
    await page.goto(f"{ui.url}/create/?namespace=alice&environment=described")
    assert "description: Reference environment for the tutorial" in await page.input_value("#spec")


async def test_image_status_on_the_build_page_and_the_environment_list(
    ui: UiStack, page: Any, request: pytest.FixtureRequest
) -> None:
    """Failed (with the reason), not made (the environment's build_artifacts, changed in its
    settings page), and pushed (with the pull command)."""
    dead_base = f"127.0.0.1:{free_port()}/library/base:1"
    settings = ui.settings.model_copy(
        update={"registry_base_image": dead_base, "registry_base_insecure": True}
    )
    await ui.stack.run_workers(ImageBuilder(artifact_store_from_settings(settings), settings))

    await login(page, ui.url)
    await page.goto(f"{ui.url}/setting/alice/noimage/")
    await page.focus("#setting-build_artifacts input[value=DOCKER_MANIFEST]")
    assert await page.is_checked("#setting-build_artifacts input[value=DOCKER_MANIFEST]")
    await page.keyboard.press("Space")
    await page.click("#settings-save")
    await page.wait_for_selector("#flash.ok")
    assert await page.text_content("#src-build_artifacts") == "environment"

    client = await ui.client()
    # submitted in this order, the builder (one at a time) has handled "noimage" once
    # "failing" has its ImageFailed; with the dead base it would have failed "noimage" too
    no_image = await ui.submit(client, "alice", spec_text("noimage", ui.channel, "libfoo"))
    failing = await ui.submit(client, "alice", spec_text("failing", ui.channel, "libfoo"))
    pushed = await ui.submit(client, "alice", spec_text("pushed", ui.channel, "libfoo"))
    for build_id in (no_image, failing, pushed):
        assert (await ui.stack.wait_build(build_id))["status"] == "COMPLETED"
    for _ in range(600):
        if "ImageFailed" in await stream_types(ui, failing):
            break
        await asyncio.sleep(0.1)
    assert "ImageFailed" in await stream_types(ui, failing)
    assert not {"ImageFailed", "ImagePushed"} & set(await stream_types(ui, no_image))
    # an image the registry did push (its manifest is not needed to show the status)
    digest = "sha256:" + "ab" * 32
    for _ in range(600):
        if "ImageFailed" in await stream_types(ui, pushed):
            break
        await asyncio.sleep(0.1)
    await ui.store.append(
        f"build-{pushed}",
        [new_event(ImagePushed(build_id=pushed, manifest_digest=digest, manifest_key="m"))],
    )
    await ui.stack.projected()
    reference = (await client.get(f"/api/v1/build/{pushed}/docker/")).text
    await client.aclose()

    await page.goto(f"{ui.url}/build/{no_image}/")
    assert await page.get_attribute("#image-status", "data-image") == "SKIPPED"
    assert "not made" in (await page.text_content("#image-status") or "")
    assert "build_artifacts" in (await page.text_content("#image-status") or "")
    await shot(page, "image_not_made_build_page")
    await page.goto(f"{ui.url}/build/{pushed}/")
    assert f"docker pull {reference}" in (await page.text_content("#image-status") or "")

    await page.goto(f"{ui.url}/")
    badge = "#main .env-row[data-name='alice/{}'] .image-badge"
    assert await page.get_attribute(badge.format("failing"), "data-image") == "FAILED"
    assert dead_base in (await page.get_attribute(badge.format("failing"), "title") or "")
    reason = "#main .env-row[data-name='alice/failing'] .image-reason"
    assert dead_base in (await page.text_content(reason) or "")  # on the row, not only on hover
    assert await page.text_content(badge.format("noimage")) == "no image"
    assert await page.get_attribute(badge.format("pushed"), "data-image") == "PUSHED"
    await page.click(".env-row[data-name='alice/pushed'] [data-copy-prefix]")
    await page.wait_for_selector("#flash.ok")
    assert f"docker pull {reference}" in (await page.text_content("#flash") or "")
    await shot(page, request)
    await page.goto(f"{ui.url}/environment/alice/failing/")
    assert dead_base in (await page.text_content(".image-status") or "")


PAGES = [
    "/",
    "/namespace/",
    "/user/",
    "/create/",
    "/setting/",
    "/setting/alice/",
    "/environment/alice/labelled/",
    "/build/{build}/",
]
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
  .filter(el => el.type !== 'hidden' && el.getClientRects().length)
  .filter(el => !(
    (el.labels && [...el.labels].some(l => l.textContent.trim()))
    || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
    || ((el.tagName === 'BUTTON' || el.tagName === 'A') && el.textContent.trim())
    || (el.tagName === 'INPUT' && el.closest('label') && el.closest('label').textContent.trim())))
  .map(el => el.outerHTML.slice(0, 120))"""
FOCUS_RING = """() => { const s = getComputedStyle(document.activeElement);
  return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; }"""


async def test_every_control_has_a_label_and_keyboard_focus_is_visible(
    ui: UiStack, page: Any, request: pytest.FixtureRequest
) -> None:
    client = await ui.client()
    build_id = await ui.submit(client, "alice", spec_text("labelled", ui.channel, "libfoo"))
    await client.aclose()
    await ui.stack.wait_build(build_id)
    await ui.stack.projected()
    await login(page, ui.url)
    for path in PAGES:
        await page.goto(ui.url + path.format(build=build_id))
        if path == "/create/":
            await page.check("#editor-guided")
            await page.wait_for_selector("#guided .package-row")
        assert await page.evaluate(UNLABELLED) == [], path
        # Tab through the page: every stop shows where the focus is
        await page.locator("body").focus()
        for _ in range(12):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement === document.body"):
                break
            assert await page.evaluate(FOCUS_RING), (path, await focused(page))
    # the first Tab offers to skip the navigation
    await page.goto(f"{ui.url}/")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await shot(page, request)
