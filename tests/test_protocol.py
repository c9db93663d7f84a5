"""The tuning protocol: its grid, its schedule, its edges and its files."""
import math

import pandas as pd
import pytest
import yaml

from benchmark_utils.analysis import protocol as proto
from conftest import ROOT


def test_the_protocol_file_is_valid():
    protocol = proto.load_protocol()
    grid = protocol["grid"]
    assert len(proto.grid_settings("grid", grid)) >= 12
    assert len(proto.grid_settings("step", grid)) == \
        len(proto.grid_settings("grid", grid))
    assert protocol["repetitions"] >= 5
    for entry in protocol["problems"].values():
        assert entry["max_work"] > 0 and entry["timeout"] > 0


def test_a_too_small_grid_is_refused(tmp_path):
    protocol = proto.load_protocol()
    protocol["grid"]["step_size"] = [0.1, 0.3]
    path = tmp_path / "protocol.yml"
    path.write_text(yaml.safe_dump(protocol))
    with pytest.raises(proto.ProtocolError, match="at least 12"):
        proto.load_protocol(path)


def test_solvers_are_tuned_on_the_parameters_they_have(solver_classes):
    kinds = {name: proto.tunable(cls) for name, cls in
             solver_classes.items()}
    assert kinds["SOBA"] == "grid" and kinds["Implicit-GD"] == "step"
    assert kinds["Inner-Only"] is None and kinds["Optuna"] is None
    # every other solver has the common grid's two parameters
    others = {k for k, v in kinds.items() if v != "grid"}
    assert others == {"Implicit-GD", "Inner-Only", "Optuna"}


def _rows(stage, scores, solver="SOBA", reps=1):
    """CSV rows of a stage: scores {(step, ratio): [score per rep]}."""
    rows = []
    for (step, ratio), values in scores.items():
        for rep, score in enumerate(values):
            rows.append(dict(
                stage=stage, solver=solver, step_size=step,
                outer_ratio=ratio,
                setting=proto.solver_selector(solver, step, ratio),
                idx_rep=rep, score=score, diverged=not math.isfinite(score),
                work=1.0, time=1.0, n_points=3, commit="abc"))
    return pd.DataFrame(rows, columns=proto.CSV_COLUMNS)


GRID = {(s, r): [1.0 + s + r] for s in (0.01, 0.03, 0.1, 0.3)
        for r in (0.1, 0.3, 1.0)}


def test_short_stage_promotes_the_best_third():
    short = proto.setting_scores(_rows("short", GRID), maximize=False)
    kept = proto.promoted(proto.ranked(short, False), keep=0.34)
    assert len(kept) == 5  # ceil(0.34 * 12)
    assert kept["setting"].iloc[0] == proto.solver_selector("SOBA", 0.01,
                                                            0.1)


def test_a_diverged_repetition_scores_worst():
    rows = _rows("full", {(0.1, 0.1): [0.5, math.nan],
                          (0.3, 0.1): [0.9, 0.9]})
    table = proto.ranked(proto.setting_scores(rows, False), False)
    assert table["step_size"].tolist() == [0.3, 0.1]


