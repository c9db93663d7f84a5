"""Diverged runs stay in the results, through ``benchopt run``, up to the
point where they diverged, and the tuning CLI scores them worst
(``benchmark_utils/solver/stopping.py``)."""
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmark_utils.analysis.results import run_status
from benchmark_utils.analysis.tuning import select_best

ROOT = Path(__file__).resolve().parents[1]
# float32 logits overflow within the first 16 iterations at step 1e4
DATASET = "mnist[source=embedded,n_train=1000,n_val=500]"
EXPLODES = "SOBA[step_size=10000.0,random_state=0]"
CONVERGES = "SOBA[step_size=0.03,random_state=0]"
SABA_EXPLODES = "SABA[step_size=10000.0,random_state=0]"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("divergence") / "runs.parquet"
    cmd = [sys.executable, "-m", "benchopt", "run", str(ROOT),
           "-d", DATASET, "-s", EXPLODES, "-s", CONVERGES,
           "-s", SABA_EXPLODES, "-n", "40", "-r", "2", "--timeout", "20",
           "--no-plot", "--no-cache", "--output", str(out)]
    proc = subprocess.run(cmd, cwd=out.parent, capture_output=True,
                          text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "diverged at iteration" in proc.stdout
    return pd.read_parquet(out)


def _rows(df, solver):
    name, params = solver[:-1].split("[")
    step = f"step_size={params.split(',')[0].split('=')[1]}"
    return df[df.solver_name.str.startswith(name + "[")
              & df.solver_name.str.contains(step, regex=False)]


def test_diverged_run_is_kept_with_its_blow_up_point(results):
    for solver in (EXPLODES, SABA_EXPLODES):
        rows = _rows(results, solver)
        assert sorted(rows.idx_rep.unique()) == [0, 1]
        for _, run in rows.groupby("idx_rep"):
            run = run.sort_values("stop_val")
            # the start, then the point where it blew up (inside the first
            # 16 iterations, all logged), logged and non-finite
            assert len(run) >= 2
            assert math.isfinite(run.objective_value.iloc[0])
            assert math.isinf(run.objective_value.iloc[-1])
            assert 0 < run.objective_n_iter.iloc[-1] <= 16
    status = run_status(results).set_index("solver_name")
    assert status["diverged"].sum() == 4


def test_converging_run_is_unaffected(results):
    rows = _rows(results, CONVERGES)
    assert len(rows) >= 4
    assert rows.objective_value.map(math.isfinite).all()


def test_tuning_scores_diverged_settings_worst(results):
    best, table = select_best(results, "objective_value")
    chosen = dict(zip(best.solver_name.str.split("[").str[0],
                      best.solver_name))
    assert "step_size=0.03" in chosen["SOBA"]
    soba = table[table.solver_name.str.startswith("SOBA[")]
    assert soba.set_index("solver_name").loc[
        _rows(results, EXPLODES).solver_name.iloc[0], "rank"] == 2
    # every SABA setting diverged: its score is not finite
    saba = best[best.solver_name.str.startswith("SABA[")]
    assert not saba.score.map(math.isfinite).any()


def test_tuning_cli_warns_when_every_setting_diverged(results, tmp_path,
                                                      capsys):
    from benchmark_utils.analysis.tuning import main
    parquet = tmp_path / "runs.parquet"
    results.to_parquet(parquet)
    assert main([str(parquet), "--metric", "objective_value",
                 "--out", str(tmp_path / "tuned.yml")]) == 0
    err = capsys.readouterr().err
    assert "every SABA setting diverged" in err
    assert "SOBA" not in err
