"""Run configs in experiments/, the result helpers and the tuning CLI.

- every ``experiments/*.yml`` only names run options, data sets, solvers and
  parameters that exist (checked against the benchmark's classes, then by
  benchopt's own selector validation);
- ``experiments/quickstart.yml`` runs end to end through ``benchopt run``
  (short budget) and writes a parquet file and an HTML page with the
  custom plots;
- ``benchmark_utils.analysis.results``: time to target on hand-made tables
  (repetitions, not reached, diverged runs, censored medians);
- ``benchmark_utils.analysis.tuning``: picks the best setting on a
  validation metric, refuses test metrics, writes a config the first
  check accepts.
"""
import math
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from benchmark_utils.analysis.results import (
    bootstrap_median,
    censored_quantile,
    median_curve,
    solver_labels,
    summarize_time_to_target,
    time_to_target,
)
from benchmark_utils.analysis.tuning import (
    TuningError,
    select_across,
    select_best,
    split_name,
)
from benchmark_utils.analysis.tuning import main as tuning_main
from conftest import ROOT

EXPERIMENTS = ROOT / "experiments"
CONFIGS = sorted(EXPERIMENTS.glob("*.yml"))
#: One run config per experiment of the papers the benchmark reproduces.
PAPER_CONFIGS = ("f2sa_adam_hyper_cleaning.yml", "f2sa_adam_ijcnn1.yml",
                 "fsla_hyper_cleaning.yml", "minimaxopt_hyper_cleaning.yml",
                 "minimaxopt_20newsgroups.yml", "bvfim_hyper_cleaning.yml",
                 "bvfim_mlp_hyper_cleaning.yml",
                 "minimaxopt_mlp_hyper_cleaning.yml",
                 "fsla_cnn_hyper_cleaning.yml")
#: Validation-only tuning grids, one per tuned family.
GRIDS = ("grid_defaults.yml", "grid_f2sa.yml", "grid_hyper_cleaning.yml",
         "grid_ijcnn1.yml", "grid_20newsgroups.yml", "grid_defaults_more.yml",
         "grid_bvfim_mlp.yml", "grid_bvfim_mlp_outer.yml",
         "grid_minimaxopt_mlp.yml",
         "grid_fsla_cnn.yml")
CUSTOM_PLOTS = ("oracle_curve", "time_to_target", "target_time_table")


# Checking run configs

def _run_options():
    from benchopt.cli.main import run
    return {p.name for p in run.params}


def _selectors(value):
    """Selectors of a config entry: a string, a dict or a list of them."""
    if value is None:
        return []
    if not isinstance(value, list):
        value = [value]
    out = []
    for item in value:
        if isinstance(item, str):
            out.append(split_name(item))
        elif isinstance(item, dict):
            for name, params in item.items():
                out.append((name, params if isinstance(params, dict) else {}))
        else:
            raise AssertionError(f"unreadable selector {item!r}")
    return out


def check_run_config(path, bench):
    """Raise AssertionError naming what in the run config does not exist."""
    config = yaml.safe_load(Path(path).read_text())
    assert isinstance(config, dict), f"{path}: not a mapping"
    valid = _run_options()
    unknown = [k for k in config if k.replace("-", "_") not in valid]
    assert not unknown, f"{path}: unknown run option(s) {unknown}"
    assert config.get("dataset"), f"{path}: no dataset"
    assert config.get("solver"), f"{path}: no solver"
    for kind, classes in (("dataset", bench.get_datasets()),
                          ("solver", bench.get_solvers())):
        by_name = {cls.name.lower(): cls for cls in classes}
        for name, params in _selectors(config[kind]):
            cls = by_name.get(name.lower())
            assert cls is not None, (
                f"{path}: {kind} {name!r} does not exist; available: "
                f"{sorted(c.name for c in classes)}")
            known = {p.strip() for k in cls.parameters for p in k.split(",")}
            names = {p.strip() for k in params for p in k.split(",")}
            assert names <= known, (
                f"{path}: {kind} {name} has no parameter(s) "
                f"{sorted(names - known)}; its parameters: {sorted(known)}")
    # benchopt's own validation of the selectors (the same as `run`).
    bench.check_dataset_patterns(config["dataset"])
    bench.check_solver_patterns(config["solver"])
    return config


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_experiment_config_is_valid(path, bench):
    check_run_config(path, bench)


