"""Ranking solvers across problems: a target per problem, work and time to
reach it, and a performance profile.

The target of a problem is defined once, from its Inner-Only line: the
value of ``metric`` (h(x), or the validation loss with a network) that
closes ``TARGET_FRACTION`` of the gap between the Inner-Only line (the
model trained at the starting x: no cleaning, no penalty selection) and the
best final median over the solvers,

    target = line - TARGET_FRACTION * (line - best).

A solver's work (or time) to target on a problem is the median over its
repetitions of the work at which each run first reaches the target (not
reached: infinite), with a 95 % bootstrap interval
(:func:`~benchmark_utils.analysis.results.bootstrap_median`).

Performance profile (Dolan and Moré, Mathematical Programming 2002): for
each solver and each factor tau >= 1, the fraction of the problems on
which its work to target is at most tau times the best solver's there.
Its value at tau = 1 is the fraction of problems a solver is the fastest
on; its limit, the fraction it solves at all.
"""
import math

import numpy as np
import pandas as pd

from benchmark_utils.analysis.results import (
    bootstrap_median,
    metric_column,
    time_to_target,
)

#: The fraction of the gap between the Inner-Only line and the best final
#: value that the target closes.
TARGET_FRACTION = 0.8
#: The baseline whose final value is the line.
BASELINE = "Inner-Only"


def base_name(solver_name):
    return solver_name.split("[", 1)[0]


def final_medians(df, metric="objective_value"):
    """Per solver (base name): the median over repetitions of the metric
    at the runs' last points."""
    metric = metric_column(metric)
    last = (df.sort_values("stop_val").groupby(["solver_name", "idx_rep"])
            [metric].last().reset_index())
    last["solver"] = last["solver_name"].map(base_name)
    return last.groupby("solver")[metric].median()


def problem_target(df, metric="objective_value",
                   fraction=TARGET_FRACTION):
    """``(target, line, best)`` of one problem's result table (minimized
    metric)."""
    finals = final_medians(df, metric)
    if BASELINE not in finals:
        raise ValueError(f"the results hold no {BASELINE} run: the target "
                         "is defined from its line")
    line = float(finals[BASELINE])
    best = float(finals.replace([np.inf, -np.inf], np.nan).min())
    return line - fraction * (line - best), line, best


def to_target(df, target, metric="objective_value"):
    """Per solver (base name): ``n_runs``, ``n_reached`` and, for ``x`` in
    work and time, the median to target with its 95 % interval (``inf``
    when not reached)."""
    rows = []
    for x, column in (("work", "objective_work"), ("time", "time")):
        runs = time_to_target(df, target, metric, maximize=False, x=column)
        runs["solver"] = runs["solver_name"].map(base_name)
        for solver, group in runs.groupby("solver"):
            values = np.where(group["reached"], group["to_target"], math.inf)
            median, low, high = bootstrap_median(values)
            rows.append(dict(solver=solver, x=x, n_runs=len(group),
                             n_reached=int(group["reached"].sum()),
                             median=float(median), low=float(low),
                             high=float(high)))
    table = pd.DataFrame(rows)
    return table.pivot(index="solver", columns="x",
                       values=["median", "low", "high"]).join(
        table[table["x"] == "work"].set_index("solver")[["n_runs",
                                                          "n_reached"]])


def performance_profile(works, taus):
    """``works``: DataFrame (solvers x problems) of works to target (inf:
    not reached; NaN: the solver does not apply). Returns a DataFrame
    (taus x solvers) of the fraction of the problems each solver reaches
    within tau times the best work on it. A problem no solver reaches
    counts for none; a solver that does not apply to a problem counts it
    as not reached."""
    best = works.replace([np.inf], np.nan).min(axis=0)
    ratios = works / best
    n_problems = works.shape[1]
    out = {}
    for solver, row in ratios.iterrows():
        values = row.to_numpy(dtype=float)
        out[solver] = [float(np.sum(values <= tau) / n_problems)
                       for tau in taus]
    return pd.DataFrame(out, index=list(taus))
