"""Where the time goes on 20newsgroups (regularization selection: W has
130108 x 20 = 2.6 M entries, x 130108), and the same measures side by side
on an older checkout.

    BENCHOPT_DATA_HOME=/path/to/data python benchmarks/profile_news20.py \\
        [--root CHECKOUT] [--parts step,solve,vrbo,evaluate,speed] \\
        [-s SOBA -s FSLA ...] [--steps 300] [--seconds 6] [--clock cpu]
    BENCHOPT_DATA_HOME=/path/to/data python benchmarks/profile_news20.py \\
        --compare OLD_CHECKOUT [--rounds 5] [--parts ...] [-s ...]

``--root``: the checkout whose code is measured (default: this one); the
script itself only uses the benchmark's public interface (the data set's
problem, the solvers, ``benchmark_utils.problems.implicit``), so it
measures older code as well. Every measure runs one thread, on the data
set's default parameters (``penalty="feature"``, ``outer_init=-12``,
float32) but W = 0 at the start, solvers with their defaults (batch 64,
``sampling="shuffle"``, eager).

Parts:

- ``step``: a SOBA iteration, timed step by step (median), with the time
  of its two oracle calls (``inner_oracles``, ``grad_outer``; the rest is
  its update rules and the samplers) and of the methods they call
  (``STEP_METHODS``: the batch rows, the products, the data and ridge
  terms, the cross product; what is left of the oracles is their own
  operators), alternately with the floor (below), in the same process;
  then profiled with ``torch.profiler``: the self
  time of every operator, per step, by part: batch gathers (the rows of a
  batch, and sorting its entries by feature), sparse products, row
  scatters (data terms added into or copied to rows of a 2.6 M-entry
  tensor), passes over 2.6 M-entry tensors inside the oracles (the
  penalty terms exp(x) * W, exp(x) * V, the cross product, zero-filled
  buffers) and in the solver's update rules (y, v updates), passes over
  x-sized (130 k) tensors, allocation, batch-sized work, the design
  matrix's methods' time outside torch's operators (scipy's sparse
  kernels), and Python with operator dispatch (the profiled time nothing
  else accounts for), with the page faults per profiled step. The
  profiler's own allocations split the heap blocks that the oracles'
  10 MB results reuse: the profiled steps page-fault where unprofiled ones
  do not, so the profile gives shares, the timed steps the times.
- floor (measured with ``step``): the bare work of a SOBA iteration: the
  sparse products of its two batches (X_i W, X_i V, X_i^T G, X_i^T H dZ,
  X_j W, X_j^T G, on CSR batches built beforehand, 32-bit indices) plus
  the passes over y, v and x its update rules need (``y -= a``,
  ``v -= b``, one read of y and v for the cross product, ``x -= c``),
  each the fastest single operator for it.
- ``solve``: the exact inner solve (``solve_inner``, Newton-CG, to the
  value-function tolerance 1e-6, and ``problem.inner_solution``, the
  objective's h(x) metric, tolerance 1e-4): cold (from W = 0 at x0) and
  warm (from
  y*(x0), at x1 = x0 - 1000 grad h(x0), an Implicit-GD step of the
  smallest step size of experiments/grid_20newsgroups.yml: max |x1 - x0|
  is 2.6): its time, its calls of each full-batch oracle and the time in
  them, the rest (conjugate gradient's vector work, Python); and the
  parts of one full-batch H v, as conjugate gradient calls it (at one
  point, the same vector).
- ``vrbo``: VRBO's full-batch refresh (a full ``grad_outer``, Q = 10 full
  H v and one fused full ``inner_oracles`` at one point) against one
  full-batch gradient of g, per full-batch oracle call.
- ``evaluate``: the objective's ``set_data`` (y*(x0), cold, for the h(x)
  metric) and its ``evaluate_result`` at SOBA's iterates after 1, 10, 100,
  300 and 1000 iterations (median and largest), with the time of the exact
  solve inside it (``problem.inner_solution`` warm started at the previous
  point's y*), what a benchopt run pays at each logged point.
- ``speed``: iterations per second of the solvers ``-s`` (default SOBA,
  StocBiO, FSLA), ``--seconds`` each after 5 warm-up steps.

``--clock``: ``wall`` (default) or ``cpu``, the process's CPU time, for
a machine that other work shares (each measure runs one thread).

``--compare``: every part in fresh processes (``speed``: one per
solver), alternately on the old checkout and on ``--root``, ``--rounds``
times; prints medians and ranges of both and their ratio.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORACLES = ("grad_inner", "grad_outer", "grad_inner_y", "grad_inner_x",
           "grad_outer_y", "grad_outer_x", "hvp", "cross", "inner_oracles",
           "inner", "outer")
PRODUCTS = {"addmm", "mm", "_sparse_mm", "_sparse_csr_mm", "_sparse_addmm",
            "sparse_mm", "matmul", "_sparse_mm_reduce_impl"}
SCATTERS = {"index_add_", "index_copy_", "index_put_", "scatter_add_",
            "index_add", "_index_put_impl_"}
ALLOCATION = {"empty", "empty_like", "zeros", "zeros_like", "new_zeros",
              "new_empty", "empty_strided", "resize_", "full", "ones"}
PARTS = ["gathers", "products", "row scatters", "oracle passes",
         "update passes", "x passes", "allocation", "batch-sized",
         "outside torch", "python+dispatch"]
#: the design matrix's methods, marked in profiles: what they spend outside
#: torch's operators is scipy's sparse kernels (and their Python)
DESIGN_METHODS = ("rows", "matmul", "rmatmul", "rmatmul_ridge")
DEFAULT_SOLVERS = ["SOBA", "StocBiO", "FSLA"]
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = {"now": time.perf_counter}


def now():
    """Seconds on the chosen clock (``--clock``): wall time, or this
    process's CPU time, which leaves out the time other processes hold the
    core (the measures run one thread)."""
    return _clock["now"]()


# -- loading one checkout's code ----------------------------------------------
def load(root):
    """(problem, solver classes by name) of the checkout ``root``."""
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, str(root))
    from benchopt.benchmark import Benchmark
    bench = Benchmark(str(root))
    dataset = next(d for d in bench.get_datasets()
                   if d.name == "20newsgroups")
    # W = 0 on both sides (older checkouts have no other start)
    params = {"inner_init": "zero"} if "inner_init" in dataset.parameters \
        else {}
    problem = dataset.get_instance(**params).get_data()["problem"]
    return problem, {s.name: s for s in bench.get_solvers()}


def make_solver(classes, name, problem):
    solver = classes[name].get_instance(random_state=0)
    solver.set_objective(problem=problem)
    solver.reset()
    return solver


def median_range(values):
    return statistics.median(values), min(values), max(values)


class CallTimes:
    """Counts the calls of some methods of ``owner`` (wrapped on the
    instance) and the seconds spent in them. ``owner`` may be a list of
    ``(object, name, label)``: methods of several objects."""

    def __init__(self, owner, names=()):
        targets = owner if isinstance(owner, list) else [
            (owner, name, name) for name in names]
        targets = [t for t in targets if hasattr(t[0], t[1])]
        labels = [label for _, _, label in targets]
        self.counts = dict.fromkeys(labels, 0)
        self.seconds = dict.fromkeys(labels, 0.0)
        for obj, name, label in targets:
            setattr(obj, name, self._timed(label, getattr(obj, name)))

    def reset(self):
        self.counts = dict.fromkeys(self.counts, 0)
        self.seconds = dict.fromkeys(self.seconds, 0.0)

    def _timed(self, label, method):
        def call(*args, **kwargs):
            t0 = now()
            out = method(*args, **kwargs)
            self.seconds[label] += now() - t0
            self.counts[label] += 1
            return out
        return call


# -- step: a SOBA iteration, timed and profiled ------------------------------
def _numel(shape):
    return math.prod(shape) if shape else 0


def _part(event, in_oracle, big, mid):
    name = event.name.split("::")[-1]
    if name in ALLOCATION:
        return "allocation"
    if name in PRODUCTS:
        return "products"
    if name in SCATTERS:
        return "row scatters"
    numel = max((_numel(s) for s in event.input_shapes or [] if
                 isinstance(s, (list, tuple))), default=0)
    if numel >= big:
        return "oracle passes" if in_oracle else "update passes"
    if numel >= mid:
        return "x passes"
    if name in {"index_select", "index", "repeat_interleave", "sort",
                "unique_consecutive", "_unique2", "cumsum", "arange",
                "bincount", "gather", "take", "narrow", "slice"}:
        return "gathers"
    return "batch-sized"


def _inside_oracle(event):
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("oracle::"):
            return True
        parent = parent.cpu_parent
    return False


def profile_parts(run, n_calls, big, mid):
    """Self time (seconds per call) of ``run()``'s operators by part."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) \
            as prof:
        # wall time, as the profiler's (whatever --clock says)
        t0 = time.perf_counter()
        for _ in range(n_calls):
            run()
        total = time.perf_counter() - t0
    parts = defaultdict(float)
    calls = 0
    for event in prof.events():
        if event.name.startswith("design::"):
            parts["outside torch"] += event.self_cpu_time_total * 1e-6
            continue
        if not event.name.startswith("aten::"):
            continue
        calls += 1
        parts[_part(event, _inside_oracle(event), big, mid)] += \
            event.self_cpu_time_total * 1e-6
    parts["python+dispatch"] = max(total - sum(parts.values()), 0.0)
    out = {k: parts[k] / n_calls for k in PARTS}
    out["profiled"] = total / n_calls
    out["operators"] = calls / n_calls
    return out


