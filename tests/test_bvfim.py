"""BVFIM on the quadratic problem; barrier guard; schedule; validation."""
import pytest
import torch

from benchmark_utils.solver.penalty import barrier_weight
from conftest import run_steps


def test_barrier_denominator_guarded():
    g_star = torch.tensor(1.0, dtype=torch.float64)
    for g_y in (0.5, 1.0, 2.0, 1e9):   # feasible, on, and beyond the barrier
        w = barrier_weight(0.1, g_star, torch.tensor(g_y,
                                                     dtype=torch.float64),
                           1e-3)
        assert torch.isfinite(w) and w > 0 and w <= 0.1 / 1e-3
    w = barrier_weight(0.1, g_star, torch.tensor(0.5, dtype=torch.float64),
                       1e-3)
    assert float(w) == pytest.approx(0.1 / 0.5)


def test_barrier_stays_finite_from_infeasible_start(quadratic, make_solver):
    # After the first z loop, y0 is infeasible (g(y0) > g_star): the guard
    # keeps every iterate finite.
    solver = make_solver("BVFIM", quadratic, batch_size="full")
    run_steps(solver, 5)
    assert all(torch.isfinite(v).all() for v in
               (solver.state.y, solver.state.z, solver.state.outer_var))


def test_schedule_decays(quadratic, make_solver):
    solver = make_solver("BVFIM", quadratic, decay=1.0, tau_decay=0.5)
    k = [1, 4, 100]
    mu = [solver.decay_schedule(i) for i in k]
    tau = [solver.tau_schedule(i) for i in k]
    assert mu == pytest.approx([1.0, 0.25, 0.01])
    assert tau == pytest.approx([1.0, 0.5, 0.1])
    # tau_k * ln(mu2_k) -> 0 (Liu et al., ICML 2021, Theorem 1)
    import math
    vals = [solver.tau * solver.tau_schedule(i)
            * abs(math.log(solver.mu2 * solver.decay_schedule(i)))
            for i in (10, 10 ** 4, 10 ** 8)]
    assert vals[0] > vals[1] > vals[2]


def test_oracle_calls(quadratic, make_solver):
    solver = make_solver("BVFIM", quadratic, batch_size=16, n_inner_steps=4)
    run_steps(solver, 1)
    assert solver.oracles.counts["grad"] == 4 + 2 * 4 + 3


@pytest.mark.parametrize("param, value", [
    ("step_size", 0.0), ("outer_ratio", -1.0), ("n_inner_steps", 0),
    ("mu1", 0.0), ("mu2", -1.0), ("theta", 0.0), ("tau", 0.0),
    ("decay", 0.0), ("tau_decay", -0.5), ("barrier_floor", 0.0),
])
def test_invalid_parameters(quadratic, make_solver, param, value):
    with pytest.raises(ValueError, match=param):
        make_solver("BVFIM", quadratic, **{param: value})
