"""``conda-store``: the client CLI, command for command compatible with conda-store 2025.2.2.

Upstream's options, environment variables and URI forms are kept; its bugs are not (filters,
paging past 100, ``token --expiration``, ``wait`` on CANCELED, ``download --artifact logs``,
``solve``). ``create`` and ``logs`` are additions.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx
import yaml

from . import builds, client_version
from . import run as runner
from .api import Api
from .errors import CondaStoreError
from .output import (
    build_row,
    dumps,
    emit,
    environment_row,
    humanize_size,
    namespace_row,
    package_row,
    print_diff,
    print_table,
)
from .uri import parse_uri, resolve_build_id

F = TypeVar("F", bound=Callable[..., Any])
STATUSES = ["QUEUED", "BUILDING", "COMPLETED", "FAILED", "CANCELED"]
ARTIFACTS = [
    "DIRECTORY",
    "LOCKFILE",
    "LOGS",
    "YAML",
    "CONDA_PACK",
    "DOCKER_BLOB",
    "DOCKER_MANIFEST",
    "CONSTRUCTOR_INSTALLER",
    "SBOM",
]
OUTPUT = click.option(
    "--output",
    type=click.Choice(["json", "table"]),
    default="table",
    show_default=True,
    help="Output format: a table for people or JSON for scripts.",
)


def _api(ctx: click.Context) -> Api:
    """The session made from the global options; built on first use, closed with the context."""
    obj = ctx.find_root().obj
    if "api" not in obj:
        obj["api"] = Api(obj["url"], obj["auth"], verify_ssl=not obj["no_verify_ssl"])
        ctx.find_root().call_on_close(obj["api"].close)
    return obj["api"]


def _newline() -> bool:
    """Upstream prints tokens and paths without a newline; we add one only for a terminal."""
    return sys.stdout.isatty()


@click.group(context_settings={"help_option_names": ["--help"]})
@click.option(
    "--conda-store-url",
    envvar="CONDA_STORE_URL",
    default="http://localhost:8080",
    show_default=True,
    help="conda-store base url including prefix [env: CONDA_STORE_URL]",
)
@click.option(
    "--auth",
    envvar="CONDA_STORE_AUTH",
    type=click.Choice(["none", "token", "basic"]),
    default="none",
    show_default=True,
    help="conda-store authentication to use [env: CONDA_STORE_AUTH]. token: "
    "CONDA_STORE_TOKEN as a Bearer token; basic: log in with CONDA_STORE_USERNAME and "
    "CONDA_STORE_PASSWORD.",
)
@click.option(
    "--no-verify-ssl",
    envvar="CONDA_STORE_NO_VERIFY",
    is_flag=True,
    default=False,
    help="Disable tls verification on API requests [env: CONDA_STORE_NO_VERIFY]",
)
@click.version_option(client_version(), prog_name="conda-store")
@click.pass_context
def cli(ctx: click.Context, conda_store_url: str, auth: str, no_verify_ssl: bool) -> None:
    ctx.ensure_object(dict)
    ctx.obj.update(url=conda_store_url, auth=auth, no_verify_ssl=no_verify_ssl)


# --- info / token --------------------------------------------------------------------------


@cli.command()
@OUTPUT
@click.pass_context
def info(ctx: click.Context, output: str) -> None:
    """Get current permissions and default namespace

    \b
    JSON: {"authenticated": bool, "primary_namespace": str, "expiration": str|null,
    "entity_permissions": {arn: [permission]}, "entity_roles": {arn: [role]}}
    """
    data = _api(ctx).get_data("/permission/")
    if output == "json":
        keys = ("authenticated", "primary_namespace", "expiration")
        shaped = {k: data.get(k) for k in keys}
        shaped["entity_permissions"] = data.get("entity_permissions") or {}
        shaped["entity_roles"] = data.get("entity_roles") or {}
        sys.stdout.write(dumps(shaped))
        return
    click.echo(f"Default namespace is {data.get('primary_namespace')}")
    click.echo(f"Authenticated {data.get('authenticated')}")
    rows = []
    for arn, permissions in sorted((data.get("entity_permissions") or {}).items()):
        namespace, _, name = arn.partition("/")
        rows.append((namespace, name, " ".join(sorted(permissions))))
    print_table(["Namespace", "Name", "Permissions"], rows)


def _parse_permission(text: str) -> tuple[str, list[str]]:
    arn, sep, roles = text.rpartition(":")
    if not sep or not arn or not roles:
        raise CondaStoreError(f"--permission {text!r}: expected <namespace>/<name>:<role1>,...")
    return arn, [r.strip() for r in roles.split(",") if r.strip()]


@cli.command()
@click.option("--namespace", help="Primary namespace to assign to new token")
@click.option("--expiration", type=int, help="Seconds from now for token to expire")
@click.option(
    "--permission",
    multiple=True,
    help="Permission to assign to token in form <namespace>/<name>:<role1>,<role2>,...",
)
@click.pass_context
def token(
    ctx: click.Context, namespace: str | None, expiration: int | None, permission: Sequence[str]
) -> None:
    """Create a token (by default with your current namespace, roles and expiration)."""
    api = _api(ctx)
    current = api.get_data("/permission/")
    bindings: dict[str, list[str]] = {}
    for item in permission:
        arn, roles = _parse_permission(item)
        bindings.setdefault(arn, []).extend(roles)
    payload: dict[str, Any] = {
        "primary_namespace": namespace or current.get("primary_namespace"),
        "role_bindings": bindings or current.get("entity_roles") or {},
    }
    if expiration is not None:
        when = datetime.now(UTC) + timedelta(seconds=expiration)
        payload["expiration"] = when.isoformat()
    elif current.get("expiration"):
        payload["expiration"] = current["expiration"]
    data = api.post_data("/token/", payload)
    click.echo(data["token"], nl=_newline())


# --- list ----------------------------------------------------------------------------------


@cli.group(name="list")
def list_group() -> None:
    """List namespaces, environments or builds (every page, server-side filters)."""


def _filters(status: str | None, artifact: str | None, package: Sequence[str]) -> dict[str, Any]:
    return {"status": status, "artifact": artifact, "packages": list(package)}


def _filter_options(what: str) -> Callable[[F], F]:
    """--status/--artifact/--package, worded for ``what`` as in upstream's help."""

    def decorate(func: F) -> F:
        func = click.option(
            "--package",
            multiple=True,
            help=f"Filter {what} which have given package (can be used multiple times)",
        )(func)
        func = click.option(
            "--artifact",
            type=click.Choice(ARTIFACTS),
            help=f"Filter {what} which have given artifact",
        )(func)
        func = click.option(
            "--status", type=click.Choice(STATUSES), help=f"Filter {what} which have given status"
        )(func)
        return func

    return decorate


