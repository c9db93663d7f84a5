"""Markdown table of a run's results: per data set and solver, the best
median test accuracy reached and the median time to a target.

    python benchmarks/results_table.py outputs/<run>.parquet --target 0.72 \
        [--target fashion_mnist=0.72 --target mnist=0.8] \
        [--metric objective_test_accuracy]

``--target NAME=VALUE`` sets the target of the data sets whose name starts
with NAME (the longest match wins); a bare value applies to the others.

The best value (maximum for accuracies, minimum for losses) is taken over
logged points of the median over repetitions (points matched by their rank
in the run); the time to target
is the median over repetitions of each run's first time at or above the
target ("not reached" when half of the runs or more never get there).
"""
import argparse
import math
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmark_utils.analysis.results import (  # noqa: E402
    infer_maximize,
    summarize_time_to_target,
    time_to_target,
)


def best_median(df, metric):
    out = {}
    for key, runs in df.groupby(["dataset_name", "solver_name"]):
        ranked = runs.assign(rank=runs.groupby("idx_rep").cumcount())
        medians = ranked.groupby("rank")[metric].median()
        out[key] = medians.max() if infer_maximize(metric) else medians.min()
    return out


def short(name, keep=("step_size", "outer_ratio", "batch_size", "ratio",
                      "source", "n_train")):
    """'SABA[batch_size=64,...,step_size=0.1]' -> 'SABA (batch_size=64, ...)'
    with only the parameters in ``keep``."""
    if "[" not in name:
        return name
    base, params = name[:-1].split("[", 1)
    kept = [p for p in params.split(",") if p.split("=")[0] in keep]
    return f"{base} ({', '.join(kept)})" if kept else base


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--target", action="append", required=True)
    parser.add_argument("--metric", default="objective_test_accuracy")
    args = parser.parse_args()
    df = pd.concat([pd.read_parquet(f) for f in args.files])
    targets = dict(t.split("=", 1) if "=" in t else ("", t)
                   for t in args.target)
    best = best_median(df, args.metric)
    n_reps = df.groupby(["dataset_name", "solver_name"]).idx_rep.nunique()
    metric = args.metric.replace("objective_", "")
    print(f"| dataset | solver | best {metric}"
          f" | target | time to target (s, median) | reached / runs |")
    print("|---|---|---|---|---|---|")
    for dataset, runs in df.groupby("dataset_name"):
        name = max((k for k in targets if dataset.startswith(k)), key=len)
        target = float(targets[name])
        summary = summarize_time_to_target(
            time_to_target(runs, target, metric=args.metric)
        ).set_index("solver_name")
        for solver in sorted(runs.solver_name.unique()):
            row = summary.loc[solver]
            median = row["median"]
            time = f"{median:.2f}" if math.isfinite(median) \
                else "not reached"
            print(f"| {short(dataset)} | {short(solver)} | "
                  f"{best[(dataset, solver)]:.4f} "
                  f"| {target} | {time} | {int(row['n_reached'])} / "
                  f"{n_reps[(dataset, solver)]} |")


if __name__ == "__main__":
    main()
