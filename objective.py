import math

import torch
from benchopt import BaseObjective

from benchmark_utils.output_file import keep_results_apart
from benchmark_utils.provenance import code_digest

# two runs with the same --output must not write one file
keep_results_apart()


class Objective(BaseObjective):
    """Bilevel optimization: min_x f(x, y*(x)) with y*(x) = argmin_y g(x, y).

    A solver returns ``(inner_var, outer_var)``; the objective reports
    ``value`` = f(x, y) on the full outer set, ``inner_grad_norm`` =
    ||grad_y g(x, y)|| on the full inner set, every metric of the problem
    (test accuracy, suboptimality, ...) and the solver's oracle counts
    (``n_iter``, ``epochs``, ``oracle_calls``, defined in
    ``benchmark_utils/solver/counting.py``). Non-finite iterates give
    non-finite metrics instead of an error.
    """

    name = "Bilevel Optimization"
    min_benchopt_version = "1.10"
    requirements = ["pip::torch"]
    parameters = {}

    def set_data(self, problem):
        self.problem = problem
        # Metric names, so that a diverged run reports the same columns.
        self._metric_names = list(
            problem.metrics(problem.inner_var0, problem.outer_var0)
        )

    def get_objective(self):
        return dict(problem=self.problem)

    def evaluate_result(self, inner_var, outer_var, oracle_counts=None):
        problem = self.problem
        result = dict(value=math.inf, inner_grad_norm=math.nan)
        result.update({name: math.nan for name in self._metric_names})
        if bool(torch.isfinite(inner_var).all()) and \
                bool(torch.isfinite(outer_var).all()):
            result["value"] = float(problem.outer(inner_var, outer_var))
            result["inner_grad_norm"] = float(
                problem.grad_inner_y(inner_var, outer_var).norm()
            )
            result.update(problem.metrics(inner_var, outer_var))
        if oracle_counts is not None:
            result.update(
                n_iter=oracle_counts["n_iter"],
                epochs=oracle_counts["inner_samples"] / problem.n_inner,
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
