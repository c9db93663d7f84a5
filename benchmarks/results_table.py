"""Markdown tables of a run's results, one per data set: each solver's
final metrics and its time to targets set above the Inner-Only baseline.

    python benchmarks/results_table.py outputs/<run>.parquet [...] \
        [--loss-factor 0.9] [--accuracy-margin 0.01]

Final values: the last logged point of each run, median over repetitions
(and the range over repetitions for the validation loss). Targets, read off
the Inner-Only solver of the same data set (the inner model trained at the
starting x): validation loss <= loss_factor x the baseline's, test accuracy
>= the baseline's + accuracy_margin. Time to target: median over
repetitions of each run's first time there ("not reached" when half of the
runs or more never get there; the count of runs that did follows).
"""
import argparse
import math
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmark_utils.analysis.results import (  # noqa: E402
    solver_labels,
    summarize_time_to_target,
    time_to_target,
)

BASELINE = "Inner-Only"


def final_points(df):
    """The last logged point of every run."""
    order = df.sort_values(["stop_val", "time"])
    return order.groupby(["solver_name", "idx_rep"]).tail(1)


def fmt(value, digits=4):
    return f"{value:.{digits}g}" if math.isfinite(value) else "nan"


def reach(df, metric, target):
    """``{solver: "time (k/n)"}`` of the time to reach ``target``."""
    summary = summarize_time_to_target(time_to_target(df, target, metric))
    out = {}
    for row in summary.itertuples(index=False):
        time = (f"{row.median:.3g} s" if math.isfinite(row.median)
                else "not reached")
        out[row.solver_name] = f"{time} ({row.n_reached}/{row.n_runs})"
    return out


def table(df, loss_factor, accuracy_margin):
    final = final_points(df)
    base = final[final["solver_name"].str.startswith(BASELINE)]
    metrics = ["objective_value", "objective_test_accuracy"]
    if "objective_cleaning_f1" in df and df["objective_cleaning_f1"].notna(
            ).any():
        metrics.append("objective_cleaning_f1")
    lines = []
    targets = {}
    if not base.empty:
        loss = float(base["objective_value"].median())
        accuracy = float(base["objective_test_accuracy"].median())
        targets = {
            "objective_value": loss_factor * loss,
            "objective_test_accuracy": accuracy + accuracy_margin,
        }
        lines.append(f"Inner-Only baseline: validation loss {fmt(loss)}, "
                     f"test accuracy {fmt(accuracy)}; targets: validation "
                     f"loss <= {fmt(targets['objective_value'])}, test "
                     f"accuracy >= {fmt(targets['objective_test_accuracy'])}."
                     "\n")
    header = ["solver", "final val. loss (median, range)",
              "final test acc."]
    if "objective_cleaning_f1" in metrics:
        header.append("final cleaning F1")
    times = {}
    for metric, target in targets.items():
        name = "val. loss" if metric == "objective_value" else "test acc."
        header.append(f"time to {name} target")
        times[metric] = reach(df, metric, target)
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    labels = solver_labels(final["solver_name"].unique())
    for solver, runs in final.groupby("solver_name", sort=True):
        loss = runs["objective_value"]
        row = [labels[solver],
               f"{fmt(loss.median())} ({fmt(loss.min())} - "
               f"{fmt(loss.max())})",
               fmt(runs["objective_test_accuracy"].median(), 3)]
        if "objective_cleaning_f1" in metrics:
            row.append(fmt(runs["objective_cleaning_f1"].median(), 3))
        for metric in targets:
            row.append(times[metric].get(solver, "-"))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--loss-factor", type=float, default=0.9)
    parser.add_argument("--accuracy-margin", type=float, default=0.01)
    args = parser.parse_args()
    df = pd.concat([pd.read_parquet(f) for f in args.files],
                   ignore_index=True)
    for dataset, ddf in df.groupby("dataset_name", sort=True):
        n_rep = int(ddf.groupby("solver_name")["idx_rep"].nunique().max())
        print(f"\n**{dataset}** ({n_rep} repetitions)\n")
        print(table(ddf, args.loss_factor, args.accuracy_margin))


if __name__ == "__main__":
    main()
