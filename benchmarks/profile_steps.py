"""Where a solver step's time goes: products, gathers, elementwise work,
allocation and the rest (Python and operator dispatch).

    BENCHOPT_DATA_HOME=/path/to/data python benchmarks/profile_steps.py \
        [-d fashion_mnist] [-s SOBA -s FSLA ...] [--steps 300] \
        [--batch-size 64] [--sampling blocks] [--top 8] [--eager]

For each solver (default parameters, ``batch_size``, ``sampling``, one
thread, ``compile=True`` unless ``--eager``: compiled iterations for the
solvers with ``traceable_step``, warmed up), the script times
``--steps`` steps without the profiler (the real
time per step), then runs them again under ``torch.profiler`` and sums the
self CPU time of every ATen operator by category:

- products: ``mm``, ``addmm``, ``bmm``, ``matmul``, ``mv``, ``dot`` and the
  sparse products;
- gathers: ``index_select``, ``index``, ``gather``, ``index_add_`` and
  ``scatter`` (a ``sampling="blocks"`` batch is a view and costs none);
- allocation: ``empty``, ``empty_like``, ``zeros``, ``zeros_like``,
  ``new_zeros``, ``full``, ``ones``;
- elementwise: every other operator (additions, exponentials, softmax,
  copies, reductions) and the fused C++ loops of compiled code
  (``cpp_fused_*``, recorded with inductor's kernel profiling);
- Python and dispatch: the profiled wall time minus the operators' self
  time: the solver's Python code, the samplers, the oracle counting and
  the cost of entering each operator.

The profiler adds a few microseconds to every operator call, so the
shares, not the profiled microseconds, are what to compare; the table also
gives the number of operator calls per step, the quantity that a fused or
compiled step reduces. ``--top`` lists the costliest operators.
"""
import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import make_solver  # noqa: E402

PRODUCTS = {"mm", "addmm", "bmm", "matmul", "mv", "dot", "baddbmm",
            "addmv", "_sparse_mm", "_sparse_addmm", "sparse_mm", "linear"}
GATHERS = {"index_select", "index", "gather", "index_add_", "index_add",
           "scatter", "scatter_add_", "index_put_", "take"}
ALLOCATION = {"empty", "empty_like", "zeros", "zeros_like", "new_zeros",
              "full", "ones", "new_empty", "empty_strided", "new_full",
              "resize_"}
CATEGORIES = ["products", "gathers", "elementwise", "allocation"]


def category(op_name):
    name = op_name.split("::")[-1]
    if name in PRODUCTS:
        return "products"
    if name in GATHERS:
        return "gathers"
    if name in ALLOCATION:
        return "allocation"
    return "elementwise"


def run_steps(solver, n_steps):
    for _ in range(n_steps):
        solver.next_iteration()


def profile(solver, n_steps):
    """(seconds per step unprofiled, profiled seconds per step, self seconds
    per step by category, operator calls per step, top operators)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    run_steps(solver, 20)  # warm up: caches, first allocations
    t0 = time.perf_counter()
    run_steps(solver, n_steps)
    plain = (time.perf_counter() - t0) / n_steps

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        run_steps(solver, n_steps)
        profiled = (time.perf_counter() - t0) / n_steps
    by_category = defaultdict(float)
    calls = 0
    ops = []
    for event in prof.key_averages():
        if not event.key.startswith(("aten::", "cpp_fused")):
            continue
        seconds = event.self_cpu_time_total * 1e-6 / n_steps
        by_category[category(event.key)] += seconds
        calls += event.count
        ops.append((seconds, event.key, event.count / n_steps))
    ops.sort(reverse=True)
    return plain, profiled, by_category, calls / n_steps, ops


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-d", "--dataset", default="fashion_mnist")
    parser.add_argument("-s", "--solver", action="append")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sampling", default="blocks",
                        choices=["shuffle", "blocks"])
    parser.add_argument("--top", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--eager", action="store_true",
                        help="solvers with compile=False")
    args = parser.parse_args()
    import torch
    import torch._inductor.config
    torch.set_num_threads(1)
    # compiled code records its fused loops for the profiler
    torch._inductor.config.cpp.enable_kernel_profile = True
    solvers = args.solver or ["SOBA", "FSLA", "StocBiO", "F2SA", "SABA"]

    header = (f"{'solver':10} {'us/step':>8} {'profiled':>9} "
              + " ".join(f"{c:>11}" for c in CATEGORIES)
              + f" {'python+disp':>11} {'ops/step':>8}")
    rows = []
    for name in solvers:
        solver = make_solver(args.dataset, name, args.batch_size,
                             args.sampling, args.device, not args.eager)
        plain, profiled, by_cat, calls, ops = profile(solver, args.steps)
        rest = max(profiled - sum(by_cat.values()), 0.0)
        shares = [by_cat[c] / profiled for c in CATEGORIES]
        rows.append((name, plain, profiled, shares, rest / profiled, calls,
                     ops))
    print(f"{args.dataset}, batch {args.batch_size}, sampling "
          f"{args.sampling}, {args.steps} steps; shares of the profiled "
          f"time")
    print(header)
    print("-" * len(header))
    for name, plain, profiled, shares, rest, calls, _ in rows:
        print(f"{name:10} {plain * 1e6:8.0f} {profiled * 1e6:9.0f} "
              + " ".join(f"{s:11.0%}" for s in shares)
              + f" {rest:11.0%} {calls:8.0f}")
    for name, *_, ops in rows:
        if args.top:
            print(f"\n{name}: costliest operators (self us per step, calls "
                  f"per step)")
            for seconds, key, count in ops[:args.top]:
                print(f"  {key:32} {seconds * 1e6:8.1f} {count:6.1f}")


if __name__ == "__main__":
    main()
