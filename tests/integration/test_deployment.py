"""`./dev up` as a team replacing conda-store meets it: opened by a colleague under another host
name, published behind a reverse proxy under ``/conda-store``, and driven by the clients they
already have (conda-store 2025.2.2's own CLI from PyPI, and curl scripts written the way
conda-store's documentation writes them), unchanged.

Each class runs one real `conda-store-server up` subprocess (Postgres, NATS and every service)
with no ``CONDA_STORE_EXTERNAL_URL``; builds use the test channels served on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.channels.server import ServedChannel
from tests.harness.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, follow_build_page, new_page
from tests.harness.embedded_stack import EmbeddedStack
from tests.harness.haproxy import haproxy
from tests.harness.processes import Result, run_process
from tests.harness.real_client import VERSION, real_client
from tests.integration.test_registry_support import skopeo
from tests.integration.test_ui import login

pytestmark = pytest.mark.slow

COLLEAGUE_HOST = "myhost.test"  # Chromium resolves it to 127.0.0.1 (--host-resolver-rules)
CURL_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "conda_store_curl.sh"
# long enough for the browser to watch a build run (the packer pauses after linking)
SLOW_PACKER = {"CONDA_STORE_PACKER_TEST_DELAY_S": "2"}


def spec(name: str, channel: str, *deps: str) -> str:
    return yaml.safe_dump({"name": name, "channels": [channel], "dependencies": list(deps)})


def write_files(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def read_text(path: str | Path) -> str:
    return Path(path).read_text()


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    rules = f"--host-resolver-rules=MAP {COLLEAGUE_HOST} 127.0.0.1"
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, rules])
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    async with new_page(browser, timeout_ms=20_000) as page:
        yield page


@pytest.fixture(scope="module")
def upstream_client() -> Path:
    return real_client()


@pytest.fixture(scope="class")
def plain_up() -> Iterator[EmbeddedStack]:
    """`./dev up` with nothing set: no external URL, no prefix."""
    with EmbeddedStack.start(SLOW_PACKER) as stack:
        yield stack


@pytest.fixture(scope="class")
def prefixed_up() -> Iterator[EmbeddedStack]:
    deployed = {"CONDA_STORE_SETTING_CONDA_COMMAND": "micromamba"}  # a deploy-time default
    with EmbeddedStack.start(
        {**SLOW_PACKER, **deployed, "CONDA_STORE_URL_PREFIX": "/conda-store"}
    ) as stack:
        yield stack


@pytest.fixture(scope="class")
def proxy_port(prefixed_up: EmbeddedStack) -> Iterator[int]:
    with haproxy(prefixed_up.api_port, "/conda-store") as port:
        yield port


# --- what a user does in the browser -------------------------------------------------------------


async def create_and_watch(page: Any, base: str, text: str) -> tuple[int, list[str]]:
    """Log in, create an environment from the editor, follow its build page until COMPLETED.
    Returns the build id and the log texts seen while the build ran."""
    await login(page, base)
    await page.click("#create-button")
    await page.wait_for_url(f"{base}/create/")
    await page.fill("#spec", text)
    await page.wait_for_selector("#validity.ok-text")
    await page.select_option("#namespace", "alice")
    await page.click("#submit")
    await page.wait_for_url(f"{base}/build/*/")
    build_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    watch = await follow_build_page(page)
    assert watch.status == "COMPLETED", watch.logs[-1:]
    return build_id, watch.live_logs


async def browser_fetch(page: Any, url: str) -> dict[str, Any]:
    """``fetch`` from the page, as its own scripts do (a redirect to another origin fails)."""
    return await page.evaluate(
        """async (url) => {
            const r = await fetch(url, {credentials: "same-origin"});
            const bytes = new Uint8Array(await r.arrayBuffer());
            return {status: r.status, url: r.url, size: bytes.length, head: [bytes[0], bytes[1]],
                    text: new TextDecoder().decode(bytes.slice(0, 4096))};
        }""",
        url,
    )


async def check_build_page(page: Any, base: str, build_id: int, live: list[str]) -> None:
    """The finished build as the visitor sees it: the log, links on their own origin, the
    "Use it" snippet, downloads that work."""
    assert any("[solve]" in log for log in live), live  # streamed while the build ran
    # the page reloaded on completion; the log is now the stored artifact (a redirect)
    await page.wait_for_function("document.querySelector('#build-log').textContent.trim() !== ''")
    assert "[solve]" in (await page.text_content("#build-log") or "")
    hrefs = await page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    assert hrefs and all(h.startswith(f"{base}/") for h in hrefs), hrefs
    text = await page.text_content("main") or ""
    assert f"CONDA_STORE_URL={base} conda-store run alice/" in text
    assert f"-f {base}/api/v1/build/{build_id}/conda-lock.yaml" in text
    async with page.expect_download() as download_info:
        await page.click("#lockfile-link")
    download = await download_info.value
    assert "libfoo" in read_text(await download.path())
    archive = await browser_fetch(page, await page.get_attribute("#archive-link", "href"))
    assert archive["status"] == 200 and archive["head"] == [0x1F, 0x8B], archive
    assert archive["url"].startswith(f"{base}/storage/")


async def check_image_reference(page: Any, base: str, build_id: int, registry: str) -> str:
    """Once the image exists, the build page names it on the visitor's host."""
    url = f"{base}/api/v1/build/{build_id}/docker/"
    for _ in range(600):
        answer = await browser_fetch(page, url)
        if answer["status"] == 200:
            break
        await asyncio.sleep(0.2)
    assert answer["status"] == 200, answer
    reference = answer["text"]
    assert re.fullmatch(rf"{re.escape(registry)}/alice/[\w.-]+:[\w.-]+", reference), reference
    await page.reload()
    assert await page.text_content("#docker-ref") == reference
    assert f"docker pull {reference}" in (await page.text_content("main") or "")
    return reference