def test_paper_configs_exist():
    names = {p.name for p in CONFIGS}
    for name in ("quickstart.yml", *PAPER_CONFIGS, *GRIDS):
        assert name in names


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("tuned_*.yml")),
                         ids=lambda p: p.name)
def test_tuned_configs_name_their_grid_and_metric(path):
    header = path.read_text().split("dataset:")[0]
    grid = re.search(r"#   grid: (experiments/grid_\w+\.yml) \(timeout",
                     header)
    assert grid and (ROOT / grid.group(1)).is_file(), header
    assert re.search(r"of objective_(value|val_accuracy) ", header), header
    assert "#   commit: " in header


# A choice justified by a test metric, as a comment would phrase it.
TEST_METRIC_CHOICE = re.compile(
    r"(test[ _]accuracy|cleaning[ _]f1).{0,40}(->|best|chose|picked|tuned)"
    r"|(->|chose|picked|tuned).{0,40}(test[ _]accuracy|cleaning[ _]f1)",
    re.IGNORECASE)


@pytest.mark.parametrize("path", sorted((ROOT / "solvers").glob("*.py"))
                         + CONFIGS, ids=lambda p: p.name)
def test_no_setting_is_chosen_on_a_test_metric(path):
    for number, line in enumerate(path.read_text().splitlines(), 1):
        assert not TEST_METRIC_CHOICE.search(line), f"{path}:{number}"


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_configs_cite_their_source(name):
    text = (EXPERIMENTS / name).read_text()
    header = text.split("\n\n")[0]
    # authors first, then the table or figure reproduced
    assert re.match(r"# [A-Z][a-z]+, [A-Z][a-z]+", header), header
    assert re.search(r"Table|Figure|Section", header), header
    assert "Differences" in text or "differ" in text


def test_check_run_config_rejects_unknown_names(tmp_path, bench):
    bad = tmp_path / "bad.yml"
    bad.write_text('dataset: [simulated]\nsolver: ["SOBA[stepsize=0.1]"]\n')
    with pytest.raises(AssertionError, match="stepsize"):
        check_run_config(bad, bench)
    bad.write_text('dataset: [simulated]\nsolver: [NoSuchSolver]\n')
    with pytest.raises(AssertionError, match="NoSuchSolver"):
        check_run_config(bad, bench)


# The quickstart, end to end

def test_quickstart_runs(bench):
    name = f"test_quickstart_{uuid.uuid4().hex[:8]}"
    out = ROOT / "outputs"
    # The solvers of the quickstart that exist now (others may be written).
    existing = {s.name for s in bench.get_solvers()}
    config = yaml.safe_load((EXPERIMENTS / "quickstart.yml").read_text())
    solvers = [s for s in config["solver"] if s in existing]
    assert "SOBA" in solvers
    cmd = [sys.executable, "-m", "benchopt", "run", str(ROOT),
           "--config", str(EXPERIMENTS / "quickstart.yml"),
           "--timeout", "2", "-n", "3", "-r", "1", "--no-cache",
           "--no-display", "--output", name]
    for solver in solvers[:4]:  # keep the test short
        cmd += ["-s", solver]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                              timeout=240)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        parquet = out / f"{name}.parquet"
        assert parquet.exists()
        df = pd.read_parquet(parquet)
        assert set(solvers[:4]) == {split_name(s)[0]
                                    for s in df["solver_name"].unique()}
        assert {"simulated", "mnist"} == {split_name(d)[0]
                                          for d in df["dataset_name"]}
        assert "objective_test_accuracy" in df.columns
        pages = list(out.glob(f"*{name}.html"))
        assert pages, f"no HTML page for {name} in {out}"
        html = pages[0].read_text()
        for plot in CUSTOM_PLOTS:
            assert plot in html, f"custom plot {plot} not in the HTML page"
    finally:
        for path in out.glob(f"*{name}*"):
            if path.is_file():
                path.unlink()
    assert time.perf_counter() - start < 240


