"""SOBA's iteration time on the hyper-cleaning networks against a floor.

    python benchmarks/network_throughput.py [--models linear mlp cnn]
        [--batch-size 64] [--seconds 1] [--rounds 5] [--device cpu]
        [--source embedded]

For each inner model (``model`` of the mnist data set: the closed-form
linear problem, the MLP with 300 ReLU units, the CNN of
``benchmark_utils/problems/networks.py``), in one process, one thread,
float32:

- ``SOBA``: one iteration of the SOBA solver (its default parameters,
  ``batch_size``, ``sampling="shuffle"``): one fused ``inner_oracles`` call
  (grad_y g, H v, J v on an inner batch) and one ``grad_outer`` call on an
  outer batch, then the updates of y, v and x;
- ``compiled``: the same with ``compile=True``, warmed up first, where the
  problem's oracles can be traced into one compiled iteration (the linear
  model and the MLP, on CPU; the CNN's autograd oracles cannot: it warns
  and is left out; the last smaller batch of an epoch runs eagerly, as in
  a benchmark run);
- ``floor``: one plain forward + backward pass of the same network written
  with ``torch.nn`` layers (``nn.Linear`` / ``nn.Conv2d``, their own
  parameters, ``loss.backward()``), on a batch of the same size gathered
  from the same training images, cross-entropy loss: the cost of one
  minibatch gradient in ordinary PyTorch.

SOBA needs two gradients and one Hessian-vector product per iteration, so
about 3 floors in arithmetic. The cases are timed in alternation over
``--rounds`` rounds and the best round is kept (the machine may be
shared: compare the ratios within one run).
"""
import argparse
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def load_problem(model, source, device, n_train, n_val):
    from benchopt.benchmark import Benchmark
    bench = Benchmark(str(ROOT))
    dataset = next(d for d in bench.get_datasets() if d.name == "mnist")
    params = dict(source=source, model=model, n_train=n_train, n_val=n_val,
                  device=device)
    return dataset.get_instance(**params).get_data()["problem"]


def soba_solver(problem, batch_size, compile=False):
    from benchopt.benchmark import Benchmark
    bench = Benchmark(str(ROOT))
    solver_class = next(s for s in bench.get_solvers() if s.name == "SOBA")
    solver = solver_class.get_instance(batch_size=batch_size,
                                       sampling="shuffle", random_state=0,
                                       compile=compile)
    solver.set_objective(problem=problem)
    solver.warm_up()
    solver.reset()
    return solver


def torch_network(model, n_features, n_classes):
    """The same architecture in plain torch.nn layers."""
    nn = torch.nn
    if model == "linear":
        return nn.Linear(n_features, n_classes)
    if model == "mlp":
        return nn.Sequential(nn.Linear(n_features, 300), nn.ReLU(),
                             nn.Linear(300, n_classes))
    side = int(round(n_features ** 0.5))
    return nn.Sequential(
        nn.Unflatten(1, (1, side, side)),
        nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * (side // 4) ** 2, 64), nn.ReLU(),
        nn.Linear(64, n_classes))


def floor_step(problem, model, batch_size, generator):
    """A closure: one forward + backward of the torch.nn network on a new
    gathered batch of the problem's training images."""
    split = problem.splits["train"]
    # the linear problem's rows end with its column of ones
    A = split.A[:, :-1] if model == "linear" else split.A.flatten(1)
    net = torch_network(model, A.shape[1], problem.n_classes).to(
        device=A.device, dtype=A.dtype)
    labels = split.labels
    n = A.shape[0]

    def step():
        idx = torch.randint(n, (batch_size,), generator=generator).to(
            A.device)
        net.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(
            net(A.index_select(0, idx)), labels.index_select(0, idx))
        loss.backward()
    return step


def timed(step, seconds, device):
    """Seconds per call of ``step``, over about ``seconds``."""
    for _ in range(3):
        step()
    n, t0 = 0, time.perf_counter()
    while True:
        step()
        n += 1
        if n % 8 == 0:
            if device.type == "cuda":
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - t0
            if elapsed > seconds:
                return elapsed / n


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+",
                        default=["linear", "mlp", "cnn"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--source", default="embedded",
                        help="mnist source: 'embedded' (no files) or "
                             "'full' (BENCHOPT_DATA_HOME)")
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-val", type=int, default=1000)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    device = torch.device(args.device)
    unknown = set(args.models) - {"linear", "mlp", "cnn"}
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}")
    cases = {}
    for model in args.models:
        problem = load_problem(model, args.source, args.device,
                               args.n_train, args.n_val)
        solver = soba_solver(problem, args.batch_size)
        cases[model, "SOBA"] = solver.next_iteration
        if device.type == "cpu":
            compiled = soba_solver(problem, args.batch_size, compile=True)
            if not compiled._compiled_step.failed:  # (the CNN's oracles)
                cases[model, "compiled"] = compiled.next_iteration
        cases[model, "floor"] = floor_step(
            problem, model, args.batch_size,
            torch.Generator().manual_seed(0))
    best = {key: np.inf for key in cases}
    for _ in range(args.rounds):
        for key, step in cases.items():
            best[key] = min(best[key], timed(step, args.seconds, device))
    print(f"batch {args.batch_size}, float32, 1 thread, {args.device}; "
          f"best of {args.rounds} rounds")
    print(f"{'model':8s} {'SOBA ms':>8s} {'it/s':>6s} {'compiled ms':>11s} "
          f"{'it/s':>6s} {'floor ms':>9s} {'it/s':>6s} {'SOBA/floor':>10s} "
          f"{'compiled/floor':>14s}")
    for model in args.models:
        soba, floor = best[model, "SOBA"], best[model, "floor"]
        fast = best.get((model, "compiled"), np.nan)
        print(f"{model:8s} {1e3 * soba:8.3f} {1 / soba:6.0f} "
              f"{1e3 * fast:11.3f} {1 / fast:6.0f} {1e3 * floor:9.3f} "
              f"{1 / floor:6.0f} {soba / floor:10.2f} {fast / floor:14.2f}")
    return SimpleNamespace(best=best)


if __name__ == "__main__":
    main()
