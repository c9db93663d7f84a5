"""Inner-only: the inner model trained at the starting x, which never moves.

The reference line of every comparison: what the inner problem alone gives,
without any bilevel step. On data hyper-cleaning it is the model trained on
the corrupted labels with the starting sample weights (no cleaning); on
regularization selection, the model trained with the starting penalties. A
bilevel solver is only useful where it ends above this line.

Each iteration is one warm-started Newton-CG step of the full-batch inner
solve ``solve_inner`` (``benchmark_utils/problems/implicit.py``) at x0, so
the curve reaches y*(x0) in a few iterations and then stays flat.
"""
from benchmark_utils.problems.implicit import solve_inner
from benchmark_utils.solver.base import StochasticBilevelSolver
from benchmark_utils.solver.stopping import KeepDivergedCriterion
from benchmark_utils.validation import check_choice


class Solver(StochasticBilevelSolver):
    """Inner-only baseline: y*(x0) by full-batch Newton-CG, x fixed at its
    start (no cleaning, no penalty selection)."""

    name = "Inner-Only"
    # y*(x0) is reached in a few iterations, after which nothing changes:
    # stop after 10 logged points without progress, not the stochastic
    # solvers' 50
    stopping_criterion = KeepDivergedCriterion(patience=10,
                                               strategy="callback")
    parameters = {
        "batch_size": ["full"],
        "random_state": [None],
    }
    #: tests/test_convergence.py: neither check applies (the reasons)
    convergence_config = {
        "full_batch": "x never moves: a baseline, not a bilevel method",
        "minibatch": "full batch only; x never moves",
    }

    def init_state(self):
        check_choice(self.batch_size, "batch_size", ["full"])
        return self.start()

    def step(self, state):
        state.inner_var, _ = solve_inner(
            self.oracles, state.outer_var, state.inner_var, tol=1e-10,
            max_iter=1)
