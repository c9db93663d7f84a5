"""Every data set runs through `benchopt run` with Implicit-GD and a
stochastic solver (SOBA) for a few evaluations and logs finite metrics.

The run is bounded by its number of evaluations (``-n 3``), not by time: the
timeout is only a safety net, wide enough for a slow machine (one exact
Implicit-GD step on 20newsgroups takes about 2 s here, more on a loaded
machine), so that the test never depends on the machine's speed."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmark_utils.data.files import DataFileError

ROOT = Path(__file__).resolve().parents[1]

# Real data sets at a reduced size where they have one, to keep this quick.
DATASETS = {
    "simulated": "simulated",
    "mnist": "mnist[source=embedded,n_train=1000,n_val=500]",
    "fashion_mnist": "fashion_mnist[n_train=2000,n_val=1000]",
    "ijcnn1": "ijcnn1",
    # a stronger start penalty than the default -12: exact inner solves
    # (Implicit-GD's) take seconds there
    "20newsgroups": "20newsgroups[outer_init=-8.0]",
}


def _skip_without_data(bench, name):
    from benchopt.utils.parametrized_name_mixin import get_configs
    dataset = next(d for d in bench.get_datasets() if d.name == name)
    config = get_configs(dataset)[0]["dataset"]
    try:
        dataset.get_instance(**config).get_data()
    except DataFileError as error:
        pytest.skip(f"no data for {name}: {error}")


@pytest.mark.parametrize("name", list(DATASETS))
def test_benchopt_run_on_dataset(name, bench, tmp_path):
    if name != "simulated":
        _skip_without_data(bench, name)
    output = ROOT / "outputs" / f"test_dataset_run_{name}.parquet"
    cmd = [sys.executable, "-m", "benchopt", "run", str(ROOT),
           "-d", DATASETS[name], "-s", "Implicit-GD[step_size=1.0]",
           "-s", "SOBA", "-n", "3", "-r", "1", "--timeout", "120",
           "--no-plot", "--no-cache", "--output", output.stem]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert output.exists(), proc.stdout[-2000:]
    df = pd.read_parquet(output)
    output.unlink()
    for solver in ("Implicit-GD", "SOBA"):
        rows = df[df.solver_name.str.startswith(solver)]
        assert len(rows) >= 2, f"{solver} logged {len(rows)} points"
        assert rows.objective_value.notna().all()
        assert pd.api.types.is_numeric_dtype(rows.objective_value)
