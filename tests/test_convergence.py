"""Every solver converges on quadratic problems with a known solution.

Each solver declares its settings on its class, ``convergence_config``
(docs/solver_template.py), and the tests run every solver benchopt
discovers:

- ``"full_batch"``: ``params``, ``n_iter`` and an optional ``allowance``.
  On three instances (condition numbers 10, 30, 100 of the inner Hessian,
  different seeds), after ``n_iter`` full-batch iterations, the relative
  hypergradient norm ||grad h(x_k)|| / ||grad h(x_0)|| is at most
  ``TOL_UNBIASED`` for an unbiased method, else ``TOL + bias +
  allowance``, where ``bias`` is the method's known bias at its fixed
  point, computed by the solver's ``full_batch_bias(problem)`` from its
  own parameters (benchmark_utils/solver/bias.py: the Neumann or unrolling
  truncation, O(1 / lambda) for the penalty methods...) and ``allowance``
  a measured bound of what random iterates add to it;
- ``"minibatch"``: ``params``, ``n_iter``, ``gap_ratio``. With batches of
  16, both sampling schemes and 3 seeds, on the cond-10 instance, the mean
  gap h(x_k) - h(x*) falls below ``gap_ratio`` of its start.

A value that is a string instead of settings says why the check does not
apply (a full-batch-only method, a baseline whose x never moves).
"""
import pytest

from benchmark_utils.batches import SAMPLINGS
from benchmark_utils.problems.quadratic import QuadraticProblem
from conftest import discovered_solvers, relative_hypergrad, run_steps
from declarations import declaration_errors

#: (condition number, seed) of the three quadratic instances.
INSTANCES = [(10.0, 0), (30.0, 1), (100.0, 2)]
#: What an unbiased method must reach, and the slack added to a bias.
TOL_UNBIASED = 1e-6
TOL = 1e-3
def settings(solver_name, kind):
    """The declared settings of ``kind``; fails saying what to add, or
    skips with the declared reason."""
    errors = declaration_errors(discovered_solvers()[solver_name])
    if errors:
        pytest.fail("\n".join(errors))
    value = discovered_solvers()[solver_name].convergence_config[kind]
    if isinstance(value, str):
        pytest.skip(f"{solver_name}: {value}")
    return value


@pytest.fixture(scope="module", params=INSTANCES,
                ids=[f"cond{c:g}" for c, _ in INSTANCES])
def instance(request):
    cond, seed = request.param
    return QuadraticProblem(n_inner=200, n_outer=100, dim_inner=10,
                            dim_outer=5, cond=cond, random_state=seed)


def test_full_batch_reaches_stationarity(solver_name, instance, make_solver):
    config = settings(solver_name, "full_batch")
    solver = make_solver(solver_name, instance, batch_size="full",
                         **config["params"])
    run_steps(solver, config["n_iter"])
    bias = getattr(solver, "full_batch_bias", None)
    if bias is None:
        bound = TOL_UNBIASED + config.get("allowance", 0.0)
    else:
        bound = TOL + bias(instance) + config.get("allowance", 0.0)
    reached = relative_hypergrad(instance, solver)
    assert reached <= bound, (
        f"{solver_name}: ||grad h|| / ||grad h(x0)|| = {reached:.3g} > "
        f"{bound:.3g} after {config['n_iter']} iterations"
        + ("" if bias is not None else
           " (if the method is biased, define full_batch_bias(problem) on "
           "its class: docs/solver_template.py)"))


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_minibatch_decreases_value(solver_name, quadratic, make_solver,
                                   sampling):
    config = settings(solver_name, "minibatch")
    h0 = quadratic.value_function(quadratic.outer_var0)
    finals = []
    for seed in range(3):
        solver = make_solver(solver_name, quadratic, batch_size=16,
                             sampling=sampling, random_state=seed,
                             **config["params"])
        run_steps(solver, config["n_iter"])
        finals.append(quadratic.value_function(
            solver.get_result()["outer_var"]))
    gap0 = h0 - quadratic.value_star
    assert sum(finals) / 3 - quadratic.value_star < \
        config["gap_ratio"] * gap0
