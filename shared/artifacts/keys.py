"""Key rules shared by every backend.

Keys become file paths in the local backend, so anything that could escape the root
(absolute paths, '..', backslashes, NUL, empty segments) is refused before any I/O happens.
The same rules apply to S3 so a key that works in one backend works in the other.
"""

from __future__ import annotations

import mimetypes

_ENCODING_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
}


def _check_segments(value: str, what: str, segments: list[str]) -> None:
    if "\x00" in value:
        raise ValueError(f"{what} {value!r} contains NUL")
    if "\\" in value:
        raise ValueError(f"{what} {value!r} contains a backslash")
    if value.startswith("/"):
        raise ValueError(f"{what} {value!r} is absolute")
    for segment in segments:
        if segment == "":
            raise ValueError(f"{what} {value!r} has an empty path segment")
        if segment in (".", ".."):
            raise ValueError(f"{what} {value!r} contains a {segment!r} segment")


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a safe relative object key, else raise ValueError."""
    if not isinstance(key, str) or not key:
        raise ValueError("artifact key must be a non-empty string")
    _check_segments(key, "artifact key", key.split("/"))
    return key


def validate_prefix(prefix: str, *, allow_empty: bool = True) -> str:
    """Validate a listing prefix: a key, optionally ending in '/', or '' for everything.

    Prefixes match like S3 (plain string prefix), so ``builds/1`` also matches ``builds/10/...``;
    pass ``builds/1/`` to mean one directory.
    """
    if not isinstance(prefix, str):
        raise ValueError("artifact prefix must be a string")
    if prefix == "":
        if not allow_empty:
            raise ValueError("an empty prefix would match every artifact")
        return prefix
    body = prefix[:-1] if prefix.endswith("/") else prefix
    if body == "":
        raise ValueError(f"artifact prefix {prefix!r} is absolute")
    _check_segments(prefix, "artifact prefix", body.split("/"))
    return prefix


def guess_content_type(key: str) -> str:
    """Pick a Content-Type from the key's extension so downloads open sensibly in browsers.

    ``archive.tar.gz`` is ``application/gzip`` (not tar with a gzip *encoding*, which would make
    HTTP clients decompress it on the fly).
    """
    mime, encoding = mimetypes.guess_type(key, strict=False)
    if encoding:
        return _ENCODING_TYPES.get(encoding, "application/octet-stream")
    if key.endswith((".yaml", ".yml")):
        return "application/yaml"
    return mime or "application/octet-stream"


def build_prefix(build_id: int) -> str:
    """Every file of one build lives under this prefix, whichever service writes it (the
    solver's lockfile and YAML, the packer's archive, the logs), so the build's deletion can
    remove what no artifact names (e.g. an upload a crash left behind) without knowing who
    wrote what."""
    return f"builds/{build_id}/"
