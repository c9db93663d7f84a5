"""Reading benchopt result tables: time to reach a target, curves vs work.

The functions take the ``pandas.DataFrame`` of a run (``benchopt.results.
read_results(<file>.parquet)``: one row per logged point, columns
``dataset_name``, ``objective_name``, ``solver_name``, ``idx_rep``,
``stop_val``, ``time`` and one ``objective_<metric>`` column per metric) and
are shared by the custom plots in ``plots/`` and by the tests.

Time to target
--------------
A run (one dataset, solver and repetition) *reaches* a target at its first
logged point whose metric is >= target (maximized metrics: accuracies, F1) or
<= target (minimized ones: losses, suboptimality); its time to target is the
``time`` of that point (or any other column, e.g. ``objective_oracle_calls``).
A run that never gets there, or whose metric is NaN (a diverged run), is
*not reached*. Over the repetitions of a solver, not-reached runs count as an
infinite time, so the median is finite only when more than half of the runs
reach the target, and the quantiles are censored the same way.
"""
import math
import warnings

import numpy as np
import pandas as pd

#: The columns that identify one run (one curve) of a result table.
RUN_COLUMNS = ("dataset_name", "objective_name", "solver_name", "idx_rep")
#: The columns that identify one solver configuration on one problem.
CONFIG_COLUMNS = ("dataset_name", "objective_name", "solver_name")
#: Metrics that count the solver's work rather than measure its result.
WORK_METRICS = ("objective_n_iter", "objective_work",
                "objective_oracle_calls")
#: Targets for metrics in [0, 1] to maximize (the F2SA-Adam report's Table
#: 1: 0.80 MNIST, 0.72 FashionMNIST; MinimaxOPT's Table 2: 0.90 MNIST).
ACCURACY_TARGETS = (0.8, 0.72, 0.85, 0.9, 0.95)
#: Targets for metrics to minimize towards 0 (suboptimality, gradient norms).
SMALL_TARGETS = (1e-2, 1e-4, 1e-6)

_MAXIMIZED_WORDS = ("accuracy", "f1")


def metric_column(name):
    """``"test_accuracy"`` -> ``"objective_test_accuracy"`` (idempotent)."""
    return name if name.startswith("objective_") else f"objective_{name}"


def infer_maximize(metric):
    """Whether a metric is to be maximized, guessed from its name.

    Accuracies and F1 scores are maximized; everything else the objective
    reports (losses, suboptimality, gradient norms) is minimized.
    """
    name = metric.lower()
    return any(word in name for word in _MAXIMIZED_WORDS)


def metric_columns(df, include_work=False):
    """The numeric ``objective_<metric>`` columns of a result table."""
    columns = []
    for col in df.columns:
        if not col.startswith("objective_") or col == "objective_name":
            continue
        if not include_work and col in WORK_METRICS:
            continue
        if pd.api.types.is_numeric_dtype(df[col]):
            columns.append(col)
    return columns


def _check_columns(df, columns):
    missing = [c for c in columns if c not in df.columns]
    if missing:
        available = ", ".join(metric_columns(df, include_work=True)) or "none"
        raise KeyError(
            f"column(s) {', '.join(missing)} not in the result table; "
            f"its metric columns are: {available}"
        )


def _run_columns(df):
    return [c for c in RUN_COLUMNS if c in df.columns]


def _sorted_runs(df):
    order = [c for c in ("stop_val", "time") if c in df.columns]
    return df.sort_values(order, kind="stable") if order else df


def time_to_target(df, target, metric="objective_test_accuracy",
                   maximize=None, x="time"):
    """Per run: the ``x`` value (time by default) at which ``metric`` first
    reaches ``target``.

    Parameters
    ----------
    df : DataFrame
        A benchopt result table (see the module docstring).
    target : float
        The level to reach.
    metric : str
        The metric column (``objective_`` prefix optional).
    maximize : bool or None
        Reach means ``metric >= target`` if True, ``<= target`` if False;
        None guesses from the name (accuracies and F1 are maximized).
    x : str
        The column to read at the first point that reaches the target:
        ``"time"`` or a work counter such as ``"objective_oracle_calls"``.

    Returns
    -------
    DataFrame, one row per run (the columns of ``RUN_COLUMNS`` present in
    ``df``) with ``reached`` (bool), ``to_target`` (the ``x`` value, NaN when
    not reached), ``budget`` (the largest ``x`` of the run) and ``best`` (the
    best metric value of the run, NaN if it never had a finite one).
    """
    metric = metric_column(metric)
    _check_columns(df, [metric, x, "solver_name"])
    if maximize is None:
        maximize = infer_maximize(metric)
    keys = _run_columns(df)
    rows = []
    for key, run in _sorted_runs(df).groupby(keys, sort=True, dropna=False):
        values = run[metric].to_numpy(dtype=float)
        xs = run[x].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            hit = values >= target if maximize else values <= target
        finite = values[np.isfinite(values)]
        best = (finite.max() if maximize else finite.min()) \
            if finite.size else math.nan
        reached = bool(hit.any())
        rows.append({
            **dict(zip(keys, key if isinstance(key, tuple) else (key,))),
            "reached": reached,
            "to_target": float(xs[np.argmax(hit)]) if reached else math.nan,
            "budget": float(np.nanmax(xs)) if xs.size else math.nan,
            "best": float(best),
        })
    columns = keys + ["reached", "to_target", "budget", "best"]
    return pd.DataFrame(rows, columns=columns)


