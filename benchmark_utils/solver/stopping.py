"""The stopping criterion of every solver: benchopt's, but a diverged run
stays in the results.

benchopt (1.10) stops a run whose monitored value is NaN or jumps up by
more than 1e5 and then drops every point of it: the run is absent from the
result table, the HTML page and the tuning CLI, which then ranks the
surviving settings as if the diverged one had never been tried. Here a run
*diverges* when its value becomes non-finite (the objective reports
``value = inf`` and NaN metrics for a non-finite iterate); it stops there
with the status "done", keeping every point it logged, the non-finite one
included, and a line on the terminal says so. A large but finite jump is
a value like any other: the run goes on (and is stopped by the first
non-finite value if it keeps growing). The line names the iteration that
first produced a non-finite iterate (the solver finds it by a replay,
``StochasticBilevelSolver.first_non_finite``).

The ``--timeout`` budget counts from the run's first logged point.
benchopt (1.10) starts it when it builds the criterion, before the
solver's warm-up, which compiles the iterations of ``compile=True``
(5-30 s with a cold inductor cache): a compiled run with a short timeout
then logged only its starting point. The criterion also hands the
deadline to the solver, whose loop checks it after every iteration
(benchopt checks it only at logged points).
"""
import math
import time

from benchopt.stopping_criterion import SufficientProgressCriterion

#: benchopt flags a run as diverged when its value grows by more than this
#: between two evaluations (``benchopt.stopping_criterion``).
BENCHOPT_JUMP = 1e5


class KeepDivergedCriterion(SufficientProgressCriterion):
    """benchopt's ``SufficientProgressCriterion`` (stop after ``patience``
    evaluations without sufficient progress, on timeout or ``max_runs``)
    that keeps diverged runs in the results (module docstring)."""

    def get_runner_instance(self, max_runs=1, timeout=None, terminal=None,
                            solver=None, run_key=None):
        criterion = super().get_runner_instance(
            max_runs=max_runs, timeout=timeout, terminal=terminal,
            solver=solver, run_key=run_key)
        criterion._clock_started = False
        if solver is not None:
            # the solver's loop reads the deadline after every logged point
            solver._criterion = criterion
        return criterion

    def should_stop(self, stop_val, objective_list):
        if not getattr(self, "_clock_started", True):
            self._clock_started = True
            if self.timeout is not None:
                self._deadline = time.time() + self.timeout
        value = objective_list[-1][self.key_to_monitor_]
        if not self.minimize:
            value = -value
        if not math.isfinite(value):
            self._report_divergence(objective_list[-1])
            return True, "done", stop_val
        if value - self._prev_objective > BENCHOPT_JUMP:
            # Not a divergence here: hide the jump from benchopt's test.
            self._prev_objective = value - BENCHOPT_JUMP
        return super().should_stop(stop_val, objective_list)

    def _report_divergence(self, row):
        name = "" if self.run_key is None else self.run_key[-1]
        n_iter = row.get("objective_n_iter", row.get("stop_val"))
        where = f"at iteration {n_iter}"
        find = getattr(self.solver, "first_non_finite", None)
        if find is not None:
            first, last = find()
            if first > last:
                where = (f"at iteration {n_iter} (a non-finite value with "
                         "finite iterates)")
            elif first == last:
                where = f"at iteration {first}"
            else:
                where = f"between iterations {first} and {last}"
        print(f"\n{name}: diverged {where} (logged at iteration {n_iter}, "
              f"after {row.get('time', math.nan):.3g} s); kept in the "
              "results, up to that point, with value inf.", flush=True)
