"""StochasticBilevelSolver: everything a solver needs but its algorithm.

A solver file subclasses it and writes ``init_state()`` (returns a state
object holding the solver's variables) and ``step(state)`` (one iteration,
updating ``state`` in place). The base class owns benchopt's callback loop,
the minibatch samplers, the random generator, oracle counting and divergence
detection.

The loop logs a point (benchopt's callback, which evaluates the objective
outside the solver's time) after the first iteration and then whenever the
solver's ``work`` (``benchmark_utils/solver/counting.py``) has grown by the
objective's ``log_ratio`` since the last logged point, so that every
solver's curve has points at the same relative spacing in work. It stops
at the objective's ``max_work`` budget, and checks benchopt's ``--timeout``
deadline after every iteration, so that a run overruns it by at most one
iteration (benchopt itself checks it only at logged points).
"""
import math
import sys
import time
from types import SimpleNamespace

import torch
from benchopt import BaseSolver

from benchmark_utils.batches import SAMPLINGS, BatchSampler
from benchmark_utils.solver.compiled_step import CompiledStep
from benchmark_utils.solver.counting import CountingProblem
from benchmark_utils.solver.stopping import KeepDivergedCriterion
from benchmark_utils.threads import use_default_threads
from benchmark_utils.validation import (
    check_batch_size,
    check_bool,
    check_choice,
    check_positive,
    check_positive_int,
)

#: Parameters every solver has; solvers list them in their ``parameters``.
COMMON_PARAMETERS = {
    "batch_size": [64],
    "random_state": [None],
    # "shuffle": a new random partition into batches at every epoch;
    # "blocks": fixed contiguous blocks read without a gather
    # (benchmark_utils.batches).
    "sampling": ["shuffle"],
    # True, on CPU: whole compiled iterations for the solvers with
    # ``traceable_step`` (benchmark_utils/solver/compiled_step.py), built
    # in benchopt's warm-up; other solvers run eagerly either way;
    # docs/SPEED.md measures them
    "compile": [False],
}


#: Printed when a run is interrupted (Ctrl-C): benchopt itself only says
#: "interrupted", and its parquet file is written at the end of a run only.
INTERRUPTED_HINT = (
    "Interrupted. The runs that finished are in benchopt's cache: run the "
    "same command again to run only the missing ones, or add --collect to "
    "write the finished ones to a parquet file without running anything."
)


#: Upper bounds on the warm-up of compiled iterations: seconds, and
#: iterations (a full-size iteration comes within a few unless nearly
#: every iteration meets the smaller batch of an epoch: none is compiled
#: then).
WARM_UP_SECONDS = 120
WARM_UP_ITERATIONS = 100
#: Upper bound on the replay that finds a diverged run's first non-finite
#: iteration (seconds, outside the solver's time).
REPLAY_SECONDS = 60


class State(SimpleNamespace):
    """The variables of a solver (``inner_var``, ``outer_var``, ...)."""


