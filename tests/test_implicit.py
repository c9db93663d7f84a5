"""Approximations of H^{-1} b (benchmark_utils/problems/implicit.py):
conjugate gradient and the randomly truncated Neumann series."""
import pytest
import torch

from benchmark_utils.problems.implicit import (
    conjugate_gradient,
    neumann,
    neumann_step,
    random_neumann,
)


def spd_matrix(dim=8, cond=50.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen,
                                       dtype=torch.float64))
    eigs = torch.logspace(0, -torch.log10(torch.tensor(cond)).item(), dim,
                          dtype=torch.float64)
    b = torch.randn(dim, generator=gen, dtype=torch.float64)
    return q * eigs @ q.T, b


class Counted:
    """``matvec`` of a matrix that counts its calls."""

    def __init__(self, matrix):
        self.matrix, self.calls = matrix, 0

    def __call__(self, v):
        self.calls += 1
        return self.matrix @ v


# -- conjugate gradient ------------------------------------------------------
def test_conjugate_gradient_solves_spd_system():
    a, b = spd_matrix()
    b_copy = b.clone()
    target = torch.linalg.solve(a, b)
    matvec = Counted(a)
    x = conjugate_gradient(matvec, b)
    assert float((x - target).norm() / target.norm()) < 1e-8
    # at most one product per step, at most dim steps, no residual product
    assert matvec.calls <= b.numel()
    assert torch.equal(b, b_copy)


def a_norm_error(a, x, target):
    return float((x - target) @ a @ (x - target)) ** 0.5


def test_conjugate_gradient_tol_zero_runs_exactly_max_iter_steps():
    a, b = spd_matrix()
    target = torch.linalg.solve(a, b)
    errors = []
    for n_steps in range(1, 7):
        matvec = Counted(a)
        x = conjugate_gradient(matvec, b, tol=0, max_iter=n_steps)
        assert matvec.calls == n_steps
        errors.append(a_norm_error(a, x, target))
    # CG minimizes the A-norm error over growing Krylov spaces
    assert all(e1 > e2 for e1, e2 in zip(errors, errors[1:]))
    # a residual of exactly zero stops it early (no division by zero)
    matvec = Counted(torch.eye(4, dtype=torch.float64))
    x = conjugate_gradient(matvec, torch.ones(4, dtype=torch.float64),
                           tol=0, max_iter=10)
    assert matvec.calls == 1 and torch.equal(x, torch.ones(4,
                                                           dtype=x.dtype))


def test_conjugate_gradient_warm_start():
    a, b = spd_matrix()
    target = torch.linalg.solve(a, b)
    gen = torch.Generator().manual_seed(1)
    x0 = target + 0.1 * torch.randn(b.numel(), generator=gen,
                                    dtype=torch.float64)
    x0_copy = x0.clone()
    matvec = Counted(a)
    x = conjugate_gradient(matvec, b, x0=x0, tol=0, max_iter=3)
    # one more product, for the initial residual b - A x0
    assert matvec.calls == 3 + 1
    assert torch.equal(x0, x0_copy)
    # a warm start is CG from zero on the correction A e = b - A x0
    correction = conjugate_gradient(a.__matmul__, b - a @ x0, tol=0,
                                    max_iter=3)
    torch.testing.assert_close(x, x0 + correction, rtol=1e-12, atol=1e-14)
    # and it converges to the solution
    x = conjugate_gradient(a.__matmul__, b, x0=x0)
    assert float((x - target).norm() / target.norm()) < 1e-8
    # started at the solution: the residual product only
    matvec = Counted(a)
    x = conjugate_gradient(matvec, a @ x0, x0=x0, tol=0, max_iter=5)
    assert matvec.calls == 1 and torch.equal(x, x0)


# -- randomly truncated Neumann series ----------------------------------------
N_TERMS = 6   # Q
STEP = 0.9    # eta, < 2 / L = 2


def truncations(matrix, b, seeds):
    """{p: random_neumann's output} for the truncations p that ``seeds``
    draw, p read from the number of Hessian-vector products; checks on the
    way that each output is Q eta (I - eta H)^p b."""
    outputs = {}
    eye = torch.eye(b.numel(), dtype=torch.float64)
    for seed in seeds:
        hvp = Counted(matrix)
        s = random_neumann(hvp, b, N_TERMS, STEP,
                           torch.Generator().manual_seed(seed))
        p = hvp.calls
        want = N_TERMS * STEP * torch.linalg.matrix_power(
            eye - STEP * matrix, p) @ b
        torch.testing.assert_close(s, want, rtol=1e-12, atol=1e-14)
        outputs.setdefault(p, s)
    return outputs


