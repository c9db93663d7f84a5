"""Oracle calls per iteration, as the solvers' module docstrings state them
(G gradients, H Hessian-vector products, J cross products;
benchmark_utils/solver/counting.py counts them).

A solver whose calls per iteration are fixed by its parameters may declare
them on its class, ``oracle_counts_config``: a list of (parameters,
(G, H, J)), H ``"random"`` for a randomly truncated series of
``n_neumann_steps`` terms (docs/solver_template.py). Every solver's counts
are also checked, iteration by iteration, against its reference rules
(tests/test_reference_rules.py).
"""
import pytest

from conftest import discovered_solvers, run_steps

CASES = [(name, params, per_iteration)
         for name, cls in sorted(discovered_solvers().items())
         for params, per_iteration in getattr(cls, "oracle_counts_config",
                                              [])]


@pytest.mark.parametrize("batch_size", [16, "full"])
@pytest.mark.parametrize("name, params, per_iteration", CASES,
                         ids=[f"{row[0]}-{i}" for i, row in
                              enumerate(CASES)])
def test_oracle_calls_per_iteration(quadratic, make_solver, name, params,
                                    per_iteration, batch_size):
    solver = make_solver(name, quadratic, batch_size=batch_size, **params)
    random = per_iteration[1] == "random"
    n_iter = 300 if random else 5
    hvps = []
    for _ in range(n_iter):
        before = dict(solver.oracles.counts)
        run_steps(solver, 1)
        calls = tuple(solver.oracles.counts[key] - before[key]
                      for key in ("grad", "hvp", "cross"))
        grads, hvp, cross = per_iteration
        assert (calls[0], calls[2]) == (grads, cross), name
        if not random:
            assert calls[1] == hvp, name
        hvps.append(calls[1])
    if random:
        # p uniform in {0..Q-1}: every value occurs, mean (Q - 1) / 2
        # (within 4 standard errors: sd sqrt((Q^2 - 1) / 12))
        q = params["n_neumann_steps"]
        assert set(hvps) == set(range(q))
        standard_error = ((q ** 2 - 1) / 12 / n_iter) ** 0.5
        assert abs(sum(hvps) / n_iter - (q - 1) / 2) < 4 * standard_error


def test_declared_counts_have_the_documented_form():
    for name, params, per_iteration in CASES:
        assert isinstance(params, dict) and len(per_iteration) == 3, name
        if per_iteration[1] == "random":
            assert "n_neumann_steps" in params, (
                f"{name}: a 'random' count needs n_neumann_steps in its "
                f"parameters")
