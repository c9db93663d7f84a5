"""Cost of the fused inner oracle vs three separate calls (autograd).

    python benchmarks/oracle_cost.py [--dim-inner 10000] [--batch 64]

On a weighted multinomial logistic problem (the hyper-cleaning inner loss)
whose inner variable has ``dim_inner`` entries (features x 10 classes),
times ``inner_oracles`` (grad_y g, H v, J v from one double backward) against
``grad_inner_y`` + ``hvp`` + ``cross``. Ratios of medians within one run are
what to compare on a shared machine.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmark_utils.problems.base import BilevelProblem  # noqa: E402


class WeightedSoftmax(BilevelProblem):
    def __init__(self, n, n_features, n_classes=10, seed=0):
        gen = torch.Generator().manual_seed(seed)
        self.a = torch.randn(n, n_features, generator=gen)
        self.b = torch.randint(n_classes, (n,), generator=gen)
        self.shape = (n_features, n_classes)
        super().__init__(n, n, torch.zeros(n_features * n_classes),
                         torch.zeros(n))

    def inner(self, inner_var, outer_var, idx=None):
        a, b, x = self.a[idx], self.b[idx], outer_var[idx]
        ce = torch.nn.functional.cross_entropy(
            a @ inner_var.view(self.shape), b, reduction="none")
        return (torch.sigmoid(x) * ce).mean() + 0.2 * inner_var @ inner_var


def median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--dim-inner", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--n-samples", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    problem = WeightedSoftmax(args.n_samples, args.dim_inner // 10)
    y = 0.01 * torch.randn(problem.dim_inner)
    x = torch.randn(problem.dim_outer)
    v = torch.randn(problem.dim_inner)
    idx = torch.randperm(args.n_samples)[:args.batch]

    def fused():
        problem.inner_oracles(y, x, v, idx)

    def separate():
        problem.grad_inner_y(y, x, idx)
        problem.hvp(y, x, v, idx)
        problem.cross(y, x, v, idx)

    for fn in (fused, separate):  # warm up
        fn()
    t_fused = median_time(fused, args.repeat)
    t_sep = median_time(separate, args.repeat)
    print(f"dim_inner={problem.dim_inner} dim_outer={problem.dim_outer} "
          f"batch={args.batch} threads={torch.get_num_threads()}")
    print(f"fused inner_oracles : {1e6 * t_fused:8.1f} us")
    print(f"3 separate calls    : {1e6 * t_sep:8.1f} us")
    print(f"separate / fused    : {t_sep / t_fused:8.2f}")


if __name__ == "__main__":
    main()
