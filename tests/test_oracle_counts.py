"""Oracle calls per iteration of the implicit-differentiation solvers, as
their module docstrings state (G gradients, H Hessian-vector products, J
cross products; benchmark_utils/solver/counting.py counts them)."""
import pytest

from conftest import run_steps

T, N, Q = 3, 4, 5

#: solver, parameters, (G, H, J) per iteration; H None: the random
#: truncation p of the Neumann series, checked below
COUNTS = [
    ("AmIGO", dict(n_inner_steps=T, n_v_steps=N), (T + 1, N, 1)),
    # the warm start costs one product, for the initial residual
    ("AID-CG", dict(n_inner_steps=T, n_cg_steps=N), (T + 1, N + 1, 1)),
    ("AID-CG", dict(n_inner_steps=T, n_cg_steps=N, warm_start_v=False),
     (T + 1, N, 1)),
    # T gradients forward, T fused calls backward, one gradient of f
    ("ITD", dict(n_inner_steps=T), (2 * T + 1, T, T)),
    ("TTSA", dict(n_neumann_steps=Q), (2, None, 1)),
    ("BSA", dict(n_inner_steps=T, n_neumann_steps=Q), (T + 1, None, 1)),
]


@pytest.mark.parametrize("batch_size", [16, "full"])
@pytest.mark.parametrize("name, params, per_iteration", COUNTS,
                         ids=[f"{row[0]}-{i}" for i, row in
                              enumerate(COUNTS)])
def test_oracle_calls_per_iteration(quadratic, make_solver, name, params,
                                    per_iteration, batch_size):
    solver = make_solver(name, quadratic, batch_size=batch_size, **params)
    n_iter = 300 if per_iteration[1] is None else 5
    hvps = []
    for _ in range(n_iter):
        before = dict(solver.oracles.counts)
        run_steps(solver, 1)
        calls = tuple(solver.oracles.counts[key] - before[key]
                      for key in ("grad", "hvp", "cross"))
        grads, hvp, cross = per_iteration
        assert (calls[0], calls[2]) == (grads, cross), name
        if hvp is not None:
            assert calls[1] == hvp, name
        hvps.append(calls[1])
    if per_iteration[1] is None:
        # p uniform in {0..Q-1}: every value occurs, mean (Q - 1) / 2
        # (within 4 standard errors: sd sqrt((Q^2 - 1) / 12))
        assert set(hvps) == set(range(Q))
        standard_error = ((Q ** 2 - 1) / 12 / n_iter) ** 0.5
        assert abs(sum(hvps) / n_iter - (Q - 1) / 2) < 4 * standard_error
