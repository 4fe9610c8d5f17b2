"""Which ``MIN_WORK_PER_THREAD`` is best? Whole training steps, the values alternating in one process.

    PYTHONPATH=. python benchmarks/ab_threshold.py --config small --threads 2 --values 18,19 [--rounds 20]

``minigrad.parallel`` splits a kernel's rows across threads only when the call touches at
least ``2 * MIN_WORK_PER_THREAD`` elements (a hand-off costs tens of microseconds, see
``thread_handoff.py``). This script builds one model and batch, then runs rounds in which
every candidate value (given as powers of two) is set in turn and timed over a few steps;
the order reverses every round, so a slow phase of a noisy machine hits all values alike.
It prints each value's median ms/step and its ratio to the first value. Differences under
about 3% are within this machine's noise between two identical settings.
"""

from __future__ import annotations

import argparse
import sys
import time

import bench_utils as bu  # first: it imports minigrad before NumPy (see its comment)

import minigrad
from minigrad import parallel


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=sorted(bu.CONFIGS), default="small")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--values", default="18,19", help="powers of two to compare, the first is the reference")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--steps", type=int, default=None, help="timed steps per value and round (default: by config)")
    args = p.parse_args(argv)
    values = [int(v) for v in args.values.split(",")]
    steps = args.steps or {"tiny": 30, "small": 10, "medium": 3}[args.config]
    bu.set_blas_threads(args.threads)
    minigrad.set_num_threads(args.threads)
    cfg = bu.CONFIGS[args.config]
    print(f"ab_threshold: {cfg.describe()}; threads {args.threads}; {args.rounds} rounds of {steps} steps per value")
    for line in bu.environment_lines():
        print(line)
    model, opt = bu.build_minigrad(cfg)
    inputs = bu.minigrad_inputs(bu.make_batch(cfg))
    for _ in range(3):
        bu.minigrad_step(model, opt, inputs)
    default = parallel.MIN_WORK_PER_THREAD
    times: dict[int, list[float]] = {v: [] for v in values}
    try:
        for r in range(args.rounds):
            for v in values if r % 2 == 0 else values[::-1]:
                parallel.MIN_WORK_PER_THREAD = 1 << v
                bu.minigrad_step(model, opt, inputs)  # one untimed step under the new value
                t0 = time.perf_counter()
                for _ in range(steps):
                    bu.minigrad_step(model, opt, inputs)
                times[v].append((time.perf_counter() - t0) / steps)
    finally:
        parallel.MIN_WORK_PER_THREAD = default
    base = bu.median(times[values[0]])
    for v in values:
        med = bu.median(times[v])
        print(f"MIN_WORK_PER_THREAD = 2**{v}: {med * 1e3:8.2f} ms/step  ratio to 2**{values[0]}: {med / base:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
