"""The large channel installs whole and its data-science stack runs (opt-in: it is ~1 GB).

Run with `CONDA_STORE_TEST_LARGE=1 ./dev test tests/integration/test_large_channel.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.bench_large import disk_usage
from tests.channels.envs import install, solve
from tests.channels.large import channel_depends
from tests.channels.server import ServedChannel
from tests.integration.test_channels import run_clean

pytestmark = [pytest.mark.large, pytest.mark.slow]

SCIENCE = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np, pandas as pd, scipy.linalg, sklearn.linear_model, pyarrow, numba
import jupyterlab, ipykernel, sys

x = np.arange(20.0)
frame = pd.DataFrame({"x": x, "y": 3 * x + 1})
fit = sklearn.linear_model.LinearRegression().fit(frame[["x"]], frame["y"])
plt.plot(frame.x, frame.y)
plt.savefig(sys.argv[1])
table = pyarrow.Table.from_pandas(frame)
total = numba.njit(lambda a: a.sum())(x)
print(round(fit.coef_[0], 6), round(float(scipy.linalg.det(np.eye(3) * 2)), 6),
      table.num_rows, total, jupyterlab.__version__)
"""


async def test_large_channel_installs_whole_and_runs_its_stack(
    large_channel: ServedChannel, tmp_path: Path
) -> None:
    names = sorted(channel_depends(large_channel.path))
    assert len(names) >= 150
    records = await solve(large_channel.url, names, tmp_path / "cache")
    assert sorted(r.name.normalized for r in records) == names
    prefix = tmp_path / "env"
    await install(records, prefix, tmp_path / "cache")
    assert disk_usage(prefix) > 1e9

    plot = tmp_path / "plot.png"
    out = run_clean(prefix / "bin" / "python", "-c", SCIENCE, plot).split()
    assert out[:4] == ["3.0", "8.0", "20", "190.0"]
    assert plot.stat().st_size > 1000
    version = run_clean(prefix / "bin" / "jupyter-lab", "--version").strip()
    assert version == out[4]
