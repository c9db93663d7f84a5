"""Compiled minibatch oracles (benchmark_utils/problems/compiled.py) give
the eager results, oracle by oracle and solver by solver."""
import numpy as np
import pytest
import torch

from benchmark_utils.batches import contiguous_blocks
from benchmark_utils.problems import compiled, hyper_cleaning
from benchmark_utils.problems.hyper_cleaning import make_hyper_cleaning
from benchmark_utils.problems.networks import make_network_hyper_cleaning
from conftest import run_steps

ORACLES = ["grad_inner", "grad_inner_y", "grad_inner_x", "hvp", "cross",
           "inner_oracles", "grad_outer_y"]


def small_data():
    """150 samples of 12 features in 4 classes: 100 to train, 50 to
    validate."""
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(150, 12)), rng.integers(0, 4, 150)
    return X[:100], labels[:100], X[100:], labels[100:]


def small_problem(dtype):
    return make_hyper_cleaning(*small_data(), n_classes=4, dtype=dtype)


def batches(n):
    """A block, the smaller last block and a gathered random batch."""
    blocks = contiguous_blocks(n, 16)
    return [blocks[1], blocks[-1], torch.randperm(
        n, generator=torch.Generator().manual_seed(0))[:16]]


def as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-12),
                                         (torch.float32, 1e-5)])
@pytest.mark.parametrize("name", ORACLES)
def test_compiled_oracle_equals_eager(name, dtype, rtol):
    problem = small_problem(dtype)
    g = torch.Generator().manual_seed(1)
    y, v = (torch.randn(problem.dim_inner, generator=g, dtype=dtype)
            for _ in range(2))
    x = torch.randn(problem.dim_outer, generator=g, dtype=dtype)
    n = problem.n_outer if name == "grad_outer_y" else problem.n_inner
    for idx in batches(n):
        args = (y, x, v, idx) if name in ("hvp", "cross", "inner_oracles") \
            else (y, x, idx)
        problem.compiled = False
        eager = as_tuple(getattr(problem, name)(*args))
        problem.compiled = True
        fast = as_tuple(getattr(problem, name)(*args))
        for a, b in zip(eager, fast):
            scale = float(a.abs().max())
            assert float((a - b).abs().max()) <= rtol * scale, name
    assert not compiled._BROKEN, compiled._BROKEN
    kernel = getattr(hyper_cleaning, "_k_" + name)
    assert any(key[0] is kernel for key in compiled._CACHE)  # it ran


def test_compiled_call_leaves_autograd_inputs_eager():
    problem = small_problem(torch.float64)
    problem.compiled = True
    y = problem.inner_var0.clone().requires_grad_()
    idx = contiguous_blocks(problem.n_inner, 16)[0]
    grad = problem.grad_inner_y(y, problem.outer_var0, idx)
    assert grad.requires_grad  # differentiable: the eager path ran


STOCHASTIC = ["SOBA", "SABA", "FSLA", "StocBiO", "F2SA", "F2SA-Adam",
              "BVFIM", "MinimaxOPT", "AmIGO", "AID-CG", "ITD", "TTSA", "BSA",
              "MRBO", "VRBO", "SUSTAIN", "SRBA", "BOME", "PZOBO", "STABLE"]


@pytest.mark.parametrize("name", STOCHASTIC)
def test_solver_iterates_match_eager(name, make_solver):
    problem = small_problem(torch.float64)
    results = []
    for compile_ in (False, True):
        solver = make_solver(name, problem, batch_size=16, compile=compile_,
                             sampling="blocks")
        assert problem.compiled == compile_
        run_steps(solver, 8)
        results.append(solver.get_result())
    for key in ("inner_var", "outer_var"):
        eager, fast = results[0][key], results[1][key]
        assert torch.isfinite(eager).all()
        torch.testing.assert_close(fast, eager, rtol=1e-9, atol=1e-12)


# (short inner loops: with 21 draws, nearly every iteration would draw a
# smaller batch, and the full-size kernel would go untested)
TRACEABLE = {"SOBA": {}, "FSLA": {},
             "StocBiO": dict(n_inner_steps=2, n_neumann_steps=2),
             "F2SA": dict(n_inner_steps=1)}


