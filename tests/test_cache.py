"""benchopt's cache never returns a result after the code or the data it
depends on changed (``benchmark_utils/provenance.py``)."""
import bz2
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_HOME = Path(os.environ.get("BENCHOPT_DATA_HOME", "/nonexistent"))
BENCHMARK_FILES = ("objective.py", "config.yml", "solvers", "datasets",
                   "benchmark_utils")

BROKEN_ORACLE = '''

def _broken(self, *args, **kwargs):
    raise RuntimeError("deliberately broken oracle")


QuadraticProblem.inner_oracles = _broken
'''


def copy_benchmark(dest):
    """A copy of the benchmark (code only) with its own benchopt cache."""
    dest.mkdir()
    for name in BENCHMARK_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns(
                "__pycache__"))
        else:
            shutil.copy(src, dest / name)
    return dest


def run_cached(bench, output, *args):
    """``benchopt run`` with the cache on (no ``--no-cache``)."""
    cmd = [sys.executable, "-m", "benchopt", "run", str(bench), *args,
           "-n", "3", "-r", "1", "--timeout", "20", "--no-plot",
           "--output", str(output)]
    env = dict(os.environ, PYTHONPATH=str(bench))
    return subprocess.run(cmd, cwd=bench, capture_output=True, text=True,
                          env=env, timeout=300)


def test_code_change_is_not_served_from_cache(tmp_path):
    bench = copy_benchmark(tmp_path / "bench")
    args = ("-d", "simulated", "-s", "SOBA[random_state=0]")
    first = run_cached(bench, tmp_path / "first.parquet", *args)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    again = run_cached(bench, tmp_path / "again.parquet", *args)
    # the cache is on: an unchanged benchmark is served from it
    assert "cached" in again.stdout, again.stdout[-2000:]
    # and so are finished runs after an interruption, with --collect
    collected = run_cached(bench, tmp_path / "collected.parquet", *args,
                           "--collect")
    assert collected.returncode == 0, collected.stdout[-2000:]
    pd.testing.assert_series_equal(
        pd.read_parquet(tmp_path / "collected.parquet")["objective_value"],
        pd.read_parquet(tmp_path / "first.parquet")["objective_value"])

    with open(bench / "benchmark_utils/problems/quadratic.py", "a") as f:
        f.write(BROKEN_ORACLE)
    broken = run_cached(bench, tmp_path / "broken.parquet", *args)
    assert "cached" not in broken.stdout, broken.stdout[-2000:]
    assert "deliberately broken oracle" in broken.stdout + broken.stderr
    assert broken.returncode != 0 or not (tmp_path / "broken.parquet").exists()
    # the first run's numbers were real ones
    assert pd.read_parquet(tmp_path / "first.parquet")[
        "objective_value"].notna().all()


def flip_labels(path, n_rows):
    """Rewrite a LIBSVM .bz2 file with the labels of its first rows flipped
    (same size, same label set: only the content changed)."""
    lines = bz2.decompress(path.read_bytes()).decode().splitlines(True)
    for i in range(n_rows):
        label, rest = lines[i].split(" ", 1)
        flipped = "+1" if label.strip() == "-1" else "-1"
        lines[i] = f"{flipped} {rest}"
    path.write_bytes(bz2.compress("".join(lines).encode()))


def test_data_change_is_not_served_from_cache(tmp_path, monkeypatch):
    if not (DATA_HOME / "ijcnn1" / "ijcnn1.bz2").is_file():
        pytest.skip(f"ijcnn1 absent from {DATA_HOME} (BENCHOPT_DATA_HOME)")
    bench = copy_benchmark(tmp_path / "bench")
    data_home = tmp_path / "data"
    shutil.copytree(DATA_HOME / "ijcnn1", data_home / "ijcnn1")
    monkeypatch.setenv("BENCHOPT_DATA_HOME", str(data_home))
    args = ("-d", "ijcnn1", "-s", "Inner-Only")
    first = run_cached(bench, tmp_path / "first.parquet", *args)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    again = run_cached(bench, tmp_path / "again.parquet", *args)
    assert "cached" in again.stdout, again.stdout[-2000:]

    flip_labels(data_home / "ijcnn1" / "ijcnn1.bz2", 2000)
    # a modified copy on purpose (its md5 is no longer LIBSVM's)
    monkeypatch.setenv("BILEVEL_ALLOW_MODIFIED_DATA", "1")
    changed = run_cached(bench, tmp_path / "changed.parquet", *args)
    assert changed.returncode == 0, changed.stdout[-2000:]
    assert "cached" not in changed.stdout, changed.stdout[-2000:]
    before = pd.read_parquet(tmp_path / "first.parquet")
    after = pd.read_parquet(tmp_path / "changed.parquet")
    # the new numbers come from the new labels
    assert before["objective_value"].iloc[-1] != pytest.approx(
        after["objective_value"].iloc[-1], rel=1e-6)
