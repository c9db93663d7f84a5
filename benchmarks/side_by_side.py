"""it/s of this benchmark and of benchopt's JAX bilevel benchmark, side by
side: interleaved ``benchopt run`` calls, one solver at a time, each side
in its own environment, timed by benchopt itself.

    BENCHOPT_DATA_HOME=/path/to/data python benchmarks/side_by_side.py \\
        --reference /tmp/benchmark_bilevel --reference-benchopt \\
        /tmp/refenv/bin/benchopt --reference-dataset fashion_local \\
        [-s SOBA -s FSLA ...] [--rounds 3] [--timeout 40] \\
        [--sides reference,compiled,eager]

The reference checkout must be prepared as docs/SPEED.md ("Side by side")
describes: a FashionMNIST data set that reads the local files, and its
solvers blocking on their results before benchopt's timer reads. Each
round runs, for every solver, the reference, then this benchmark with
``compile=True``, then with ``compile=False`` (FashionMNIST, 20000 / 5000,
ratio 0.5, batch 64, ``eval_freq=128`` on the reference's side and points
logged every 1.2x of work here, ``sampling="blocks"`` here, matched step
sizes). The it/s of a run are the iterations between
its first third and its last logged point over benchopt's time between
them; the script prints the median and range over the rounds that
logged enough points (a run whose warm-up takes most of the timeout logs
too few: those are left out, and the table says how many rounds count).
Before the first round, each compiled solver runs once, uncounted, so that
inductor's disk cache holds its kernels (``--no-prewarm``: skip it), as a
reader's later runs would find it.
"""
import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL_FREQ = 128

#: solver -> the reference's solver with the same work per iteration: its
#: outer_ratio divides the step where ours multiplies (0.3 <-> 1 / 0.3).
REFERENCE = {
    "SOBA": "SOBA[step_size=0.03,outer_ratio=3.3333]",
    "FSLA": "FSLA[step_size=0.3,outer_ratio=1.0]",
    "StocBiO": "StocBiO[step_size=0.1,outer_ratio=1.0,n_inner_steps=10,"
               "n_shia_steps=10]",
    "F2SA": "F2SA[step_size=0.1,outer_ratio=3.3333,n_inner_steps=10]",
    "SABA": "SABA[step_size=0.03,outer_ratio=1.0]",
}


def iterations_per_second(parquet):
    import pandas as pd
    curve = pd.read_parquet(parquet).sort_values("stop_val")
    curve = curve[curve.stop_val > 0]
    # this benchmark logs its iteration count; the reference's is
    # stop_val evaluations of EVAL_FREQ iterations
    n_iter = (curve.objective_n_iter if "objective_n_iter" in curve
              else curve.stop_val * EVAL_FREQ)
    tail = slice(len(curve) // 3, None)  # skip the first third
    n_iter, times = n_iter.iloc[tail], curve.time.iloc[tail]
    if len(times) < 2:  # a warm-up that took most of the timeout
        return float("nan")
    return ((n_iter.iloc[-1] - n_iter.iloc[0])
            / (times.iloc[-1] - times.iloc[0]))


def run(side, solver, args, out):
    env = dict(os.environ)
    if side == "reference":
        spec = REFERENCE[solver][:-1] + f",eval_freq={EVAL_FREQ}]"
        cmd = [args.reference_benchopt, "run", args.reference, "-d",
               args.reference_dataset, "-s", spec]
        # one thread on both sides (this benchmark's default on CPU)
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
        cwd = args.reference
    else:
        spec = (f"{solver}[sampling=blocks,"
                f"compile={side == 'compiled'}]")
        cmd = [str(Path(sys.executable).parent / "benchopt"), "run",
               str(ROOT), "-d", "fashion_mnist", "-s", spec,
               "-o", "Bilevel Optimization[log_ratio=1.2]"]
        cwd = str(ROOT)
    cmd += ["-n", "400", "-r", "1", "--no-cache", "--no-plot", "--timeout",
            str(args.timeout), "--output", out]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True,
                          text=True)
    if proc.returncode or not os.path.exists(out):
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
        return float("nan")
    return iterations_per_second(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", required=True,
                        help="the prepared reference checkout")
    parser.add_argument("--reference-benchopt", required=True,
                        help="benchopt of the reference's environment")
    parser.add_argument("--reference-dataset", default="fashion_local")
    parser.add_argument("-s", "--solver", action="append",
                        choices=list(REFERENCE))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=int, default=40)
    parser.add_argument("--no-prewarm", action="store_true",
                        help="no uncounted compiled run before round 0")
    parser.add_argument("--sides", default="reference,compiled,eager",
                        help="the runs of each round, among reference, "
                             "compiled and eager (the first is the "
                             "ratios' denominator)")
    args = parser.parse_args()
    solvers = args.solver or list(REFERENCE)
    sides = args.sides.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if "compiled" in sides and not args.no_prewarm:
            for solver in solvers:
                run("compiled", solver, args,
                    os.path.join(tmp, f"{solver}_prewarm.parquet"))
        for round_ in range(args.rounds):
            for solver in solvers:
                for side in sides:
                    out = os.path.join(tmp, f"{solver}_{side}_{round_}"
                                            ".parquet")
                    value = run(side, solver, args, out)
                    results.setdefault((solver, side), []).append(value)
                    print(f"round {round_} {solver} {side}: {value:.0f} it/s",
                          flush=True)
    ratios = [f"{side} / {sides[0]}" for side in sides[1:]]
    header = ["solver", *sides, *ratios]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for solver in solvers:
        cells, medians = [], []
        for side in sides:
            values = [v for v in results[(solver, side)] if not math.isnan(v)]
            if not values:
                medians.append(math.nan)
                cells.append("no round")
                continue
            medians.append(statistics.median(values))
            counted = ("" if len(values) == args.rounds
                       else f", {len(values)} of {args.rounds} rounds")
            cells.append(f"{medians[-1]:.0f} ({min(values):.0f}-"
                         f"{max(values):.0f}{counted})")
        cells += [f"{m / medians[0]:.2f}" for m in medians[1:]]
        print(f"| {solver} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
