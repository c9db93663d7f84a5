"""Curves against the solver's work (or time), with intervals.

Any metric (option ``metric``, test accuracy or suboptimality first) against
``x_axis`` in {``work`` (samples read by the oracles, weighted, in
gradients of the whole training set: docs/METRICS.md), ``time``,
``oracle_calls`` (gradients + Hessian-vector + cross products), ``n_iter``},
as reported by the objective. Per solver, the median over repetitions (each
run read at equal x), shaded: its 95 % bootstrap interval when there are
several repetitions (``benchmark_utils.analysis.results.median_curve``).
Against work, the algorithms compare independently of how fast each
implementation runs.
"""
import math

from benchopt import BasePlot

from benchmark_utils.analysis.plots import select_problem
from benchmark_utils.analysis.results import (
    curve_metric_options,
    median_curve,
    reported,
)

X_AXES = {
    "work": "Work (gradients of the whole training set)",
    "time": "Time [sec]",
    "oracle_calls": "Oracle calls (gradients + HVPs + cross products)",
    "n_iter": "Iterations",
}


class Plot(BasePlot):
    name = "oracle_curve"
    type = "scatter"
    options = {
        "dataset": ...,
        "objective": ...,
        "metric": curve_metric_options,
        "x_axis": list(X_AXES),
    }

    def plot(self, df, dataset, objective, metric, x_axis):
        x_col = x_axis if x_axis == "time" else f"objective_{x_axis}"
        df = select_problem(df, dataset, objective)
        if not reported(df, metric) or x_col not in df.columns:
            return []
        curves = []
        for solver, curve in median_curve(df, metric, x=x_col).items():
            keep = curve["x"].map(math.isfinite) \
                & curve["y"].map(math.isfinite)
            curve = curve[keep]
            if curve.empty:
                continue
            data = {
                "x": curve["x"].tolist(),
                "y": curve["y"].tolist(),
                "label": solver,
                **self.get_style(solver),
            }
            if curve["n_runs"].max() > 1:
                data["y_low"] = curve["y_low"].tolist()
                data["y_high"] = curve["y_high"].tolist()
            curves.append(data)
        return curves

    def get_metadata(self, df, dataset, objective, metric, x_axis):
        return {
            "title": f"{objective}\nData: {dataset}",
            "xlabel": X_AXES[x_axis],
            "ylabel": metric.removeprefix("objective_")
                      + " (median over repetitions, 95 % interval)",
        }
