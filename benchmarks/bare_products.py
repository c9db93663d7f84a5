"""The bare products of one minibatch gradient of the hyper-cleaning
problem, in PyTorch or in JAX, so that the two benchmarks' arithmetic can be
compared on one machine.

    python benchmarks/bare_products.py [--backend torch] [--rounds 5]
    /path/to/jax/env/bin/python benchmarks/bare_products.py --backend jax

On a float32 matrix of FashionMNIST's training shape (20000 x 785: the
features and their column of ones), the script times, per 64-row block,
the forward product ``W A_b^T`` (10 classes x 785), the backward product
``G A_b`` (10 x 64 times the block) and the two in sequence, each on a new
block of consecutive rows every time (``fresh``, as ``sampling="blocks"``
reads them) and on one same block (``hot``, in cache). One thread on both
sides (PyTorch: ``torch.set_num_threads(1)``; JAX: run it with
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``). PyTorch's products are
timed one call at a time from Python, as a compiled iteration calls them;
JAX's inside one jitted loop over the blocks, as the JAX benchmark runs
them. Median microseconds per block over ``--rounds`` rounds.
"""
import argparse
import platform
import statistics
import time

import numpy as np

N_ROWS, N_COLS, N_CLASSES, BATCH = 20000, 785, 10, 64


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def torch_timers(A, W, G, starts):
    import torch
    torch.set_num_threads(1)
    A, W, G = (torch.from_numpy(m) for m in (A, W, G))
    blocks = [A.narrow(0, s, BATCH) for s in starts]
    products = {
        "forward": lambda a: torch.mm(W, a.T),
        "backward": lambda a: torch.mm(G, a),
        "forward + backward": lambda a: torch.mm(torch.mm(W, a.T), a),
    }

    def timer(product, hot):
        def run():
            t0 = time.perf_counter()
            for a in (blocks[:1] * len(blocks) if hot else blocks):
                product(a)
            return time.perf_counter() - t0
        return run
    return {(name, hot): timer(product, hot)
            for name, product in products.items() for hot in (False, True)}


def jax_timers(A, W, G, starts):
    import jax
    import jax.numpy as jnp
    A, W, G = (jnp.asarray(m) for m in (A, W, G))

    def scanned(product):
        @jax.jit
        def loop(starts):
            def body(total, start):
                a = jax.lax.dynamic_slice(A, (start, 0), (BATCH, N_COLS))
                return total + product(a).sum(), None
            return jax.lax.scan(body, jnp.float32(0), starts)[0]
        return loop

    products = {
        "forward": lambda a: W @ a.T,
        "backward": lambda a: G @ a,
        "forward + backward": lambda a: (W @ a.T) @ a,
    }

    def timer(loop, hot):
        first = jnp.asarray(starts[:1] * len(starts) if hot else starts)
        loop(first).block_until_ready()  # compile

        def run():
            t0 = time.perf_counter()
            loop(first).block_until_ready()
            return time.perf_counter() - t0
        return run
    return {(name, hot): timer(scanned(product), hot)
            for name, product in products.items() for hot in (False, True)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["torch", "jax"],
                        default="torch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=2000,
                        help="blocks per timed loop")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    A = rng.standard_normal((N_ROWS, N_COLS), dtype=np.float32)
    W = rng.standard_normal((N_CLASSES, N_COLS), dtype=np.float32)
    G = rng.standard_normal((N_CLASSES, BATCH), dtype=np.float32)
    starts = (rng.integers(0, N_ROWS // BATCH, args.blocks)
              * BATCH).tolist()
    timers = (torch_timers if args.backend == "torch" else jax_timers)(
        A, W, G, starts)
    for run in timers.values():  # warm up
        run()
    times = {key: [] for key in timers}
    for _ in range(args.rounds):  # interleaved rounds
        for key, run in timers.items():
            times[key].append(run() / args.blocks * 1e6)
    print(f"{args.backend} on {cpu_name()}, one thread, {N_ROWS} x "
          f"{N_COLS} float32, blocks of {BATCH}, {args.rounds} rounds "
          "(median us per block, range)")
    for (name, hot), values in times.items():
        print(f"  {name:20s} {'hot' if hot else 'fresh':6s}"
              f"{statistics.median(values):7.1f} ({min(values):.1f}-"
              f"{max(values):.1f})")


if __name__ == "__main__":
    main()
