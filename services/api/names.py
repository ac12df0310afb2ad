"""Namespace and environment names longer than conda-store's 255 characters: a 400 before
any SQL runs, wherever a name comes in (path parameters and request bodies)."""

from __future__ import annotations

from fastapi import Request

from shared.spec import name_length_error

from .envelopes import APIError

PATH_NAMES = {"namespace": "namespace", "name": "environment", "environment": "environment"}
"""Path parameters that carry a name, and what they name."""


def check_name_length(kind: str, name: str | None) -> None:
    if name is not None and (message := name_length_error(kind, name)) is not None:
        raise APIError(400, message)


async def refuse_long_path_names(request: Request) -> None:
    """App-wide dependency: it runs before each route's own dependencies (the caller lookup
    reads the database)."""
    for param, kind in PATH_NAMES.items():
        check_name_length(kind, request.path_params.get(param))