@pytest.mark.parametrize("sampling", ["blocks", "shuffle"])
@pytest.mark.parametrize("name", TRACEABLE)
def test_compiled_iterations_match_eager(name, sampling, make_solver):
    """Whole compiled iterations give the eager iterates and oracle counts,
    those on smaller batches included (batches of 16 on 100 and 50
    samples: a smaller last block every few iterations, and the same block
    twice in one iteration at epoch ends)."""
    problem = small_problem(torch.float64)
    results = []
    for compile_ in (False, True):
        solver = make_solver(name, problem, batch_size=16, compile=compile_,
                             sampling=sampling, **TRACEABLE[name])
        run_steps(solver, 30)
        results.append(solver.get_result())
    compiled_step = solver._compiled_step
    assert compiled_step.kernel is not None and not compiled_step.failed
    # every iteration but the first (which records the draws) ran
    # compiled, some on a smaller batch
    assert compiled_step.n_runs == 29
    assert 0 < compiled_step.n_shaped_runs < 29
    assert results[1]["oracle_counts"] == results[0]["oracle_counts"]
    for key in ("inner_var", "outer_var"):
        eager, fast = results[0][key], results[1][key]
        assert torch.isfinite(eager).all()
        torch.testing.assert_close(fast, eager, rtol=1e-9, atol=1e-12)


def small_mlp_problem(activation, chunk_size):
    problem = make_network_hyper_cleaning(
        "mlp", *small_data(), hidden=7, activation=activation, n_classes=4,
        reg=0.01, dtype=torch.float64)
    problem.chunk_size = chunk_size
    return problem


# the MLP's closed-form oracles, traced: ReLU on gathered batches, the
# identity on blocks, and batches split into two chunks (chunk_size 8)
MLP_CASES = [("SOBA", "relu", "shuffle", 4096),
             ("SOBA", "identity", "blocks", 4096),
             ("SOBA", "relu", "blocks", 8),
             ("FSLA", "relu", "shuffle", 4096),
             ("StocBiO", "relu", "blocks", 4096),
             ("F2SA", "relu", "shuffle", 4096)]


@pytest.mark.parametrize("name, activation, sampling, chunk_size",
                         MLP_CASES)
def test_compiled_iterations_match_eager_on_mlp(name, activation, sampling,
                                                chunk_size, make_solver):
    problem = small_mlp_problem(activation, chunk_size)
    assert problem.traceable
    results = []
    for compile_ in (False, True):
        solver = make_solver(name, problem, batch_size=16, compile=compile_,
                             sampling=sampling, step_size=0.1,
                             **TRACEABLE[name])
        run_steps(solver, 20)
        results.append(solver.get_result())
    compiled_step = solver._compiled_step
    assert compiled_step.kernel is not None and not compiled_step.failed
    assert compiled_step.n_runs > compiled_step.n_shaped_runs > 0
    assert results[1]["oracle_counts"] == results[0]["oracle_counts"]
    for key in ("inner_var", "outer_var"):
        eager, fast = results[0][key], results[1][key]
        assert torch.isfinite(eager).all()
        assert not torch.equal(eager, getattr(problem, key + "0"))
        torch.testing.assert_close(fast, eager, rtol=1e-9, atol=1e-12)


def test_untraceable_step_runs_eagerly(solver_classes):
    """A step that changes a Python number in its state cannot be replayed
    by a compiled iteration: the solver warns and runs eagerly."""
    class Counting(solver_classes["SOBA"]):
        def init_state(self):
            state = super().init_state()
            state.count = 0
            return state

        def step(self, state):
            super().step(state)
            state.count += 1

    problem = small_problem(torch.float64)
    results = []
    for compile_ in (False, True):
        solver = Counting.get_instance(batch_size=16, compile=compile_,
                                       sampling="blocks", random_state=0)
        solver.set_objective(problem=problem)
        solver.reset()
        if compile_:
            with pytest.warns(RuntimeWarning, match="running eagerly"):
                run_steps(solver, 12)
            assert solver._compiled_step.failed
        else:
            run_steps(solver, 12)
        results.append(solver)
    assert results[1].state.count == results[0].state.count == 12
    torch.testing.assert_close(results[1].state.outer_var,
                               results[0].state.outer_var, rtol=1e-12,
                               atol=0)


def test_warm_up_compiles_every_batch_shape(make_solver):
    """After the warm-up, a run compiles nothing more (the remainder
    batches of both samplers included)."""
    problem = small_problem(torch.float64)
    for name, sampling in [("SOBA", "shuffle"), ("SABA", "shuffle"),
                           ("StocBiO", "shuffle"), ("F2SA", "blocks")]:
        solver = make_solver(name, problem, batch_size=16, compile=True,
                             sampling=sampling, eval_freq=4)
        solver.warm_up()
        solver.reset()
        before = compiled.n_compiled()
        run_steps(solver, 60)  # 60 steps: several epochs of both splits
        assert compiled.n_compiled() == before, name
        if solver._compiled_step is not None:  # the smaller batches too
            assert solver._compiled_step.n_shaped_runs > 0, name


def test_compile_parameter_is_checked(make_solver):
    with pytest.raises(ValueError, match="compile must be True or False"):
        make_solver("SOBA", small_problem(torch.float64), compile="yes")
