"""Two-point estimates (benchmark_utils/solver/variance_reduction.py) and
the solvers built on them: MRBO, SUSTAIN, VRBO, SRBA."""
import pytest
import torch

from benchmark_utils.batches import BatchSampler
from benchmark_utils.problems import implicit
from benchmark_utils.solver.variance_reduction import (
    HypergradientBatches,
    draw_hypergradient_batches,
    draw_truncation,
    full_hypergradient_batches,
    hypergradient_estimates,
    joint_neumann,
    sarah_period,
    sarah_update,
)
from conftest import run_steps

Q, ETA = 4, 0.3


def random_point(problem, seed):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(problem.dim_inner, generator=gen,
                        dtype=torch.float64),
            torch.randn(problem.dim_outer, generator=gen,
                        dtype=torch.float64))


def samplers(problem, seed, batch_size=16):
    gen = torch.Generator().manual_seed(seed)
    return (BatchSampler(problem.n_inner, batch_size, gen),
            BatchSampler(problem.n_outer, batch_size, gen), gen)


def hessian(problem, y, x, idx=None):
    eye = torch.eye(problem.dim_inner, dtype=torch.float64)
    return torch.stack([problem.hvp(y, x, e, idx) for e in eye])


# -- shared pieces ----------------------------------------------------------
@pytest.mark.parametrize("randomized", [False, True])
def test_correction_between_equal_points_is_exactly_zero(quadratic,
                                                         randomized):
    inner, outer, gen = samplers(quadratic, 0)
    y, x = random_point(quadratic, 1)
    for _ in range(5):
        batches = draw_hypergradient_batches(
            inner, outer, Q, generator=gen if randomized else None)
        (gy, phi), (gy_old, phi_old) = hypergradient_estimates(
            quadratic, [(y, x), (y.clone(), x.clone())], batches, ETA)
        assert torch.equal(gy, gy_old) and torch.equal(phi, phi_old)
        d = torch.randn(quadratic.dim_outer, generator=gen,
                        dtype=torch.float64)
        assert torch.equal(sarah_update(d.clone(), phi, phi_old), d)


def test_joint_neumann_chains_equal_the_single_chain(quadratic):
    inner, outer, _ = samplers(quadratic, 0)
    batches = [inner() for _ in range(Q)]
    points = [random_point(quadratic, 1), random_point(quadratic, 2)]
    rhs = [quadratic.grad_outer_y(y, x, outer()) for y, x in points]
    hvp_fns = [lambda u, idx, y=y, x=x: quadratic.hvp(y, x, u, idx)
               for y, x in points]
    joint = joint_neumann(hvp_fns, rhs, batches, ETA)
    for (y, x), b, s in zip(points, rhs, joint):
        replay = iter(batches)
        single = implicit.neumann(
            lambda u: quadratic.hvp(y, x, u, next(replay)), b, Q, ETA)
        assert torch.equal(s, single)
    # the random truncation after p = 3 products: Q eta prod (I - eta H_l) b
    joint = joint_neumann(hvp_fns, rhs, batches[:3], ETA, truncation=Q)
    for (y, x), b, s in zip(points, rhs, joint):
        u = b.clone()
        for idx in batches[:3]:
            u = u - ETA * hessian(quadratic, y, x, idx) @ u
        torch.testing.assert_close(s, Q * ETA * u, rtol=1e-13, atol=0)


def test_joint_random_chain_equals_random_neumann(quadratic):
    points = [random_point(quadratic, 1), random_point(quadratic, 2)]
    for seed in range(5):
        inner, outer, gen = samplers(quadratic, seed)
        state = gen.get_state()
        batches = draw_hypergradient_batches(inner, outer, Q, generator=gen)
        rhs = [quadratic.grad_outer_y(y, x, batches.outer)
               for y, x in points]
        joint = joint_neumann(
            [lambda u, idx, y=y, x=x: quadratic.hvp(y, x, u, idx)
             for y, x in points], rhs, batches.neumann, ETA,
            truncation=batches.truncation)
        for (y, x), b, s in zip(points, rhs, joint):
            # the same p from the same generator state, the same batches
            replay = iter(batches.neumann)
            single = implicit.random_neumann(
                lambda u: quadratic.hvp(y, x, u, next(replay)), b, Q, ETA,
                torch.Generator().set_state(state))
            torch.testing.assert_close(s, single, rtol=1e-13, atol=0)


