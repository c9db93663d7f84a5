"""Two runs with the same ``--output`` keep both results
(``benchmark_utils/output_file.py``).

benchopt checked that the output name was free, then wrote it: two runs
ending together both wrote the same file and one run's results were lost,
while both printed "Saving result in" the same name.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from benchmark_utils import output_file

ROOT = Path(__file__).resolve().parents[1]

#: A ``benchopt run`` whose parquet writer waits until both runs reach it
#: (files in BARRIER), so that the two runs save at the same moment.
RUN_WITH_BARRIER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import benchopt.results

    barrier = Path(os.environ["BARRIER"])
    write = benchopt.results.to_parquet

    def to_parquet_together(df, path, *args, **kwargs):
        (barrier / str(os.getpid())).touch()
        deadline = time.monotonic() + 120
        while len(list(barrier.iterdir())) < 2 and \\
                time.monotonic() < deadline:
            time.sleep(0.05)
        return write(df, path, *args, **kwargs)

    benchopt.results.to_parquet = to_parquet_together
    from benchopt.cli import benchopt
    benchopt(sys.argv[1:])
""")


def test_two_runs_same_output_keep_both(tmp_path):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    output = tmp_path / "out" / "same.parquet"
    env = dict(os.environ, BARRIER=str(barrier), OMP_NUM_THREADS="1")
    runs = [subprocess.Popen(
        [sys.executable, "-c", RUN_WITH_BARRIER, "run", str(ROOT),
         "-d", "simulated[n_inner=200,n_outer=100]",
         "-s", f"SOBA[step_size={step},random_state=0]",
         "-n", "2", "-r", "1", "--timeout", "2", "--no-plot", "--no-cache",
         "--output", str(output)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True) for step in (0.01, 0.02)]
    outs = [run.communicate(timeout=600)[0] for run in runs]
    for run, out in zip(runs, outs):
        assert run.returncode == 0, out[-3000:]
    saved = sorted(output.parent.glob("*.parquet"))
    assert [p.name for p in saved] == ["same.parquet", "same_1.parquet"]
    steps = sorted({name for path in saved for name in
                    pd.read_parquet(path)["solver_name"]})
    assert len(steps) == 2 and "step_size=0.01" in steps[0] \
        and "step_size=0.02" in steps[1]
    # each run names the file that holds its results, one says it moved
    said = ["".join(out.split()) for out in outs]
    assert sum(f"Savingresultin:{saved[1]}" in s for s in said) == 1
    assert sum(f"Savingresultin:{saved[0]}" in s for s in said) == 1
    assert any("alreadyexists" in s for s in said)
    assert not [p for p in output.parent.iterdir() if p.suffix == ".part"]


def test_existing_file_never_replaced(tmp_path, capsys):
    """A file already there (a finished run) is kept; the results go to
    the next free name, and the run says so."""
    pytest.importorskip("pyarrow")
    target = tmp_path / "res.parquet"
    target.write_bytes(b"earlier results")
    (tmp_path / "res_1.parquet").write_bytes(b"more")
    df = pd.DataFrame({"objective_value": [1.0, 0.5]})
    saved = output_file.save_results(df, tmp_path / "res")
    assert saved == tmp_path / "res_2.parquet"
    assert target.read_bytes() == b"earlier results"
    assert pd.read_parquet(saved)["objective_value"].tolist() == [1.0, 0.5]
    assert "res_2.parquet" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "res.parquet", "res_1.parquet", "res_2.parquet"]


def test_failed_write_leaves_nothing(tmp_path):
    def fail(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError, match="disk full"):
        output_file.write_exclusive(tmp_path / "res.parquet", fail)
    assert list(tmp_path.iterdir()) == []


def test_installed_by_the_objective():
    """Importing objective.py (as benchopt does at the start of a run)
    installs the writer in benchopt's runner."""
    import importlib.util

    from benchopt import runner
    spec = importlib.util.spec_from_file_location("_objective",
                                                  ROOT / "objective.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert getattr(runner.save_results, "keeps_results_apart", False)
