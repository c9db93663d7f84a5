"""CPU thread count: one thread for the solvers' runs and for the work done
before them (building a problem, the objective's first exact solve),
unless OMP_NUM_THREADS is set."""
import numpy as np
import pytest
import torch

from benchmark_utils import threads
from benchmark_utils.problems import regularization


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_one_thread_inside_the_block_then_restored(two_threads):
    with threads.default_thread_count():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_omp_num_threads_is_kept(two_threads, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.default_threads() is None
    with threads.default_thread_count():
        assert torch.get_num_threads() == 2
    threads.use_default_threads()
    assert torch.get_num_threads() == 2


def test_restored_after_an_error(two_threads):
    with pytest.raises(RuntimeError):
        with threads.default_thread_count():
            raise RuntimeError("stop")
    assert torch.get_num_threads() == 2


def test_regularization_start_solved_with_one_thread(two_threads,
                                                     monkeypatch):
    seen = []
    solve = regularization.solve_inner

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return solve(*args, **kwargs)
    monkeypatch.setattr(regularization, "solve_inner", recording)
    rng = np.random.default_rng(0)
    X, Xv = rng.standard_normal((30, 5)), rng.standard_normal((20, 5))
    y, yv = rng.integers(0, 3, 30), rng.integers(0, 3, 20)
    y[:3] = [0, 1, 2]
    regularization.RegularizationProblem(X, y, Xv, yv, inner_init="solved")
    assert seen == [1]
    assert torch.get_num_threads() == 2