def wrap_oracles(problem):
    """Mark every oracle call as a ``record_function`` range
    ("oracle::name"), so that the profile tells the oracles' operators from
    the update rules', and the design matrices' methods ("design::name"),
    whose time outside torch's operators is scipy's."""
    import torch

    def wrapped(label, method):
        def call(*args, **kwargs):
            with torch.profiler.record_function(label):
                return method(*args, **kwargs)
        return call
    for name in ORACLES:
        setattr(problem, name, wrapped(f"oracle::{name}",
                                       getattr(problem, name)))
    for split in getattr(problem, "splits", {}).values():
        design = getattr(split, "design", None)
        for name in DESIGN_METHODS:
            if design is not None and hasattr(design, name):
                setattr(design, name, wrapped(f"design::{name}",
                                              getattr(design, name)))


#: methods timed inside SOBA's oracles (those a checkout has): the design
#: matrices' (gathers, products and data terms; in this checkout the
#: ridge terms too) and the cross product's row sums
STEP_METHODS = [("design", "rows", "batch rows"),
                ("design", "matmul", "X_b W"),
                ("design", "rmatmul", "X_b^T G"),
                ("design", "rmatmul_ridge", "X_b^T G + reg W"),
                ("problem", "_pair_sums", "cross product sums"),
                ("problem", "_penalty_grad_x", "cross product")]


