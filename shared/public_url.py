"""The address a visitor used, so every URL the server hands out works from where they stand.

A colleague opening ``http://server:8080/`` must get links to ``server:8080``, not to the
loopback address the processes listen on; behind a reverse proxy (the usual deployment), links
must name the proxy. So URLs are built from the request: ``X-Forwarded-Proto``,
``X-Forwarded-Host``, ``X-Forwarded-Port`` and ``X-Forwarded-Prefix`` (trusted, as the proxy in
front sets them), else the ``Host`` header. ``CONDA_STORE_EXTERNAL_URL``, when set, wins.

``CONDA_STORE_URL_PREFIX`` (conda-store's ``url_prefix``, e.g. ``/conda-store``) mounts every
route under a path, the layout deployments behind JupyterHub or Traefik use: the proxy passes
``/conda-store/...`` on unchanged. Requests that arrive without it are served too (a proxy that
strips the prefix says so in ``X-Forwarded-Prefix``; internal callers use plain paths), except
``/``, which is redirected into the prefix.

:class:`PublicUrlMiddleware` rewrites the ASGI scope once (scheme, ``Host``, ``root_path`` and a
``path`` that starts with it, Starlette's convention), so ``request.base_url``, ``request.url``,
``url_for`` and FastAPI's own redirects are all public URLs with no further effort.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?$")
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*/?$")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
FORWARDED = ("x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix")


def normalize_prefix(value: str | None) -> str:
    """``""`` or ``/a/b`` (leading slash, none trailing); ValueError for anything else."""
    text = (value or "").strip()
    if not text or text == "/":
        return ""
    if not text.startswith("/"):
        text = "/" + text
    if not _PREFIX.match(text) or "//" in text:
        raise ValueError(f"invalid URL prefix {value!r}: use a path such as /conda-store")
    return text.rstrip("/")


def _first(value: str | None) -> str | None:
    """The client-most value of a comma-separated proxy header, or None when empty."""
    if value is None:
        return None
    first = value.split(",", 1)[0].strip()
    return first or None


def split_host(host: str) -> tuple[str, str | None]:
    """``host[:port]`` (IPv6 in brackets) as (host, port or None)."""
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1 :]
        return host[: end + 1], rest[1:] if rest.startswith(":") else None
    name, sep, port = host.rpartition(":")
    return (name, port) if sep else (host, None)


@dataclass(frozen=True)
class PublicBase:
    """Where this server is, as the visitor sees it: ``scheme://host{prefix}``."""

    scheme: str
    host: str
    prefix: str = ""

    @property
    def hostname(self) -> str:
        """The host without its port (IPv6 keeps its brackets)."""
        return split_host(self.host)[0]

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://{self.host}{self.prefix}{path}"


def parse_external_url(external_url: str, url_prefix: str = "") -> PublicBase:
    """``CONDA_STORE_EXTERNAL_URL`` as a base; the URL prefix is appended unless it ends so."""
    parts = urlsplit(external_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"CONDA_STORE_EXTERNAL_URL must be http(s)://host[:port][/path], not {external_url!r}"
        )
    prefix = normalize_prefix(parts.path)
    if url_prefix and not prefix.endswith(url_prefix):
        prefix += url_prefix
    return PublicBase(parts.scheme, parts.netloc, prefix)


def forwarded_base(
    scheme: str, host: str | None, headers: Mapping[str, str], root: str
) -> tuple[PublicBase, str | None]:
    """The base a proxy describes, falling back to the request's own scheme and ``Host``.

    Returns it with the ``X-Forwarded-Prefix`` given (None when the header is absent, so a
    caller can tell "no proxy prefix" from "the proxy said the prefix is empty"). Invalid
    values are ignored rather than copied into URLs.
    """
    proto = _first(headers.get("x-forwarded-proto"))
    if proto in ("http", "https"):
        scheme = proto
    public_host = host or "localhost"
    fwd_host = _first(headers.get("x-forwarded-host"))
    if fwd_host and _HOST.match(fwd_host):
        public_host = fwd_host
    port = _first(headers.get("x-forwarded-port"))
    if port and port.isdigit() and split_host(public_host)[1] is None:
        if _DEFAULT_PORTS.get(scheme) != port:
            public_host = f"{public_host}:{port}"
    fwd_prefix: str | None = None
    raw_prefix = headers.get("x-forwarded-prefix")
    if raw_prefix is not None:
        try:
            fwd_prefix = normalize_prefix(_first(raw_prefix) or "")
        except ValueError:
            fwd_prefix = None
    return PublicBase(scheme, public_host, root if fwd_prefix is None else fwd_prefix), fwd_prefix


