"""What the CLI prints: rich tables for people, stable JSON for scripts.

JSON shapes are chosen here (not passed through from the server) so that scripts keep
working when the server adds fields. Keys are sorted, two-space indented, one trailing newline.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

NAMESPACE_KEYS = ("id", "name")
ENVIRONMENT_KEYS = ("id", "namespace", "namespace_id", "name", "current_build_id", "description")
BUILD_KEYS = (
    "id",
    "environment_id",
    "status",
    "status_info",
    "size",
    "scheduled_on",
    "started_on",
    "ended_on",
)
PACKAGE_KEYS = ("name", "version", "build", "channel", "subdir", "manager")


def stdout_console() -> Console:
    # soft_wrap keeps long cells intact when piped; width only matters on a terminal
    return Console(file=sys.stdout, soft_wrap=False)


def stderr_console() -> Console:
    return Console(file=sys.stderr, stderr=True)


def dumps(value: Any) -> str:
    """The one JSON encoding for script output."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def humanize_size(size: float | None) -> str:
    """Binary units with one decimal, like upstream's table (``0.0B``, ``1.5MiB``)."""
    value = float(size or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024.0 or unit == "TiB":
            return f"{value:.1f}{unit}"
        value /= 1024.0
    raise AssertionError("unreachable")


def namespace_row(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item.get(k) for k in NAMESPACE_KEYS}


def environment_row(item: dict[str, Any]) -> dict[str, Any]:
    namespace = item.get("namespace")
    ns = namespace if isinstance(namespace, dict) else {"name": namespace}
    return {
        "id": item.get("id"),
        "namespace": ns.get("name"),
        "namespace_id": ns.get("id", item.get("namespace_id")),
        "name": item.get("name"),
        "current_build_id": item.get("current_build_id"),
        "description": item.get("description"),
    }


def build_row(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item.get(k) for k in BUILD_KEYS}


def package_row(item: dict[str, Any]) -> dict[str, Any]:
    """A solved package, whatever the server nests (channel as object or URL, missing keys)."""
    channel = item.get("channel")
    if isinstance(channel, dict):
        channel = channel.get("name")
    package = item.get("package") if isinstance(item.get("package"), dict) else {}
    return {
        "name": item.get("name", package.get("name")),
        "version": item.get("version", package.get("version")),
        "build": item.get("build", item.get("build_string", "")),
        "channel": channel if channel is not None else item.get("channel_id"),
        "subdir": item.get("subdir", ""),
        "manager": item.get("manager", "conda"),
    }


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    out = Table(title=title)
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*("" if cell is None else str(cell) for cell in row))
    return out


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None
) -> None:
    stdout_console().print(table(title, columns, rows))


def emit(rows: list[dict[str, Any]], output: str, columns: dict[str, str]) -> None:
    """Print ``rows`` as JSON or as a table of ``columns`` (header -> key)."""
    if output == "json":
        sys.stdout.write(dumps(rows))
        return
    print_table(list(columns), ([row.get(key) for key in columns.values()] for row in rows))


def _pin(pin: dict[str, Any] | None) -> str:
    if not pin:
        return ""
    return " ".join(x for x in (pin["version"], pin["build"]) if x)


def print_diff(data: dict[str, Any]) -> None:
    """A build diff for people: one row per changed package, then the spec's unified diff."""
    old, new = data["from"], data["to"]
    title = f"build {old['id']} -> build {new['id']} ({new['namespace']}/{new['environment']})"
    rows = [
        (p["kind"], p["manager"], p["name"], _pin(p["old"]), _pin(p["new"]))
        for p in data["packages"]
    ]
    print_table(["Change", "Manager", "Name", "Old", "New"], rows, title=title)
    counts = ", ".join(f"{n} {kind}" for kind, n in data["counts"].items() if n)
    stdout_console().print(counts or "no package changed")
    text = data["specification"]["text"]
    if text:
        sys.stdout.write(text)