def part_step(problem, classes, n_steps):
    """SOBA's step: its time, the time of its two oracle calls and of the
    methods they call (the rest of an oracle: its own operators; the rest
    of the step: the update rules and the samplers), the floor measured
    alternately with the steps, in the same process, and a profile by
    part."""
    import resource
    floor = Floor()
    oracles = CallTimes(problem, ["inner_oracles", "grad_outer"])
    targets = []
    for owner, name, label in STEP_METHODS:
        objects = [problem] if owner == "problem" else [
            split.design for split in problem.splits.values()]
        targets += [(obj, name, label) for obj in objects]
    methods = CallTimes(targets)
    solver = make_solver(classes, "SOBA", problem)
    for _ in range(10):
        solver.next_iteration()
    out = defaultdict(list)
    for k in range(n_steps):
        oracles.reset()
        methods.reset()
        t0 = now()
        solver.next_iteration()
        step = now() - t0
        out["step"].append(step)
        for name, seconds in oracles.seconds.items():
            out[name].append(seconds)
        for label, seconds in methods.seconds.items():
            out[f"  {label}"].append(seconds)
        out["  rest of the oracles"].append(
            sum(oracles.seconds.values()) - sum(methods.seconds.values()))
        out["update rules"].append(step - sum(oracles.seconds.values()))
        products, passes = floor.round(k)
        out["floor products"].append(products)
        out["floor passes"].append(passes)
        out["floor"].append(products + passes)
    result = {key: statistics.median(v) for key, v in out.items()}
    result["step / floor"] = result["step"] / result["floor"]
    wrap_oracles(problem)
    solver.reset()  # its oracle counter now reads the marked oracles
    for _ in range(10):
        solver.next_iteration()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    n_profiled = max(n_steps // 3, 20)
    parts = profile_parts(solver.next_iteration, n_profiled,
                          problem.dim_inner, problem.dim_outer)
    parts["page faults"] = (resource.getrusage(
        resource.RUSAGE_SELF).ru_minflt - faults) / n_profiled
    result.update({f"profile {k}": v for k, v in parts.items()})
    return result


# -- floor: the bare work of a SOBA iteration ---------------------------------
def _csr_batch(X, rows):
    """(X_b as CSR, its transpose on its distinct features as CSR, those
    features), with 32-bit indices, built from a scipy CSR matrix."""
    import numpy as np
    import torch
    Xb = X[rows]
    Xb.sort_indices()
    features, inverse = np.unique(Xb.indices, return_inverse=True)
    XbT = Xb.__class__((Xb.data, inverse, Xb.indptr),
                       shape=(Xb.shape[0], len(features))).T.tocsr()

    def csr(m):
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int32)),
            torch.from_numpy(m.indices.astype(np.int32)),
            torch.from_numpy(m.data.astype(np.float32)), m.shape)
    return csr(Xb), csr(XbT), torch.from_numpy(features.astype(np.int64))


