"""Table: how each solver's runs ended, diverged runs first.

A diverged run (non-finite value) stays in the results up to the point
where it diverged, but a curve plot cannot draw its last point: this table
says, per solver, how many of its runs diverged, at which iteration and
time (median over the diverged runs), and the median last finite value of
every run.
"""
import math

import numpy as np
from benchopt import BasePlot

from benchmark_utils.analysis.plots import select_problem
from benchmark_utils.analysis.results import run_status

COLUMNS = ["solver", "runs", "diverged", "diverged at iteration (median)",
           "diverged after (s, median)", "last finite value (median)"]


def _median(values):
    values = np.asarray(values, dtype=float)
    return float(np.median(values)) if values.size else math.nan


def _cell(value):
    return float(f"{value:.4g}") if math.isfinite(value) else ""


class Plot(BasePlot):
    name = "run_status"
    type = "table"
    options = {"dataset": ..., "objective": ...}

    def plot(self, df, dataset, objective):
        runs = run_status(select_problem(df, dataset, objective))
        rows = []
        for solver, group in runs.groupby("solver_name", sort=True):
            diverged = group[group["diverged"]]
            rows.append([
                solver, len(group), f"{len(diverged)}/{len(group)}",
                _cell(_median(diverged["n_iter"])),
                _cell(_median(diverged["time"])),
                _cell(_median(group["last_finite"])),
            ])
        # diverged solvers first, the most diverged runs on top
        return sorted(rows, key=lambda row: -int(row[2].split("/")[0]))

    def get_metadata(self, df, dataset, objective):
        return dict(title=f"How the runs ended\nData: {dataset}",
                    columns=COLUMNS, default_order_column=2,
                    default_order_ascending=False)
