"""Build URIs as the CLI accepts them: ``<build-id>``, ``<ns>/<name>``, ``<ns>/<name>:<id>``.

Parsing is pure (unit-tested); resolving a URI to a build id needs the API and lives in
``resolve_build_id`` so every command (download, wait, run, logs) agrees on the look-ups.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import CondaStoreError

if TYPE_CHECKING:
    from .api import Api

_NAME = r"[^/:\s]+"
_URI = re.compile(rf"^(?:(?P<id>\d+)|(?P<ns>{_NAME})/(?P<name>{_NAME})(?::(?P<bid>\d+))?)$")

URI_HELP = "URI in format '<build-id>', '<namespace>/<name>', '<namespace>/<name>:<build-id>'"


@dataclass(frozen=True)
class BuildUri:
    """A parsed URI; ``build_id`` is None when the environment's current build is meant."""

    build_id: int | None = None
    namespace: str | None = None
    name: str | None = None

    @property
    def environment(self) -> str | None:
        return f"{self.namespace}/{self.name}" if self.namespace else None


def parse_uri(text: str) -> BuildUri:
    """Parse without any I/O; raises CondaStoreError on anything else."""
    match = _URI.match(text.strip())
    if match is None:
        raise CondaStoreError(f"unable to parse URI '{text}': {URI_HELP}")
    if match["id"] is not None:
        return BuildUri(build_id=int(match["id"]))
    bid = match["bid"]
    return BuildUri(
        build_id=int(bid) if bid is not None else None, namespace=match["ns"], name=match["name"]
    )


def resolve_build_id(api: Api, uri: BuildUri) -> int:
    """The build a URI denotes, checking that an explicit build belongs to the environment."""
    if uri.namespace is None:
        assert uri.build_id is not None
        return uri.build_id
    environment = api.get_data(f"/environment/{uri.namespace}/{uri.name}/")
    if uri.build_id is None:
        current = environment.get("current_build_id")
        if current is None:
            raise CondaStoreError(f"environment {uri.environment} has no current build")
        return int(current)
    build = api.get_data(f"/build/{uri.build_id}/")
    if build.get("environment_id") != environment.get("id"):
        raise CondaStoreError(
            f"build {uri.build_id} does not belong to environment {uri.environment}"
        )
    return uri.build_id
