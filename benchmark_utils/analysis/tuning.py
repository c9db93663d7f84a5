"""Pick the best parameters of a grid run and write them as a run config.

Usage::

    benchopt run . --config experiments/grid_hyper_cleaning.yml   # the grid
    python -m benchmark_utils.analysis.tuning outputs/<grid>.parquet \\
        --metric objective_val_accuracy --maximize \\
        --out experiments/best_<name>.yml
    benchopt run . --config experiments/best_<name>.yml        # the comparison

The parquet of a grid run holds one curve per (data set, solver setting,
repetition); a setting is the parametrized ``solver_name``, e.g.
``SABA[batch_size=64,outer_ratio=1.0,random_state=None,
step_size=0.1]``. For each data set and each solver, the tool scores every
setting on a VALIDATION metric and keeps the best:

- score of a run (``--reduce``): ``final`` (default), the metric at the
  run's last logged point, i.e. what the solver delivers at the end of its
  budget; a setting that peaks then degrades or diverges is penalized, as it
  should be for a comparison run with the same budget. ``best``: the best
  value over the run (early stopping on the validation metric), except for
  a run that diverged, which scores worst whatever it reached before.
- score of a setting: the median over its repetitions; a NaN (a diverged
  run) counts as the worst possible score.
- direction: ``--maximize`` or ``--minimize``; by default accuracies and F1
  are maximized, everything else (losses) minimized.

Accepted metrics: the numeric ``objective_*`` columns of the parquet
(``objective_`` may be left out), except those that would tune on the test
set or on the ground truth: any column with ``test`` in its name and
``objective_cleaning_f1`` (it scores against the true corruption mask), and
the work counters (``n_iter``, ``epochs``, ``oracle_calls``). On hyper-
cleaning use ``objective_val_accuracy`` (``--maximize``) or
``objective_value`` (validation loss); on ``simulated``
``objective_suboptimality`` is the only objective there is.

Output: a benchopt run config with the data set (its full parametrized name)
and one ``"Solver[param=value,...]"`` line per solver, all parameters
spelled out; a comment block records the source, the rule and the scores.
When the parquet holds several data sets (best parameters differ per data
set, and a run config takes the product of its data sets and solvers), one
file is written per data set: ``<out stem>_<dataset>.yml`` (``_<n>`` added
when two data set configurations share a name); ``--dataset NAME`` keeps
only the data sets of that name. ``--n-repetitions``, ``--max-runs`` and
``--timeout`` are copied into the config when given.

Exit codes: 0; 1 when a solver's every setting diverged (a warning on
stderr; with ``--across-datasets`` that solver is left out of the file);
2 for a refused request or an unreadable input, with a one-line error.
Every value is written into the YAML by the YAML library (quoted where it
must be), and every comment on one line.

``--across-datasets``: one setting per solver for ALL the data sets of the
grid (how the solvers' defaults are chosen): a setting's score on a data
set is divided by the best score there (inverted for a maximized metric),
so 1 is the best and 1.3 is 30 % worse, and the setting whose worst ratio
over the data sets is smallest wins (a setting missing on a data set, or
diverged there, has an infinite ratio). One config lists every data set.
"""
import argparse
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmark_utils.analysis.results import (
    WORK_METRICS,
    infer_maximize,
    metric_column,
    metric_columns,
)

REDUCTIONS = ("final", "best")
#: Refused metrics besides test columns: F1 of the cleaning uses the true
#: corruption mask, which a tuning procedure must not see.
GROUND_TRUTH_METRICS = ("objective_cleaning_f1",)


class TuningError(ValueError):
    """A grid table or a request the tool cannot honour."""


def is_refused(column):
    """Whether tuning on ``column`` would use test data or ground truth."""
    return ("test" in column.lower() or column in GROUND_TRUTH_METRICS
            or column in WORK_METRICS)


def accepted_metrics(df):
    """The metric columns of ``df`` the tool accepts to tune on."""
    return [c for c in metric_columns(df, include_work=True)
            if not is_refused(c)]


def check_metric(df, metric):
    """Return the column name of ``metric``, or raise a clear error."""
    column = metric_column(metric)
    accepted = accepted_metrics(df)
    listing = ", ".join(accepted) or "none"
    if is_refused(column):
        why = ("it counts work, it does not measure a result"
               if column in WORK_METRICS else
               "tuning on it would select parameters on the test set or on "
               "the ground truth, and the comparison would be biased")
        raise TuningError(
            f"refusing to tune on {column}: {why}. Use a validation metric; "
            f"accepted columns here: {listing}"
        )
    if column not in df.columns:
        raise TuningError(
            f"{column} is not a column of the result table; accepted "
            f"columns here: {listing}"
        )
    return column


# Parametrized names <-> parameters