async def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


# --- what a user does with conda-store's own client and curl --------------------------------------


def client_env(workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDA_STORE_")}
    tmp = workdir / "tmp"  # where `run` unpacks ({tempdir}/conda-store/<build id>)
    tmp.mkdir(exist_ok=True)
    env.update(TMPDIR=str(tmp), **extra)
    return env


async def upstream(client: Path, url: str, workdir: Path, *args: str, **env: str) -> Result:
    argv = [str(client), "--conda-store-url", url, *args]
    return await run_process(argv, client_env(workdir, **env), 600, cwd=workdir)


async def check_clients_work_unchanged(
    url: str, client: Path, workdir: Path, python_channel: str, tiny_channel: str
) -> int:
    """The curl script and conda-store 2025.2.2's CLI against ``url`` (base URL with prefix);
    returns the id of the build they made."""
    write_files(
        workdir,
        {
            "python-env.yaml": spec("py-env", python_channel, "python=3.11"),
            "tiny.yaml": spec("solved", tiny_channel, "bar"),
        },
    )
    script = await run_process(
        ["bash", str(CURL_SCRIPT), url, "alice", "alice", "python-env.yaml"],
        client_env(workdir),
        900,
        cwd=workdir,
    )
    assert script.code == 0, script.out + script.err
    said = dict(line.rsplit(" ", 1) for line in script.out.splitlines())
    assert said["version"] == "2025.2.2" and said["namespace"] == "alice"
    assert said["status"] == "COMPLETED", script.out
    build_id = int(said["build"])
    for artifact in ("lockfile", "yaml", "archive", "logs"):
        assert said[f"redirect {artifact}"].startswith(f"{url}/storage/"), script.out
        assert int(said[f"size {artifact}"]) > 0, artifact
    assert (workdir / f"build-{build_id}.archive").read_bytes()[:2] == b"\x1f\x8b"
    assert "python" in (workdir / f"build-{build_id}.lockfile").read_text()
    assert int(said["size environment-lockfile"]) > 0 and int(said["environments"]) >= 1

    basic = {
        "CONDA_STORE_USERNAME": "alice",
        "CONDA_STORE_PASSWORD": "password",
    }
    version = await upstream(client, url, workdir, "--version")
    assert version.out.strip() == f"conda-store, version {VERSION}"
    info = await upstream(client, url, workdir, "--auth", "basic", "info", **basic)
    assert info.code == 0, info.err
    assert "Default namespace is alice" in info.out and "Authenticated True" in info.out
    token = await upstream(
        client, url, workdir, "--auth", "basic", "token", "--expiration", "600", **basic
    )
    assert token.code == 0 and token.out.count(".") == 2, token.err
    as_token = {"CONDA_STORE_TOKEN": token.out.strip()}
    info = await upstream(client, url, workdir, "--auth", "token", "info", **as_token)
    assert "Authenticated True" in info.out, info.out + info.err

    async def cli(*args: str) -> Result:
        done = await upstream(client, url, workdir, "--auth", "token", *args, **as_token)
        assert done.code == 0, f"{args}: {done.out}{done.err}"
        return done

    await cli("wait", "alice/py-env", "--interval", "1", "--timeout", "300")
    await cli("wait", str(build_id), "--artifact", "archive", "--interval", "1")
    namespaces = json.loads((await cli("list", "namespace", "--output", "json")).out)
    assert "alice" in {n["name"] for n in namespaces}
    environments = json.loads((await cli("list", "environment", "--output", "json")).out)
    assert "py-env" in {e["name"] for e in environments}
    completed = json.loads(
        (await cli("list", "build", "--status", "COMPLETED", "--output", "json")).out
    )
    assert build_id in {b["id"] for b in completed}
    for artifact, suffix in (("lockfile", "lock"), ("yaml", "yaml"), ("archive", "tar.gz")):
        done = await cli("download", "alice/py-env", "--artifact", artifact)
        saved = workdir / f"build-{build_id}.{suffix}"
        assert done.out == str(saved) and saved.stat().st_size > 0, done.out
        assert saved.read_bytes() == (workdir / f"build-{build_id}.{artifact}").read_bytes()
    logs = workdir / "build.log"
    await cli("download", str(build_id), "--artifact", "logs", "--output-filename", str(logs))
    assert "[solve]" in logs.read_text()
    ran = await cli("run", f"alice/py-env:{build_id}", "--", "python", "-c", "print(6 * 7)")
    assert ran.out.strip() == "42"
    solved = json.loads((await cli("solve", "tiny.yaml", "--output", "json")).out)
    assert {"bar", "libfoo"} <= {row["name"] for row in solved}
    shutil.rmtree(workdir / "tmp")
    return build_id


# --- the tests -----------------------------------------------------------------------------------


class TestOpenedByAColleague:
    """No configuration: whoever opens the server, by whatever name, gets working links."""

    async def test_browser_under_another_host_name_sees_the_log_and_its_own_links(
        self, plain_up: EmbeddedStack, page: Any, tiny_channel: ServedChannel
    ) -> None:
        base = f"http://{COLLEAGUE_HOST}:{plain_up.api_port}"
        text = spec("web-env", tiny_channel.url, "bar", "baz")
        build_id, live = await create_and_watch(page, base, text)
        await check_build_page(page, base, build_id, live)
        await check_image_reference(
            page, base, build_id, f"{COLLEAGUE_HOST}:{plain_up.registry_port}"
        )
        await shot(page, "deployment_colleague_build_page")

    async def test_conda_store_client_and_curl_directly(
        self,
        plain_up: EmbeddedStack,
        upstream_client: Path,
        realistic_channel: ServedChannel,
        tiny_channel: ServedChannel,
        tmp_path: Path,
    ) -> None:
        # `localhost`: conda-store's client keeps no login cookie for an IP-literal host
        url = f"http://localhost:{plain_up.api_port}"
        await check_clients_work_unchanged(
            url, upstream_client, tmp_path / "work", realistic_channel.url, tiny_channel.url
        )


class TestBehindAProxyUnderAPrefix:
    """``CONDA_STORE_URL_PREFIX=/conda-store`` behind haproxy, conda-store's deployment layout."""

    async def test_browser_through_the_proxy(
        self, prefixed_up: EmbeddedStack, proxy_port: int, page: Any, tiny_channel: ServedChannel
    ) -> None:
        origin = f"http://localhost:{proxy_port}"
        base = f"{origin}/conda-store"
        entry = await page.goto(base)  # the bare prefix leads to the home page
        assert entry.ok and page.url == f"{base}/"
        build_id, live = await create_and_watch(
            page, base, spec("proxied-env", tiny_channel.url, "bar", "baz")
        )
        await check_build_page(page, base, build_id, live)
        reference = await check_image_reference(
            page, base, build_id, f"localhost:{prefixed_up.registry_port}"
        )
        # the reference pulls (the registry's /v2/ never takes the prefix), with a token
        token = await page.evaluate(
            "async u => (await (await fetch(u, {method: 'POST'})).json()).data.token",
            f"{base}/api/v1/token/",
        )
        inspect = skopeo(
            "inspect", "--tls-verify=false", "--creds", f"alice:{token}", f"docker://{reference}"
        )
        pulled = await run_process(inspect, dict(os.environ), 120)
        assert pulled.code == 0, pulled.err
        await shot(page, "deployment_proxy_build_page")
        # every service of `up` read the deploy-time default; the settings page says so
        await page.goto(f"{base}/setting/")
        assert await page.input_value("#setting-conda_command") == "micromamba"
        assert await page.text_content("#src-conda_command") == "deployment"
        await shot(page, "deployment_proxy_settings_page")
        await page.click("#logout-button")
        await page.wait_for_url(f"{base}/")
        assert await page.query_selector("#login-button")

    async def test_conda_store_client_and_curl_through_the_proxy(
        self,
        proxy_port: int,
        upstream_client: Path,
        realistic_channel: ServedChannel,
        tiny_channel: ServedChannel,
        tmp_path: Path,
    ) -> None:
        url = f"http://localhost:{proxy_port}/conda-store"
        build_id = await check_clients_work_unchanged(
            url, upstream_client, tmp_path / "work", realistic_channel.url, tiny_channel.url
        )
        # a proxy that strips its prefix and says so (X-Forwarded-Prefix) works as well
        stripped = f"http://localhost:{proxy_port}/stripped"
        async with httpx.AsyncClient(base_url=stripped, timeout=30) as client:
            login = await client.post("/login/", json={"username": "alice", "password": "password"})
            assert login.json()["data"]["redirect_url"] == f"{stripped}/"
            cookie = {"Cookie": f"conda-store-auth={login.cookies['conda-store-auth']}"}
            logs = await client.get(f"/api/v1/build/{build_id}/logs/", headers=cookie)
            assert logs.status_code == 307, logs.text
            assert logs.headers["location"].startswith("/stripped/storage/")
            followed = await client.get(f"http://localhost:{proxy_port}{logs.headers['location']}")
            assert followed.status_code == 200 and followed.text
            outside = await client.get(f"http://localhost:{proxy_port}/api/v1/")
            assert outside.status_code == 404  # the proxy publishes nothing else