def censored_quantile(values, q):
    """Quantile ``q`` of ``values`` where ``inf`` means "not reached".

    Linear interpolation between order statistics (numpy's default), except
    that any interpolation that involves an infinite value is infinite.
    """
    values = np.sort(np.asarray(values, dtype=float))
    if values.size == 0:
        return math.nan
    pos = q * (values.size - 1)
    lo, hi = int(math.floor(pos)), int(math.ceil(pos))
    if math.isinf(values[lo]) or (hi != lo and math.isinf(values[hi])):
        return math.inf
    return float(values[lo] + (values[hi] - values[lo]) * (pos - lo))


def summarize_time_to_target(per_run):
    """Per solver configuration: statistics of ``time_to_target``'s output.

    Returns a DataFrame, one row per (dataset, objective, solver) present,
    with ``n_runs``, ``n_reached``, ``median``, ``q25``, ``q75``, ``min``,
    ``max`` of the times to target (not-reached runs count as ``inf``, so
    these are ``inf`` when too few runs reach the target; ``min`` is
    finite as soon as one run does), ``ci_low`` / ``ci_high`` (the 95 %
    bootstrap interval of the median, :func:`bootstrap_median`), ``budget``
    (median of the runs' largest time) and ``best`` (median of the runs'
    best metric value).
    """
    keys = [c for c in CONFIG_COLUMNS if c in per_run.columns]
    rows = []
    for key, runs in per_run.groupby(keys, sort=True, dropna=False):
        times = np.where(runs["reached"], runs["to_target"], math.inf)
        times = times.astype(float)
        _, ci_low, ci_high = bootstrap_median(times)
        rows.append({
            **dict(zip(keys, key if isinstance(key, tuple) else (key,))),
            "n_runs": len(runs),
            "n_reached": int(runs["reached"].sum()),
            "median": censored_quantile(times, 0.5),
            "q25": censored_quantile(times, 0.25),
            "q75": censored_quantile(times, 0.75),
            "min": float(times.min()),
            "max": float(times.max()),
            "ci_low": float(ci_low),
            "ci_high": float(ci_high),
            "budget": float(runs["budget"].median()),
            "best": float(runs["best"].median()),
        })
    columns = keys + ["n_runs", "n_reached", "median", "q25", "q75", "min",
                      "max", "ci_low", "ci_high", "budget", "best"]
    return pd.DataFrame(rows, columns=columns)


