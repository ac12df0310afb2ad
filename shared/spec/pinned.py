"""The pinned ``environment.yaml`` artifact (YAML), in the layout conda-store produces.

conda-store stores ``yaml.dump`` of ``conda env export --json``; PyYAML sorts the keys, so the
document reads ``channels``, ``dependencies``, ``name``, ``prefix``. We render the same shape
from solver output.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml


def render_pinned_yaml(
    name: str,
    channels: Sequence[str],
    conda_records: Sequence[tuple[str, str, str]],
    pip_pins: Sequence[tuple[str, str]] = (),
    prefix: str | None = None,
) -> str:
    """Render conda records as ``name=version=build`` and pip pins as ``name==version`` under a
    trailing ``- pip:`` entry (omitted when there are none). Both lists are sorted by name,
    as ``conda env export`` lists them."""
    dependencies: list[object] = [
        f"{pkg}={version}={build}"
        for pkg, version, build in sorted(conda_records, key=lambda r: r[0].lower())
    ]
    if pip_pins:
        pins = [
            f"{pkg}=={version}" for pkg, version in sorted(pip_pins, key=lambda p: p[0].lower())
        ]
        dependencies.append({"pip": pins})
    document = {
        "name": name,
        "channels": list(channels),
        "dependencies": dependencies,
        "prefix": prefix,
    }
    return yaml.dump(document, sort_keys=True, default_flow_style=False)
