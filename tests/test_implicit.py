"""Approximations of H^{-1} b (benchmark_utils/problems/implicit.py):
conjugate gradient and the randomly truncated Neumann series."""
import pytest
import torch

from benchmark_utils.problems.implicit import (
    conjugate_gradient,
    hypergradient,
    neumann,
    neumann_step,
    random_neumann,
    solve_inner,
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


def badly_scaled_matrix(dim=30, seed=0, decades=4):
    """An SPD matrix whose diagonal spans ``decades``: diag(d) (I + C)
    diag(d) with a small symmetric C."""
    gen = torch.Generator().manual_seed(seed)
    d = torch.logspace(0, -decades / 2, dim, dtype=torch.float64)
    c = 0.1 * torch.randn(dim, dim, generator=gen, dtype=torch.float64)
    core = torch.eye(dim, dtype=torch.float64) + (c + c.T) / dim ** 0.5
    b = torch.randn(dim, generator=gen, dtype=torch.float64)
    return d[:, None] * core * d[None, :], b


def test_preconditioned_cg_solves_with_fewer_products():
    a, b = badly_scaled_matrix()
    target = torch.linalg.solve(a, b)
    diagonal = torch.diagonal(a).clone()
    plain, jacobi = Counted(a), Counted(a)
    x_plain = conjugate_gradient(plain, b, tol=1e-10, max_iter=500)
    x = conjugate_gradient(jacobi, b, tol=1e-10, max_iter=500,
                           preconditioner=lambda r: r / diagonal)
    for solution in (x, x_plain):
        assert float((a @ solution - b).norm()) <= 1e-10 * float(b.norm())
    torch.testing.assert_close(x, target, rtol=1e-6, atol=0)
    assert jacobi.calls < plain.calls / 2


def test_preconditioned_cg_with_identity_is_cg():
    a, b = spd_matrix()
    gen = torch.Generator().manual_seed(2)
    x0 = torch.randn(b.numel(), generator=gen, dtype=torch.float64)
    for n_steps in (1, 3, 5):
        torch.testing.assert_close(
            conjugate_gradient(a.__matmul__, b, x0=x0, tol=0,
                               max_iter=n_steps,
                               preconditioner=lambda r: r.clone()),
            conjugate_gradient(a.__matmul__, b, x0=x0, tol=0,
                               max_iter=n_steps),
            rtol=1e-12, atol=1e-14)


def test_preconditioned_cg_is_cg_on_the_scaled_system():
    """With M = diag(m): x = M^{-1/2} x_s, x_s the CG iterate on
    M^{-1/2} A M^{-1/2} x_s = M^{-1/2} b, step by step."""
    a, b = badly_scaled_matrix(dim=8)
    m = torch.diagonal(a).clone()
    s = m.rsqrt()
    scaled = s[:, None] * a * s[None, :]
    for n_steps in (1, 2, 4):
        x = conjugate_gradient(a.__matmul__, b, tol=0, max_iter=n_steps,
                               preconditioner=lambda r: r / m)
        x_s = conjugate_gradient(scaled.__matmul__, s * b, tol=0,
                                 max_iter=n_steps)
        torch.testing.assert_close(x, s * x_s, rtol=1e-10, atol=1e-14)


class DiagonalQuadratic:
    """g(x, y) = 1/2 y^T A y - b^T y with a badly scaled A, f(x, y) =
    1/2 ||y||^2; ``with_preconditioner`` offers A's diagonal to the
    solvers. Counts the Hessian-vector products."""

    def __init__(self, with_preconditioner, dtype=torch.float64, decades=4):
        a, b = badly_scaled_matrix(dim=40, decades=decades)
        self.a, self.b = a.to(dtype), b.to(dtype)
        self.inner_var0 = torch.zeros(40, dtype=dtype)
        self.calls = 0
        if with_preconditioner:
            diagonal = torch.diagonal(self.a).clone()
            self.inner_preconditioner = \
                lambda inner_var, outer_var: (lambda r: r / diagonal)

    def grad_inner_y(self, y, x):
        return self.a @ y - self.b

    def hvp(self, y, x, v):
        self.calls += 1
        return self.a @ v

    def inner(self, y, x):
        return 0.5 * y @ self.a @ y - self.b @ y

    def grad_outer(self, y, x):
        return y.clone(), torch.zeros_like(x)

    def cross(self, y, x, v):
        return torch.zeros_like(x)


def test_solve_inner_uses_the_problem_preconditioner():
    x = torch.zeros(1, dtype=torch.float64)
    results = {}
    for with_preconditioner in (False, True):
        problem = DiagonalQuadratic(with_preconditioner)
        y, gnorm = solve_inner(problem, x, tol=1e-8)
        results[with_preconditioner] = (y, problem.calls)
        assert gnorm <= 1e-8 * float(problem.b.norm())
    target = torch.linalg.solve(problem.a, problem.b)
    for y, _ in results.values():
        torch.testing.assert_close(y, target, rtol=1e-5, atol=0)
    assert results[True][1] < results[False][1] / 2


def test_hypergradient_tolerance_is_floored_in_float32():
    """cg_tol=1e-10 asks float32 CG for residuals far below its rounding:
    the hypergradient stops at 10 machine epsilons instead, with the
    products that tolerance needs."""
    calls = {}
    for tol in (1e-10, 10 * torch.finfo(torch.float32).eps):
        problem = DiagonalQuadratic(False, dtype=torch.float32, decades=1)
        x = torch.zeros(1, dtype=torch.float32)
        y = torch.linalg.solve(problem.a, problem.b)
        _, v = hypergradient(problem, x, y, tol=tol)
        assert float((problem.a @ v + y).norm()) <= 1e-4 * float(y.norm())
        calls[tol] = problem.calls
    assert len(set(calls.values())) == 1
    # unfloored, the same system takes more products
    unfloored = Counted(problem.a)
    conjugate_gradient(unfloored, -y, tol=1e-10)
    assert unfloored.calls > calls[1e-10]


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
