"""One default setting per solver, across the problems the protocol tuned.

Usage::

    python -m benchmark_utils.analysis.defaults [PROBLEM ...]

reads ``experiments/tuned/<problem>.csv`` (default: every problem with
one) and, for each solver, among the settings scored on the whole budget
(full and edge stages) on every one of these problems, picks the one whose
worst ratio to the solver's best score on each problem is smallest (a
diverged setting scores worst): the same rule as the tuning CLI's
``--across-datasets``. A solver with no setting scored on every problem
takes, of its per-problem choices, the one with the smallest step (a
larger one diverged or scored worse somewhere). Writes
``experiments/tuned/defaults.csv`` (solver, setting, score per problem,
worst ratio, rule) and prints it; the solvers' ``parameters`` hold these
values.
"""
import argparse
import sys

import numpy as np
import pandas as pd

from benchmark_utils.analysis.protocol import OUT

KEYS = ["solver", "step_size", "outer_ratio"]


def full_scores(rows):
    """Median score per setting over the full and edge stages (a diverged
    repetition makes the setting score +inf)."""
    rows = rows[rows["stage"] != "short"].copy()
    rows.loc[rows["diverged"].astype(bool), "score"] = np.inf
    for column in ("step_size", "outer_ratio"):
        rows[column] = rows[column].round(6)
    return rows.groupby(KEYS, dropna=False)["score"].median()


def choose(tables):
    """``tables``: {problem: per-run rows}. Returns one row per solver."""
    scores = pd.concat({name: full_scores(rows)
                        for name, rows in tables.items()}, axis=1)
    scores = scores.reset_index()
    names = list(tables)
    out = []
    for solver, group in scores.groupby("solver"):
        ratios = group[names] / group[names].min()
        common = ratios.dropna()
        if len(common):
            worst = common.max(axis=1)
            best = worst.idxmin()
            worst_ratio = float(worst[best])
            rule = "smallest worst ratio over the problems"
        else:
            # per-problem choices; keep the smallest step among them
            picks = [group[name].idxmin() for name in names
                     if group[name].notna().any()]
            best = min(picks, key=lambda i: (group.loc[i, "step_size"],
                                             group.loc[i, "outer_ratio"]))
            worst_ratio = np.nan
            rule = "no common setting: the smallest chosen step"
        row = dict(solver=solver, step_size=group.loc[best, "step_size"],
                   outer_ratio=group.loc[best, "outer_ratio"],
                   worst_ratio=worst_ratio, rule=rule)
        row.update({f"score_{name}": group.loc[best, name]
                    for name in names})
        out.append(row)
    return pd.DataFrame(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("problems", nargs="*")
    args = parser.parse_args(argv)
    names = args.problems or sorted(p.stem for p in OUT.glob("*.csv")
                                    if p.stem != "defaults")
    if not names:
        print("error: no experiments/tuned/<problem>.csv", file=sys.stderr)
        return 2
    table = choose({name: pd.read_csv(OUT / f"{name}.csv")
                    for name in names})
    table.to_csv(OUT / "defaults.csv", index=False, float_format="%.6g")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