def registry_host(base: PublicBase, registry_port: int, registry_external_url: str | None) -> str:
    """The registry's name in image references: the configured one, else the host the visitor
    used with the registry's port (the registry never takes the URL prefix)."""
    if registry_external_url:
        configured = registry_external_url.strip()
        return configured.removeprefix("https://").removeprefix("http://").rstrip("/")
    return f"{base.hostname}:{registry_port}"


def forwarded_headers(base: PublicBase) -> dict[str, str]:
    """Headers telling the next hop (ui service, API) the visitor's base, prefix included."""
    return {
        "x-forwarded-proto": base.scheme,
        "x-forwarded-host": base.host,
        "x-forwarded-prefix": base.prefix,
    }


def without_forwarded(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers minus the forwarding ones, which the next hop gets from :func:`forwarded_headers`."""
    return [(k, v) for k, v in headers if k.lower() not in FORWARDED]


def scope_base(scope: Mapping[str, Any]) -> PublicBase:
    """The public base of a scope the middleware rewrote (scheme, ``Host``, ``root_path``)."""
    host = _header(scope, b"host") or "localhost"
    return PublicBase(scope.get("scheme", "http"), host, scope.get("root_path", ""))


def route_path(scope: Mapping[str, Any]) -> str:
    """The path below ``root_path`` (what routes match), e.g. ``/api/v1/`` for
    ``/conda-store/api/v1/``."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :]
    return path


def raw_route_path(scope: Mapping[str, Any]) -> str:
    """:func:`route_path` still percent-encoded, as the client sent it: what a proxy must
    forward. The decoded path would turn an encoded ``?``, ``#`` or ``/`` in a name into URL
    syntax and reach another route."""
    raw: bytes | None = scope.get("raw_path")
    if not raw:
        return quote(route_path(scope), safe="/:@!$&'()*+,;=")
    root = scope.get("root_path", "").encode("latin-1")
    if root and (raw == root or raw.startswith(root + b"/")):
        raw = raw[len(root) :]
    return raw.decode("latin-1")


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return value.decode("latin-1")
    return None


class PublicUrlMiddleware:
    """Make the scope describe the public URL (see the module docstring); 307 ``/`` and the
    bare prefix into the prefix."""

    def __init__(self, app: Any, url_prefix: str = "", external_url: str | None = None) -> None:
        self.app = app
        self.prefix = normalize_prefix(url_prefix)
        self.external = parse_external_url(external_url, self.prefix) if external_url else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_path(scope)
        mounted = bool(self.prefix) and (
            route == self.prefix or route.startswith(self.prefix + "/")
        )
        if mounted:
            route = route[len(self.prefix) :]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        server_root = scope.get("root_path", "")
        base, fwd_prefix = forwarded_base(
            scope.get("scheme", "http"), headers.get("host"), headers, server_root
        )
        if self.external is not None:
            base = self.external
        elif mounted and not base.prefix.endswith(self.prefix):
            base = PublicBase(base.scheme, base.host, base.prefix + self.prefix)
        elif not mounted and self.prefix and fwd_prefix is None and route == "/":
            base = PublicBase(base.scheme, base.host, server_root + self.prefix)
            await _redirect(send, base.url("/"), scope.get("query_string", b""))
            return
        if route == "":
            await _redirect(send, base.url("/"), scope.get("query_string", b""))
            return
        new_headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
        new_headers.append((b"host", base.host.encode("latin-1")))
        scope = dict(
            scope,
            scheme=base.scheme,
            root_path=base.prefix,
            path=base.prefix + route,
            headers=new_headers,
        )
        raw = scope.get("raw_path")
        if raw is not None:  # the undecoded path, rebased the same way
            strip = (server_root + (self.prefix if mounted else "")).encode()
            if raw.startswith(strip):
                raw = raw[len(strip) :]
            scope["raw_path"] = base.prefix.encode() + raw
        await self.app(scope, receive, send)


async def _redirect(send: Any, location: str, query: bytes) -> None:
    if query:
        location += "?" + query.decode("latin-1")
    await send(
        {
            "type": "http.response.start",
            "status": 307,
            "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
