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

from benchmark_utils.analysis.plots import TargetPlot


class Plot(TargetPlot):
    name = "time_to_target"
    type = "bar_chart"
    metadata = {"ylabel": "Time [sec] (median of runs; ticks: each run)"}

    def missing(self, metric):
        return []

    def draw(self, df, per_run, summary, metric, target):
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
