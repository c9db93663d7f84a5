"""Figures of the results: per problem, the median over repetitions and its
95 % bootstrap interval against work and against time; across problems,
the performance profile.

Per-problem figures read the per-point summaries written by
:mod:`benchmark_utils.analysis.regenerate` (the columns of a benchopt
result table: ``solver_name``, ``idx_rep``, ``stop_val``, ``time`` and
``objective_<metric>``), so that they redraw without rerunning.
"""
import matplotlib
import numpy as np

from benchmark_utils.analysis.ranking import BASELINE, base_name
from benchmark_utils.analysis.results import median_curve

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: The metrics drawn, in rows, when the table reports them.
METRICS = {
    "objective_value": "h(x) = f(x, y*(x))",
    "objective_val_loss": "validation loss of the model",
    "objective_test_accuracy": "test accuracy of the model",
    "objective_test_accuracy_star": "test accuracy at y*(x)",
    "objective_cleaning_f1": "cleaning F1",
}
AXES = {"objective_work": "work (gradients of the training set)",
        "time": "time [s]"}


def _colors(solvers):
    cmap = plt.get_cmap("tab20")
    return {s: cmap(i % 20) for i, s in enumerate(sorted(solvers))}


def problem_figure(df, title, path, target=None):
    """One PNG: a row per metric the table reports, against work (left)
    and time (right); each solver's median over repetitions and its 95 %
    interval, the Inner-Only line dashed, the ranking's target dotted on
    the first row."""
    metrics = [m for m in METRICS if m in df and df[m].notna().any()]
    df = df.assign(solver=df["solver_name"].map(base_name))
    colors = _colors(df["solver"].unique())
    fig, axes = plt.subplots(len(metrics), len(AXES), squeeze=False,
                             figsize=(13, 3.2 * len(metrics)))
    for i, metric in enumerate(metrics):
        for j, (x, xlabel) in enumerate(AXES.items()):
            ax = axes[i, j]
            curves = median_curve(df.assign(solver_name=df["solver"]),
                                  metric, x=x)
            for solver, curve in sorted(curves.items()):
                keep = np.isfinite(curve["y"]) & (curve["x"] > 0)
                curve = curve[keep]
                if curve.empty:
                    continue
                style = dict(color=colors[solver], lw=1.3, label=solver)
                if solver == BASELINE:
                    style.update(ls="--", color="black")
                ax.plot(curve["x"], curve["y"], **style)
                if curve["n_runs"].max() > 1:
                    ax.fill_between(curve["x"], curve["y_low"],
                                    curve["y_high"], alpha=0.15,
                                    color=style["color"], lw=0)
            if i == 0 and target is not None:
                ax.axhline(target, color="grey", ls=":", lw=1)
            ax.set_xscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(METRICS[metric])
            if "accuracy" not in metric and "f1" not in metric:
                _loss_limits(ax, df, metric)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center",
               ncol=min(len(labels), 8), fontsize=8, frameon=False)
    fig.suptitle(title, y=1.0 + 0.25 / len(metrics), fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / len(metrics)))
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def _loss_limits(ax, df, metric):
    """Losses: from a little under the best value to the starting value,
    so that a diverging solver does not squash the others."""
    values = df[metric].replace([np.inf, -np.inf], np.nan).dropna()
    if values.empty:
        return
    start = df.loc[df["stop_val"] == 0, metric].replace(
        [np.inf, -np.inf], np.nan).max()
    low = values.min()
    high = max(start, low) if np.isfinite(start) else values.quantile(0.95)
    span = max(high - low, 1e-12)
    ax.set_ylim(low - 0.05 * span, high + 0.05 * span)


def profile_figure(profile, path, n_problems):
    """The performance profile (``ranking.performance_profile``) as a PNG."""
    colors = _colors(profile.columns)
    fig, ax = plt.subplots(figsize=(8, 5))
    order = profile.iloc[-1].sort_values(ascending=False).index
    for solver in order:
        ax.step(profile.index, profile[solver], where="post",
                color=colors[solver], lw=1.5, label=solver)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("tau: work to target within tau times the best solver's")
    ax.set_ylabel(f"fraction of the {n_problems} problems")
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
