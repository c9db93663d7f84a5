import math
import weakref

import torch
from benchopt import BaseObjective

from benchmark_utils.output_file import keep_results_apart
from benchmark_utils.provenance import code_digest
from benchmark_utils.solver.counting import work
from benchmark_utils.threads import default_thread_count
from benchmark_utils.validation import check_positive

# two runs with the same --output must not write one file
keep_results_apart()

#: y*(x0) of each problem object. benchopt (1.10) calls ``set_data`` with the
#: same problem to list a run's solvers and again before each solver: the
#: exact solve (seconds on the real data sets) is done once per problem.
_Y_STAR0 = weakref.WeakKeyDictionary()


class Objective(BaseObjective):
    """Bilevel optimization: min_x h(x) = f(x, y*(x)) with y*(x) = argmin_y
    g(x, y).

    A solver returns its model ``(inner_var, outer_var)``. Metrics reported
    at every logged point (docs/METRICS.md):

    - ``value``, the headline: h(x) = f(x, y*(x)), the bilevel objective,
      wherever g is strongly convex in y (y*(x) from a warm-started exact
      solve, outside the solver's time); with a network as the inner model
      (y*(x) is not unique) the validation loss ``val_loss``.
    - ``val_loss``: f(x, y) at the solver's own y; ``inner_grad_norm``:
      ||grad_y g(x, y)|| on the full inner set; the problem's metrics at
      (x, y) (``test_accuracy``, ``val_accuracy``, ``cleaning_f1``, ...).
    - ``test_accuracy_star``, ``val_accuracy_star``: the accuracies of
      y*(x), the model the inner problem gives at the solver's x, so that
      solvers that report different variables meet on the same footing.
    - the solver's work: ``work`` (gradient-equivalents of the training
      set), ``oracle_calls`` and ``n_iter``
      (``benchmark_utils/solver/counting.py``).

    Non-finite iterates give ``value = inf`` and NaN metrics instead of an
    error.

    Parameters: ``max_work``, a budget in ``work`` units at which every
    solver stops (None: only benchopt's ``--timeout`` and ``--max-runs``),
    and ``log_ratio`` > 1, the spacing of the logged points: a solver logs
    when its work has grown by this factor since its last logged point
    (1.1: a time or work to a target is known within 10 %).
    """

    name = "Bilevel Optimization"
    min_benchopt_version = "1.10"
    requirements = ["pip::torch"]
    parameters = {
        "max_work": [None],
        "log_ratio": [1.1],
    }

    def set_data(self, problem):
        if self.max_work is not None:
            check_positive(self.max_work, "max_work")
        if not check_positive(self.log_ratio, "log_ratio") > 1:
            raise ValueError(f"log_ratio must be a number > 1, got "
                             f"{self.log_ratio!r}.")
        self.problem = problem
        self._exact = problem.strongly_convex
        # y*(x0), the warm start of every run's first exact solve, so that
        # a run's metrics do not depend on the runs before it (with the
        # solvers' thread count: benchmark_utils/threads.py)
        if self._exact and problem not in _Y_STAR0:
            with default_thread_count():
                _Y_STAR0[problem] = problem.inner_solution(
                    problem.outer_var0)
        self._y_star0 = _Y_STAR0[problem] if self._exact else None
        self._y_star = self._y_star0
        # Metric names, so that a diverged run reports the same columns.
        x0 = problem.outer_var0
        self._metric_names = list(problem.metrics(problem.inner_var0, x0))
        self._star_names = list(self._star_metrics(problem.inner_var0, x0))

    def get_objective(self):
        # benchopt (1.10) keeps the objective's data across the repetitions
        # of a sequential run; a data set whose draw follows the repetition
        # (random_state=None, benchmark_utils/seeding.py) draws it anew
        # here, as it does in a parallel run.
        dataset = getattr(self, "_dataset", None)
        if dataset is not None:
            data = dataset._get_data()
            if data["problem"] is not self.problem:
                self.set_data(**data)
        return dict(problem=self.problem, max_work=self.max_work,
                    log_ratio=self.log_ratio)

    def _star_metrics(self, y_star, outer_var):
        problem = self.problem
        if not self._exact or not hasattr(problem, "accuracy"):
            return {}
        return {f"{split}_accuracy_star": problem.accuracy(y_star, split)
                for split in ("val", "test")
                if split in getattr(problem, "splits", {})}

    def _inner_solution(self, outer_var, first):
        """y*(x), warm started at the run's previous solution (at y*(x0)
        for a run's first point)."""
        warm = self._y_star0 if first else self._y_star
        if warm is None or not bool(torch.isfinite(warm).all()):
            warm = self._y_star0
        self._y_star = self.problem.inner_solution(outer_var, warm)
        return self._y_star

    def evaluate_result(self, inner_var, outer_var, oracle_counts=None):
        problem = self.problem
        result = dict(value=math.inf, val_loss=math.nan,
                      inner_grad_norm=math.nan)
        result.update({name: math.nan for name in
                       self._metric_names + self._star_names})
        if bool(torch.isfinite(inner_var).all()) and \
                bool(torch.isfinite(outer_var).all()):
            result["val_loss"] = float(problem.outer(inner_var, outer_var))
            result["inner_grad_norm"] = float(
                problem.grad_inner_y(inner_var, outer_var).norm())
            result.update(problem.metrics(inner_var, outer_var))
            if self._exact:
                first = oracle_counts is None or oracle_counts["n_iter"] == 0
                y_star = self._inner_solution(outer_var, first)
                result["value"] = float(problem.outer(y_star, outer_var))
                result.update(self._star_metrics(y_star, outer_var))
            else:
                result["value"] = result["val_loss"]
        if oracle_counts is not None:
            result.update(
                n_iter=oracle_counts["n_iter"],
                work=work(oracle_counts, problem.n_inner),
                oracle_calls=(oracle_counts["grad"] + oracle_counts["hvp"]
                              + oracle_counts["cross"]),
            )
        return result

    # benchopt's cache key covers this file and the solver's, not
    # benchmark_utils/: add its digest, so that a code change is re-run.
    def _get_state(self):
        return {"code_digest": code_digest()}

    def __setstate__(self, state):
        pass

    def get_one_result(self):
        return dict(inner_var=self.problem.inner_var0,
                    outer_var=self.problem.outer_var0)
