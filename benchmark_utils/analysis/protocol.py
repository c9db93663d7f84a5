"""The tuning protocol: one grid, one budget, one schedule for every solver.

Usage::

    python -m benchmark_utils.analysis.protocol PROBLEM [PROBLEM ...] [-j N]

with the problems of ``experiments/protocol.yml`` (``--list`` prints them).
For each problem, every solver that applies (a solver whose ``skip`` refuses
the problem, e.g. a size guard, is recorded with its reason) is tuned on the
problem's work budget ``max_work`` (objective parameter: every run stops at
that work) by successive halving on a common log grid:

1. **Grid.** ``step_size`` x ``outer_ratio`` on the protocol's common log
   grid (at least 12 settings); a solver with a step but no outer ratio
   (Implicit-GD) takes the 1-D grid ``step_only`` of as many settings; a
   solver with neither (Inner-Only, the black-box search) has nothing to
   tune and keeps its defaults. Every other parameter at its default.
2. **Short stage.** Every setting, one repetition, on ``short_budget`` of
   the work budget.
3. **Full stage.** The best ``keep`` fraction of the settings (at least
   two), ``repetitions`` repetitions each, on the whole budget: the horizon
   of the reported runs.
4. **Edges.** While the best setting lies at an edge of the explored grid,
   the next value beyond that edge (``factor`` times further) runs as in
   the full stage; the grid stops growing in a direction when that value
   diverges or scores worse.

A run's score is the validation metric (``metric``, by default ``value``:
h(x) = f(x, y*(x)), the validation loss at the exact inner solution, which
no test data and no ground truth enter) at its last logged point, the end
of its budget; a setting's score is the median over its repetitions; a
diverged run scores worst. The chosen setting is the best of the full and
edge stages.

Outputs, per problem, in ``experiments/tuned/``:

- ``<problem>.csv``: one row per run (stage, setting, repetition, score,
  diverged, work, time, logged points, commit), written after each stage,
  so that an interrupted protocol resumes at the first stage it has not
  finished (``--restart`` forgets them);
- ``<problem>.yml``: the run config of the reported comparison: the
  problem, its budget, every solver at its chosen setting, the protocol's
  repetitions and a header that records the protocol, the commit that ran
  the grid, the true repetition counts and every choice at a grid edge
  with why the grid stopped there.

Each stage is one ``benchopt run`` (``-j N`` or ``--parallel-config`` are
passed to it) with ``--no-cache``. The commit recorded is ``git describe
--always --dirty`` of the benchmark at the time the stage ran.
"""
import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmark_utils.analysis.results import infer_maximize, metric_column
from benchmark_utils.analysis.tuning import (
    TuningError,
    check_metric,
    format_name,
    split_name,
)

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "experiments" / "protocol.yml"
OUT = ROOT / "experiments" / "tuned"
STAGES = ("short", "full", "edge")
#: The columns of a problem's CSV, one row per run.
CSV_COLUMNS = ["stage", "solver", "step_size", "outer_ratio", "setting",
               "idx_rep", "score", "diverged", "work", "time", "n_points",
               "commit"]


class ProtocolError(ValueError):
    """A protocol file or request the command cannot honour."""


# -- the protocol file --------------------------------------------------------

def load_protocol(path=PROTOCOL):
    """The protocol file as a dict, checked."""
    try:
        protocol = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ProtocolError(f"cannot read the protocol file {path}: "
                            f"{error}") from None
    for key in ("grid", "schedule", "problems"):
        if key not in (protocol or {}):
            raise ProtocolError(f"the protocol file {path} has no "
                                f"'{key}' section")
    grid = protocol["grid"]
    n_settings = len(grid["step_size"]) * len(grid["outer_ratio"])
    if n_settings < 12 or len(grid["step_only"]) < n_settings:
        raise ProtocolError(
            f"the grid must have at least 12 settings and step_only as "
            f"many; got {n_settings} and {len(grid['step_only'])}")
    return protocol


def problem_entry(protocol, name):
    problems = protocol["problems"]
    if name not in problems:
        raise ProtocolError(f"no problem {name!r} in the protocol; its "
                            f"problems: {', '.join(problems)}")
    return problems[name]