class Floor:
    """The products of one SOBA iteration and its update rules' passes,
    on ``n_batches`` pairs of batches built beforehand (see the module
    docstring)."""

    def __init__(self, n_batches=100, batch_size=64):
        import warnings

        import numpy as np
        import torch
        warnings.filterwarnings("ignore", message="Sparse CSR tensor")
        from benchmark_utils.data.news20 import load_news20
        from datasets.news20 import train_val_indices
        X, _, _, _, _ = load_news20()
        train, val = train_val_indices(X.shape[0])
        X_train = X[train].astype(np.float32)
        X_val = X[val].astype(np.float32)
        n_features, k = X.shape[1], 20
        gen = torch.Generator().manual_seed(0)
        self.W = 0.01 * torch.randn(n_features, k, generator=gen)
        self.V = 0.01 * torch.randn(n_features, k, generator=gen)
        self.x = torch.randn(n_features, generator=gen)
        self.a = torch.randn(n_features * k, generator=gen)
        self.b = torch.randn(n_features * k, generator=gen)
        self.c = torch.randn(n_features, generator=gen)
        self.G = torch.randn(batch_size, k, generator=gen)
        rng = np.random.default_rng(0)
        self.batches = [
            (_csr_batch(X_train, rng.choice(len(train), batch_size,
                                            replace=False)),
             _csr_batch(X_val, rng.choice(len(val), batch_size,
                                          replace=False)))
            for _ in range(n_batches)]

    def round(self, k):
        """Seconds of (products, passes) on batch pair ``k``."""
        import torch
        (Xi, XiT, _), (Xj, XjT, _) = self.batches[k % len(self.batches)]
        W, V, G = self.W, self.V, self.G
        y, v = W.view(-1), V.view(-1)
        t0 = now()
        torch.sparse.mm(Xi, W)
        torch.sparse.mm(Xi, V)
        torch.sparse.mm(XiT, G)
        torch.sparse.mm(XiT, G)
        torch.sparse.mm(Xj, W)
        torch.sparse.mm(XjT, G)
        t1 = now()
        y.sub_(self.a, alpha=1e-30)
        v.sub_(self.b, alpha=1e-30)
        torch.dot(y, v)
        self.x.sub_(self.c, alpha=1e-30)
        return t1 - t0, now() - t1


# -- solve: the exact inner solve ---------------------------------------------
def prepare_warm(path, step=1000.0):
    """Save (y*(x0), x1 = x0 - step grad h(x0)) for the warm solves."""
    import torch
    problem, _ = load(ROOT)
    from benchmark_utils.problems.implicit import hypergradient, solve_inner
    x0 = problem.outer_var0
    y_star, _ = solve_inner(problem, x0, tol=1e-6)
    direction, _ = hypergradient(problem, x0, y_star, tol=1e-6)
    torch.save(dict(y_star=y_star, x1=x0 - step * direction), path)