def test_plot_names_are_not_prefixes_of_each_other(bench):
    # The HTML page reads a kind's settings from the state keys that start
    # with the kind's name: "a" and "a_b" would mix their settings.
    names = bench.get_plot_names()
    assert set(CUSTOM_PLOTS) <= set(names)
    for a in names:
        for b in names:
            assert a == b or not b.startswith(a), (a, b)


def test_config_yml_lists_existing_plots(bench):
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    names = set(bench.get_plot_names())
    assert set(config["plots"]) <= names
    for view, options in config["plot_configs"].items():
        kind = options["plot_kind"]
        assert kind in names, view
        for key in options:
            assert key in ("plot_kind", "scale", "with_quantiles",
                           "suboptimal_curve", "relative_curve",
                           "hidden_curves") or key.startswith(kind + "_"), (
                f"view {view!r}: option {key} is not prefixed by {kind}")


# benchmark_utils.analysis.results

def _curves(rows):
    """rows: (solver, rep, [(time, metric), ...]) -> a result table."""
    records = []
    for solver, rep, points in rows:
        for k, (t, value) in enumerate(points):
            records.append(dict(
                dataset_name="mnist[ratio=0.5]",
                objective_name="Bilevel Optimization",
                solver_name=solver, idx_rep=rep, stop_val=k, time=t,
                objective_test_accuracy=value,
                objective_oracle_calls=10 * k,
            ))
    return pd.DataFrame(records)


def test_time_to_target_first_crossing_and_not_reached():
    df = _curves([
        # A: reaches 0.8 at 2.0 s, then drops below again (first crossing)
        ("A", 0, [(0.0, 0.1), (1.0, 0.7), (2.0, 0.81), (3.0, 0.75)]),
        ("A", 1, [(0.0, 0.1), (1.5, 0.8), (2.5, 0.9)]),  # >= counts
        ("A", 2, [(0.0, 0.1), (1.0, 0.5), (4.0, 0.85)]),
        # B: never reaches 0.8
        ("B", 0, [(0.0, 0.1), (5.0, 0.6)]),
        ("B", 1, [(0.0, 0.1), (6.0, 0.79)]),
    ])
    # shuffled rows: the order of logged points comes from stop_val
    df = df.sample(frac=1.0, random_state=0)
    runs = time_to_target(df, 0.8, "test_accuracy")
    a = runs[runs.solver_name == "A"].set_index("idx_rep")
    assert a["reached"].all()
    assert a.loc[0, "to_target"] == 2.0
    assert a.loc[1, "to_target"] == 1.5
    assert a.loc[2, "to_target"] == 4.0
    assert a.loc[0, "best"] == 0.81
    b = runs[runs.solver_name == "B"]
    assert not b["reached"].any() and b["to_target"].isna().all()
    assert list(b["budget"]) == [5.0, 6.0]

    summary = summarize_time_to_target(runs).set_index("solver_name")
    assert summary.loc["A", "median"] == 2.0
    assert summary.loc["A", "min"] == 1.5 and summary.loc["A", "max"] == 4.0
    assert summary.loc["A", "n_reached"] == 3 == summary.loc["A", "n_runs"]
    assert math.isinf(summary.loc["B", "median"])
    assert summary.loc["B", "n_reached"] == 0
    assert summary.loc["B", "budget"] == 5.5

    # with x = oracle calls: the counter at the first crossing
    calls = time_to_target(df, 0.8, "objective_test_accuracy",
                           x="objective_oracle_calls")
    calls = calls[calls.solver_name == "A"].set_index("idx_rep")
    assert list(calls["to_target"]) == [20.0, 10.0, 20.0]