# -- which solvers, which grid ------------------------------------------------

def tunable(solver_class):
    """``"grid"`` (step_size and outer_ratio), ``"step"`` (step_size only)
    or ``None`` (nothing to tune) for a solver class."""
    params = solver_class.parameters
    if "step_size" in params and "outer_ratio" in params:
        return "grid"
    if "step_size" in params:
        return "step"
    return None


def grid_settings(kind, grid):
    """The list of ``(step_size, outer_ratio)`` settings of a solver of
    ``kind`` (outer_ratio None for a step-only solver)."""
    if kind == "grid":
        return [(s, r) for s in grid["step_size"] for r in grid["outer_ratio"]]
    if kind == "step":
        return [(s, None) for s in grid["step_only"]]
    return [(None, None)]


def solver_selector(name, step_size, outer_ratio):
    params = {}
    if step_size is not None:
        params["step_size"] = float(step_size)
    if outer_ratio is not None:
        params["outer_ratio"] = float(outer_ratio)
    return format_name(name, params)


def applicable(solver_classes, problem):
    """``({name: class}, {name: reason})``: the solvers that apply to the
    ``problem`` (a BilevelProblem) and those whose ``skip`` refuses it."""
    keep, skipped = {}, {}
    for name, cls in sorted(solver_classes.items()):
        skip, reason = cls.get_instance().skip(problem=problem)
        if skip:
            skipped[name] = reason
        else:
            keep[name] = cls
    return keep, skipped


# -- running a stage ----------------------------------------------------------

