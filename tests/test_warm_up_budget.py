"""benchopt's ``--timeout`` does not pay for the warm-up: with a cold
inductor cache, tracing and compiling SOBA's iteration takes longer than
the whole budget below, and the compiled run still logs as many points as
the eager one (benchmark_utils/solver/stopping.py)."""
import os
import subprocess
import sys
import time

import pandas as pd

from benchmark_utils.solver.stopping import KeepDivergedCriterion
from conftest import ROOT

DATASET = "mnist[source=embedded,n_train=500,n_val=200]"
SOLVERS = {False: "SOBA[compile=False,random_state=0]",
           True: "SOBA[compile=True,random_state=0]"}
MAX_RUNS = 6  # the eager run logs 7 points
TIMEOUT = 4  # seconds; the eager run needs well under one


def test_cold_compiled_run_logs_as_many_points_as_eager(tmp_path):
    cache = tmp_path / "inductor"
    out = tmp_path / "runs.parquet"
    cmd = [sys.executable, "-m", "benchopt", "run", str(ROOT), "-d",
           DATASET, "-s", SOLVERS[False], "-s", SOLVERS[True],
           "-n", str(MAX_RUNS), "--timeout", str(TIMEOUT), "--no-plot",
           "--no-cache", "--output", str(out)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True,
                          timeout=600,
                          env=dict(os.environ, PYTHONPATH=str(ROOT),
                                   TORCHINDUCTOR_CACHE_DIR=str(cache)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "running eagerly" not in proc.stdout + proc.stderr
    assert any(cache.rglob("*.so"))  # it compiled, from a cold cache
    runs = pd.read_parquet(out)
    # (benchopt names a run with all its parameters)
    points = {compile_: int(runs.solver_name.str.contains(
        f"compile={compile_}", regex=False).sum()) for compile_ in SOLVERS}
    assert points[False] > 2
    assert points[True] == points[False]


def test_timeout_counts_from_the_first_logged_point():
    """benchopt builds the criterion before the warm-up; its clock starts
    at the first logged point."""
    criterion = KeepDivergedCriterion(patience=50, strategy="callback") \
        .get_runner_instance(max_runs=100, timeout=0.2)
    time.sleep(0.3)  # a warm-up longer than the whole budget
    curve = [{"objective_value": 1.0}]
    assert criterion.should_stop(0, curve)[1] == "running"
    curve.append({"objective_value": 0.5})
    assert criterion.should_stop(1, curve)[1] == "running"
    time.sleep(0.3)
    curve.append({"objective_value": 0.25})
    assert criterion.should_stop(2, curve)[1] == "timeout"
