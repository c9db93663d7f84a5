"""benchmark_utils.analysis.ranking: targets per data draw, work to target,
performance profile, on hand-made result tables."""
import math

import numpy as np
import pandas as pd
import pytest

from benchmark_utils.analysis.ranking import (
    performance_profile,
    problem_target,
    problem_targets,
    to_target,
)


def _runs(curves):
    """A result table from ``{(solver, rep): [(work, value), ...]}``."""
    rows = []
    for (solver, rep), points in curves.items():
        for stop_val, (work, value) in enumerate(points):
            rows.append(dict(solver_name=f"{solver}[step_size=0.1]",
                             idx_rep=rep, stop_val=stop_val,
                             objective_work=work, time=work / 10,
                             objective_value=value))
    return pd.DataFrame(rows)


# Two draws on different scales: draw 0's values are all above draw 1's.
DRAWS = {
    ("Inner-Only", 0): [(0, 2.0), (10, 2.0)],
    ("A", 0): [(0, 2.0), (4, 1.5), (10, 1.0)],
    ("B", 0): [(0, 2.0), (10, 1.9)],
    ("Inner-Only", 1): [(0, 0.5), (10, 0.5)],
    ("A", 1): [(0, 0.5), (6, 0.3), (10, 0.25)],
    ("B", 1): [(0, 0.5), (2, 0.45), (8, 0.2), (10, 0.2)],
}


def test_each_draw_has_its_own_target():
    df = _runs(DRAWS)
    targets = problem_targets(df)
    # line - 0.8 (line - best), draw by draw
    assert targets.loc[0, "target"] == pytest.approx(2.0 - 0.8 * 1.0)
    assert targets.loc[1, "target"] == pytest.approx(0.5 - 0.8 * 0.3)
    table = to_target(df, targets)
    # A reaches 1.2 at work 10 on draw 0 and 0.26 at work 10 on draw 1; a
    # single target (the medians') would count draw 1 as reached at once
    assert table.loc["A", "n_reached"] == 2
    assert table.loc["A", "median_work"] == pytest.approx(10)
    # B reaches draw 1's target (at work 8), never draw 0's
    assert table.loc["B", "n_reached"] == 1
    assert table.loc["B", "n_runs"] == 2
    assert math.isinf(table.loc["Inner-Only", "median_work"])
    target, line, best = problem_target(df)
    assert line == pytest.approx(np.median([2.0, 0.5]))


def test_target_needs_the_baseline():
    df = _runs({k: v for k, v in DRAWS.items() if k[0] != "Inner-Only"})
    with pytest.raises(ValueError, match="Inner-Only"):
        problem_targets(df)


def test_performance_profile():
    works = pd.DataFrame({"p1": [1.0, 2.0, math.inf],
                          "p2": [10.0, 5.0, np.nan]},
                         index=["A", "B", "C"])
    profile = performance_profile(works, [1.0, 2.0, 100.0])
    # A is the fastest on p1, twice the best on p2
    assert profile.loc[1.0, "A"] == 0.5 and profile.loc[2.0, "A"] == 1.0
    assert profile.loc[1.0, "B"] == 0.5 and profile.loc[2.0, "B"] == 1.0
    # C reaches nothing, and does not apply to p2
    assert (profile["C"] == 0).all()


def test_report_and_figure(tmp_path):
    from benchmark_utils.analysis.figures import problem_figure
    from benchmark_utils.analysis.regenerate import ranking_report
    df = _runs(DRAWS)
    text, profile, works = ranking_report(
        {"p": df}, {"p": {"STABLE": "too large"}})
    assert "| A | 2/2 | 10 [" in text
    assert "| B | 1/2 |" in text and "not reached" in text
    assert "| STABLE | not applicable: too large |" in text
    assert profile.loc[1.0, "A"] == 1.0
    path = tmp_path / "p.png"
    problem_figure(df, "p", path)
    assert path.stat().st_size > 10_000
