"""Jinja2 set-up: templates compiled once per process, filters for sizes, times and states."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from shared.public_url import route_path

TEMPLATES = Path(__file__).parent / "templates"
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED"})


def human_size(value: Any) -> str:
    """Bytes as a short human figure (``12.3 MB``); empty for unknown."""
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def parse_time(value: Any) -> dt.datetime | None:
    """The API's naive-UTC ISO strings (``…Z`` tolerated) as aware datetimes."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def show_time(value: Any) -> str:
    moment = parse_time(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def duration(start: Any, end: Any) -> str:
    """Elapsed time between two API timestamps, e.g. ``1 min 12 s``."""
    a, b = parse_time(start), parse_time(end)
    if a is None or b is None:
        return "—"
    seconds = max(0, int((b - a).total_seconds()))
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def build_key_of(build: dict[str, Any], environment: str) -> str | None:
    """The build key: the API's field if it has one, else read off an artifact key."""
    if build.get("build_key"):
        return str(build["build_key"])
    pattern = re.compile(rf"([0-9a-f]{{8,64}}-[0-9-]+?-{build['id']}-{re.escape(environment)})")
    for artifact in build.get("build_artifacts") or []:
        found = pattern.search(artifact.get("key") or "")
        if found:
            return found.group(1)
    return None


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(size=human_size, time=show_time)
    env.globals.update(duration=duration, TERMINAL=TERMINAL)
    return env


JINJA = make_environment()


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with what every page needs (the viewer, the settings, the request)."""
    context.setdefault("viewer", getattr(request.state, "viewer", None))
    context.update(
        request=request,
        settings=request.app.state.settings,
        root=request.scope.get("root_path", ""),  # the URL prefix every link starts with
        route_path=route_path(request.scope),  # the page's path below it
    )
    html = JINJA.get_template(template).render(context)
    return HTMLResponse(html, status_code=status_code)