@list_group.command(name="namespace")
@OUTPUT
@click.pass_context
def list_namespace(ctx: click.Context, output: str) -> None:
    """List namespaces.

    \b
    JSON: [{"id": int, "name": str}]
    """
    rows = [namespace_row(i) for i in _api(ctx).paginate("/namespace/")]
    emit(rows, output, {"Id": "id", "Name": "name"})


@list_group.command(name="environment")
@_filter_options("environments")
@OUTPUT
@click.pass_context
def list_environment(
    ctx: click.Context,
    status: str | None,
    artifact: str | None,
    package: Sequence[str],
    output: str,
) -> None:
    """List environments (filters apply to the current build).

    \b
    JSON: [{"id": int, "namespace": str, "namespace_id": int, "name": str,
    "current_build_id": int|null, "description": str|null}]
    """
    items = _api(ctx).paginate("/environment/", _filters(status, artifact, package))
    rows = [environment_row(i) for i in items]
    columns = {"Id": "id", "Namespace": "namespace", "Name": "name", "Build": "current_build_id"}
    emit(rows, output, columns)


@list_group.command(name="build")
@_filter_options("builds")
@OUTPUT
@click.pass_context
def list_build(
    ctx: click.Context,
    status: str | None,
    artifact: str | None,
    package: Sequence[str],
    output: str,
) -> None:
    """List builds.

    \b
    JSON: [{"id": int, "environment_id": int, "status": str, "status_info": str|null,
    "size": int, "scheduled_on": str, "started_on": str|null, "ended_on": str|null}]
    """
    items = _api(ctx).paginate("/build/", _filters(status, artifact, package))
    rows = [build_row(i) for i in items]
    if output == "table":
        for row in rows:
            row["human_size"] = humanize_size(row["size"])
    columns = {"Id": "id", "Environment": "environment_id", "Status": "status"}
    emit(rows, output, {**columns, "Size": "human_size", "Scheduled": "scheduled_on"})