def test_time_to_target_censored_median_and_diverged_runs():
    df = _curves([
        ("C", 0, [(0.0, 0.1), (1.0, 0.9)]),
        ("C", 1, [(0.0, 0.1), (3.0, 0.9)]),
        ("C", 2, [(0.0, 0.1), (2.0, float("nan"))]),  # diverged
        ("D", 0, [(0.0, 0.1), (1.0, 0.9)]),
        ("D", 1, [(0.0, 0.1), (2.0, 0.2)]),
    ])
    runs = time_to_target(df, 0.8, "objective_test_accuracy")
    summary = summarize_time_to_target(runs).set_index("solver_name")
    # 2 of 3 reached: the median is the larger of the two times
    assert summary.loc["C", "n_reached"] == 2
    assert summary.loc["C", "median"] == 3.0
    assert math.isinf(summary.loc["C", "max"])
    # 1 of 2 reached: the median involves a not-reached run
    assert math.isinf(summary.loc["D", "median"])
    assert summary.loc["D", "min"] == 1.0


def test_time_to_target_minimized_metric_and_errors():
    df = _curves([("E", 0, [(0.0, 1.0), (1.0, 1e-3), (2.0, 1e-5)])])
    df = df.rename(columns={"objective_test_accuracy":
                            "objective_suboptimality"})
    runs = time_to_target(df, 1e-4, "objective_suboptimality")
    assert runs["to_target"].tolist() == [2.0]
    with pytest.raises(KeyError, match="objective_suboptimality"):
        time_to_target(df, 0.8, "objective_test_accuracy")


def test_solver_labels_name_only_what_differs():
    names = ["SOBA[batch_size=64,step_size=0.1]",
             "BVFIM[batch_size=64,mu1=0.1,step_size=0.03]",
             "BVFIM[batch_size=full,mu1=0.1,step_size=0.03]",
             "Inner-Only"]
    assert solver_labels(names) == {
        names[0]: "SOBA", names[1]: "BVFIM[batch_size=64]",
        names[2]: "BVFIM[batch_size=full]", "Inner-Only": "Inner-Only"}


def test_censored_quantile():
    assert censored_quantile([1.0, 2.0, 3.0], 0.5) == 2.0
    assert censored_quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert math.isinf(censored_quantile([1.0, math.inf], 0.5))
    assert censored_quantile([1.0, 2.0, math.inf], 0.5) == 2.0
    assert censored_quantile([1.0, 2.0, 3.0, 5.0, math.inf], 0.25) == 2.0
    assert np.isclose(censored_quantile([0.0, 1.0, 2.0, 3.0, 4.0], 0.75),
                      np.quantile([0.0, 1.0, 2.0, 3.0, 4.0], 0.75))


def test_median_curve_over_repetitions():
    df = _curves([
        ("A", 0, [(0.0, 0.1), (1.0, 0.5), (2.0, 0.7)]),
        ("A", 1, [(0.0, 0.1), (1.1, 0.7), (2.2, 0.9)]),
        ("A", 2, [(0.0, 0.1), (0.9, 0.6)]),  # stopped earlier
    ])
    curve = median_curve(df, "test_accuracy", x="time")["A"]
    # the runs read at every x one of them logged, each holding its last
    # value: at x = 1 run 0 is at 0.5, run 1 still at 0.1, run 2 at 0.6
    assert curve["x"].tolist() == [0.0, 0.9, 1.0, 1.1, 2.0, 2.2]
    assert np.allclose(curve["y"], [0.1, 0.1, 0.5, 0.6, 0.7, 0.7])
    assert curve["n_runs"].tolist() == [3, 3, 2, 2, 2, 1]
    # the interval holds the median, within the range of the runs
    assert (curve["y_low"] <= curve["y"]).all()
    assert (curve["y"] <= curve["y_high"]).all()
    assert curve["y_low"].iloc[2] >= 0.1 and curve["y_high"].iloc[2] <= 0.6


