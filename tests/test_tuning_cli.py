"""The tuning CLI's defects, each with the case that showed it: every
setting diverged with ``--across-datasets``, the run options dropped with
it, a setting that improved then diverged winning with ``--reduce best``,
a data set name that writes keys into the config, unreadable inputs."""
import math

import pandas as pd
import pytest
import yaml

from benchmark_utils.analysis.tuning import main, select_best

SIMULATED = "simulated[cond=10.0,dtype='float64']"
OTHER = "simulated[cond=5.0,dtype='float64']"


def _soba(step):
    return f"SOBA[outer_ratio=0.1,step_size={step}]"


def _table(curves):
    """curves: {(dataset, solver): [values of rep 0, ...]} -> results."""
    records = []
    for (dataset, solver), reps in curves.items():
        for rep, values in enumerate(reps):
            for k, value in enumerate(values):
                records.append(dict(
                    dataset_name=dataset,
                    objective_name="Bilevel Optimization",
                    solver_name=solver, idx_rep=rep, stop_val=k,
                    time=0.1 * k, objective_value=value))
    return pd.DataFrame(records)


def _write(df, tmp_path):
    path = tmp_path / "grid.parquet"
    df.to_parquet(path)
    return str(path)


def test_across_datasets_refuses_to_write_a_diverged_setting(tmp_path,
                                                             capsys):
    nan = math.nan
    df = _table({
        (SIMULATED, _soba(1e6)): [[1.0, nan]],
        (OTHER, _soba(1e6)): [[1.0, 0.5]],
        (SIMULATED, "SABA[step_size=0.1]"): [[1.0, 0.5]],
        (OTHER, "SABA[step_size=0.1]"): [[1.0, 0.4]],
    })
    out = tmp_path / "defaults.yml"
    code = main([_write(df, tmp_path), "--metric", "objective_value",
                 "--across-datasets", "--out", str(out),
                 "--timeout", "7", "--n-repetitions", "3",
                 "--max-runs", "50"])
    err = capsys.readouterr().err
    assert code == 1
    assert "every SOBA setting diverged" in err
    config = yaml.safe_load(out.read_text())
    assert config["solver"] == ["SABA[step_size=0.1]"]
    # the run options are written, not dropped
    assert (config["timeout"], config["n-repetitions"],
            config["max-runs"]) == (7.0, 3, 50)


def test_reduce_best_scores_a_run_that_diverged_worst():
    nan = math.nan
    df = _table({
        # reaches 0.1, then blows up: delivers nothing at its budget
        (SIMULATED, _soba(1.0)): [[1.0, 0.1, nan]],
        (SIMULATED, _soba(0.1)): [[1.0, 0.4, 0.3]],
    })
    best, table = select_best(df, "objective_value", reduce="best")
    assert best["solver_name"].tolist() == [_soba(0.1)]
    assert math.isnan(table.set_index("solver_name").loc[_soba(1.0),
                                                         "score"])


def test_a_data_set_name_cannot_write_keys_into_the_config(tmp_path):
    crafted = "simulated[cond=10.0]\ntimeout: 1\n#"
    df = _table({(crafted, _soba(0.1)): [[1.0, 0.5]]})
    out = tmp_path / "tuned.yml"
    assert main([_write(df, tmp_path), "--metric", "objective_value",
                 "--out", str(out)]) == 0
    config = yaml.safe_load(out.read_text())
    assert "timeout" not in config
    # the name stays one string value, newline and all
    assert len(config["dataset"]) == 1
    assert "\ntimeout: 1" in config["dataset"][0]
    header = [line for line in out.read_text().splitlines()
              if not line.startswith("#")]
    assert header[0] == "dataset:"


@pytest.mark.parametrize("content", [None, b"not a parquet file\n",
                                     "truncated"])
def test_unreadable_results_give_a_one_line_error(tmp_path, capsys,
                                                  content):
    path = tmp_path / "grid.parquet"
    if content == "truncated":
        full = _write(_table({(SIMULATED, _soba(0.1)): [[1.0, 0.5]]}),
                      tmp_path)
        data = open(full, "rb").read()
        path.write_bytes(data[:len(data) // 2])
    elif content is not None:
        path.write_bytes(content)
    code = main([str(path), "--metric", "objective_value",
                 "--out", str(tmp_path / "x.yml")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and str(path) in err
    assert "Traceback" not in err
