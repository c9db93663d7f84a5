"""PNG figures of benchopt results: metrics against time, one file per data
set, each solver's median over repetitions with its quartile band.

    python benchmarks/results_figures.py outputs/<run>.parquet [...] \
        --out docs/figures [--metric objective_test_accuracy ...]

A run's curve is a step function of time (the value logged last); curves
are read on a common log-spaced time grid, and at every grid time the median
and the quartiles are taken over the repetitions that have started (before
its first logged point, a run counts at its first value). Non-finite values
(a diverged run) count as missing. The Inner-Only baseline, when present, is
drawn dashed.
"""
import argparse
import re
import sys
import textwrap
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmark_utils.analysis.results import (  # noqa: E402
    infer_maximize,
    metric_column,
    solver_labels,
)

LABELS = {
    "objective_test_accuracy": "test accuracy",
    "objective_value": "validation loss",
    "objective_val_accuracy": "validation accuracy",
    "objective_cleaning_f1": "cleaning F1",
    "objective_suboptimality": "suboptimality h(x) - h(x*)",
}
BASELINE = "Inner-Only"


#: Data set parameters left out of figure names (they rarely differ).
QUIET = ("device", "value_function", "random_state", "dtype")


def slug(name):
    """A file name for a data set's parametrized name."""
    if "[" in name:
        base, params = name[:-1].split("[", 1)
        kept = [p for p in params.split(",") if p.split("=")[0] not in QUIET]
        name = base + "_" + "_".join(kept)
    return re.sub(r"[^A-Za-z0-9.]+", "_", name).strip("_")


def curves_on_grid(runs, metric, grid):
    """Array (n_runs, len(grid)): each run's last logged value at or
    before each grid time (its first value before it starts)."""
    out = []
    for _, run in runs.groupby("idx_rep"):
        run = run.sort_values(["stop_val", "time"])
        times = run["time"].to_numpy(dtype=float)
        values = run[metric].to_numpy(dtype=float)
        values = np.where(np.isfinite(values), values, np.nan)
        pos = np.searchsorted(times, grid, side="right") - 1
        out.append(values[np.clip(pos, 0, None)])
    return np.array(out)


def draw(ax, df, metric):
    t_max = float(df["time"].max())
    t_min = max(float(df.loc[df["time"] > 0, "time"].min()), 1e-4)
    grid = np.geomspace(t_min, t_max, 200)
    labels = solver_labels(df["solver_name"].unique())
    for solver, runs in df.groupby("solver_name", sort=True):
        if not runs[metric].notna().any():
            continue
        values = curves_on_grid(runs, metric, grid)
        with warnings.catch_warnings():
            # all-NaN columns (every run diverged) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(values, axis=0)
            low = np.nanquantile(values, 0.25, axis=0)
            high = np.nanquantile(values, 0.75, axis=0)
        name = labels[solver]
        style = dict(linestyle="--", color="black") if name == BASELINE \
            else {}
        line, = ax.plot(grid, median, label=name, **style)
        if len(values) > 1 and name != BASELINE:
            ax.fill_between(grid, low, high, alpha=0.2,
                            color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("time (s, solver only)")
    ax.set_ylabel(LABELS.get(metric, metric.removeprefix("objective_")))
    if not infer_maximize(metric) and metric != "objective_value":
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--out", default="docs/figures")
    parser.add_argument("--metric", action="append")
    args = parser.parse_args()
    df = pd.concat([pd.read_parquet(f) for f in args.files],
                   ignore_index=True)
    metrics = [metric_column(m) for m in args.metric or
               ("objective_test_accuracy", "objective_value")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for dataset, ddf in df.groupby("dataset_name", sort=True):
        present = [m for m in metrics
                   if m in ddf.columns and ddf[m].notna().any()]
        if not present:
            continue
        fig, axes = plt.subplots(1, len(present),
                                 figsize=(5.5 * len(present), 4),
                                 squeeze=False)
        for ax, metric in zip(axes[0], present):
            draw(ax, ddf, metric)
        axes[0][-1].legend(fontsize=8, loc="best")
        n_rep = int(ddf.groupby("solver_name")["idx_rep"].nunique().max())
        fig.suptitle(textwrap.fill(
            f"{dataset} (median and quartiles of {n_rep} repetitions)",
            60 * len(present)), fontsize=9)
        fig.tight_layout()
        path = out / f"{slug(dataset)}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        print(path)


if __name__ == "__main__":
    main()
