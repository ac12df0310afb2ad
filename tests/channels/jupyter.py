"""The jupyter channel: a CPython environment that runs as a real Jupyter kernel.

`python`, `python_abi` and the pinned closure of `ipykernel` (jupyter_client, jupyter_core,
traitlets, tornado, pyzmq, comm, debugpy, ipython, psutil, ...) plus `numpy` and `six` at the
realistic channel's versions, repacked from PyPI wheels the way the realistic channel is (see
`tests.channels.pinned`; pins in `pins/jupyter.txt`). A separate channel, not an addition to
the realistic one: the realistic channel keeps `packaging` out on purpose (its wheel directory
serves it to pip-section tests), and ipykernel needs it.
"""

from __future__ import annotations

from pathlib import Path

from tests.channels.pinned import PinnedChannel, cli

JUPYTER = PinnedChannel("jupyter", ("ipykernel", "numpy==2.4.6", "six==1.17.0"))


def build_jupyter_channel(root: Path) -> Path:
    """Make the jupyter channel appear at `root` (missing or empty); cached per machine."""
    return JUPYTER.build(root)


if __name__ == "__main__":
    raise SystemExit(cli(JUPYTER))
