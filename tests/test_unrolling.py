"""Reverse-mode differentiation through unrolled inner steps
(benchmark_utils/solver/unrolling.py) against autograd, in float64."""
import pytest
import torch
from test_oracles import WeightedLogistic

from benchmark_utils.batches import BatchSampler
from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.solver.counting import CountingProblem
from benchmark_utils.solver.unrolling import (
    Backtracking,
    reverse_hypergradient,
    unroll,
)

N_STEPS = 7


def autograd_unrolled(problem, y0, x, steps, batches, outer_batch):
    """(y_T, dF/dx) by autograd through the unrolled loop, differentiating
    ``problem.inner`` with ``create_graph=True``; y_0 independent of x."""
    x = x.clone().requires_grad_(True)
    y = y0.clone().requires_grad_(True)
    for step, batch in zip(steps, batches):
        grad, = torch.autograd.grad(problem.inner(y, x, batch), y,
                                    create_graph=True)
        y = y - step * grad
    value = problem.outer(y, x, outer_batch)
    grad_x, = torch.autograd.grad(value, x)
    return y.detach(), grad_x


def replay(batches):
    """A ``draw_batch`` handing out ``batches`` in order."""
    it = iter(batches)
    return lambda: next(it)


def start(problem, seed=3):
    gen = torch.Generator().manual_seed(seed)
    return (0.5 * torch.randn(problem.dim_inner, generator=gen,
                              dtype=torch.float64),
            0.5 * torch.randn(problem.dim_outer, generator=gen,
                              dtype=torch.float64))


@pytest.mark.parametrize("problem_name", ["quadratic", "logistic"])
@pytest.mark.parametrize("sampling", ["shuffle", "blocks", "full"])
def test_reverse_recursion_equals_autograd(problem_name, sampling):
    problem = (QuadraticProblem(n_inner=200, n_outer=100, dim_inner=10,
                                dim_outer=5, cond=30.0, random_state=1)
               if problem_name == "quadratic" else WeightedLogistic())
    gen = torch.Generator().manual_seed(0)
    if sampling == "full":
        batches, outer_batch = [None] * N_STEPS, None
    else:
        inner = BatchSampler(problem.n_inner, 16, gen, sampling=sampling)
        batches = [inner() for _ in range(N_STEPS)]
        outer_batch = BatchSampler(problem.n_outer, 16, gen,
                                   sampling=sampling)()
    y0, x = start(problem)
    step = 0.3
    y0_copy, x_copy = y0.clone(), x.clone()

    oracles = CountingProblem(problem)
    y_t, history = unroll(oracles, y0, x, N_STEPS, step, replay(batches))
    grad_y, grad_x = oracles.grad_outer(y_t, x, outer_batch)
    direction = reverse_hypergradient(oracles, x, history, grad_y, grad_x)

    y_ref, direction_ref = autograd_unrolled(
        problem, y0, x, [step] * N_STEPS, batches, outer_batch)
    assert torch.allclose(y_t, y_ref, rtol=1e-13, atol=0)
    error = float((direction - direction_ref).norm() / direction_ref.norm())
    assert error < 1e-12
    # the recursion differs from the partial gradient of f alone: the test
    # checks the unrolled part
    assert float((grad_x - direction_ref).norm()) > 1e-3 * float(
        direction_ref.norm())
    # inputs untouched; the history holds y_0..y_{T-1} and their batches
    assert torch.equal(y0, y0_copy) and torch.equal(x, x_copy)
    assert len(history) == N_STEPS
    assert torch.equal(history[0][0], y0)
    assert all(h[1] is b for h, b in zip(history, batches))
    # T gradients forward, one of f, T fused calls backward
    counts = oracles.counts
    assert (counts["grad"], counts["hvp"], counts["cross"]) == \
        (2 * N_STEPS + 1, N_STEPS, N_STEPS)


def test_reverse_recursion_with_varying_steps():
    """The steps beta_t of a line search enter each backward step."""
    problem = WeightedLogistic()
    y0, x = start(problem, seed=5)
    steps = [0.5, 0.25, 1.0, 0.125, 0.5]
    history, y = [], y0
    for step in steps:
        history.append((y, None, step))
        y = y - step * problem.grad_inner_y(y, x)
    grad_y, grad_x = problem.grad_outer(y, x)
    direction = reverse_hypergradient(problem, x, history, grad_y, grad_x)
    _, direction_ref = autograd_unrolled(problem, y0, x, steps,
                                         [None] * len(steps), None)
    assert float((direction - direction_ref).norm()
                 / direction_ref.norm()) < 1e-12


def test_backtracking_line_search(quadratic):
    """Armijo holds at each accepted step, the trial doubles after an
    accepted step, and the early stop on ||grad_y g|| holds."""
    y, x = start(quadratic)
    search = Backtracking()

    def value_fn(u):
        return quadratic.inner(u, x)
    value = float(value_fn(y))
    trials, accepted = [], []
    for _ in range(5):
        trials.append(search.trial)
        grad = quadratic.grad_inner_y(y, x)
        step, y_new, new_value = search(value_fn, y, grad, value)
        assert new_value <= value - 0.5 * step * float(grad @ grad)
        assert new_value == pytest.approx(float(value_fn(y_new)), rel=1e-15)
        assert torch.equal(y_new, y - step * grad)
        # the accepted step is the first halving of the trial that passes
        assert step <= trials[-1]
        if step < trials[-1]:
            twice = y - 2 * step * grad
            assert float(value_fn(twice)) > \
                value - step * float(grad @ grad)
        assert search.trial == 2 * step
        accepted.append(step)
        y, value = y_new, new_value
    # each outer iteration starts at 1; some trial was halved
    assert trials[0] == 1.0
    assert any(s < t for s, t in zip(accepted, trials))
    # the loop stops once ||grad_y g|| <= tol (here from the start)
    y_star = quadratic.inner_solution(x)
    oracles = CountingProblem(quadratic)
    y_end, history = unroll(oracles, y_star, x, 10, 0.1, lambda: None,
                            line_search=Backtracking(), tol=1e-3)
    assert history == [] and y_end is y_star
    assert oracles.counts["grad"] == 1


def test_backtracking_gives_up_after_max_halvings():
    """A value function that never decreases: the last trial
    (initial / 2^max_halvings) is accepted, and the next trial restarts at
    the initial step once the step falls below min_step."""
    search = Backtracking(initial=1.0, max_halvings=15, min_step=1e-6)
    y = torch.ones(3, dtype=torch.float64)
    calls = []

    def value_fn(u):
        calls.append(1)
        return 1.0
    step, y_new, _ = search(value_fn, y, torch.ones_like(y), 0.0)
    assert step == 2.0 ** -15 and len(calls) == 16
    assert search.trial == 2.0 ** -14  # 2^-15 = 3e-5 > min_step: doubled
    search = Backtracking(initial=1.0, max_halvings=25, min_step=1e-6)
    step, _, _ = search(value_fn, y, torch.ones_like(y), 0.0)
    assert step == 2.0 ** -25 and search.trial == 1.0
