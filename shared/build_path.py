"""Where a build's environment lives for users, and conda-store's 255-character rule on it.

conda-store installs each build at ``<store_directory>/<namespace>/<build key>`` and fails a
build whose path is longer than 255 characters (conda prefixes are patched into files, and
some tools cap them). The rule is measured on that path, whatever scratch path a worker uses.
"""

from __future__ import annotations

from pathlib import Path

MAX_BUILD_PATH_LENGTH = 255
BUILD_PATH_TOO_LONG = "build_path too long: must be <= 255 characters"
"""conda-store's ``status_info`` for this case, word for word."""


def build_path(store_directory: Path, namespace: str, build_key: str) -> Path:
    """``<store>/<namespace>/<build key>`` (conda-store's ``build_directory`` plus the key)."""
    return store_directory / namespace / build_key


def is_too_long(path: Path) -> bool:
    return len(str(path)) > MAX_BUILD_PATH_LENGTH
