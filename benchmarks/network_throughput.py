"""Solver iterations on the hyper-cleaning networks against a floor.

    python benchmarks/network_throughput.py [--models linear mlp cnn]
        [--solvers SOBA StocBiO FSLA] [--autograd] [--oracles]
        [--dataset mnist|fashion_mnist] [--source embedded|full]
        [--n-train 3000] [--n-val 1000] [--reg R] [--batch-size 64]
        [--seconds 1] [--rounds 5] [--device cpu] [--clock wall|cpu]

For each inner model (``model`` of the data set: the closed-form linear
problem, the MLP with 300 ReLU units, the CNN of
``benchmark_utils/problems/networks.py``), in one process, one thread,
float32:

- one iteration of each solver of ``--solvers`` (default SOBA; their
  default parameters, ``batch_size``, ``sampling="shuffle"``). SOBA: one
  fused ``inner_oracles`` call (grad_y g, H v, J v on an inner batch) and
  one ``grad_outer`` call on an outer batch, then the updates of y, v and
  x;
- with ``--autograd``, for the networks (whose problems have closed-form
  oracles, ``MLPProblem`` and ``CNNProblem``): the same iterations on the
  same problem with the generic autograd / ``torch.func`` oracles of
  ``NetworkProblem``, the reference the closed forms replace;
- ``SOBA compiled``: SOBA with ``compile=True``, warmed up first, where
  the problem's oracles can be traced into one compiled iteration (the
  linear model and the MLP, on CPU; the last smaller batch of an epoch
  runs eagerly, as in a benchmark run);
- ``floor``: one plain forward + backward pass of the same network written
  with ``torch.nn`` layers (``nn.Linear`` / ``nn.Conv2d``, their own
  parameters, ``loss.backward()``), on a batch of the same size gathered
  from the same training images, cross-entropy loss: the cost of one
  minibatch gradient in ordinary PyTorch. For the CNN also ``floor
  channels-last``: the same with the network and the batch in PyTorch's
  channels-last memory format (whose max-pooling kernel is vectorized);
- with ``--oracles``: one call of each oracle on a batch of
  ``batch_size`` (``inner_oracles``, ``grad_inner_y``, ``hvp``, ``cross``,
  ``grad_outer_y``), for each problem class timed.

SOBA needs two gradients and one Hessian-vector product per iteration, so
about 3 floors in arithmetic. The cases are timed in alternation over
``--rounds`` rounds; the median round and the range are printed (the
machine may be shared: compare the ratios within one run; ``--clock cpu``
times with the process's CPU time, which on a shared machine leaves out
the time other processes hold the core).
"""
import argparse
import copy
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import torch

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("linear", "mlp", "cnn")
ORACLES = ("inner_oracles", "grad_inner_y", "hvp", "cross", "grad_outer_y")


def load_problem(model, args):
    from benchopt.benchmark import Benchmark
    bench = Benchmark(str(ROOT))
    dataset = next(d for d in bench.get_datasets()
                   if d.name == args.dataset)
    params = dict(model=model, n_train=args.n_train, n_val=args.n_val,
                  device=args.device)
    if args.dataset == "mnist":
        params["source"] = args.source
    if args.reg is not None:
        params["reg"] = args.reg
    return dataset.get_instance(**params).get_data()["problem"]


def autograd_twin(problem):
    """The same problem (data, start, Hessian bound: shared) with the
    autograd oracles of NetworkProblem instead of the closed forms."""
    from benchmark_utils.problems.networks import NetworkProblem
    twin = copy.copy(problem)
    twin.__class__ = NetworkProblem
    return twin


def make_solver(name, problem, batch_size, compile=False):
    from benchopt.benchmark import Benchmark
    bench = Benchmark(str(ROOT))
    solver_class = next(s for s in bench.get_solvers() if s.name == name)
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


def floor_step(problem, model, batch_size, generator, channels_last=False):
    """A closure: one forward + backward of the torch.nn network on a new
    gathered batch of the problem's training images."""
    split = problem.splits["train"]
    # the linear problem's rows end with its column of ones
    A = split.A[:, :-1] if model == "linear" else split.A.flatten(1)
    net = torch_network(model, A.shape[1], problem.n_classes).to(
        device=A.device, dtype=A.dtype)
    if channels_last:
        # (fed images, not rows: without the Unflatten)
        net = net[1:].to(memory_format=torch.channels_last)
        side = int(round(A.shape[1] ** 0.5))
        # (a one-channel image is channels-last with these strides only)
        A = A.as_strided((len(A), 1, side, side), (side * side, 1, side, 1))
    labels = split.labels
    n = A.shape[0]

    def step():
        idx = torch.randint(n, (batch_size,), generator=generator).to(
            A.device)
        net.zero_grad(set_to_none=True)
        batch = A.index_select(0, idx)
        if channels_last:
            batch = batch.as_strided(batch.shape, A.stride())
        loss = torch.nn.functional.cross_entropy(
            net(batch), labels.index_select(0, idx))
        loss.backward()
    return step