def commit():
    """``git describe --always --dirty`` of the benchmark, or 'unknown'."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"],
                             capture_output=True, text=True, cwd=ROOT,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def stage_config(entry, selectors, *, budget, repetitions, log_ratio):
    """The benchopt run config (a dict) of one stage."""
    return {
        "dataset": [entry["dataset"]],
        "objective": [format_name("Bilevel Optimization", dict(
            max_work=float(budget), log_ratio=float(log_ratio)))],
        "solver": list(selectors),
        "n-repetitions": int(repetitions),
        "timeout": float(entry["timeout"]),
        "max-runs": 100000,
    }


def run_stage(config, workdir, name, run_options=()):
    """Run one stage with benchopt; returns its result table."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / f"{name}.yml"
    out = workdir / f"{name}.parquet"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    if out.exists():
        out.unlink()
    cmd = [sys.executable, "-m", "benchopt", "run", str(ROOT), "--config",
           str(config_path), "--no-cache", "--no-plot", "--output", str(out),
           *run_options]
    print(f"  $ benchopt run ... --config {config_path}", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    if proc.returncode != 0 or not out.exists():
        raise ProtocolError(f"benchopt run failed (exit code "
                            f"{proc.returncode}) on {config_path}")
    return pd.read_parquet(out)


def run_rows(df, stage, metric, maximize, recorded_commit):
    """One CSV row per run of a stage's result table."""
    column = metric_column(metric)
    check_metric(df, column)
    rows = []
    keys = ["solver_name", "idx_rep"]
    for (solver_name, rep), run in df.sort_values("stop_val").groupby(keys):
        base, params = split_name(solver_name)
        values = run[column].astype(float).to_numpy()
        last = values[-1]
        rows.append(dict(
            stage=stage, solver=base,
            step_size=params.get("step_size", math.nan),
            outer_ratio=params.get("outer_ratio", math.nan),
            setting=solver_name, idx_rep=int(rep),
            score=float(last), diverged=not math.isfinite(last),
            work=float(run["objective_work"].iloc[-1]),
            time=float(run["time"].iloc[-1]), n_points=len(run),
            commit=recorded_commit))
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


# -- selection ----------------------------------------------------------------

def setting_scores(rows, maximize):
    """Per (solver, stage group, setting): the median score over the
    repetitions (a diverged run scores worst), and the repetitions."""
    worst = -math.inf if maximize else math.inf
    scores = rows.assign(score=np.where(rows["diverged"], worst,
                                        rows["score"]))
    return (scores.groupby(["solver", "step_size", "outer_ratio", "setting"],
                           dropna=False)["score"]
            .agg(score="median", repetitions="size").reset_index())


def ranked(table, maximize):
    return table.sort_values(["score", "setting"],
                             ascending=[not maximize, True], kind="stable")


def promoted(short, keep):
    """The settings of the short stage that go on to the full stage."""
    n = max(2, math.ceil(keep * len(short)))
    return short.head(n)


def _values(table, column):
    return sorted(v for v in table[column].unique() if not pd.isna(v))


def next_edges(full, explored, maximize, factor):
    """The ``(step_size, outer_ratio)`` settings one step (``factor``)
    beyond the explored grid from the best setting of the full and edge
    stages (``full``), in each direction where it lies at the edge of the
    explored grid (``explored``: every setting run). A direction stops
    growing by itself: when the setting beyond an edge scores worse or
    diverges, the best is no longer at the edge."""
    best = ranked(full, maximize).iloc[0]
    steps = _values(explored, "step_size")
    ratios = _values(explored, "outer_ratio")
    candidates = []
    for column, values in (("step_size", steps), ("outer_ratio", ratios)):
        value = best[column]
        if pd.isna(value) or not values:
            continue
        if value == values[-1]:
            candidates.append((column, value * factor))
        if value == values[0]:
            candidates.append((column, value / factor))
    settings = []
    for column, value in candidates:
        step = value if column == "step_size" else best["step_size"]
        ratio = value if column == "outer_ratio" else best["outer_ratio"]
        settings.append((float(step),
                         None if pd.isna(ratio) else float(ratio)))
    return settings


# -- the protocol -------------------------------------------------------------

def read_rows(path):
    if not path.exists():
        return pd.DataFrame(columns=CSV_COLUMNS)
    try:
        return pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ProtocolError(f"cannot read {path}: {error}") from None


def tune_problem(name, protocol, solver_classes, problem, *, out=OUT,
                 workdir=None, run_options=(), restart=False, log=print):
    """Run the protocol on one problem; returns the path of its run config.
    ``problem``: the BilevelProblem of the problem's data set (to ask the
    solvers whether they apply)."""
    entry = problem_entry(protocol, name)
    grid, schedule = protocol["grid"], protocol["schedule"]
    metric = protocol.get("metric", "value")
    maximize = infer_maximize(metric)
    budget = float(entry["max_work"])
    workdir = Path(workdir or ROOT / "outputs" / "protocol" / name)
    csv_path = Path(out) / f"{name}.csv"
    rows = pd.DataFrame(columns=CSV_COLUMNS) if restart \
        else read_rows(csv_path)
    solvers, skipped = applicable(solver_classes, problem)
    kinds = {s: tunable(cls) for s, cls in solvers.items()}
    log_ratio = schedule.get("log_ratio", 2.0)

    def stage(stage_name, selectors, stage_budget, repetitions):
        nonlocal rows
        config = stage_config(entry, selectors, budget=stage_budget,
                              repetitions=repetitions, log_ratio=log_ratio)
        recorded = commit()
        start = time.perf_counter()
        df = run_stage(config, workdir, stage_name, run_options)
        new = run_rows(df, stage_name, metric, maximize, recorded)
        rows = pd.concat([rows, new], ignore_index=True)
        Path(out).mkdir(parents=True, exist_ok=True)
        rows.to_csv(csv_path, index=False)
        log(f"  {stage_name}: {len(new)} runs in "
            f"{time.perf_counter() - start:.0f} s")

    # 1.-2. every setting on the short budget
    tuned = [s for s in solvers if kinds[s] is not None]
    if not (rows["stage"] == "short").any():
        selectors = [solver_selector(s, *setting) for s in tuned
                     for setting in grid_settings(kinds[s], grid)]
        log(f"{name}: short stage, {len(selectors)} settings")
        stage("short", selectors, schedule["short_budget"] * budget, 1)
    # 3. the best of each solver on the whole budget, with the untuned ones
    if not (rows["stage"] == "full").any():
        short = setting_scores(rows[rows["stage"] == "short"], maximize)
        selectors = [s for s in solvers if kinds[s] is None]
        for s in tuned:
            best = promoted(ranked(short[short["solver"] == s], maximize),
                            schedule["keep"])
            selectors += list(best["setting"])
        log(f"{name}: full stage, {len(selectors)} settings")
        stage("full", selectors, budget, schedule["repetitions"])
    # 4. the edges, one round at a time
    rounds = rows.loc[rows["stage"].str.startswith("edge"), "stage"]\
        .nunique()
    while rounds < grid.get("max_edge_rounds", 4):
        todo = []
        for s in tuned:
            ran = rows[rows["solver"] == s]
            todo += [solver_selector(s, *setting) for setting in next_edges(
                setting_scores(ran[~ran["stage"].eq("short")], maximize),
                setting_scores(ran, maximize), maximize, grid["factor"])]
        if not todo:
            break
        rounds += 1
        log(f"{name}: edge round {rounds}, {len(todo)} settings")
        stage(f"edge_{rounds}", todo, budget, schedule["repetitions"])
    text = render_tuned(name, entry, protocol, rows, solvers, skipped,
                        kinds, maximize)
    path = Path(out) / f"{name}.yml"
    path.write_text(text)
    return path


def choice(rows, solver, maximize):
    """``(best, notes)`` of a solver: its best setting over the full and
    edge stages (a row of :func:`setting_scores`), and, for each of its
    parameters, what the neighbouring values on the explored grid gave
    (why the choice is not at another value)."""
    ran = rows[rows["solver"] == solver]
    full = setting_scores(ran[~ran["stage"].eq("short")], maximize)
    short = setting_scores(ran[ran["stage"].eq("short")], maximize)
    best = ranked(full, maximize).iloc[0]
    explored = pd.concat([full, short])
    notes = []
    for column in ("step_size", "outer_ratio"):
        value = best[column]
        if pd.isna(value):
            continue
        every = _values(explored, column)
        line = explored[_same_other(explored, best, column)]
        values = _values(line, column)
        i = values.index(value)
        for side, neighbour, edge in (
                ("larger", values[i + 1:i + 2], every[-1]),
                ("smaller", values[max(i - 1, 0):i], every[0])):
            if neighbour:
                other = neighbour[0]
                stage, table = (("", full) if (
                    (full[column] == other)
                    & _same_other(full, best, column)).any()
                    else (" in the short stage", short))
                score = table.loc[(table[column] == other)
                                  & _same_other(table, best, column),
                                  "score"].iloc[0]
                why = ("diverged" if not math.isfinite(score)
                       else f"scored worse ({score:.6g})")
                notes.append(f"{column} {other:g} {why}{stage}")
            elif value == edge:
                notes.append(f"{column} {value:g} is the {side[:-1]}st "
                             "value run: the edge rounds ran out before "
                             "the grid could grow further")
    return best, notes


def _same_other(table, best, column):
    other = "outer_ratio" if column == "step_size" else "step_size"
    if pd.isna(best[other]):
        return table[other].isna()
    return table[other] == best[other]


def render_tuned(name, entry, protocol, rows, solvers, skipped, kinds,
                 maximize):
    """The text of a problem's tuned run config."""
    schedule, grid = protocol["schedule"], protocol["grid"]
    metric = protocol.get("metric", "value")
    commits = sorted(set(rows["commit"].astype(str)))
    reps = rows.groupby("stage")["idx_rep"].nunique().to_dict()
    lines = [
        f"# {name}: every solver at the setting chosen by the tuning "
        "protocol",
        "#   python -m benchmark_utils.analysis.protocol " + name,
        f"# Protocol (experiments/protocol.yml): budget {entry['max_work']:g}"
        " work units per run (gradients of the whole training set);",
        f"#   grid step_size {grid['step_size']} x outer_ratio "
        f"{grid['outer_ratio']} (step only: {grid['step_only']});",
        f"#   short stage: every setting, {reps.get('short', 0)} "
        f"repetition(s), {schedule['short_budget']:g} of the budget;",
        f"#   full stage: the best {schedule['keep']:g} of each solver's "
        f"settings, {reps.get('full', 0)} repetition(s), the whole budget;",
        "#   edges: the next value beyond a grid edge, as the full stage, "
        "until it diverges or scores worse.",
        f"# Score: the final {metric} (minimized: h(x) = f(x, y*(x)) on the"
        " validation set), median over repetitions; a diverged run scores"
        " worst. Per-run scores: " + f"experiments/tuned/{name}.csv.",
        f"# Commit(s) that ran the grid: {', '.join(commits)}",
    ]
    selectors = []
    for solver in sorted(solvers):
        if kinds[solver] is None:
            lines.append(f"#   {solver}: no step to tune (defaults)")
            selectors.append(solver)
            continue
        best, notes = choice(rows, solver, maximize)
        lines.append(f"#   {solver}: {best['setting']} score "
                     f"{best['score']:.6g} ({best['repetitions']} "
                     "repetitions)")
        for note in notes:
            lines.append(f"#     {note}")
        if not math.isfinite(best["score"]):
            lines.append(f"#     WARNING: every {solver} setting diverged")
        selectors.append(best["setting"])
    for solver, reason in sorted(skipped.items()):
        lines.append(f"#   {solver}: not applicable ({_one_line(reason)})")
    config = {
        "dataset": [entry["dataset"]],
        "objective": [format_name("Bilevel Optimization", dict(
            max_work=float(entry["max_work"]), log_ratio=1.1))],
        "solver": selectors,
        "n-repetitions": int(protocol.get("repetitions", 5)),
        "timeout": float(entry["timeout"]),
        "max-runs": 100000,
    }
    text = "\n".join(_one_line(line) for line in lines) + "\n" + \
        yaml.safe_dump(config, sort_keys=False)
    yaml.safe_load(text)
    return text


def _one_line(text):
    """A comment line that cannot break out of its comment."""
    return " ".join(str(text).split())


# -- command line -------------------------------------------------------------

def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m benchmark_utils.analysis.protocol",
        description="Tune every solver on a problem with the same grid, "
                    "budget and successive-halving schedule; write its run "
                    "config and per-run scores to experiments/tuned/.")
    parser.add_argument("problems", nargs="*",
                        help="problems of the protocol file (default: all)")
    parser.add_argument("--protocol", default=str(PROTOCOL))
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--list", action="store_true",
                        help="list the problems and exit")
    parser.add_argument("--restart", action="store_true",
                        help="forget the finished stages of these problems")
    parser.add_argument("-j", "--n-jobs", default=None,
                        help="passed to benchopt run")
    parser.add_argument("--parallel-config", default=None,
                        help="passed to benchopt run")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        protocol = load_protocol(args.protocol)
        names = args.problems or list(protocol["problems"])
        if args.list:
            for name in protocol["problems"]:
                print(name)
            return 0
        for name in names:
            problem_entry(protocol, name)
        from benchopt.benchmark import Benchmark
        bench = Benchmark(str(ROOT))
        solver_classes = {s.name: s for s in bench.get_solvers()}
        run_options = []
        if args.n_jobs:
            run_options += ["-j", str(args.n_jobs)]
        if args.parallel_config:
            run_options += ["--parallel-config", args.parallel_config]
        for name in names:
            start = time.perf_counter()
            problem = load_problem(bench, problem_entry(protocol,
                                                        name)["dataset"])
            path = tune_problem(name, protocol, solver_classes, problem,
                                out=args.out, run_options=run_options,
                                restart=args.restart)
            print(f"{name}: {path} ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    except (ProtocolError, TuningError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def load_problem(bench, dataset):
    """The BilevelProblem of a data set selector (e.g.
    ``"mnist[source=embedded]"``)."""
    from benchopt.utils.parametrized_name_mixin import _extract_options
    base, _, params = _extract_options(dataset)
    classes = {d.name: d for d in bench.get_datasets()}
    if base not in classes:
        raise ProtocolError(f"no data set {base!r}; data sets: "
                            f"{', '.join(classes)}")
    return classes[base].get_instance(**params).get_data()["problem"]


if __name__ == "__main__":
    sys.exit(main())