def test_random_neumann_mean_over_truncations_is_the_series():
    h, b = spd_matrix(cond=10.0)
    b_copy = b.clone()
    outputs = truncations(h, b, range(200))
    # every truncation 0..Q-1 is drawn, and never Q
    assert sorted(outputs) == list(range(N_TERMS))
    assert torch.equal(b, b_copy)
    mean = sum(outputs.values()) / N_TERMS
    eye = torch.eye(b.numel(), dtype=torch.float64)
    series = STEP * sum(torch.linalg.matrix_power(eye - STEP * h, q)
                        for q in range(N_TERMS)) @ b
    torch.testing.assert_close(mean, series, rtol=1e-12, atol=1e-14)
    # the series of ``neumann`` with Q - 1 products
    torch.testing.assert_close(mean, neumann(h.__matmul__, b, N_TERMS - 1,
                                             STEP), rtol=1e-12, atol=1e-14)
    # what the mean misses: (I - eta H)^Q H^{-1} b
    missed = torch.linalg.matrix_power(eye - STEP * h, N_TERMS) \
        @ torch.linalg.solve(h, b)
    torch.testing.assert_close(mean + missed, torch.linalg.solve(h, b),
                               rtol=1e-12, atol=1e-12)


def test_random_neumann_truncation_is_seeded_and_uniform():
    h, b = spd_matrix()
    first = random_neumann(h.__matmul__, b, N_TERMS, STEP,
                           torch.Generator().manual_seed(3))
    again = random_neumann(h.__matmul__, b, N_TERMS, STEP,
                           torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    # one generator, many draws: uniform frequencies (a 6-sigma band)
    gen = torch.Generator().manual_seed(0)
    n_draws = 6000
    counts = [0] * N_TERMS
    for _ in range(n_draws):
        hvp = Counted(h)
        random_neumann(hvp, b, N_TERMS, STEP, gen)
        counts[hvp.calls] += 1
    expected = n_draws / N_TERMS
    sigma = (n_draws * (1 / N_TERMS) * (1 - 1 / N_TERMS)) ** 0.5
    assert all(abs(c - expected) < 6 * sigma for c in counts)
    # mean cost (Q - 1) / 2 products
    mean_calls = sum(p * c for p, c in enumerate(counts)) / n_draws
    assert mean_calls == pytest.approx((N_TERMS - 1) / 2, abs=0.1)


def test_random_neumann_one_term_and_fresh_batches():
    h, b = spd_matrix()
    # Q = 1: p = 0 always, s = eta b, no product
    hvp = Counted(h)
    s = random_neumann(hvp, b, 1, STEP, torch.Generator().manual_seed(0))
    assert hvp.calls == 0 and torch.equal(s, STEP * b)
    # hvp_fn is called once per product, so that a caller drawing a fresh
    # minibatch per call gets one batch per product: two different
    # matrices, alternated, give the product of both
    other, _ = spd_matrix(seed=1)
    matrices = [h, other]
    calls = []

    def alternating(u):
        calls.append(1)
        return matrices[(len(calls) - 1) % 2] @ u
    seed = next(seed for seed in range(100) if 2 in truncations(
        h, b, [seed]))
    s = random_neumann(alternating, b, N_TERMS, STEP,
                       torch.Generator().manual_seed(seed))
    eye = torch.eye(b.numel(), dtype=torch.float64)
    want = N_TERMS * STEP * (eye - STEP * other) @ (eye - STEP * h) @ b
    assert len(calls) == 2
    torch.testing.assert_close(s, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("n_steps", [0, -1, 2.5])
def test_random_neumann_needs_at_least_one_term(n_steps):
    h, b = spd_matrix()
    with pytest.raises(ValueError, match="n_steps"):
        random_neumann(h.__matmul__, b, n_steps, STEP, torch.Generator())


@pytest.mark.parametrize("solver", ["StocBiO", "TTSA", "BSA", "MRBO", "VRBO",
                                    "SUSTAIN"])
def test_neumann_step_default_is_one_over_the_hessian_bound(
        quadratic, make_solver, solver):
    # The series converges only for eta < 2 / L; eta = 1 / L with L the
    # problem's bound makes (I - eta H) a contraction on every instance.
    eigs = torch.linalg.eigvalsh(torch.stack([
        quadratic.hvp(quadratic.inner_var0, quadratic.outer_var0, e)
        for e in torch.eye(quadratic.dim_inner, dtype=torch.float64)]))
    eta = make_solver(solver, quadratic).eta
    assert eta == pytest.approx(1 / quadratic.inner_hessian_bound())
    assert 0 < eta * float(eigs[-1]) <= 1
    assert make_solver(solver, quadratic, neumann_step=0.2).eta == 0.2
    with pytest.raises(ValueError, match="neumann_step"):
        neumann_step(quadratic, -1.0)