def oracle_steps(problem, label, batch_size, generator):
    """{(label, oracle): closure calling it on a new random batch}."""
    y = problem.inner_var0.clone()
    x = problem.outer_var0.clone()
    v = 1e-2 * torch.randn(problem.dim_inner, generator=generator).to(y)
    n_inner, n_outer = problem.n_inner, problem.n_outer

    def batch(n):
        return torch.randint(n, (batch_size,), generator=generator).to(
            y.device)
    calls = {
        "inner_oracles": lambda: problem.inner_oracles(y, x, v,
                                                       batch(n_inner)),
        "grad_inner_y": lambda: problem.grad_inner_y(y, x, batch(n_inner)),
        "hvp": lambda: problem.hvp(y, x, v, batch(n_inner)),
        "cross": lambda: problem.cross(y, x, v, batch(n_inner)),
        "grad_outer_y": lambda: problem.grad_outer_y(y, x, batch(n_outer)),
    }
    return {(f"{label} {name}"): call for name, call in calls.items()}


def timed(step, seconds, device, clock=time.perf_counter):
    """Seconds per call of ``step``, over about ``seconds``."""
    for _ in range(3):
        step()
    n, t0 = 0, clock()
    while True:
        step()
        n += 1
        if n % 4 == 0:
            if device.type == "cuda":
                torch.cuda.synchronize()
            elapsed = clock() - t0
            if elapsed > seconds:
                return elapsed / n


def build_cases(model, args, device):
    problem = load_problem(model, args)
    label = type(problem).__name__
    problems = {label: problem}
    if args.autograd and model != "linear":
        problems["autograd"] = autograd_twin(problem)
    cases = {}
    for name in args.solvers:
        for key, p in problems.items():
            cases[f"{name} ({key})"] = make_solver(
                name, p, args.batch_size).next_iteration
    # (the CNN's oracles cannot be traced: its solver would warn and run
    # eagerly)
    if "SOBA" in args.solvers and model != "cnn" and device.type == "cpu":
        cases[f"SOBA compiled ({label})"] = make_solver(
            "SOBA", problem, args.batch_size, compile=True).next_iteration
    gen = torch.Generator().manual_seed(0)
    cases["floor"] = floor_step(problem, model, args.batch_size, gen)
    if model == "cnn":
        cases["floor channels-last"] = floor_step(
            problem, model, args.batch_size, gen, channels_last=True)
    if args.oracles:
        for key, p in problems.items():
            cases.update(oracle_steps(p, key, args.batch_size, gen))
    return cases


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS),
                        choices=MODELS)
    parser.add_argument("--solvers", nargs="+", default=["SOBA"])
    parser.add_argument("--autograd", action="store_true",
                        help="also the networks' autograd oracles")
    parser.add_argument("--oracles", action="store_true",
                        help="also each oracle call alone")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="cpu: the process's CPU time, which leaves out "
                             "the time other processes hold the core (one "
                             "thread, CPU device)")
    parser.add_argument("--dataset", default="mnist",
                        choices=["mnist", "fashion_mnist"])
    parser.add_argument("--source", default="embedded",
                        help="mnist source: 'embedded' (no files) or "
                             "'full' (BENCHOPT_DATA_HOME)")
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-val", type=int, default=1000)
    parser.add_argument("--reg", type=float, default=None,
                        help="the data set's reg (default: its default)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    device = torch.device(args.device)
    if args.clock == "cpu" and device.type != "cpu":
        parser.error("--clock cpu needs --device cpu")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    cases = {(model, key): step for model in args.models
             for key, step in build_cases(model, args, device).items()}
    times = {key: [] for key in cases}
    for _ in range(args.rounds):
        for key, step in cases.items():
            times[key].append(timed(step, args.seconds, device, clock))
    print(f"{args.dataset}, batch {args.batch_size}, float32, 1 thread, "
          f"{args.device}, {args.clock} clock; {args.rounds} interleaved "
          f"rounds: median [range] ms per call")
    print(f"{'model':6s} {'case':34s} {'ms':>8s} {'range':>17s} "
          f"{'it/s':>6s} {'/ floor':>8s}")
    for (model, key), values in times.items():
        ms = 1e3 * statistics.median(values)
        floor = 1e3 * statistics.median(times[model, "floor"])
        print(f"{model:6s} {key:34s} {ms:8.2f} "
              f"[{1e3 * min(values):7.2f}-{1e3 * max(values):7.2f}] "
              f"{1e3 / ms:6.0f} {ms / floor:8.2f}")
    return SimpleNamespace(times=times)


if __name__ == "__main__":
    main()
