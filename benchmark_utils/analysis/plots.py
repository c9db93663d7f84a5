"""What the custom plots of ``plots/`` share.

benchopt calls a plot's ``plot(df, **options)`` with the result table and
one value of each option; ``get_metadata`` gives the title and axes.
"""
from benchopt import BasePlot

from benchmark_utils.analysis.results import (
    infer_maximize,
    reported,
    summarize_time_to_target,
    target_metric_options,
    target_options,
    time_to_target,
)


def select_problem(df, dataset, objective):
    """The rows of one data set and objective (a plot's first two
    options)."""
    return df[(df["dataset_name"] == dataset)
              & (df["objective_name"] == objective)]


class TargetPlot(BasePlot):
    """Base of the time-to-target plots (``time_to_target``,
    ``target_time_table``): their options, the data of one problem, the
    time to target of every run and its summary per solver, the title.

    A subclass writes ``draw(df, per_run, summary, metric, target)`` (the
    problem's rows, :func:`time_to_target` and
    :func:`summarize_time_to_target` of them, the options),
    ``missing(metric)`` (what to show when the data set does not report
    the metric) and ``metadata`` (besides the title).
    """

    options = {
        "dataset": ...,
        "objective": ...,
        "metric": target_metric_options,
        "target": target_options,
    }
    metadata = {}

    def plot(self, df, dataset, objective, metric, target):
        df = select_problem(df, dataset, objective)
        if not reported(df, metric):
            return self.missing(metric)
        target = float(target)
        per_run = time_to_target(df, target, metric)
        return self.draw(df, per_run, summarize_time_to_target(per_run),
                         metric, target)

    def get_metadata(self, df, dataset, objective, metric, target):
        sign = ">=" if infer_maximize(metric) else "<="
        short = metric.removeprefix("objective_")
        return dict(self.metadata, title=f"Time to first reach {short} "
                    f"{sign} {target}\nData: {dataset}")

    def missing(self, metric):
        raise NotImplementedError

    def draw(self, df, per_run, summary, metric, target):
        raise NotImplementedError