def split_name(name):
    """``"SABA[step_size=0.1,batch_size=full]"`` ->
    ``("SABA", {"step_size": 0.1, "batch_size": "full"})``, parsed the way
    benchopt parses its selectors."""
    from benchopt.utils.parametrized_name_mixin import _extract_options
    base, args, kwargs = _extract_options(name)
    if args:
        raise TuningError(f"cannot read the parameters of {name!r}")
    return base, kwargs


def _format_value(value):
    if isinstance(value, str):
        if "'" in value:
            raise TuningError(f"cannot write the parameter value {value!r}")
        return f"'{value}'"
    if isinstance(value, float) and not math.isfinite(value):
        raise TuningError(f"cannot write the parameter value {value!r}")
    return repr(value)


def format_name(base, params):
    """Inverse of ``split_name``: a selector benchopt reads back exactly."""
    if not params:
        return base
    inner = ",".join(f"{k}={_format_value(v)}"
                     for k, v in sorted(params.items()))
    return f"{base}[{inner}]"


# Selection

def score_runs(df, metric, maximize, reduce="final"):
    """One score per run: the metric at its last point, or its best value.

    Returns a DataFrame with the run columns and ``score`` (NaN for a run
    whose score is not finite, e.g. a diverged run).
    """
    if reduce not in REDUCTIONS:
        raise TuningError(f"reduce must be one of {REDUCTIONS}, got {reduce}")
    keys = [c for c in ("dataset_name", "objective_name", "solver_name",
                        "idx_rep") if c in df.columns]
    order = [c for c in ("stop_val", "time") if c in df.columns]
    df = df.sort_values(order, kind="stable")
    values = df[metric].astype(float).replace([np.inf, -np.inf], np.nan)
    grouped = values.groupby([df[k] for k in keys], sort=True, dropna=False)
    final = grouped.apply(lambda v: v.iloc[-1])
    if reduce == "final":
        # The last point of the run, NaN included: a run that diverged at
        # the end scores NaN.
        scores = final
    else:
        # the best value before the end, unless the run diverged: a setting
        # that improved and then blew up delivers nothing at its budget
        best = grouped.max() if maximize else grouped.min()
        scores = best.where(final.notna())
    return scores.rename("score").reset_index()


def select_best(df, metric, maximize=None, reduce="final"):
    """The best setting per (data set, solver), scored on ``metric``.

    Returns ``(best, table)``: ``table`` has one row per setting (columns
    ``dataset_name``, ``solver`` (base name), ``solver_name``, ``score``
    (median over repetitions of the run scores, NaN when not finite),
    ``n_runs``, ``rank`` (1 = best)), ``best`` the rows of rank 1.
    """
    metric = check_metric(df, metric)
    if maximize is None:
        maximize = infer_maximize(metric)
    runs = score_runs(df, metric, maximize, reduce)
    # A diverged repetition is the worst possible score, not a missing one.
    worst = -math.inf if maximize else math.inf
    runs["score"] = runs["score"].fillna(worst)
    keys = [c for c in ("dataset_name", "objective_name") if c in runs]
    table = (runs.groupby(keys + ["solver_name"], sort=True)["score"]
             .agg(score="median", n_runs="size").reset_index())
    table["solver"] = table["solver_name"].map(lambda n: split_name(n)[0])
    table = table.sort_values(
        keys + ["solver", "score", "solver_name"],
        ascending=[True] * len(keys) + [True, not maximize, True],
        kind="stable",
    )
    table["rank"] = table.groupby(keys + ["solver"]).cumcount() + 1
    table.loc[~np.isfinite(table["score"]), "score"] = math.nan
    best = table[table["rank"] == 1].reset_index(drop=True)
    return best, table.reset_index(drop=True)


def select_across(table, maximize):
    """The setting of each solver whose worst ratio to the best score, over
    the data sets of ``table`` (:func:`select_best`'s), is smallest.

    Returns a DataFrame, one row per solver: ``solver``, ``solver_name``
    (the chosen setting, without the data set), ``score`` (its worst
    ratio, >= 1) and ``n_runs`` (its runs over all data sets).
    """
    table = table.copy()
    best = table.groupby(["dataset_name", "solver"])["score"].transform(
        "max" if maximize else "min")
    ratio = best / table["score"] if maximize else table["score"] / best
    table["ratio"] = ratio.where(np.isfinite(ratio) & (ratio > 0), math.inf)
    n_datasets = table["dataset_name"].nunique()
    rows = []
    for (solver, name), group in table.groupby(["solver", "solver_name"],
                                               sort=True):
        worst = (group["ratio"].max() if len(group) == n_datasets
                 else math.inf)
        rows.append(dict(solver=solver, solver_name=name, score=worst,
                         n_runs=int(group["n_runs"].sum())))
    joint = pd.DataFrame(rows).sort_values(["solver", "score", "solver_name"],
                                           kind="stable")
    return joint.groupby("solver", sort=True).head(1).reset_index(drop=True)


