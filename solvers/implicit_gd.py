"""Implicit-GD: full-batch gradient descent on h(x) = f(x, y*(x)).

The reference solver, in the spirit of F. Pedregosa, "Hyperparameter
optimization with approximate gradient", ICML 2016 (HOAG), here with
tolerances at machine precision instead of a decreasing sequence: each
iteration uses the exact hypergradient of the implicit function theorem,

    grad h(x) = grad_x f(x, y*) + J(x, y*) v*,  v* = -H(x, y*)^{-1} grad_y f,

with y*(x) from a warm-started Newton-CG solve of the inner problem (to
``inner_tol``) and v* from conjugate gradient (to ``cg_tol``, warm started),
then ``x <- x - step_size * grad h(x)``. It is slow per iteration but free of
stochastic or approximation error, so the other solvers are measured against
it.
"""
from benchmark_utils.problems.implicit import hypergradient, solve_inner
from benchmark_utils.solver.base import State, StochasticBilevelSolver
from benchmark_utils.validation import check_choice, check_positive


class Solver(StochasticBilevelSolver):
    """Implicit-GD (exact hypergradient descent, as in Pedregosa, ICML
    2016): full-batch reference with Newton-CG and CG solves."""

    name = "Implicit-GD"
    parameters = {
        "step_size": [0.3],
        "inner_tol": [1e-10],
        "cg_tol": [1e-10],
        "batch_size": ["full"],
        "random_state": [None],
    }
    test_config = {"step_size": 0.3}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        "full_batch": {"params": dict(step_size=0.3), "n_iter": 400},
        "minibatch": "full batch only (batch_size 'full')",
    }

    def init_state(self):
        check_positive(self.step_size, "step_size")
        check_positive(self.inner_tol, "inner_tol")
        check_positive(self.cg_tol, "cg_tol")
        check_choice(self.batch_size, "batch_size", ["full"])
        outer_var = self.problem.outer_var0.clone()
        inner_var, _ = solve_inner(self.oracles, outer_var, tol=self.inner_tol)
        return State(inner_var=inner_var, outer_var=outer_var, v=None)

    def step(self, state):
        direction, state.v = hypergradient(
            self.oracles, state.outer_var, state.inner_var, tol=self.cg_tol,
            v0=state.v,
        )
        state.outer_var = state.outer_var - self.step_size * direction
        state.inner_var, _ = solve_inner(
            self.oracles, state.outer_var, state.inner_var, tol=self.inner_tol
        )