def test_random_truncation_mean_over_p_is_the_truncated_series(quadratic):
    y, x = random_point(quadratic, 1)
    b = quadratic.grad_outer_y(y, x)
    hvp = [lambda u, idx: quadratic.hvp(y, x, u, idx)]
    mean = sum(joint_neumann(hvp, [b], (None,) * p, ETA, truncation=Q)[0]
               for p in range(Q)) / Q
    eye = torch.eye(quadratic.dim_inner, dtype=torch.float64)
    step = eye - ETA * hessian(quadratic, y, x)
    series = ETA * sum(torch.linalg.matrix_power(step, q) for q in range(Q))
    torch.testing.assert_close(mean, series @ b, rtol=1e-12, atol=1e-14)


def test_truncation_is_uniform_below_q():
    gen = torch.Generator().manual_seed(0)
    draws = torch.tensor([draw_truncation(Q, gen) for _ in range(2000)])
    assert torch.equal(draws.unique(), torch.arange(Q))
    counts = torch.bincount(draws).double() / len(draws)
    assert (counts - 1 / Q).abs().max() < 0.05
    with pytest.raises(ValueError, match="n_steps"):
        draw_truncation(0, gen)


def test_draws_come_before_the_points(quadratic):
    inner, outer, gen = samplers(quadratic, 0)
    batches = draw_hypergradient_batches(inner, outer, Q, generator=gen)
    assert batches.truncation == Q and len(batches.neumann) < Q
    assert len(draw_hypergradient_batches(inner, outer, Q).neumann) == Q
    full = full_hypergradient_batches(Q)
    assert full == HypergradientBatches(None, None, (None,) * Q)


def test_full_estimate_is_the_neumann_hypergradient(quadratic):
    y, x = random_point(quadratic, 1)
    (gy, phi), = hypergradient_estimates(
        quadratic, [(y, x)], full_hypergradient_batches(Q), ETA)
    b, c = quadratic.grad_outer(y, x)
    s = implicit.neumann(lambda u: quadratic.hvp(y, x, u), b, Q, ETA)
    torch.testing.assert_close(gy, quadratic.grad_inner_y(y, x))
    torch.testing.assert_close(phi, c - quadratic.cross(y, x, s))


def test_sarah_period():
    assert sarah_period(0.01, 200, 100, 16) == 1
    assert sarah_period(0.5, 200, 100, 16) == 9
    # full batch: the batch size is max(n_inner, n_outer)
    assert sarah_period(0.5, 200, 100, "full") == 1
    assert sarah_period(50, 200, 100, "full") == 75
    assert sarah_period(50, 200, 100, 200) == 75


# -- solvers ----------------------------------------------------------------
def neumann_phi(problem, y, x, n_steps, eta):
    b, c = problem.grad_outer(y, x)
    s = implicit.neumann(lambda u: problem.hvp(y, x, u), b, n_steps, eta)
    return c - problem.cross(y, x, s)


def random_phi(problem, y, x, n_steps, eta, p):
    b, c = problem.grad_outer(y, x)
    u = b.clone()
    for _ in range(p):
        u = u - eta * problem.hvp(y, x, u)
    return c - problem.cross(y, x, n_steps * eta * u)


@pytest.mark.parametrize("name", ["MRBO", "SUSTAIN"])
@pytest.mark.parametrize("schedule", ["decreasing", "constant"])
def test_storm_full_batch_matches_hand_computation(quadratic, make_solver,
                                                   name, schedule):
    # Full batches: the memories start from the plain estimates at k = 1
    # (not from corrections of a zero memory), and afterwards both points
    # share p_k: d_x <- phi(z_k; p_k) + (1 - m_k) (d_x - phi(z_{k-1}; p_k)).
    # MRBO's phi has no p, so its d_x and d_y are the exact directions.
    # SUSTAIN's p comes from the solver's generator, which full-batch
    # samplers never touch.
    beta, ratio, m, eta = 0.2, 0.5, 0.3, 0.5
    solver = make_solver(name, quadratic, batch_size="full", step_size=beta,
                         outer_ratio=ratio, momentum=m, n_neumann_steps=Q,
                         neumann_step=eta, schedule=schedule)
    gen = torch.Generator().manual_seed(0)

    def phi(y, x, p):
        if name == "MRBO":
            return neumann_phi(quadratic, y, x, Q, eta)
        return random_phi(quadratic, y, x, Q, eta, p)

    y, x = quadratic.inner_var0.clone(), quadratic.outer_var0.clone()
    y_prev = x_prev = d_x = None
    for k in range(1, 16):
        s = k ** (-1 / 3) if schedule == "decreasing" else 1.0
        m_k = min(1.0, m * k ** (-2 / 3)) if schedule == "decreasing" else m
        p = draw_truncation(Q, gen) if name == "SUSTAIN" else None
        if k == 1:
            d_x = phi(y, x, p)
        else:
            d_x = phi(y, x, p) + (1 - m_k) * (d_x - phi(y_prev, x_prev, p))
        y_prev, x_prev = y, x
        y, x = (y - beta * s * quadratic.grad_inner_y(y, x),
                x - ratio * beta * s * d_x)
        run_steps(solver, 1)
        torch.testing.assert_close(solver.state.inner_var, y, rtol=1e-10,
                                   atol=1e-12)
        torch.testing.assert_close(solver.state.outer_var, x, rtol=1e-10,
                                   atol=1e-12)