def part_solve(problem, warm_path, cold=True):
    """Cold and warm solves: seconds, calls of each full-batch oracle and
    the seconds spent in them (the rest: conjugate gradient's vector
    work, the line search's bookkeeping, Python); then the parts of one
    full-batch H v at y*(x0), as conjugate gradient calls it."""
    import torch

    from benchmark_utils.problems.implicit import solve_inner
    names = ["hvp", "grad_inner_y", "inner"]
    if hasattr(problem, "inner_preconditioner"):
        names.append("inner_preconditioner")
    timer = CallTimes(problem, names)
    start = torch.load(warm_path)
    cases = [("warm", start["y_star"], start["x1"])]
    if cold:
        cases.insert(0, ("cold", torch.zeros_like(start["y_star"]),
                         problem.outer_var0))
    out = {}
    for case, y_start, x in cases:
        timer.reset()
        t0 = now()
        y, gnorm = solve_inner(problem, x, y_start, tol=1e-6)
        total = now() - t0
        out[f"{case} s"] = total
        out[f"{case} grad norm"] = gnorm
        out[f"{case} h"] = float(problem.outer(y, x))
        for name in names:
            out[f"{case} {name} calls"] = timer.counts[name]
            out[f"{case} {name} s"] = timer.seconds[name]
        out[f"{case} rest s"] = total - sum(timer.seconds.values())
    # the objective's h(x) metric: problem.inner_solution (tolerance 1e-4
    # in float32) from the same starts
    for case, y_start, x in cases:
        t0 = now()
        y = problem.inner_solution(x, y_start)
        out[f"metric {case} s"] = now() - t0
        out[f"metric {case} h"] = float(problem.outer(y, x))
        out[f"metric {case} grad norm"] = float(
            problem.grad_inner_y(y, x).norm())
    y, x = start["y_star"], problem.outer_var0
    v = torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
    wrap_oracles(problem)
    problem.hvp(y, x, v)
    parts = profile_parts(lambda: problem.hvp(y, x, v), 3,
                          problem.dim_inner, problem.dim_outer)
    out.update({f"hvp {k}": v for k, v in parts.items()})
    return out


# -- vrbo: the full-batch refresh ---------------------------------------------
def part_vrbo(problem, n_neumann=10, repeat=3):
    import torch

    from benchmark_utils.solver.variance_reduction import (
        full_hypergradient_batches,
        hypergradient_estimates,
    )
    gen = torch.Generator().manual_seed(0)
    y = 0.01 * torch.randn(problem.dim_inner, generator=gen)
    x = problem.outer_var0.clone()
    eta = 1 / problem.inner_hessian_bound()

    def timed(fn):
        fn()
        times = []
        for _ in range(repeat):
            t0 = now()
            fn()
            times.append(now() - t0)
        return statistics.median(times)
    full_pass = timed(lambda: hypergradient_estimates(
        problem, [(y, x)], full_hypergradient_batches(n_neumann), eta))
    # a new tensor at each call: no logits kept from the previous one
    gradient = timed(lambda: problem.grad_inner_y(y.clone(), x))
    # a grad_outer, Q H v and a fused call (three oracles)
    n_oracles = 1 + n_neumann + 3
    return {"full pass s": full_pass, "full gradient s": gradient,
            "per oracle s": full_pass / n_oracles,
            "per oracle / gradient": full_pass / n_oracles / gradient}


# -- evaluate: the objective's metrics at a logged point ---------------------
def part_evaluate(root, problem, classes, points=(1, 10, 100, 300, 1000)):
    """The objective's ``set_data`` (y*(x0) for the h(x) metric) and its
    ``evaluate_result`` at SOBA's iterates after ``points`` iterations: its
    seconds and those of the exact solve inside it
    (``problem.inner_solution``, warm started at the previous point's)."""
    from benchopt.benchmark import Benchmark
    objective = Benchmark(str(root)).get_benchmark_objective().get_instance()
    timer = CallTimes(problem, ["inner_solution"])
    t0 = now()
    objective.set_data(problem=problem)
    out = {"set_data s": now() - t0}
    solver = make_solver(classes, "SOBA", problem)
    evaluations, solves = [], []
    for target in points:
        while solver.n_iter < target:
            solver.next_iteration()
        result = solver.get_result()
        timer.reset()
        t0 = now()
        objective.evaluate_result(**result)
        evaluations.append(now() - t0)
        solves.append(timer.seconds["inner_solution"])
    out["median s"] = statistics.median(evaluations)
    out["max s"] = max(evaluations)
    out["inner_solution median s"] = statistics.median(solves)
    return out


# -- speed: iterations per second ---------------------------------------------
def part_speed(problem, classes, names, seconds):
    out = {}
    for name in names:
        solver = make_solver(classes, name, problem)
        for _ in range(5):
            solver.next_iteration()
        n, t0 = 0, now()
        while now() - t0 < seconds:
            solver.next_iteration()
            n += 1
        out[f"{name} it/s"] = n / (now() - t0)
    return out


