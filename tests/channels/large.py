"""The large channel: a data-science team's environment, for benchmarks of cost as it grows.

The pinned closure (`pins/large.txt`) of jupyterlab, pandas, scipy, scikit-learn, matplotlib
and what such teams add (statsmodels, numba, pyarrow, dask, bokeh, ...), plus numpy (at the
realistic channel's version), requests, six and ipykernel: about 160 packages and 1.2 GB once
installed, repacked from PyPI wheels as the realistic channel is (`tests.channels.pinned`).

Built once per machine into the channel cache (a few minutes, the repack spread over every
core), never by the default test run: benchmarks call `build_large_channel`, pytest tests get
the `large_channel` fixture only when marked `large` and run with `CONDA_STORE_TEST_LARGE=1`.

    python -m tests.channels.large build      # build or reuse; prints figures
    python -m tests.channels.large lock       # re-resolve pins/large.txt (needs PyPI)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tests.channels.pinned import PinnedChannel, cli

LARGE = PinnedChannel(
    "large",
    (
        "jupyterlab",
        "notebook",
        "ipywidgets",
        "pandas",
        "scipy",
        "scikit-learn",
        "scikit-image",
        "matplotlib",
        "seaborn",
        "statsmodels",
        "sympy",
        "numba",
        "pyarrow",
        "dask",
        "distributed",
        "xarray",
        "bokeh",
        "networkx",
        "h5py",
        "sqlalchemy",
        "openpyxl",
        "lxml",
        "plotly",
        "altair",
        "pydantic",
        "pytest",
        "tqdm",
        "numpy==2.4.6",
        "requests",
        "six",
        "ipykernel",
    ),
)

GROWTH_ROOTS = (
    "python",
    "numpy",
    "six",
    "requests",
    "pandas",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "ipykernel",
    "jupyterlab",
)
"""The order in which a growing environment takes packages in (then the rest, by name)."""


def build_large_channel(root: Path) -> Path:
    """Make the large channel appear at `root` (missing or empty); the first call on a machine
    builds it (PyPI, minutes), later ones link from the cache."""
    return LARGE.build(root)


def growth_order(
    depends: Mapping[str, Iterable[str]], roots: Sequence[str] = GROWTH_ROOTS
) -> list[str]:
    """Every package name of `depends` (name -> dependency names), each after its dependencies:
    `roots` first, then the rest by name. Any prefix of the result is an environment closed
    under its dependencies, so `order[:n]` is an installable environment of exactly n packages.
    """
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name in path:
            return  # a dependency cycle: the package already being visited comes first
        if name not in depends:
            raise KeyError(f"{path[-1] if path else name} depends on {name}, not in the channel")
        for dep in sorted(depends[name]):
            visit(dep, (*path, name))
        seen.add(name)
        order.append(name)

    for name in [*roots, *sorted(depends)]:
        visit(name, ())
    return order


def channel_depends(channel: Path) -> dict[str, list[str]]:
    """Package name -> dependency names, from a channel's repodata (one version a name)."""
    depends: dict[str, list[str]] = {}
    for repodata_file in sorted(channel.glob("*/repodata.json")):
        repodata = json.loads(repodata_file.read_text())
        for group in ("packages", "packages.conda"):
            for record in repodata.get(group, {}).values():
                depends[record["name"]] = [d.split()[0] for d in record.get("depends", [])]
    return depends


if __name__ == "__main__":
    raise SystemExit(cli(LARGE))