def test_bootstrap_interval_of_the_median():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2000, 9))
    median, low, high = bootstrap_median(values, n_boot=300)
    # about 95 % of the intervals hold the true median 0 (a 9-run
    # percentile bootstrap is a little narrow: 0.90-0.97)
    covered = np.mean((low <= 0) & (0 <= high))
    assert 0.88 <= covered <= 0.98
    assert np.allclose(median, np.median(values, axis=1))
    # targets not reached (inf) by most runs: an infinite median
    m, lo, hi = bootstrap_median([1.0, math.inf, math.inf])
    assert math.isinf(m) and lo == 1.0 and math.isinf(hi)


# benchmark_utils.analysis.tuning

SIMULATED = ("simulated[cond=10.0,device=cpu,dim_inner=20,dim_outer=10,"
             "dtype=float64,n_inner=1000,n_outer=500,outer_reg=0.1,"
             "random_state=0]")


def _soba(step, ratio):
    return (f"SOBA[batch_size=64,outer_ratio={ratio},"
            f"random_state=None,step_size={step}]")


def _grid_table():
    """Validation accuracy curves of three SOBA settings, 2 repetitions."""
    curves = {
        # best final validation accuracy, but the worst test accuracy
        _soba(0.1, 0.1): [[0.1, 0.6, 0.8], [0.1, 0.7, 0.82]],
        # best peak, then degrades (wins with --reduce best)
        _soba(0.3, 0.1): [[0.1, 0.95, 0.5], [0.1, 0.94, 0.55]],
        # one diverged repetition
        _soba(1.0, 0.1): [[0.1, 0.9, 0.9], [0.1, float("nan"),
                                            float("nan")]],
    }
    records = []
    for solver, reps in curves.items():
        for rep, values in enumerate(reps):
            for k, value in enumerate(values):
                records.append(dict(
                    dataset_name=SIMULATED,
                    objective_name="Bilevel Optimization",
                    solver_name=solver, idx_rep=rep, stop_val=k,
                    time=0.1 * k, objective_value=1.0 - value,
                    objective_val_accuracy=value,
                    objective_test_accuracy=1.0 - value,
                    objective_cleaning_f1=value,
                    objective_n_iter=16 * k,
                ))
    return pd.DataFrame(records)


def test_select_best_final_and_best():
    df = _grid_table()
    best, table = select_best(df, "objective_val_accuracy", maximize=True)
    assert best["solver_name"].tolist() == [_soba(0.1, 0.1)]
    assert best["score"].iloc[0] == pytest.approx(0.81)
    assert len(table) == 3
    diverged = table.set_index("solver_name").loc[_soba(1.0, 0.1)]
    assert diverged["rank"] == 3  # a diverged repetition scores worst
    best, _ = select_best(df, "val_accuracy", maximize=True, reduce="best")
    assert best["solver_name"].tolist() == [_soba(0.3, 0.1)]
    # a loss: minimized by default, same choice as the accuracy
    best, _ = select_best(df, "objective_value")
    assert best["solver_name"].tolist() == [_soba(0.1, 0.1)]


@pytest.mark.parametrize("metric", ["objective_test_accuracy",
                                    "test_accuracy", "objective_cleaning_f1",
                                    "objective_n_iter"])
def test_tuning_refuses_test_and_ground_truth_metrics(metric):
    with pytest.raises(TuningError, match="objective_val_accuracy"):
        select_best(_grid_table(), metric)


