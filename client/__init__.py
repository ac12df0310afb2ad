"""The ``conda-store`` command-line client: same commands, options and URIs as conda-store's.

It talks to any server speaking conda-store's ``/api/v1`` (this project's API or upstream's).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def client_version() -> str:
    """Our own version (``--version`` must not pretend to be upstream's client)."""
    try:
        return version("conda-store-es")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"
