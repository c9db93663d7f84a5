"""SOBA, written as the template of a solver file.

HOW TO USE THIS TEMPLATE. Copy it to ``solvers/<your_solver>.py`` (benchopt
loads every file there; this copy in docs/ is not loaded) and replace
SOBA's rules by yours. The module docstring is the solver's reference text:
it cites the paper (authors, title, venue, year, algorithm number), states
one iteration line by line in the benchmark's notation (x = ``outer_var``,
y = ``inner_var``, g the inner and f the outer objective, H v = ``hvp``,
J v = ``cross``, i / j inner / outer minibatches), lists every choice the
paper leaves open, and gives the oracle calls per iteration. What the tests
require of the file is marked CHECKLIST below; each item fails a test,
saying what to add, until it is done:

- ``init_state`` / ``step``: the algorithm (``benchopt test .``);
- ``test_config``: small settings for ``benchopt test``;
- ``convergence_config`` and, for a biased method, ``full_batch_bias``:
  tests/test_convergence.py;
- optional ``oracle_counts_config``: tests/test_oracle_counts.py;
- a reference of the rules in tests/reference_rules.py: a function
  computing the iterates from the paper's rules, written independently of
  the solver (only the problem's oracles, through ``ctx.oracles``, and the
  draws, through ``ctx.draws``), plus its entry in ``REFERENCES`` (cases of
  a few iterations): tests/test_reference_rules.py compares the solver
  with it iteration by iteration;
- a row in the table of docs/SOLVERS.md (tests/test_contract.py).

Run one solver's tests with ``pytest tests -k <Name>`` (e.g. ``-k SOBA``)
and ``benchopt test . -s <Name>``.

The algorithm of this template: M. Dagréou, P. Ablin, S. Vaiter,
T. Moreau, "A framework for bilevel optimization that enables stochastic
and global variance reduction algorithms", NeurIPS 2022 (SOBA). Three
variables move together, all from the current point, with one inner batch
i and one outer batch j per iteration:

    y <- y - rho   * grad_y g_i(x, y)
    v <- v - rho   * (H_i(x, y) v + grad_y f_j(x, y))
    x <- x - gamma * (J_i(x, y) v + grad_x f_j(x, y))

with gamma = outer_ratio * rho. v tracks -H^{-1} grad_y f, so J v + grad_x f
estimates grad h(x).

Oracle calls per iteration: 2 gradients, 1 Hessian-vector product, 1 cross
product (one fused ``inner_oracles`` call and one ``grad_outer`` call).
"""
# Shared pieces live in benchmark_utils/ (its __init__ lists the modules):
# validation (clear errors naming the parameter), batches, problems.implicit
# (Neumann series, conjugate gradient), solver.schedules, solver.optimizers,
# solver.variance_reduction, solver.bias (known fixed-point biases)...
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    StochasticBilevelSolver,
)
from benchmark_utils.validation import check_positive


class Solver(StochasticBilevelSolver):
    # The class docstring is the solver's description on the results page:
    # method, authors, venue, what distinguishes it.
    """SOBA (Dagréou et al., NeurIPS 2022): single-loop, one stochastic
    step on y, v and x per iteration."""

    # The name used by ``benchopt run -s <name>`` and in the results.
    name = "SOBA-template"
    # Every parameter with its default in a one-element list; the names
    # follow the benchmark's notation (step_size, outer_ratio, n_inner_steps,
    # n_neumann_steps, neumann_step, momentum, schedule...), and a comment
    # gives the paper's symbol. COMMON_PARAMETERS adds batch_size,
    # random_state, sampling and compile.
    parameters = {
        "step_size": [0.03],   # rho
        "outer_ratio": [0.3],  # gamma / rho
        **COMMON_PARAMETERS,
    }
    # CHECKLIST: small settings for ``benchopt test`` (a few seconds).
    test_config = {"batch_size": 16}
    # CHECKLIST: tests/test_convergence.py runs the solver on quadratic
    # problems with a known solution.
    # - "full_batch": with batch_size "full", on three instances (condition
    #   numbers 10, 30, 100), ``n_iter`` iterations must bring
    #   ||grad h(x)|| / ||grad h(x0)|| below 1e-6, or, for a biased method,
    #   below 1e-3 + full_batch_bias(problem) + "allowance" (optional, a
    #   measured bound of what random iterates add);
    # - "minibatch": with batches of 16, both sampling schemes and 3 seeds,
    #   the mean gap h(x) - h* after ``n_iter`` iterations must fall below
    #   "gap_ratio" of its start.
    # Spell the parameters out, so that the checks do not move with the
    # defaults. A string instead of settings says why a check does not
    # apply (e.g. "full batch only").
    convergence_config = {
        "full_batch": {"params": dict(step_size=0.5, outer_ratio=0.3),
                       "n_iter": 3000},
        "minibatch": {"params": dict(step_size=0.05, outer_ratio=0.1),
                      "n_iter": 2000, "gap_ratio": 0.2},
    }
    # OPTIONAL: when the calls per iteration are fixed by the parameters,
    # tests/test_oracle_counts.py checks them with minibatches and with full
    # batches: a list of (parameters, (gradients, Hessian-vector products,
    # cross products)); "random" for the products of a randomly truncated
    # series of n_neumann_steps terms.
    oracle_counts_config = [({}, (2, 1, 1))]

    def init_state(self):
        # Validate every parameter (a clear error naming it and the accepted
        # values), then return the starting State: ``self.start(**extra)``
        # copies the problem's inner_var0 and outer_var0 and adds the
        # solver's own variables. Work done here is timed by benchopt.
        check_positive(self.step_size, "step_size")
        check_positive(self.outer_ratio, "outer_ratio")
        return self.start(
            v=self.problem.inner_var0.new_zeros(self.problem.dim_inner))

    def step(self, state):
        # One iteration, in place on ``state``, reading like the docstring's
        # rules. Draw batches with self.inner_batch() / self.outer_batch()
        # (None for the full set) and call the oracles through self.oracles,
        # which counts them; self.n_iter is the iteration number (1, 2,
        # ...) and self.generator the solver's seeded random generator.
        # Report a variable other than state.inner_var as the model by
        # setting the class attribute ``reported_inner``.
        rho = self.step_size
        gamma = self.outer_ratio * rho
        i, j = self.inner_batch(), self.outer_batch()
        y, x, v = state.inner_var, state.outer_var, state.v
        grad_g, hvp, cross = self.oracles.inner_oracles(y, x, v, i)
        grad_f_y, grad_f_x = self.oracles.grad_outer(y, x, j)
        y.sub_(grad_g, alpha=rho)
        v.sub_(hvp + grad_f_y, alpha=rho)
        x.sub_(cross + grad_f_x, alpha=gamma)

    # CHECKLIST, for a biased method only (SOBA is not): a method
    # ``full_batch_bias(self, problem)`` returning the relative hypergradient
    # norm ||grad h(x)|| / ||grad h(x0)|| at which its full-batch iterates
    # settle on the quadratic ``problem``, computed from the solver's own
    # parameters, e.g. a Neumann series of Q terms:
    #
    #     def full_batch_bias(self, problem):
    #         return truncation_bias(problem, self.get_result()["outer_var"],
    #                                neumann_step(problem, self.neumann_step),
    #                                self.n_neumann_steps + 1)
    #
    # (benchmark_utils/solver/bias.py; StocBiO, ITD, MRBO and the penalty
    # methods have one).
