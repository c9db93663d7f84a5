"""benchmark_utils.analysis.defaults: one setting per solver across the
problems, on hand-made protocol rows."""
import math

import pandas as pd

from benchmark_utils.analysis.defaults import choose


def _rows(scores, stage="full"):
    """Protocol rows from ``{(solver, step, ratio): [scores]}``."""
    rows = []
    for (solver, step, ratio), values in scores.items():
        for rep, score in enumerate(values):
            rows.append(dict(stage=stage, solver=solver, step_size=step,
                             outer_ratio=ratio, idx_rep=rep, score=score,
                             diverged=not math.isfinite(score)))
    return pd.DataFrame(rows)


def test_smallest_worst_ratio_across_problems():
    # A's best on p1 (0.3) is 20 % off on p2; 0.1 is within 5 % on both
    p1 = _rows({("A", 0.1, 1.0): [1.05, 1.05], ("A", 0.3, 1.0): [1.0, 1.0],
                ("A", 1.0, 1.0): [0.9, 0.9]})
    p2 = _rows({("A", 0.1, 1.0): [2.0, 2.0], ("A", 0.3, 1.0): [2.4, 2.4],
                ("A", 1.0, 1.0): [math.inf, 2.0]})
    # a short-stage score is not on the whole budget: it does not count
    p2 = pd.concat([p2, _rows({("A", 1.0, 1.0): [1.0]}, stage="short")])
    row = choose({"p1": p1, "p2": p2}).set_index("solver").loc["A"]
    assert (row.step_size, row.outer_ratio) == (0.1, 1.0)
    assert row.worst_ratio == 1.05 / 0.9


def test_no_common_setting_takes_the_smallest_choice():
    p1 = _rows({("B", 10.0, math.nan): [0.5, 0.5],
                ("B", 3.0, math.nan): [0.6, 0.6]})
    p2 = _rows({("B", 0.3, math.nan): [0.7, 0.7],
                ("B", 1.0, math.nan): [0.8, 0.8]})
    row = choose({"p1": p1, "p2": p2}).set_index("solver").loc["B"]
    assert row.step_size == 0.3 and math.isnan(row.worst_ratio)