# --- build commands --------------------------------------------------------------------------


@cli.command()
@click.argument("uri")
@click.option(
    "--artifact",
    type=click.Choice(list(builds.DOWNLOADS)),
    default="lockfile",
    show_default=True,
)
@click.option(
    "--output-filename",
    help="Output filename for given download. Default "
    "build-{build_id}.{lock|yaml|tar.gz|log|cdx.json}",
)
@click.pass_context
def download(ctx: click.Context, uri: str, artifact: str, output_filename: str | None) -> None:
    """Download artifacts for given build

    URI in format '<build-id>', '<namespace>/<name>', '<namespace>/<name>:<build-id>'

    Prints the absolute path of the written file.
    """
    api = _api(ctx)
    build_id = resolve_build_id(api, parse_uri(uri))
    path = builds.download(api, build_id, artifact, output_filename)
    click.echo(str(path), nl=_newline())


@cli.command()
@click.argument("uri")
@click.option(
    "--timeout",
    type=float,
    default=600,
    show_default=True,
    help="Seconds to wait for the build before reporting an error.",
)
@click.option(
    "--interval", type=float, default=10, show_default=True, help="Seconds between polls."
)
@click.option(
    "--artifact",
    type=click.Choice(["build", *builds.WAIT_ARTIFACTS]),
    default="build",
    show_default=True,
    help="Choice of artifact to wait for. 'build' means the environment was built.",
)
@click.pass_context
def wait(ctx: click.Context, uri: str, timeout: float, interval: float, artifact: str) -> None:
    """Wait for given URI to complete or fail building

    URI in format '<build-id>', '<namespace>/<name>', '<namespace>/<name>:<build-id>'

    Exits 1 with the server's reason when the build FAILED or was CANCELED.
    """
    api = _api(ctx)
    build_id = resolve_build_id(api, parse_uri(uri))
    builds.wait_for(api, build_id, artifact, timeout, interval)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--artifact",
    type=click.Choice(["yaml", "lockfile", "archive"]),
    default="archive",
    help="Artifact type to use for execution. Conda-Pack is the default format",
)
@click.option("--no-cache", is_flag=True, help="Disable caching builds for fast execution")
@click.argument("uri")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(
    ctx: click.Context, artifact: str, no_cache: bool, uri: str, command: Sequence[str]
) -> None:
    """Execute given environment specified as a URI with COMMAND

    URI in format '<build-id>', '<namespace>/<name>', '<namespace>/<name>:<build-id>'

    COMMAND is a list of arguments to execute in given environment (default: python);
    put it after `--` when it has options of its own. The archive is downloaded once per
    build into $CONDA_STORE_CACHE_DIR (default {tmp}/conda-store/{build_id}).

    Scripts can use it as interpreter: a first line `#!/usr/bin/env conda-store`
    followed by `#! conda-store run <namespace>/<name> -- python`.
    """
    if artifact != "archive":
        raise CondaStoreError(f"Running build artifact {artifact} not supported")
    api = _api(ctx)
    build_id = resolve_build_id(api, parse_uri(uri))
    directory = runner.prepare(api, build_id, no_cache)
    api.close()
    runner.exec_in(directory, list(command), remove_after=no_cache)


