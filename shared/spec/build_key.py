"""Build keys (the names of a build's prefix, artifacts and image tags) and dynamic images.

Formats follow conda-store (reference §4.3). Keys are embedded in artifact paths that clients
may have saved, so the text must match exactly.
"""

from __future__ import annotations

import datetime as dt

V2_HASH_SIZE = 8
DYNAMIC_NAMESPACE = "conda-store-dynamic"
DYNAMIC_CHANNELS = ("conda-forge",)

# Applied in this order; conda-store's code (not its docs) is authoritative.
_CONSTRAINTS = ((".gt.", ">"), (".ge.", ">="), (".lt.", "<"), (".le.", "<="), (".eq.", "=="))


def _utc_timestamp(moment: dt.datetime) -> int:
    # Stored datetimes are naive UTC; an aware one is converted rather than relabelled.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def build_key_v2(sha256: str, scheduled_on: dt.datetime, build_id: int, name: str) -> str:
    """``{sha256[:8]}-{unix seconds of scheduled_on}-{build_id}-{name}`` (the default, v2)."""
    return f"{sha256[:V2_HASH_SIZE]}-{_utc_timestamp(scheduled_on)}-{build_id}-{name}"


def build_key_v1(sha256: str, scheduled_on: dt.datetime, build_id: int, name: str) -> str:
    """The legacy v1 key: full hash and ``%Y%m%d-%H%M%S-%f`` timestamp (old builds keep it)."""
    return f"{sha256}-{scheduled_on.strftime('%Y%m%d-%H%M%S-%f')}-{build_id}-{name}"


def parse_build_key(key: str) -> int | None:
    """The build id in a v1 or v2 key, or None.

    The version is told from the hash length (names may contain dashes). A key with no dash
    is a v3 hash whose id needs a lookup by hash, so it also yields None here.
    """
    parts = key.split("-")
    try:
        if len(key) > V2_HASH_SIZE and key[V2_HASH_SIZE] == "-":
            return int(parts[2])
        if "-" not in key:
            return None
        return int(parts[4])
    except (IndexError, ValueError):
        return None


def dynamic_image_spec(segments: list[str]) -> tuple[str, list[str]]:
    """Map ``/v2/conda-store-dynamic/<seg>/<seg>/...`` to (environment name, dependencies).

    The name joins the raw segments in URL order; the dependencies are the segments sorted,
    with ``.gt. .ge. .lt. .le. .eq.`` turned into ``> >= < <= ==``.
    """
    name = "-".join(segments)
    dependencies = []
    for segment in sorted(segments):
        for token, operator in _CONSTRAINTS:
            segment = segment.replace(token, operator)
        dependencies.append(segment)
    return name, dependencies