@pytest.mark.parametrize("period_frac", [0.01, 1e4])
def test_vrbo_full_batch_is_the_deterministic_double_loop(
        quadratic, make_solver, period_frac):
    # period_frac=1e4: a single full pass, then corrections only; exact
    # only if the x change is corrected (VRBO's step 3)
    beta, ratio, m, eta = 0.3, 0.5, 3, 0.5
    solver = make_solver("VRBO", quadratic, batch_size="full",
                         step_size=beta, outer_ratio=ratio, n_inner_steps=m,
                         n_neumann_steps=Q, neumann_step=eta,
                         period_frac=period_frac)
    y, x = quadratic.inner_var0.clone(), quadratic.outer_var0.clone()
    for _ in range(20):
        x = x - ratio * beta * neumann_phi(quadratic, y, x, Q, eta)
        for _ in range(m):
            y = y - beta * quadratic.grad_inner_y(y, x)
        solver.n_iter += 1
        solver.step(solver.state)
    torch.testing.assert_close(solver.state.inner_var, y, rtol=1e-10,
                               atol=1e-12)
    torch.testing.assert_close(solver.state.outer_var, x, rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("period_frac", [0.5, 1e4])
def test_srba_full_batch_is_soba(quadratic, make_solver, period_frac):
    # period_frac=0.5: q = 1, a full pass at every step (bitwise SOBA);
    # 1e4: one full pass, then SARAH corrections on the full batch
    params = dict(batch_size="full", step_size=0.3, outer_ratio=0.5)
    srba = make_solver("SRBA", quadratic, period_frac=period_frac, **params)
    soba = make_solver("SOBA", quadratic, **params)
    for _ in range(30):
        run_steps(srba, 1)
        run_steps(soba, 1)
        for var in ("inner_var", "v", "outer_var"):
            torch.testing.assert_close(getattr(srba.state, var),
                                       getattr(soba.state, var),
                                       rtol=1e-10, atol=1e-12)
    if period_frac == 0.5:
        assert torch.equal(srba.state.outer_var, soba.state.outer_var)


def test_srba_projects_v(quadratic, make_solver):
    solver = make_solver("SRBA", quadratic, batch_size=16, v_radius=1e-3)
    run_steps(solver, 20)
    assert float(solver.state.v.norm()) <= 1e-3 * (1 + 1e-12)


@pytest.mark.parametrize("name, params, match", [
    ("MRBO", dict(momentum=0.0), "momentum"),
    ("MRBO", dict(schedule="sqrt"), "schedule"),
    ("SUSTAIN", dict(n_neumann_steps=0), "n_neumann_steps"),
    ("SUSTAIN", dict(neumann_step=-1.0), "neumann_step"),
    ("VRBO", dict(period_frac=0.0), "period_frac"),
    ("VRBO", dict(n_inner_steps=0), "n_inner_steps"),
    ("SRBA", dict(v_radius=-1.0), "v_radius"),
    ("SRBA", dict(period_frac=float("inf")), "period_frac"),
])
def test_invalid_parameters(quadratic, make_solver, name, params, match):
    with pytest.raises(ValueError, match=match):
        make_solver(name, quadratic, **params)


@pytest.mark.parametrize("name, params, first, later", [
    # (gradients, Hessian-vector products, cross products) of the first
    # iteration and of each later one
    ("MRBO", dict(n_neumann_steps=Q), (2, Q + 1, 1), (4, 2 * Q + 2, 2)),
    # m = 2 inner steps; q = 1: a full pass at every outer iteration
    ("VRBO", dict(n_neumann_steps=Q, n_inner_steps=2, period_frac=0.01),
     (2 + 3 * 4, Q + 1 + 3 * (2 * Q + 2), 1 + 3 * 2),
     (2 + 3 * 4, Q + 1 + 3 * (2 * Q + 2), 1 + 3 * 2)),
    # q = 9: the second iteration is a correction
    ("SRBA", dict(period_frac=0.5), (2, 1, 1), (4, 2, 2)),
])
def test_oracle_counts(quadratic, make_solver, name, params, first, later):
    solver = make_solver(name, quadratic, batch_size=16, **params)
    counts = solver.oracles.counts
    run_steps(solver, 1)
    assert (counts["grad"], counts["hvp"], counts["cross"]) == first
    run_steps(solver, 1)
    assert (counts["grad"], counts["hvp"], counts["cross"]) == tuple(
        a + b for a, b in zip(first, later))