@cli.command()
@click.argument("filename", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@OUTPUT
@click.pass_context
def solve(ctx: click.Context, filename: Path, output: str) -> None:
    """Remotely solve given environment.yaml

    \b
    JSON: [{"name": str, "version": str, "build": str, "channel": str, "subdir": str,
    "manager": "conda"|"pip"}]
    """
    spec = _load_spec(filename)
    conda: list[str] = []
    pip: list[str] = []
    for dep in spec.get("dependencies") or []:
        if isinstance(dep, str):
            conda.append(dep)
        elif isinstance(dep, dict):
            pip.extend(str(p) for p in dep.get("pip") or [])
    params = {"channel": list(spec.get("channels") or []), "conda": conda, "pip": pip}
    api = _api(ctx)
    response = api.request(
        "GET", "/specification/", params=params, timeout=httpx.Timeout(900.0, connect=10.0)
    )
    body = response.json()
    packages = body.get("solve", body.get("packages")) if isinstance(body, dict) else body
    if packages is None and isinstance(body, dict):
        data = body.get("data")
        packages = data.get("solve", data.get("packages")) if isinstance(data, dict) else data
    if not isinstance(packages, list):
        raise CondaStoreError("the server's solve answer has no package list")
    rows = sorted((package_row(p) for p in packages), key=lambda r: (str(r["name"]), r["manager"]))
    columns = {"Name": "name", "Version": "version", "Build": "build", "Channel": "channel"}
    emit(rows, output, columns)


def _load_spec(filename: Path) -> dict[str, Any]:
    try:
        spec = yaml.safe_load(filename.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CondaStoreError(f"cannot read {filename}: {exc}") from exc
    if not isinstance(spec, dict):
        raise CondaStoreError(f"{filename} is not an environment.yaml mapping")
    return spec


@cli.command()
@click.argument("filename", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--namespace", help="Namespace for the environment (default: your primary one)")
@click.option("--wait", "wait_", is_flag=True, help="Wait until the build completed or failed.")
@click.option("--timeout", type=float, default=600, show_default=True, help="With --wait.")
@click.option("--interval", type=float, default=2, show_default=True, help="With --wait.")
@click.pass_context
def create(
    ctx: click.Context,
    filename: Path,
    namespace: str | None,
    wait_: bool,
    timeout: float,
    interval: float,
) -> None:
    """Submit an environment.yaml (a new build of that environment); print the build id."""
    try:
        text = filename.read_text()
    except OSError as exc:
        raise CondaStoreError(f"cannot read {filename}: {exc}") from exc
    payload: dict[str, Any] = {"specification": text}
    if namespace:
        payload["namespace"] = namespace
    api = _api(ctx)
    data = api.post_data("/specification/", payload)
    build_id = int(data["build_id"])
    click.echo(str(build_id))
    if wait_:
        builds.wait_for(api, build_id, "build", timeout, interval)


@cli.command()
@click.argument("old_uri", metavar="OLD")
@click.argument("new_uri", metavar="NEW", required=False)
@OUTPUT
@click.pass_context
def diff(ctx: click.Context, old_uri: str, new_uri: str | None, output: str) -> None:
    """What changed between two builds: packages added, removed, upgraded, downgraded or
    rebuilt (conda and pip), and the specification.

    OLD and NEW as for download ('<build-id>', '<namespace>/<name>[:<build-id>]'); with NEW
    left out, OLD's build is compared with the previous completed build of its environment.

    \b
    JSON: {"from": {...}, "to": {...}, "counts": {...}, "packages": [{"kind", "manager",
    "name", "old", "new"}], "specification": {...}}
    """
    api = _api(ctx)
    first = resolve_build_id(api, parse_uri(old_uri))
    if new_uri is None:
        data = api.get_data(f"/build/{first}/diff/")
    else:
        data = api.get_data(f"/build/{first}/diff/{resolve_build_id(api, parse_uri(new_uri))}/")
    if output == "json":
        sys.stdout.write(dumps(data))
        return
    print_diff(data)


@cli.command()
@click.argument("uri")
@click.option("--follow", "-f", is_flag=True, help="Keep streaming until the build ends.")
@click.pass_context
def logs(ctx: click.Context, uri: str, follow: bool) -> None:
    """Print a build's log; with --follow, stream a running build's log live.

    URI in format '<build-id>', '<namespace>/<name>', '<namespace>/<name>:<build-id>'
    """
    api = _api(ctx)
    builds.stream_logs(api, resolve_build_id(api, parse_uri(uri)), follow)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point; also the interpreter of ``#!/usr/bin/env conda-store`` scripts."""
    args = runner.rewrite_argv(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="conda-store", obj={})
    except CondaStoreError as exc:  # raised outside click's own handling (e.g. argv rewrite)
        exc.show()
        sys.exit(exc.exit_code)