def bootstrap_median(values, level=0.95, n_boot=1000, seed=0):
    """``(median, low, high)`` of ``values`` (the last axis: the runs; any
    leading axes are kept), with the ``level`` percentile bootstrap
    interval of the median over the runs (``n_boot`` resamples with
    replacement, seeded). ``inf`` (a target not reached) is a value like
    any other, so that a median is infinite when more than half of the
    runs did not reach; NaN values are left out."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    n = values.shape[-1]
    picks = rng.integers(n, size=(n_boot, n))
    with warnings.catch_warnings():  # (all-NaN slices give NaN)
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nanmedian(values[..., picks], axis=-1)
        tail = (1 - level) / 2 * 100
        # (order statistics: an interpolation with an infinite median is
        # undefined)
        low, high = np.nanpercentile(medians, [tail, 100 - tail], axis=-1,
                                     method="inverted_cdf")
        return np.nanmedian(values, axis=-1), low, high


def _step_values(xs, ys, grid):
    """The value of a run at each ``grid`` point: that of its last logged
    point at or before it (NaN before its first point)."""
    pos = np.searchsorted(xs, grid, side="right") - 1
    return np.where(pos >= 0, ys[np.clip(pos, 0, None)], np.nan)


def median_curve(df, metric, x="objective_work", level=0.95,
                 max_points=200):
    """Per solver: the median over repetitions of ``metric`` against ``x``
    (``"time"`` or a work counter), with a ``level`` bootstrap interval.

    The runs of a solver are read on a common grid of ``x`` (the values
    their points were logged at, thinned to ``max_points`` evenly spaced on
    a log scale), each run holding the value of its last logged point at or
    before a grid point, so that repetitions whose points fall at
    different times compare at equal x. Returns ``{solver_name:
    DataFrame(x, y, y_low, y_high, n_runs)}`` (``y``: the median, ``y_low``
    / ``y_high``: the interval; ``n_runs``: the runs that reached that x).
    Diverged runs hold ``inf`` from their blow-up on.
    """
    metric = metric_column(metric)
    _check_columns(df, [metric, x, "solver_name"])
    keys = _run_columns(df)
    curves = {}
    for solver, sdf in df.groupby("solver_name", sort=True):
        runs = []
        for _, run in _sorted_runs(sdf).groupby(keys, sort=True):
            xs = run[x].to_numpy(dtype=float)
            ys = run[metric].to_numpy(dtype=float)
            order = np.argsort(xs, kind="stable")
            runs.append((xs[order], ys[order]))
        grid = np.unique(np.concatenate([xs for xs, _ in runs]))
        grid = grid[np.isfinite(grid)]
        positive = grid[grid > 0]
        if len(grid) > max_points and len(positive) > 1:
            log_grid = np.geomspace(positive[0], positive[-1],
                                    max_points - 1)
            grid = np.unique(np.concatenate([grid[grid <= 0], positive[
                np.unique(np.searchsorted(positive, log_grid))
                .clip(0, len(positive) - 1)]]))
        values = np.stack([_step_values(xs, ys, grid) for xs, ys in runs],
                          axis=-1)
        median, low, high = bootstrap_median(values, level)
        curves[solver] = pd.DataFrame({
            "x": grid, "y": median, "y_low": low, "y_high": high,
            "n_runs": np.sum([grid <= xs[-1] for xs, _ in runs], axis=0),
        })
    return curves


# Option lists of the custom plots (callables of the result table).

_TARGET_METRICS = ("objective_test_accuracy", "objective_val_accuracy",
                   "objective_cleaning_f1", "objective_suboptimality",
                   "objective_hypergrad_norm", "objective_inner_grad_norm")
_CURVE_METRICS = ("objective_test_accuracy", "objective_suboptimality",
                  "objective_value")


def reported(df, column):
    """Whether the table has ``column`` with at least one value."""
    return column in df.columns and bool(df[column].notna().any())


def _ordered_metrics(df, preferred):
    present = [c for c in metric_columns(df) if reported(df, c)]
    first = [c for c in preferred if c in present]
    return first + [c for c in present if c not in first]


def target_metric_options(df):
    """Metric choices of the time-to-target plots, test accuracy first."""
    present = [c for c in _TARGET_METRICS if reported(df, c)]
    return present or ["objective_test_accuracy"]


def target_options(df):
    """Target choices: accuracy levels and/or small values, per the metrics
    the table reports (0.8 first: the F2SA-Adam report's MNIST target)."""
    metrics = target_metric_options(df)
    targets = []
    if any(infer_maximize(m) for m in metrics):
        targets += list(ACCURACY_TARGETS)
    if any(not infer_maximize(m) for m in metrics):
        targets += list(SMALL_TARGETS)
    return targets


def curve_metric_options(df):
    """Metric choices of the oracle curve: every reported metric."""
    return _ordered_metrics(df, _CURVE_METRICS) or ["objective_value"]


def format_seconds(value):
    """``1.234`` -> ``"1.23"``; not reached (``inf``) -> ``"not reached"``."""
    if not math.isfinite(value):
        return "not reached"
    return f"{value:.3g}"


def run_status(df, metric="objective_value"):
    """One row per run: whether it diverged, where, and its last finite
    value.

    A run *diverged* when its last logged ``metric`` is not finite (the
    objective reports ``value = inf`` for a non-finite iterate, and the
    runs stop there: ``benchmark_utils/solver/stopping.py``). Columns: the
    run columns, ``diverged``, ``time`` and ``n_iter`` of the last point
    (NaN ``n_iter`` if not reported) and ``last_finite`` (the last finite
    value of ``metric``, NaN if none).
    """
    _check_columns(df, [metric])
    rows = []
    for key, run in _sorted_runs(df).groupby(_run_columns(df), sort=False):
        values = run[metric].astype(float).to_numpy()
        finite = values[np.isfinite(values)]
        last = run.iloc[-1]
        rows.append(dict(
            zip(_run_columns(df), key),
            diverged=not math.isfinite(values[-1]),
            time=float(last["time"]),
            n_iter=float(last.get("objective_n_iter", math.nan)),
            last_finite=float(finite[-1]) if finite.size else math.nan,
        ))
    return pd.DataFrame(rows)


def _split_name(name):
    """'SOBA[a=1,b=2]' -> ('SOBA', {'a': '1', 'b': '2'})."""
    if "[" not in name:
        return name, {}
    base, params = name[:-1].split("[", 1)
    pairs = (p.split("=", 1) for p in params.split(",") if "=" in p)
    return base, dict(pairs)


def solver_labels(names):
    """``{name: label}``: a solver's base name when it is the only setting
    of that solver, else the base name and the parameters in which its
    settings differ ('BVFIM[batch_size=64]')."""
    parsed = {name: _split_name(name) for name in names}
    labels = {}
    for name, (base, params) in parsed.items():
        same = [p for b, p in parsed.values() if b == base]
        if len(same) == 1:
            labels[name] = base
            continue
        keys = sorted(k for k in set().union(*same)
                      if len({p.get(k) for p in same}) > 1)
        labels[name] = base + "[" + ",".join(
            f"{k}={params.get(k)}" for k in keys) + "]"
    return labels
