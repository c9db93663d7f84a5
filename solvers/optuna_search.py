"""Optuna: a black-box baseline that searches x without any gradient of h.

T. Akiba, S. Sano, T. Yanase, T. Ohta, M. Koyama, "Optuna: a
next-generation hyperparameter optimization framework", KDD 2019, with its
tree-structured Parzen estimator (J. Bergstra, R. Bardenet, Y. Bengio,
B. Kégl, "Algorithms for hyper-parameter optimization", NeurIPS 2011).

Each coordinate x_k is a float parameter of an Optuna study, searched in
the box [``low``, ``high``]. One iteration is one trial:

1. the sampler proposes x (the first trial is x0, enqueued);
2. ``y(x) <- solve_inner(x)``: the full-batch inner problem solved by
   Newton-CG from ``inner_var0`` to ``inner_tol``
   (``benchmark_utils/problems/implicit.py``);
3. the trial's value is h(x) = f(x, y(x)) on the full outer set.

The reported model is the best trial so far, (y(x), x). The oracle
counter records the cost of the inner solves and of the values h(x).

It only makes sense where x has few coordinates: the TPE models each
coordinate independently and every trial costs a full inner solve, so on
the simulated problem (p = 10) and ijcnn1 (p = 22) it is a legitimate, if
weak, gradient-free baseline, best compared on time. With one coordinate
per training sample (hyper-cleaning, thousands) or per feature of
20newsgroups (130k), a trial is a random point of a huge box and the best
trial stays at or near x0; Optuna's own cost and storage grow with p too.
Problems with more than ``max_dim`` outer coordinates are skipped.

Choices (the JAX benchmark's solver solves the inner problem with LBFGS to
1e-3, cold started):
- The inner solve is the benchmark's Newton-CG, cold started from
  ``inner_var0`` for every trial, so that a trial's value does not depend
  on the trials before it.
- ``sampler``: "tpe" (``TPESampler``) or "random" (``RandomSampler``),
  seeded from the solver's seed, so that a run is reproducible.
- The box is widened, coordinate by coordinate, to contain x0 (ijcnn1
  starts at -8.5), so that the enqueued start is a legal trial.
- A trial whose inner solve gives a non-finite value is told to Optuna as
  failed and never reported.
"""
import math

import torch
from benchopt import safe_import_context

from benchmark_utils.problems.implicit import solve_inner
from benchmark_utils.solver.base import StochasticBilevelSolver
from benchmark_utils.validation import (
    check_choice,
    check_finite,
    check_positive,
    check_positive_int,
)

with safe_import_context() as import_ctx:
    import optuna


class Solver(StochasticBilevelSolver):
    """Optuna (Akiba et al., KDD 2019): black-box search of x, one full
    inner solve per trial, with a TPE or random sampler."""

    name = "Optuna"
    requirements = ["pip::torch", "pip::optuna"]
    parameters = {
        "sampler": ["tpe"],
        "low": [-5.0],
        "high": [5.0],
        "inner_tol": [1e-6],
        "max_dim": [100],        # most outer coordinates searched
        "batch_size": ["full"],
        "random_state": [None],
    }
    #: tests/test_convergence.py: neither check applies (the reasons)
    convergence_config = {
        "full_batch": "a black-box search: no hypergradient to drive "
                      "to zero",
        "minibatch": "full batch only (batch_size 'full')",
    }

    def skip(self, problem):
        max_dim = check_positive_int(self.max_dim, "max_dim")
        if problem.dim_outer > max_dim:
            return True, (
                f"black-box search of x with {problem.dim_outer} "
                f"coordinates (p = {problem.dim_outer} > max_dim = "
                f"{max_dim}): TPE cannot learn in that many dimensions")
        return False, None

    def init_state(self):
        check_choice(self.sampler, "sampler", ["tpe", "random"])
        check_choice(self.batch_size, "batch_size", ["full"])
        check_positive(self.inner_tol, "inner_tol")
        low, high = check_finite(self.low, "low"), check_finite(self.high,
                                                                "high")
        if not low < high:
            raise ValueError(f"low must be < high, got low={low!r} and "
                             f"high={high!r}.")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        seed = self._seed()
        sampler = (optuna.samplers.TPESampler(seed=seed)
                   if self.sampler == "tpe"
                   else optuna.samplers.RandomSampler(seed=seed))
        self.study = optuna.create_study(direction="minimize",
                                         sampler=sampler)
        x0 = self.problem.outer_var0.double().cpu().tolist()
        self.names = [f"x{k}" for k in range(len(x0))]
        self.box = [(min(low, v), max(high, v)) for v in x0]
        self.study.enqueue_trial(dict(zip(self.names, x0)))
        self.best_value = math.inf
        return self.start()

    def step(self, state):
        problem = self.problem
        trial = self.study.ask()
        x = torch.tensor([trial.suggest_float(name, lo, hi)
                          for name, (lo, hi) in zip(self.names, self.box)],
                         dtype=problem.dtype, device=problem.device)
        y, _ = solve_inner(self.oracles, x, tol=self.inner_tol)
        value = float(problem.outer(y, x))
        if not math.isfinite(value):
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        self.study.tell(trial, value)
        if value < self.best_value:
            self.best_value = value
            state.inner_var, state.outer_var = y, x