def test_tuning_cli_writes_a_valid_config(tmp_path, bench, capsys):
    parquet = tmp_path / "grid.parquet"
    _grid_table().to_parquet(parquet)
    out = tmp_path / "best_soba.yml"
    grid = tmp_path / "grid.yml"
    grid.write_text("n-repetitions: 2\ntimeout: 7\n")
    code = tuning_main([str(parquet), "--metric", "objective_val_accuracy",
                        "--maximize", "--out", str(out),
                        "--n-repetitions", "3", "--grid", str(grid)])
    assert code == 0, capsys.readouterr().err
    # the header records the grid, its budget, the repetitions the
    # results hold and the code's commit
    header = out.read_text().split("dataset:")[0]
    assert f"grid: {grid} (timeout 7 s)" in header
    assert "repetitions per setting in the results: 2" in header
    assert "objective_val_accuracy" in header and "commit: " in header
    config = check_run_config(out, bench)
    assert config["n-repetitions"] == 3
    assert len(config["solver"]) == 1
    base, params = split_name(config["solver"][0])
    assert base == "SOBA"
    assert params == dict(batch_size=64, outer_ratio=0.1,
                          random_state=None, step_size=0.1)
    base, params = split_name(config["dataset"][0])
    assert base == "simulated" and params["dtype"] == "float64"

    code = tuning_main([str(parquet), "--metric", "objective_test_accuracy",
                        "--maximize", "--out", str(tmp_path / "x.yml")])
    assert code == 2
    err = capsys.readouterr().err
    assert "refusing" in err and "objective_val_accuracy" in err
    assert not (tmp_path / "x.yml").exists()


def test_tuning_cli_one_file_per_dataset(tmp_path, bench):
    df = _grid_table()
    other = df.copy()
    other["dataset_name"] = SIMULATED.replace("cond=10.0", "cond=5.0")
    other["objective_val_accuracy"] = 1.0 - other["objective_val_accuracy"]
    parquet = tmp_path / "grid.parquet"
    pd.concat([df, other]).to_parquet(parquet)
    assert tuning_main([str(parquet), "--metric", "val_accuracy",
                        "--out", str(tmp_path / "best.yml")]) == 0
    files = sorted(tmp_path.glob("best_*.yml"))
    assert [f.name for f in files] == ["best_simulated.yml",
                                       "best_simulated_2.yml"]
    chosen = set()
    for path in files:
        config = check_run_config(path, bench)
        chosen.add(config["solver"][0])
    assert len(chosen) == 2  # the best setting differs per data set


def test_across_datasets_picks_the_most_robust_setting(tmp_path, bench):
    # final validation losses: s1 best on A, s3 best on B, s2 close to the
    # best on both (worst ratios 3.0, 1.05, 5.0)
    finals = {"A": {0.1: 0.2, 0.3: 0.21, 1.0: 1.0},
              "B": {0.1: 0.9, 0.3: 0.31, 1.0: 0.3}}
    records = []
    for data, scores in finals.items():
        name = SIMULATED.replace("cond=10.0", "cond=5.0") if data == "B" \
            else SIMULATED
        for step, score in scores.items():
            for k, value in enumerate([2.0, score]):
                records.append(dict(
                    dataset_name=name, objective_name="Bilevel Optimization",
                    solver_name=_soba(step, 0.1), idx_rep=0, stop_val=k,
                    time=0.1 * k, objective_value=value))
    df = pd.DataFrame(records)
    _, table = select_best(df, "objective_value")
    chosen = select_across(table, maximize=False)
    assert split_name(chosen.solver_name[0])[1]["step_size"] == 0.3
    assert chosen.score[0] == pytest.approx(0.21 / 0.2)
    parquet, out = tmp_path / "grid.parquet", tmp_path / "defaults.yml"
    df.to_parquet(parquet)
    assert tuning_main([str(parquet), "--metric", "objective_value",
                        "--across-datasets", "--out", str(out)]) == 0
    config = check_run_config(out, bench)
    assert len(config["dataset"]) == 2 and len(config["solver"]) == 1
    assert "step_size=0.3" in config["solver"][0]