def render_across(dataset_names, chosen, *, source, metric, maximize,
                  reduce, grid=None, commit=None, run_options=None,
                  repetitions=None):
    """The run config of :func:`select_across`'s choice. A solver every
    setting of which diverged (no finite worst ratio) is left out, with a
    warning in the header."""
    direction = "maximized" if maximize else "minimized"
    lines = ["Settings for every data set, selected by "
             "benchmark_utils.analysis.tuning --across-datasets",
             f"  from: {source}"]
    if repetitions is not None:
        lines.append(f"  repetitions per setting in the results: "
                     f"{repetitions}")
    if grid is not None:
        lines.append(f"  grid: {grid}")
    if commit is not None:
        lines.append(f"  commit: {commit}")
    lines.append(f"  rule: median over repetitions of the {reduce} value "
                 f"of {metric} ({direction}), divided by the best on each "
                 "data set; the smallest worst ratio over the data sets "
                 "wins.")
    solvers = []
    for row in chosen.itertuples(index=False):
        if not math.isfinite(row.score):
            lines.append(f"  WARNING: every {row.solver} setting diverged "
                         "on at least one data set: none written")
            continue
        lines.append(f"  {row.solver}: worst ratio {row.score:.4g}")
        solvers.append(format_name(*split_name(row.solver_name)))
    config = {key: value for key, value in (run_options or {}).items()
              if value is not None}
    config["dataset"] = [format_name(*split_name(name))
                         for name in dataset_names]
    config["solver"] = solvers
    return _config_text(lines, config)


# Writing the config

