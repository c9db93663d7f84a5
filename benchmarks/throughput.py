"""Throughput of every solver on every data set: iterations per second,
oracle calls per iteration, time per oracle call against the bare matrix
products of one minibatch gradient on a block of consecutive rows ("x mm",
the floor of ``sampling="blocks"``) and on gathered random rows ("x g+mm",
the floor of ``sampling="shuffle"``), and peak memory. A fused
``inner_oracles`` call counts three oracles.

    BENCHOPT_DATA_HOME=/path/to/data python benchmarks/throughput.py \
        [-d simulated -d fashion_mnist ...] [-s SABA ...] [--seconds 5] \
        [--batch-size 64] [--sampling blocks] [--rounds 3] [--device cpu] \
        [--eager]

Each (data set, solver) pair runs in its own process (so peak memory is its
own) with the solver's default parameters, ``batch_size`` and ``sampling``
(both schemes by default: "shuffle" gathers each batch's rows, "blocks" reads
fixed contiguous blocks); the timed loop is ``solver.step`` only, as in a
benchopt run between two logged points, after the solver's warm-up (where
compiled iterations compile; ``--eager``: ``compile=False``).
Machines are noisy: compare ratios within one run.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ["simulated", "fashion_mnist", "mnist[source=embedded]",
            "ijcnn1", "20newsgroups"]


def parse_name(spec):
    """'mnist[source=embedded]' -> ('mnist', {'source': 'embedded'})."""
    if "[" not in spec:
        return spec, {}
    name, args = spec[:-1].split("[", 1)
    params = {}
    for item in args.split(","):
        key, value = item.split("=")
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
        params[key] = value
    return name, params


def load_problem(spec, device):
    from benchopt.benchmark import Benchmark
    name, params = parse_name(spec)
    bench = Benchmark(str(ROOT))
    dataset = next(d for d in bench.get_datasets() if d.name == name)
    if "device" in dataset.parameters:
        params.setdefault("device", device)
    return dataset.get_instance(**params).get_data()["problem"]


def gemm_floor(problem, n_repeat=200):
    """Seconds of the bare work of one minibatch gradient of a linear model
    on the problem's data: ``(products, gather + products)``, the two
    products (batch x features) @ (features x k) and its transpose on a
    block of 64 consecutive rows (a new block each time, as
    ``sampling="blocks"`` reads them), then the same on 64 random rows
    gathered from the whole matrix (as ``sampling="shuffle"``). None when
    the problem has no dense design matrix."""
    import torch
    splits = getattr(problem, "splits", {})
    train = splits.get("train") if isinstance(splits, dict) else None
    a = getattr(train, "A", None)  # hyper-cleaning
    if a is None:
        a = getattr(getattr(train, "design", None), "X", None)
    if a is None:
        a = getattr(problem, "a", None)  # simulated
    if a is None or not torch.is_tensor(a) or a.layout != torch.strided \
            or a.ndim != 2:
        return None
    k = max(1, problem.dim_inner // a.shape[1])
    w = torch.randn(a.shape[1], k, dtype=a.dtype, device=a.device)
    r = torch.randn(64, k, dtype=a.dtype, device=a.device)
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(len(a), (64,), generator=generator).to(a.device)
               for _ in range(n_repeat)]
    starts = torch.randint(max(1, len(a) - 63), (n_repeat,),
                           generator=generator).tolist()

    def timed(gather):
        for i in range(-10, n_repeat):
            if i == 0:
                if a.device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            batch = (a.index_select(0, batches[i]) if gather
                     else a.narrow(0, starts[i], min(64, len(a))))
            batch @ w
            batch.T @ r
        if a.device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / n_repeat
    return timed(False), timed(True)


def full_batch_only(solver_class):
    """Solvers without minibatches (Implicit-GD, Inner-Only): they have no
    ``sampling``. The others run with ``--batch-size``, also those whose
    default is the full batch (AID-CG, ITD), so that every row compares
    the same minibatch work with the same floor."""
    return "sampling" not in solver_class.parameters


def make_solver(dataset_spec, solver_name, batch_size, sampling, device,
                compile=True):
    """The solver with its default parameters (``batch_size``,
    ``sampling`` and ``compile`` but for the full-batch solvers,
    ``random_state=0``) on the data set's problem, warmed up (compiled
    iterations compile here, as in benchopt's warm-up), reset and ready to
    step."""
    from benchopt.benchmark import Benchmark
    sys.path.insert(0, str(ROOT))
    problem = load_problem(dataset_spec, device)
    solver_class = next(s for s in Benchmark(str(ROOT)).get_solvers()
                        if s.name == solver_name)
    params = dict(random_state=0)
    if not full_batch_only(solver_class):
        params.update(batch_size=batch_size, sampling=sampling,
                      compile=compile)
    solver = solver_class.get_instance(**params)
    solver.set_objective(problem=problem)
    solver.warm_up()
    solver.reset()
    return solver


def run_one(dataset_spec, solver_name, sampling, seconds, batch_size,
            device, compile=True):
    import torch
    solver = make_solver(dataset_spec, solver_name, batch_size, sampling,
                         device, compile)
    problem = solver.problem

    def steps(n):
        for _ in range(n):
            solver.next_iteration()
        if problem.device.type == "cuda":
            torch.cuda.synchronize()

    steps(5)  # warm up
    counts0 = dict(solver.oracles.counts)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        steps(10)
        n += 10
    elapsed = time.perf_counter() - t0
    calls = {k: (solver.oracles.counts[k] - counts0[k]) / n
             for k in ("grad", "hvp", "cross")}
    floor = gemm_floor(problem)
    finite = all(bool(torch.isfinite(t).all())
                 for t in solver.get_result().values()
                 if torch.is_tensor(t))
    out = dict(
        dataset=dataset_spec, solver=solver_name, sampling=sampling,
        it_per_s=n / elapsed,
        grad=calls["grad"], hvp=calls["hvp"], cross=calls["cross"],
        # a gradient, H v or J v of a linear model costs two products
        floor_ratio=(None if floor is None else
                     [(elapsed / n) / (f * sum(calls.values()))
                      for f in floor]),
        peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        finite=finite,
    )
    if problem.device.type == "cuda":
        out["peak_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    print(json.dumps(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-d", "--dataset", action="append")
    parser.add_argument("-s", "--solver", action="append")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sampling", action="append",
                        choices=["shuffle", "blocks"])
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every run this many times, round by "
                             "round; print the median and the range")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--eager", action="store_true",
                        help="solvers with compile=False")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return run_one(*args.one, args.seconds, args.batch_size, args.device,
                       not args.eager)

    sys.path.insert(0, str(ROOT))
    from benchopt.benchmark import Benchmark
    classes = {s.name: s for s in Benchmark(str(ROOT)).get_solvers()}
    solvers = args.solver or sorted(classes)
    runs = [(dataset, solver, sampling)
            for dataset in args.dataset or DATASETS for solver in solvers
            for sampling in (["shuffle"] if full_batch_only(classes[solver])
                             else args.sampling or ["shuffle", "blocks"])]
    if args.rounds == 1:
        print_header()
    results = {run: [] for run in runs}
    # Rounds visit every run once, so that a slow spell of a shared machine
    # hits one measurement of each run rather than all of one run's.
    for _ in range(args.rounds):
        for run in runs:
            results[run].append(measure(*run, args))
            if args.rounds == 1:
                print_row(run, results[run])
    if args.rounds > 1:
        print_header()
        for run in runs:
            print_row(run, results[run])


def measure(dataset, solver, sampling, args):
    """The result dict of one run in a fresh process, or the error line."""
    proc = subprocess.run(
        [sys.executable, __file__, "--one", dataset, solver, sampling,
         "--seconds", str(args.seconds), "--batch-size",
         str(args.batch_size), "--device", args.device]
        + (["--eager"] if args.eager else []),
        capture_output=True, text=True, env=os.environ,
    )
    if proc.returncode != 0:
        return proc.stderr.strip().splitlines()[-1:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_header():
    header = (f"{'dataset':24} {'solver':12} {'sampling':8} {'it/s':>9} "
              f"{'range':>11} {'grad':>5} {'hvp':>5} {'cross':>5} "
              f"{'x mm':>6} {'x g+mm':>6} {'peak MB':>8}")
    print(header)
    print("-" * len(header))


def print_row(run, results):
    """The median round's row, with the range of it/s over the rounds."""
    dataset, solver, sampling = run
    failed = [r for r in results if not isinstance(r, dict)]
    if failed:
        print(f"{dataset:24} {solver:12} {sampling:8} failed: {failed[0]}")
        return
    results = sorted(results, key=lambda r: r["it_per_s"])
    r = results[len(results) // 2]
    spread = (f"{results[0]['it_per_s']:.0f}-{results[-1]['it_per_s']:.0f}"
              if len(results) > 1 else "")
    floor = ["-", "-"] if r["floor_ratio"] is None \
        else [f"{f:.1f}" for f in r["floor_ratio"]]
    flag = "" if all(x["finite"] for x in results) else "  (diverged)"
    print(f"{dataset:24} {solver:12} {sampling:8} {r['it_per_s']:9.0f} "
          f"{spread:>11} {r['grad']:5.1f} {r['hvp']:5.1f} {r['cross']:5.1f} "
          f"{floor[0]:>6} {floor[1]:>6} {r['peak_mb']:8.0f}{flag}",
          flush=True)


if __name__ == "__main__":
    main()
