"""The web UI in a real browser (fixtures in ``tests/harness/fixtures_ui.py``): Debian's
Chromium driven by Playwright, against the real API gateway and ui apps under uvicorn, with the
solver and packer building on the tiny channel.

Each test saves a screenshot of the page it checks to ``tests/output/screenshots/<test>.png``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from services.packer.store import link_of, link_target
from shared.artifacts import artifact_store_from_settings
from shared.embedded.ports import free_port
from shared.events import (
    NamespaceCreated,
    PackageUpdate,
    UpdateChecked,
    new_event,
    stream_of_environment,
)
from tests.harness.browser import follow_build_page
from tests.harness.fixtures_ui import UiStack, login, shot, spec_text


async def test_create_by_upload_live_build_page_and_lockfile(
    ui: UiStack, page: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    await login(page, ui.url)
    await page.click("#create-button")
    await page.wait_for_url(f"{ui.url}/create/")
    upload = tmp_path / "environment.yaml"
    upload.write_text(spec_text("uploaded", ui.channel, "bar", "baz"))
    await page.set_input_files("#file-input", str(upload))
    await page.wait_for_function("document.querySelector('#spec').value.includes('uploaded')")
    await page.wait_for_selector("#validity.ok-text")
    await page.select_option("#namespace", "alice")
    await page.click("#submit")
    await page.wait_for_url(f"{ui.url}/build/*/")
    build_id = int(page.url.rstrip("/").rsplit("/", 1)[1])

    # The build page follows the build live: its badge leaves queued and the log fills in
    # while the build runs, then the page shows the completed build.
    watch = await follow_build_page(page, timeout_s=120)
    assert watch.status == "COMPLETED", watch.logs[-1:]
    assert watch.statuses[0] in ("QUEUED", "BUILDING"), watch.statuses
    await page.wait_for_function("document.querySelector('#build-log').textContent.trim() !== ''")
    # Lines arrived while the build was running, and more came after: the log streamed.
    assert watch.live_logs and "[solve]" in watch.live_logs[0], watch.logs
    final = await page.text_content("#build-log") or ""
    assert len(final) > len(watch.live_logs[0])

    # Build page: metadata, packages (searchable), artifacts, usage hints.
    text = await page.text_content("main") or ""
    assert f"conda-store run alice/uploaded:{build_id} -- python" in text
    api = await ui.client("alice")
    detail = (await api.get(f"/api/v1/build/{build_id}/")).json()["data"]
    await api.aclose()
    if detail.get("build_key"):  # an extension of conda-store's Build shape
        assert await page.text_content("#build-key") == detail["build_key"]
    directory = next(a for a in detail["build_artifacts"] if a["artifact_type"] == "DIRECTORY")
    assert await page.text_content("#directory-path") == directory["key"]
    names = await page.eval_on_selector_all(
        "#packages .pkg-row", "rows => rows.map(r => r.dataset.name)"
    )
    assert {"bar", "baz", "libfoo"} <= set(names)
    await page.fill("#package-search", "baz")
    visible = await page.eval_on_selector_all(
        "#packages .pkg-row", "rows => rows.filter(r => !r.hidden).map(r => r.dataset.name)"
    )
    assert visible == ["baz"]
    await page.fill("#package-search", "")

    async with page.expect_download() as download_info:
        await page.click("#lockfile-link")
    download = await download_info.value
    saved = tmp_path / "conda-lock.yml"
    await download.save_as(saved)
    lockfile = saved.read_text()
    assert "libfoo" in lockfile and "bar" in lockfile
    async with page.expect_download() as download_info:  # the build's CycloneDX SBOM
        await page.click("#sbom-link")
    download = await download_info.value
    saved = tmp_path / "sbom.cdx.json"
    await download.save_as(saved)
    sbom = json.loads(saved.read_text())
    assert sbom["specVersion"] == "1.5"
    assert {"bar", "baz", "libfoo"} <= {c["name"] for c in sbom["components"]}
    await shot(page, request)


async def test_make_older_build_current_and_delete_build(
    ui: UiStack, page: Any, request: pytest.FixtureRequest
) -> None:
    client = await ui.client("alice")
    first = await ui.submit(client, "alice", spec_text("twice", ui.channel, "libfoo"))
    await ui.stack.wait_build(first)
    second = await ui.submit(client, "alice", spec_text("twice", ui.channel, "libfoo", "baz"))
    await ui.stack.wait_build(second)
    await ui.stack.projected()

    await login(page, ui.url)
    await page.goto(f"{ui.url}/environment/alice/twice/")
    assert "current" in (await page.get_attribute(f"#build-{second}", "class") or "")
    await page.click(f"#build-{first} [data-action=make-current]")
    await page.wait_for_selector(f"#build-{first}.current")
    assert "current" not in (await page.get_attribute(f"#build-{second}", "class") or "")
    # the rollback moved the environment's link in the store to the first build
    link = link_of(ui.settings.store_root, "alice", "twice")
    first_dir = (await client.get(f"/api/v1/build/{first}/")).json()["data"]["build_artifacts"]
    want = Path(next(a["key"] for a in first_dir if a["artifact_type"] == "DIRECTORY"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while link_target(link) != want:
        assert loop.time() < deadline, (link_target(link), want)
        await asyncio.sleep(0.05)

    await page.click(f"#build-{second} [data-action=delete-build]")
    await page.wait_for_selector("#confirm-dialog[open]")
    await page.click("#confirm-ok")
    build = (await client.get(f"/api/v1/build/{second}/")).json()["data"]
    if "deleted_on" in build:
        await page.wait_for_selector(f"#build-{second}.deleted")
        color = await page.eval_on_selector(
            f"#build-{second} td", "td => getComputedStyle(td).backgroundColor"
        )
        assert color == "rgb(244, 245, 247)"
    else:
        # The API does not say which builds are deleted: nothing to grey out, but the
        # deletion went through without an error shown.
        await page.wait_for_load_state("load")
        assert await page.is_hidden("#flash")
    await shot(page, request)
    await client.aclose()


async def test_create_and_delete_namespace(
    ui: UiStack, page: Any, request: pytest.FixtureRequest
) -> None:
    # More namespaces than one API page holds: the list and the create form show them all.
    for i in range(105):
        await ui.store.append(
            f"namespace-zz-{i:03d}", [new_event(NamespaceCreated(namespace=f"zz-{i:03d}"))]
        )
    await ui.stack.projected()
    await login(page, ui.url)  # the fixture binds zz-*/* to every logged-in user
    await page.goto(f"{ui.url}/namespace/")
    assert await page.locator("tr[data-namespace=zz-104]").count() == 1
    await page.goto(f"{ui.url}/create/")
    assert await page.locator("option[value=zz-104]").count() == 1
    await page.goto(f"{ui.url}/namespace/")
    await page.fill("#namespace-name", "team-x")
    await page.click("#namespace-create")
    await page.wait_for_selector("tr[data-namespace=team-x]")
    await shot(page, request)
    await page.click("tr[data-namespace=team-x] [data-method=DELETE]")
    await page.wait_for_selector("#confirm-dialog[open]")
    assert "destructive" in (await page.text_content("#confirm-text") or "")
    await page.click("#confirm-ok")
    await page.wait_for_selector("tr[data-namespace=team-x]", state="detached")


async def test_invalid_yaml_upload_shows_error_and_submits_nothing(
    ui: UiStack, page: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    await login(page, ui.url)
    await page.goto(f"{ui.url}/create/")
    await page.wait_for_selector("#validity.ok-text")
    before = await ui.store.last_position()
    bad = tmp_path / "environment.yaml"
    bad.write_text("name: broken\ndependencies:\n  - libfoo\n   - bar: [\n")
    await page.set_input_files("#file-input", str(bad))
    problem = await page.wait_for_selector(".problem")
    assert "line 4" in (await problem.text_content() or "")
    assert "Invalid YAML" in (await problem.text_content() or "")
    assert await page.is_disabled("#submit")
    await page.eval_on_selector("#create-form", "f => f.requestSubmit()")
    await page.wait_for_timeout(500)
    assert page.url == f"{ui.url}/create/"
    assert await page.query_selector("#gutter .bad")
    await shot(page, request)
    assert await ui.store.last_position() == before


async def test_anonymous_sees_only_default_bindings(
    ui: UiStack, page: Any, request: pytest.FixtureRequest
) -> None:
    client = await ui.client("alice")
    await ui.submit(client, "default", spec_text("public-env", ui.channel))
    await ui.submit(client, "alice", spec_text("private-env", ui.channel))
    await ui.stack.projected()
    await client.aclose()

    await page.goto(f"{ui.url}/")
    rows = await page.eval_on_selector_all(".env-row", "rows => rows.map(r => r.dataset.name)")
    assert rows == ["default/public-env"]
    assert await page.query_selector("#login-button")
    assert not await page.query_selector("#create-button")
    assert not await page.query_selector("#user-button")

    await page.goto(f"{ui.url}/environment/default/public-env/")
    for selector in ("#edit-env", "#delete-env", "[data-action]"):
        assert not await page.query_selector(selector), selector
    await page.goto(f"{ui.url}/namespace/")
    assert not await page.query_selector("#namespace-form")
    assert not await page.query_selector("[data-method=DELETE]")

    response = await page.goto(f"{ui.url}/environment/alice/private-env/")
    assert response.status == 403
    assert "not authorized" in (await page.text_content("#api-error") or "")
    await page.goto(f"{ui.url}/")
    await shot(page, request)


async def test_failed_image_is_shown_on_the_build_page_and_in_the_api(
    ui: UiStack, page: Any, request: pytest.FixtureRequest
) -> None:
    """The registry cannot build the image (its base image is unreachable): the build stays
    COMPLETED and usable, and both the API and the build page say the image failed and why."""
    from services.registry.builder import ImageBuilder

    dead_base = f"127.0.0.1:{free_port()}/library/base:1"
    settings = ui.settings.model_copy(
        update={"registry_base_image": dead_base, "registry_base_insecure": True}
    )
    await ui.stack.run_workers(ImageBuilder(artifact_store_from_settings(settings), settings))
    client = await ui.client("alice")
    build_id = await ui.submit(client, "alice", spec_text("imageless", ui.channel, "libfoo"))
    assert (await ui.stack.wait_build(build_id))["status"] == "COMPLETED"
    for _ in range(600):
        types = [e.type for e in await ui.store.read_stream(f"build-{build_id}")]
        if "ImageFailed" in types:
            break
        await asyncio.sleep(0.1)
    assert "ImageFailed" in types, types
    await ui.stack.projected()

    detail = (await client.get(f"/api/v1/build/{build_id}/")).json()["data"]
    await client.aclose()
    assert detail["status"] == "COMPLETED"
    image = detail["image"]
    assert image["status"] == "FAILED", image
    assert dead_base in image["reason"], image

    await login(page, ui.url)
    await page.goto(f"{ui.url}/build/{build_id}/")
    shown = await page.text_content("#image-status") or ""
    assert "failed" in shown.lower() and dead_base in shown, shown
    assert not await page.query_selector("#docker-ref")  # no pull command for a missing image
    await shot(page, request)


async def test_compare_two_builds_from_the_environment_and_build_pages(
    ui: UiStack, page: Any, request: pytest.FixtureRequest
) -> None:
    client = await ui.client("alice")
    first = await ui.submit(client, "alice", spec_text("cmp", ui.channel, "libfoo"))
    await ui.stack.wait_build(first)
    second = await ui.submit(client, "alice", spec_text("cmp", ui.channel, "libfoo", "baz"))
    await ui.stack.wait_build(second)
    await ui.stack.projected()
    await client.aclose()

    await login(page, ui.url)
    await page.goto(f"{ui.url}/environment/alice/cmp/")
    # the default: the current build against the one before it
    assert await page.input_value("#compare-from") == str(first)
    assert await page.input_value("#compare-to") == str(second)
    await page.click("#compare-submit")
    await page.wait_for_url(f"{ui.url}/compare/*")
    kinds = await page.eval_on_selector_all(
        "#diff-packages .diff-row", "rows => rows.map(r => [r.dataset.kind, r.dataset.name])"
    )
    assert ["added", "baz"] in kinds and all(k != "removed" for k, _ in kinds), kinds
    assert "+- baz" in (await page.text_content("#spec-diff") or "")
    await shot(page, request)

    # the build page offers the same, from the build before it; the other way round by keyboard
    await page.goto(f"{ui.url}/build/{second}/")
    assert await page.input_value("#compare-from") == str(first)
    await page.select_option("#compare-from", str(second))
    await page.select_option("#compare-to", str(first))
    await page.focus("#compare-submit")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{ui.url}/compare/?from={second}&to={first}")
    kinds = await page.eval_on_selector_all(
        "#diff-packages .diff-row", "rows => rows.map(r => [r.dataset.kind, r.dataset.name])"
    )
    assert ["removed", "baz"] in kinds, kinds
    assert "1 removed" in (await page.text_content("#diff-counts") or "")


async def test_updates_shown_on_the_environment_page_rebuild_and_check_again(
    ui: UiStack, page: Any, request: pytest.FixtureRequest
) -> None:
    client = await ui.client("alice")
    first = await ui.submit(client, "alice", spec_text("fresh", ui.channel, "libfoo"))
    await ui.stack.wait_build(first)
    await client.aclose()
    # what the solver records when a channel gains a newer libfoo (test_update_check.py
    # makes a channel do so; the tiny channel is shared by every test)
    newer = UpdateChecked(
        namespace="alice",
        environment="fresh",
        build_id=first,
        updates=[PackageUpdate(name="libfoo", version="1.0", newer="1.1")],
        changed=1,
    )
    await ui.stack.store.append(stream_of_environment("alice", "fresh"), [new_event(newer)])
    await ui.stack.projected()

    await login(page, ui.url)
    await page.goto(f"{ui.url}/environment/alice/fresh/")
    summary = await page.text_content("#updates-summary") or ""
    assert "1 package has newer versions" in summary
    rows = await page.eval_on_selector_all(
        "#update-list .update-row", "rows => rows.map(r => r.textContent)"
    )
    assert len(rows) == 1 and "libfoo" in rows[0] and "1.1" in rows[0]
    await shot(page, request)

    # one click rebuilds; the new build is current and not checked yet
    await page.click("#rebuild-with-updates")
    await page.wait_for_url(f"{ui.url}/build/*/")
    second = int(page.url.rstrip("/").rsplit("/", 1)[1])
    assert second != first
    await ui.stack.wait_build(second)
    await ui.stack.projected()
    await page.goto(f"{ui.url}/environment/alice/fresh/")
    assert "Not checked yet" in (await page.text_content("#updates-summary") or "")
    # "Check now": the solver answers (the tiny channel has nothing newer) and the page follows
    await page.click("#check-updates")
    await page.wait_for_function(
        "document.querySelector('#updates-summary').textContent.includes('Up to date')",
        timeout=60_000,
    )
