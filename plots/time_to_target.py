"""Bar chart: each solver's time to first reach a target (test accuracy...).

The form of Table 1 of the F2SA-Adam report (time to reach 0.80 test
accuracy on MNIST, 0.72 on FashionMNIST) and of MinimaxOPT's Table 2 (0.90
on MNIST), as a figure. The bar is
the median over repetitions, a black tick marks each repetition. A run that
never reaches the target counts as an infinite time (see
``benchmark_utils.analysis.results``):

- every run reached it: a colored bar, one tick per run;
- more than half did: a colored bar labelled ``(k/n reached)``, the runs
  that did not are drawn at the longest time of the page's runs (the bar
  height is still the exact median);
- half or fewer did: a grey bar, labelled ``not reached (k/n runs)``, as
  high as the median time the runs lasted.

Options: ``metric`` (default ``objective_test_accuracy``; also validation
accuracy, cleaning F1 and, on ``simulated``, suboptimality or gradient
norms) and ``target`` (0.8, 0.72, 0.85, 0.9, 0.95 for accuracies; 1e-2,
1e-4, 1e-6 for minimized metrics). ``target_time_table`` gives the
numbers.
"""
import math

from benchopt import BasePlot

from benchmark_utils.analysis.results import (
    TARGET_PLOT_OPTIONS,
    reported,
    select_problem,
    summarize_time_to_target,
    target_title,
    time_to_target,
)


class Plot(BasePlot):
    name = "time_to_target"
    type = "bar_chart"
    options = TARGET_PLOT_OPTIONS

    def plot(self, df, dataset, objective, metric, target):
        df = select_problem(df, dataset, objective)
        if not reported(df, metric):
            return []  # this data set does not report the metric
        per_run = time_to_target(df, float(target), metric)
        summary = summarize_time_to_target(per_run)
        longest = float(df["time"].max())
        bars = []
        for row in summary.itertuples(index=False):
            solver = row.solver_name
            runs = per_run[per_run["solver_name"] == solver]
            color = self.get_style(solver)["color"]
            if math.isfinite(row.median):
                times = [t if r else longest
                         for t, r in zip(runs["to_target"], runs["reached"])]
                label = solver
                if row.n_reached < row.n_runs:
                    label += f" ({row.n_reached}/{row.n_runs} reached)"
                bars.append(dict(y=times, label=label, color=color, text=""))
            else:
                bars.append(dict(
                    y=[row.budget], label=solver, color=color,
                    text=f"not reached ({row.n_reached}/{row.n_runs} runs)",
                ))
        return bars

    def get_metadata(self, df, dataset, objective, metric, target):
        return {
            "title": target_title(metric, target, dataset),
            "ylabel": "Time [sec] (median of runs; ticks: each run)",
        }