# -- driver -------------------------------------------------------------------
def run_parts(root, parts, args):
    result = {}
    problem, classes = load(root)
    if "step" in parts:
        result.update({f"step {k}": v for k, v in
                       part_step(problem, classes, args.steps).items()})
    if "vrbo" in parts:
        result.update({f"vrbo {k}": v for k, v in part_vrbo(problem).items()})
    if "solve" in parts:
        result.update({f"solve {k}": v for k, v in part_solve(
            problem, args.warm, cold=not args.no_cold).items()})
    if "evaluate" in parts:
        problem, classes = load(root)
        result.update({f"evaluate {k}": v for k, v in part_evaluate(
            root, problem, classes).items()})
    if "speed" in parts:
        # a fresh problem: the parts above wrapped its oracles
        problem, classes = load(root)
        result.update(part_speed(problem, classes,
                                 args.solver or DEFAULT_SOLVERS,
                                 args.seconds))
    return result


def one_process(root, parts, args, solvers=None):
    """``run_parts`` in a fresh process (its own memory and caches)."""
    command = [sys.executable, __file__, "--root", str(root), "--json",
               "--parts", ",".join(parts), "--steps", str(args.steps),
               "--seconds", str(args.seconds), "--warm", args.warm,
               "--clock", args.clock]
    for name in solvers or []:
        command += ["-s", name]
    if args.no_cold:
        command.append("--no-cold")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{root}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def show(value):
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def as_us(key, value):
    """The per-call parts (step, floor, hvp) in microseconds; the rest as
    they are (whole solves and passes in seconds)."""
    if key.startswith(("step ", "solve hvp ")) and not key.endswith(
            ("operators", "page faults", "step / floor")):
        return f"{key} (us)", value * 1e6
    return key, value


def print_table(columns):
    """Rows: the measures; columns: median [min-max] per side."""
    keys = list(next(iter(columns.values())))
    for results in columns.values():
        keys += [k for k in results if k not in keys]
    names = list(columns)
    print(f"{'measure':42}" + "".join(f"{n:>30}" for n in names)
          + ("   new / old" if len(names) == 2 else ""))
    for key in keys:
        cells, medians = [], []
        for name in names:
            values = columns[name].get(key)
            if not values:
                cells.append(f"{'-':>30}")
                medians.append(None)
                continue
            label, scaled = None, []
            for v in values:
                label, s = as_us(key, v)
                scaled.append(s)
            med, low, high = median_range(scaled)
            medians.append(med)
            cell = show(med) if len(scaled) == 1 else \
                f"{show(med)} [{show(low)}-{show(high)}]"
            cells.append(f"{cell:>30}")
        label = as_us(key, 0.0)[0]
        ratio = ""
        if len(medians) == 2 and all(m for m in medians):
            ratio = f"   {medians[1] / medians[0]:.3g}"
        print(f"{label:42}" + "".join(cells) + ratio)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=str(ROOT))
    parser.add_argument("--compare", metavar="OLD_CHECKOUT")
    parser.add_argument("--parts", default="step,solve,vrbo,evaluate,speed")
    parser.add_argument("-s", "--solver", action="append")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall")
    parser.add_argument("--no-cold", action="store_true",
                        help="solve: skip the cold solve")
    parser.add_argument("--warm", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true",
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    parts = args.parts.split(",")
    _clock["now"] = CLOCKS[args.clock]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        if "solve" in parts and args.warm is None:
            args.warm = str(Path(tmp) / "warm.pt")
            # by this checkout's code: the same start for both sides
            prepare_warm(args.warm)
        args.warm = args.warm or ""
        if args.json:
            print(json.dumps(run_parts(args.root, parts, args)))
            return
        sides = {"new": args.root} if not args.compare else \
            {"old": args.compare, "new": args.root}
        columns = {name: defaultdict(list) for name in sides}
        rounds = args.rounds if args.compare else 1
        # one process per part, and per solver for "speed"
        jobs = [([part], args.solver) for part in parts if part != "speed"]
        if "speed" in parts:
            jobs += [(["speed"], [name])
                     for name in args.solver or DEFAULT_SOLVERS]
        for round_ in range(rounds):
            for name, root in sides.items():
                for job_parts, solvers in jobs:
                    result = one_process(root, job_parts, args, solvers)
                    for key, value in result.items():
                        columns[name][key].append(value)
            print(f"round {round_ + 1} / {rounds} done", file=sys.stderr,
                  flush=True)
    print(f"20newsgroups, one thread, {args.clock} clock, {rounds} "
          f"round(s); medians [min-max] over rounds")
    print_table(columns)


if __name__ == "__main__":
    main()
