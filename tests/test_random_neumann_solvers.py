"""TTSA (solvers/ttsa.py) and BSA (solvers/bsa.py): one iteration against
its update rules, the schedules, parameter checks."""
import pytest
import torch

from conftest import run_steps


def record_batches(solver):
    """Lists of the inner and outer batches the solver draws from now on."""
    inner, outer = [], []
    inner_sampler, outer_sampler = solver.inner_batch, solver.outer_batch
    solver.inner_batch = lambda: inner.append(inner_sampler()) or inner[-1]
    solver.outer_batch = lambda: outer.append(outer_sampler()) or outer[-1]
    return inner, outer


def hand_hypergradient(p, y, x, eta, n_terms, neumann_batches, outer_batch,
                       cross_batch):
    """c - J_i' s with s = Q eta prod_l (I - eta H_{i_l}) b."""
    b, c = p.grad_outer(y, x, outer_batch)
    u = b.clone()
    for batch in neumann_batches:
        u = u - eta * p.hvp(y, x, u, batch)
    s = n_terms * eta * u
    return c - p.cross(y, x, s, cross_batch)


#: schedule -> (factor of beta_k, factor of alpha_k) at iteration k
TTSA_SCHEDULES = {
    "decreasing": lambda k: (k ** -0.4, k ** -0.6),
    "strongly_convex": lambda k: (k ** (-2 / 3), 1 / k),
    "constant": lambda k: (1.0, 1.0),
}
BSA_SCHEDULES = {
    "decreasing": lambda k: (k ** -0.5, k ** -0.5),
    "constant": lambda k: (1.0, 1.0),
}


@pytest.mark.parametrize("schedule", list(TTSA_SCHEDULES))
def test_ttsa_step_matches_update_rules(quadratic, make_solver, schedule):
    p, n_terms = quadratic, 6
    solver = make_solver("TTSA", p, batch_size=16, step_size=0.4,
                         outer_ratio=0.5, n_neumann_steps=n_terms,
                         neumann_step=0.7, schedule=schedule)
    run_steps(solver, 4)
    y, x = solver.state.inner_var.clone(), solver.state.outer_var.clone()
    inner, outer = record_batches(solver)
    hvps = solver.oracles.counts["hvp"]
    run_steps(solver, 1)
    n_products = solver.oracles.counts["hvp"] - hvps
    # one batch for the y step, p for the series, one for the cross product
    assert len(inner) == n_products + 2 and len(outer) == 1
    s_beta, s_alpha = TTSA_SCHEDULES[schedule](5)
    y_new = y - 0.4 * s_beta * p.grad_inner_y(y, x, inner[0])
    d = hand_hypergradient(p, y_new, x, 0.7, n_terms, inner[1:-1], outer[0],
                           inner[-1])
    x_new = x - 0.2 * s_alpha * d
    torch.testing.assert_close(solver.state.inner_var, y_new, rtol=1e-12,
                               atol=1e-14)
    torch.testing.assert_close(solver.state.outer_var, x_new, rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("schedule", list(BSA_SCHEDULES))
def test_bsa_step_matches_update_rules(quadratic, make_solver, schedule):
    p, n_terms, n_inner = quadratic, 6, 3
    solver = make_solver("BSA", p, batch_size=16, step_size=0.4,
                         outer_ratio=0.5, n_inner_steps=n_inner,
                         n_neumann_steps=n_terms, neumann_step=0.7,
                         schedule=schedule)
    run_steps(solver, 4)
    y, x = solver.state.inner_var.clone(), solver.state.outer_var.clone()
    inner, outer = record_batches(solver)
    hvps = solver.oracles.counts["hvp"]
    run_steps(solver, 1)
    n_products = solver.oracles.counts["hvp"] - hvps
    assert len(inner) == n_inner + n_products + 1 and len(outer) == 1
    s_beta, s_alpha = BSA_SCHEDULES[schedule](5)
    for batch in inner[:n_inner]:
        y = y - 0.4 * s_beta * p.grad_inner_y(y, x, batch)
    d = hand_hypergradient(p, y, x, 0.7, n_terms, inner[n_inner:-1],
                           outer[0], inner[-1])
    x_new = x - 0.2 * s_alpha * d
    torch.testing.assert_close(solver.state.inner_var, y, rtol=1e-12,
                               atol=1e-14)
    torch.testing.assert_close(solver.state.outer_var, x_new, rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("name", ["TTSA", "BSA"])
def test_default_neumann_step_is_inverse_hessian_bound(quadratic,
                                                       make_solver, name):
    solver = make_solver(name, quadratic)
    assert solver.eta == pytest.approx(1 / quadratic.inner_hessian_bound(),
                                       rel=1e-12)


@pytest.mark.parametrize("name, params, match", [
    ("TTSA", dict(schedule="sqrt"), "schedule"),
    ("BSA", dict(schedule="strongly_convex"), "schedule"),
    ("TTSA", dict(n_neumann_steps=0), "n_neumann_steps"),
    ("BSA", dict(n_neumann_steps=0), "n_neumann_steps"),
    ("BSA", dict(n_inner_steps=0), "n_inner_steps"),
    ("TTSA", dict(neumann_step=0.0), "neumann_step"),
    ("BSA", dict(step_size=-1.0), "step_size"),
    ("TTSA", dict(outer_ratio=float("nan")), "outer_ratio"),
])
def test_invalid_parameters(quadratic, make_solver, name, params, match):
    with pytest.raises(ValueError, match=match):
        make_solver(name, quadratic, **params)