def _safe(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "dataset"


def _comment(text):
    """``text`` on one line, so that no value can leave its comment."""
    return " ".join(str(text).split())


def _config_text(comments, config):
    """Comment lines, then ``config`` written by the YAML library (which
    quotes every value that needs it), checked to read back the same."""
    text = "\n".join("# " + _comment(line) for line in comments) + "\n" \
        + yaml.safe_dump(config, sort_keys=False, width=1000)
    if yaml.safe_load(text) != config:
        raise TuningError("the run config does not read back as written")
    return text


def render_config(dataset_name, best, table, *, source, metric, maximize,
                  reduce, run_options=None, grid=None, commit=None,
                  repetitions=None):
    """The text of a run config with the best setting of each solver."""
    direction = "maximized" if maximize else "minimized"
    lines = ["Best parameters selected by benchmark_utils.analysis.tuning",
             f"  from: {source}"]
    if repetitions is not None:
        lines.append(f"  repetitions per setting in the results: "
                     f"{repetitions}")
    if grid is not None:
        lines.append(f"  grid: {grid}")
    if commit is not None:
        lines.append(f"  commit: {commit}")
    lines += [
        f"  rule: median over repetitions of the {reduce} value of "
        f"{metric} ({direction}); a diverged run scores worst.",
        f"  dataset: {dataset_name}",
    ]
    for row in best.itertuples(index=False):
        candidates = table[(table["dataset_name"] == dataset_name)
                           & (table["solver"] == row.solver)]
        lines.append(f"  {row.solver}: score {row.score:.6g} over "
                     f"{row.n_runs} run(s), best of {len(candidates)} "
                     "setting(s)")
        if not math.isfinite(row.score):
            lines.append(f"    WARNING: every {row.solver} setting "
                         "diverged or has no finite score")
    config = {key: value for key, value in (run_options or {}).items()
              if value is not None}
    config["dataset"] = [format_name(*split_name(dataset_name))]
    config["solver"] = [format_name(*split_name(row.solver_name))
                        for row in best.itertuples(index=False)]
    return _config_text(lines, config)


def output_paths(out, dataset_names):
    """One path per data set: ``out`` itself when there is one."""
    out = Path(out)
    if len(dataset_names) == 1:
        return {dataset_names[0]: out}
    paths, used = {}, set()
    for name in dataset_names:
        stem = f"{out.stem}_{_safe(split_name(name)[0])}"
        candidate, n = stem, 1
        while candidate in used:
            n += 1
            candidate = f"{stem}_{n}"
        used.add(candidate)
        paths[name] = out.with_name(candidate + (out.suffix or ".yml"))
    return paths


def grid_description(path):
    """``'<path> (timeout T s)'`` of a grid run config (the repetitions
    are read from the results, which may hold more than the config
    asked)."""
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise TuningError(f"cannot read the grid config {path}: "
                          f"{_comment(error)}") from None
    return f"{path} (timeout {config.get('timeout', '?')} s)"


def read_table(path):
    """The result table of a parquet file, or a one-line error naming
    it."""
    from benchopt.results import read_results
    path = Path(path)
    if not path.is_file():
        raise TuningError(f"no result file {path}")
    try:
        df = read_results(str(path))
    except Exception as error:  # pyarrow, pandas, benchopt: any reader
        raise TuningError(f"cannot read the result file {path} as a "
                          f"benchopt parquet table ({type(error).__name__}:"
                          f" {_comment(error)[:200]})") from None
    missing = {"solver_name", "dataset_name"} - set(df.columns)
    if missing:
        raise TuningError(f"{path} is not a benchopt result table (no "
                          f"column {', '.join(sorted(missing))})")
    return df


def current_commit():
    """The benchmark's git commit (short hash), or None outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True,
            text=True, cwd=Path(__file__).resolve().parent, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def tune(df, metric, out, *, maximize=None, reduce="final", dataset=None,
         source="<dataframe>", run_options=None, grid=None, commit=None,
         across=False):
    """Select the best settings of ``df`` and write the config(s).

    Returns ``{dataset_name: path}`` of the files written.
    """
    metric = check_metric(df, metric)
    if maximize is None:
        maximize = infer_maximize(metric)
    if dataset is not None:
        names = df["dataset_name"].map(lambda n: split_name(n)[0])
        if not (names == dataset).any():
            raise TuningError(
                f"no data set named {dataset!r} in the table; it has: "
                f"{', '.join(sorted(set(names)))}")
        df = df[names == dataset]
    if df.empty:
        raise TuningError("the result table is empty")
    best, table = select_best(df, metric, maximize, reduce)
    dataset_names = sorted(best["dataset_name"].unique())
    repetitions = (int(df["idx_rep"].nunique()) if "idx_rep" in df
                   else None)
    if across:
        text = render_across(
            dataset_names, select_across(table, maximize), source=source,
            metric=metric, maximize=maximize, reduce=reduce, grid=grid,
            commit=commit, run_options=run_options, repetitions=repetitions)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
        return {name: Path(out) for name in dataset_names}
    paths = output_paths(out, dataset_names)
    for name, path in paths.items():
        text = render_config(
            name, best[best["dataset_name"] == name], table, source=source,
            metric=metric, maximize=maximize, reduce=reduce,
            run_options=run_options, grid=grid, commit=commit,
            repetitions=repetitions)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return paths


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m benchmark_utils.analysis.tuning",
        description="For each data set and solver of a grid run, pick the "
                    "parameter setting with the best validation metric and "
                    "write a benchopt run config with it.",
    )
    parser.add_argument("parquet", help="result file of the grid run")
    parser.add_argument("--metric", required=True,
                        help="validation metric column, e.g. "
                             "objective_val_accuracy or objective_value")
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument("--maximize", dest="maximize", action="store_true",
                           default=None)
    direction.add_argument("--minimize", dest="maximize",
                           action="store_false")
    parser.add_argument("--reduce", choices=REDUCTIONS, default="final",
                        help="score of a run: its final value (default) or "
                             "its best value")
    parser.add_argument("--out", required=True,
                        help="run config to write (one per data set, "
                             "suffixed with its name, when there are several)")
    parser.add_argument("--grid", default=None,
                        help="the grid run config that produced the "
                             "parquet, recorded in the header with its "
                             "budget")
    parser.add_argument("--across-datasets", action="store_true",
                        help="one setting per solver for all the data sets "
                             "(smallest worst ratio to each data set's "
                             "best score)")
    parser.add_argument("--dataset", default=None,
                        help="keep only the data sets of this name")
    parser.add_argument("--n-repetitions", type=int, default=None,
                        help="written into the config(s)")
    parser.add_argument("--max-runs", type=int, default=None,
                        help="written into the config(s)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="written into the config(s)")
    parser.add_argument("--commit", default=None,
                        help="the commit that ran the grid, recorded in "
                             "the header (default: the checkout's when "
                             "this command runs)")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        df = read_table(args.parquet)
        run_options = {"n-repetitions": args.n_repetitions,
                       "max-runs": args.max_runs, "timeout": args.timeout}
        paths = tune(df, args.metric, args.out, maximize=args.maximize,
                     reduce=args.reduce, dataset=args.dataset,
                     source=str(args.parquet), run_options=run_options,
                     grid=(grid_description(args.grid) if args.grid
                           else None),
                     commit=args.commit or current_commit(),
                     across=args.across_datasets)
    except (TuningError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    warned = False
    for path in dict.fromkeys(paths.values()):
        print(f"wrote {path}")
        # the header's warnings (every setting of a solver diverged) must
        # not wait for someone to open the file, nor let a script go on
        for line in Path(path).read_text().splitlines():
            if "WARNING" in line:
                warned = True
                print("warning: " + line.lstrip("# ").removeprefix(
                    "WARNING: "), file=sys.stderr)
    return 1 if warned else 0


if __name__ == "__main__":
    sys.exit(main())
