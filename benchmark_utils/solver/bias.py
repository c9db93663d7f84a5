"""Known biases of solvers' fixed points, measured on a quadratic problem.

With full batches an unbiased method drives grad h(x) to zero; a biased one
(truncated Neumann series, unrolling, penalty multiplier...) settles where
the relative hypergradient norm ||grad h(x)|| / ||grad h(x0)|| is not zero.
Such a solver's class states how far, from its own parameters, in a method
``full_batch_bias(problem)`` built from the helpers below, and
tests/test_convergence.py checks its full-batch iterates against that
bound (docs/solver_template.py shows the declarations).

``problem`` must have the closed forms of
:class:`benchmark_utils.problems.quadratic.QuadraticProblem`:
``inner_solution(x)``, ``hypergradient(x)`` and ``cond``.
"""
import torch

from benchmark_utils.problems.implicit import neumann_step


def relative_norm(problem, vector):
    """||vector|| / ||grad h(x0)||."""
    return float(vector.norm() / problem.hypergradient(
        problem.outer_var0).norm())


def _dense_hessian(problem, y, x):
    eye = torch.eye(problem.dim_inner, dtype=y.dtype, device=y.device)
    return torch.stack([problem.hvp(y, x, e) for e in eye])


def truncation_bias(problem, outer_var, step, n_terms):
    """||J (I - step H)^n_terms H^{-1} grad_y f|| at (x, y*(x)), relative
    to ||grad h(x0)||: what a direction grad_x f - J step sum_{q<n_terms}
    (I - step H)^q grad_y f misses of grad h(x), since step sum_{q<n}
    (I - step H)^q = H^{-1} (I - (I - step H)^n). The bias of a Neumann
    series of n_terms terms, of T unrolled steps (n_terms = T), and of the
    mean of a randomly truncated series (n_terms = Q)."""
    x = outer_var
    y = problem.inner_solution(x)
    hess = _dense_hessian(problem, y, x)
    eye = torch.eye(problem.dim_inner, dtype=hess.dtype, device=hess.device)
    rest = torch.linalg.matrix_power(eye - step * hess, n_terms)
    missed = problem.cross(y, x, rest @ torch.linalg.solve(
        hess, problem.grad_outer_y(y, x)))
    return relative_norm(problem, missed)


def neumann_series_bias(solver, problem, extra_terms=0):
    """:func:`truncation_bias` at a solver's final x for its Neumann series
    of ``n_neumann_steps + extra_terms`` terms of step ``neumann_step``
    (None: 1 / L). For a randomly truncated series (BSA, TTSA, SUSTAIN) it
    is the bias of the series' mean over the truncation."""
    return truncation_bias(problem, solver.get_result()["outer_var"],
                           neumann_step(problem, solver.neumann_step),
                           solver.n_neumann_steps + extra_terms)


def neumann_bias(problem, outer_var, step, n_terms):
    """(1 - step mu)^n_terms ||J H^{-1} grad_y f|| at (x, y*(x)), relative
    to ||grad h(x0)|| (mu the smallest eigenvalue of H): a bound of
    :func:`truncation_bias`, since the series misses
    (I - step H)^n_terms H^{-1} grad_y f."""
    x = outer_var
    y = problem.inner_solution(x)
    hess = _dense_hessian(problem, y, x)
    mu = float(torch.linalg.eigvalsh(hess)[0])
    implicit = problem.cross(y, x, torch.linalg.solve(
        hess, problem.grad_outer_y(y, x)))
    return (1 - step * mu) ** n_terms * relative_norm(problem, implicit)


def penalty_bias(problem, lmbda):
    """Bound of the relative bias of a penalty method with multiplier
    ``lmbda`` at its fixed point: O(1 / lmbda), with a constant growing
    with the conditioning of H (measured 0.06, 1.1, 3.0 / lmbda for F2SA
    at condition numbers 10, 30, 100; 0.05 cond / lmbda bounds them)."""
    return 0.05 * problem.cond / float(lmbda)