def test_an_edge_choice_extends_the_grid_until_it_gets_worse():
    explored = proto.setting_scores(_rows("short", GRID), False)
    # the best full setting is at the smallest step and the smallest ratio
    full = proto.setting_scores(_rows("full", {
        (0.01, 0.1): [0.2, 0.2], (0.03, 0.1): [0.3, 0.3]}), False)
    edges = proto.next_edges(full, explored, False, factor=3.0)
    assert sorted(edges) == sorted([(0.01 / 3, 0.1), (0.01, 0.1 / 3)])
    # beyond: the smaller step scores worse, the smaller ratio better
    rows = pd.concat([_rows("short", GRID), _rows("full", {
        (0.01, 0.1): [0.2, 0.2], (0.03, 0.1): [0.3, 0.3]}),
        _rows("edge_1", {(0.01 / 3, 0.1): [0.25, 0.25],
                         (0.01, 0.1 / 3): [0.1, 0.1]})])
    full = proto.setting_scores(rows[rows["stage"] != "short"], False)
    explored = proto.setting_scores(rows, False)
    edges = proto.next_edges(full, explored, False, factor=3.0)
    # only the ratio keeps growing (the step direction stopped)
    assert edges == [(0.01, 0.1 / 9)]
    rows = pd.concat([rows, _rows("edge_2", {(0.01, 0.1 / 9): [math.nan,
                                                               math.nan]})])
    full = proto.setting_scores(rows[rows["stage"] != "short"], False)
    assert proto.next_edges(full, proto.setting_scores(rows, False),
                            False, 3.0) == []
    best, notes = proto.choice(rows, "SOBA", maximize=False)
    assert (best["step_size"], best["outer_ratio"]) == (0.01, 0.1 / 3)
    text = "\n".join(notes)
    assert f"outer_ratio {0.1 / 9:g} diverged" in text
    assert "outer_ratio 0.1 scored worse (0.2)" in text
    assert f"step_size {0.01 / 3:g} scored worse" not in text  # other line
    # the step line at ratio 0.1 / 3 holds one setting, and 0.01 lies
    # inside the steps run: nothing to say there
    assert "step_size" not in text


def test_the_tuned_file_records_choices_and_skips(tmp_path, solver_classes):
    protocol = proto.load_protocol()
    rows = pd.concat([
        _rows("short", GRID),
        _rows("full", {(0.1, 0.3): [0.4, 0.5], (0.1, 0.1): [0.6, 0.6]}),
        _rows("full", {(None, None): [0.9, 0.9]}, solver="Inner-Only")])
    rows.loc[rows["solver"] == "Inner-Only", "setting"] = "Inner-Only"
    entry = dict(dataset="mnist[source=embedded]", max_work=10.0,
                 timeout=60.0)
    text = proto.render_tuned(
        "toy", entry, protocol, rows,
        {"SOBA": None, "Inner-Only": None},
        {"STABLE": "d (d + p) = 1e9 > max_dense\nsecond line"},
        {"SOBA": "grid", "Inner-Only": None}, maximize=False)
    config = yaml.safe_load(text)
    assert config["solver"] == ["Inner-Only", proto.solver_selector(
        "SOBA", 0.1, 0.3)]
    assert config["n-repetitions"] == protocol["repetitions"]
    assert "max_work=10.0" in config["objective"][0]
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any("STABLE: not applicable (d (d + p) = 1e9 > max_dense "
               "second line)" in line for line in header)
    assert any("Commit(s) that ran the grid: abc" in line for line in header)
    assert any("full stage" in line and "2 repetition(s)" in line
               for line in header)


def test_protocol_runs_end_to_end(tmp_path, solver_classes, bench):
    """A tiny budget on the simulated problem, three solvers: the stages
    run, the CSV holds every run, the tuned file is a valid run config."""
    protocol = proto.load_protocol()
    protocol["problems"] = {"toy": dict(
        dataset="simulated[n_inner=200,n_outer=100,random_state=0]",
        max_work=2.0, timeout=30.0)}
    protocol["grid"]["max_edge_rounds"] = 1
    classes = {k: solver_classes[k] for k in ("SOBA", "Implicit-GD",
                                              "Inner-Only")}
    problem = proto.load_problem(bench, "simulated[n_inner=200,n_outer=100,"
                                        "random_state=0]")
    path = proto.tune_problem("toy", protocol, classes, problem,
                              out=tmp_path, workdir=tmp_path / "work",
                              log=lambda *a: None)
    rows = pd.read_csv(tmp_path / "toy.csv")
    short = rows[rows["stage"] == "short"]
    assert len(short) == 24  # 12 settings of SOBA and of Implicit-GD
    full = rows[rows["stage"] == "full"]
    assert set(full["idx_rep"]) == {0, 1}
    assert (full["solver"] == "Inner-Only").sum() == 2
    config = yaml.safe_load(path.read_text())
    assert len(config["solver"]) == 3
    from test_experiments import check_run_config
    check_run_config(path, bench)
    assert (ROOT / "experiments" / "protocol.yml").is_file()