class StochasticBilevelSolver(BaseSolver):
    sampling_strategy = "callback"
    # Stochastic curves are noisy: only stop when the value has not improved
    # for many evaluations, or on divergence (a diverged run stays in the
    # results: benchmark_utils/solver/stopping.py).
    stopping_criterion = KeepDivergedCriterion(patience=50,
                                               strategy="callback")
    requirements = ["pip::torch"]

    #: Name of the state attribute returned as the model to evaluate.
    reported_inner = "inner_var"
    #: True when ``step`` can be traced as a whole (the conditions are in
    #: benchmark_utils/solver/compiled_step.py): with ``compile=True``,
    #: whole iterations then run as one compiled call.
    traceable_step = False
    _compiled_step = None

    def set_objective(self, problem, max_work=None, log_ratio=1.1):
        if problem.device.type == "cpu":
            use_default_threads()  # one (benchmark_utils/threads.py)
        self.problem = problem
        self.max_work = math.inf if max_work is None else max_work
        self.log_ratio = log_ratio
        self.batch_size = check_batch_size(self.batch_size)
        # (full-batch solvers do not list it: a class attribute would mask
        # benchopt's parameter, which it only sets when absent)
        self.sampling = check_choice(getattr(self, "sampling", "shuffle"),
                                     "sampling", SAMPLINGS)
        self.state = None
        compile_ = check_bool(getattr(self, "compile", False), "compile")
        if not (compile_ and self.traceable_step
                and problem.device.type == "cpu"):
            self._compiled_step = None
        elif self._compiled_step is None or \
                self._compiled_step.problem is not problem:
            # (benchopt's repetitions set the same problem again and warm
            # up once: the compiled iteration is kept)
            self._compiled_step = CompiledStep(self)

    def warm_up(self):
        """With compiled iterations: run iterations until the compiled one
        is built (at the first iteration after the first whose batches all
        have ``batch_size`` samples), or for at most
        ``WARM_UP_ITERATIONS`` iterations or ``WARM_UP_SECONDS``. benchopt
        calls it before the run, whose budget counts from its first logged
        point (benchmark_utils/solver/stopping.py); ``run`` starts
        afresh."""
        step = self._compiled_step
        if step is None:
            return
        self.reset()
        deadline = time.perf_counter() + WARM_UP_SECONDS
        while not step.ready and self.n_iter < WARM_UP_ITERATIONS \
                and time.perf_counter() < deadline:
            self.next_iteration()

    def _seed(self):
        if self.random_state is not None:
            return check_positive_int(self.random_state, "random_state",
                                      allow_zero=True)
        return self.get_seed(use_repetition=True)

    def reset(self):
        """Fresh generator, samplers and counters; then ``init_state()``."""
        self.generator = torch.Generator().manual_seed(self._seed())
        self.oracles = CountingProblem(self.problem)
        kw = dict(device=self.problem.device, sampling=self.sampling)
        self.inner_batch = BatchSampler(self.problem.n_inner, self.batch_size,
                                        self.generator, **kw)
        self.outer_batch = BatchSampler(self.problem.n_outer, self.batch_size,
                                        self.generator, **kw)
        self.n_iter = 0
        self.state = self.init_state()

    def get_next(self, stop_val):
        """benchopt's next logged callback: every call of the callback is
        logged, the loop below deciding when to call it."""
        return stop_val + 1

    def run(self, callback):
        try:
            self._run(callback)
        except KeyboardInterrupt:
            print("\n" + INTERRUPTED_HINT, file=sys.stderr, flush=True)
            raise

    def _run(self, callback):
        self.reset()
        self._last_finite = 0  # the last logged iteration known finite
        criterion = getattr(self, "_criterion", None)
        while callback():
            deadline = None if criterion is None else criterion._deadline
            work = self.oracles.work
            if work >= self.max_work:
                break
            next_log = work * self.log_ratio
            while True:
                self.next_iteration()
                work = self.oracles.work
                if work >= next_log or work >= self.max_work or (
                        deadline is not None and time.time() >= deadline):
                    break
            if self.problem.device.type == "cuda":
                # Kernels are asynchronous: wait for them so that benchopt's
                # timer charges the work to the solver.
                torch.cuda.synchronize(self.problem.device)
            if not self._is_finite():
                # Log this point (benchopt's stopping criterion reports the
                # divergence, asking first_non_finite for its iteration),
                # then stop.
                callback()
                break
            self._last_finite = self.n_iter

    def first_non_finite(self):
        """``(first, last)``: the iterations between which the reported
        variables first became non-finite, found by replaying the run from
        its start (the same seeds give the same iterates) with a check
        after every iteration past the last logged finite one: ``first ==
        last`` when found, else the logged bracket (a replay longer than
        ``REPLAY_SECONDS``). Called after the run, outside its time."""
        bad, known = self.n_iter, self._last_finite
        deadline = time.perf_counter() + REPLAY_SECONDS
        self.reset()
        while self.n_iter < bad and time.perf_counter() < deadline:
            self.next_iteration()
            if self.n_iter > known and not self._is_finite():
                return self.n_iter, self.n_iter
        return known + 1, bad

    def _is_finite(self):
        return all(bool(torch.isfinite(v).all()) for v in self._result_vars())

    def _result_vars(self):
        return (getattr(self.state, self.reported_inner),
                self.state.outer_var)

    def get_result(self):
        inner_var, outer_var = self._result_vars()
        return dict(inner_var=inner_var.detach().clone(),
                    outer_var=outer_var.detach().clone(),
                    oracle_counts=dict(self.oracles.counts,
                                       n_iter=self.n_iter))

    def next_iteration(self):
        """Iteration ``n_iter + 1``: ``step(state)``, or its compiled
        version."""
        self.n_iter += 1
        if self._compiled_step is not None:
            self._compiled_step(self.state)
        else:
            self.step(self.state)

    # -- helpers of solver files ---------------------------------------------
    def step_sizes(self):
        """``(step_size, outer_ratio * step_size)``, validated: the inner and
        outer steps of a solver that has both parameters."""
        inner = check_positive(self.step_size, "step_size")
        return inner, inner * check_positive(self.outer_ratio, "outer_ratio")

    def start(self, **variables):
        """A ``State`` at the problem's starting point (copies of
        ``inner_var0`` and ``outer_var0``) with the solver's other
        ``variables``."""
        return State(inner_var=self.problem.inner_var0.clone(),
                     outer_var=self.problem.outer_var0.clone(), **variables)

    # -- what a solver file writes -------------------------------------------
    def init_state(self):
        """Validate parameters and return the initial ``State``."""
        raise NotImplementedError

    def step(self, state):
        """One iteration of the algorithm, updating ``state`` in place."""
        raise NotImplementedError
