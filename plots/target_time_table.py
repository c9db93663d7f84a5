"""Table: each solver's time to first reach a target, over repetitions.

The numbers behind ``time_to_target`` in the layout of Table 1 of the
F2SA-Adam report and Table 2 of MinimaxOPT's paper: one row per solver
with the median time to reach the target over the repetitions, the
spread (min, max and quartiles), how many runs reached it, the median
number of oracle calls at that point, and the median best value of the
metric (to read a "not reached"). Not-reached runs count as an infinite
time (see ``benchmark_utils.analysis.results``), so a median or quantile
is "not reached" when too few runs got there. The fastest median is in
bold. Same options as ``time_to_target``.

Named ``target_time_table``, not ``time_to_target_table``: the HTML page
finds a kind's settings by the prefix ``<kind>_``, so no plot name may start
with another one (tests/test_experiments.py checks it).
"""
import math

from benchmark_utils.analysis.plots import TargetPlot
from benchmark_utils.analysis.results import (
    format_seconds,
    summarize_time_to_target,
    time_to_target,
)

COLUMNS = [
    "solver", "median time (s)", "min (s)", "max (s)", "q25 - q75 (s)",
    "runs reached", "oracle calls to target (median)", "best value (median)",
]


def _number(value):
    """Three significant digits, or "not reached"."""
    return float(f"{value:.3g}") if math.isfinite(value) else "not reached"


def _spread(low, high):
    if not math.isfinite(low):
        return "not reached"
    return f"{format_seconds(low)} - {format_seconds(high)}"


class Plot(TargetPlot):
    name = "target_time_table"
    type = "table"
    metadata = {"columns": COLUMNS, "default_order_column": 1,
                "default_order_ascending": True}

    def missing(self, metric):
        return [[f"{metric} is not reported on this data set"]
                + [""] * (len(COLUMNS) - 1)]

    def draw(self, df, per_run, summary, metric, target):
        summary = summary.sort_values(["median", "min"], kind="stable")
        if "objective_oracle_calls" in df.columns:
            calls = summarize_time_to_target(time_to_target(
                df, target, metric, x="objective_oracle_calls"))
            calls = dict(zip(calls["solver_name"], calls["median"]))
        else:
            calls = {}
        fastest = summary["median"].min()
        rows = []
        for row in summary.itertuples(index=False):
            median = _number(row.median)
            if math.isfinite(row.median) and row.median == fastest:
                median = f"**{median}**"
            n_calls = calls.get(row.solver_name, math.nan)
            rows.append([
                row.solver_name,
                median,
                _number(row.min),
                _number(row.max),
                _spread(row.q25, row.q75),
                f"{row.n_reached}/{row.n_runs}",
                f"{n_calls:.0f}" if math.isfinite(n_calls) else "not reached",
                float(f"{row.best:.4g}") if math.isfinite(row.best)
                else "nan",
            ])
        return rows
