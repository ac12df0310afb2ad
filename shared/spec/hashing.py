"""conda-store's specification hash.

The hash identifies a specification (and starts every build key), so it must equal
conda-store's bit for bit: ``sha256(json.dumps(recursive_sort(spec)))`` with json's default
separators and ``ensure_ascii``. Sorting list items too means dependency and channel order do
not change the hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _sort_key(value: Any) -> str:
    # Containers sort by type name only (so their relative order is stable); scalars by
    # "<type>-<value>", which groups by type first. This is conda-store's key, quirks included.
    if isinstance(value, (list, dict, tuple)):
        return str(type(value))
    return f"{type(value)}-{value}"


def recursive_sort(value: Any) -> Any:
    """Sort dict keys and list/tuple items recursively (tuples become lists)."""
    if isinstance(value, dict):
        return {k: recursive_sort(value[k]) for k in sorted(value, key=_sort_key)}
    if isinstance(value, (list, tuple)):
        return [recursive_sort(item) for item in sorted(value, key=_sort_key)]
    return value


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def specification_sha256(spec: dict[str, Any]) -> str:
    """Hex sha256 of a specification dict (``CondaSpecification.model_dump()`` or a lockfile
    specification dump)."""
    blob = json.dumps(recursive_sort(spec), default=_default)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
