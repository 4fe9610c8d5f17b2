"""What does handing a slice of rows to another thread cost? ``minigrad.parallel.run_rows``.

    PYTHONPATH=. python benchmarks/thread_handoff.py [--rows 1024] [--cols 128] [--threads 2]

A kernel that doubles a (rows, cols) float32 array into another is timed three ways,
alternating round by round: serially in the calling thread; through ``run_rows`` split
across ``--threads`` threads (minigrad's workers: two locks per worker as signals); and
split the same way through a ``concurrent.futures.ThreadPoolExecutor`` (the reference,
and what ``run_rows`` used before: a queue, a Future per slice, then ``wait`` on them). Each is timed back to back and
after a 4 MiB pass on one core (as in a step, where the helper thread has gone to sleep
in between). The difference from the serial time is the price of a hand-off, which is
why ``run_rows`` only splits calls that touch ``2 * MIN_WORK_PER_THREAD`` elements or more.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

import bench_utils as bu  # first: it imports minigrad before NumPy (see its comment)
import numpy as np

import minigrad
from minigrad import parallel


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1024)
    p.add_argument("--cols", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2000)
    args = p.parse_args(argv)
    minigrad.set_num_threads(args.threads)
    a = np.ones((args.rows, args.cols), np.float32)
    out = np.empty_like(a)
    big = np.ones(1 << 20, np.float32)
    pool = ThreadPoolExecutor(args.threads - 1)

    def kernel(lo: int, hi: int) -> None:
        np.multiply(a[lo:hi], 2.0, out=out[lo:hi])

    def executor() -> None:
        parts = parallel.slices(args.rows, 1 << 40)
        futures = [pool.submit(kernel, lo, hi) for lo, hi in parts[1:]]
        try:
            kernel(*parts[0])
        finally:
            wait(futures)  # as run_rows: every slice has finished, even after an error
        for f in futures:
            f.result()

    fns: dict[str, Callable[[], object]] = {
        "serial": lambda: kernel(0, args.rows),
        "run_rows": lambda: parallel.run_rows(kernel, args.rows, 1 << 40),
        "ThreadPoolExecutor": executor,
    }
    print(f"thread_handoff: ({args.rows}, {args.cols}) float32, {args.threads} threads; median microseconds")
    print(f"{'':<20} {'back to back':>13} {'after a pass':>13}")
    results = {}
    for gap in (False, True):
        times: dict[str, list[float]] = {name: [] for name in fns}
        for r in range(args.repeats):
            for name in list(fns)[r % 3 :] + list(fns)[: r % 3]:
                if gap:
                    np.multiply(big, 1.0, out=big)
                t0 = time.perf_counter()
                fns[name]()
                times[name].append(time.perf_counter() - t0)
        results[gap] = {name: bu.median(ts) * 1e6 for name, ts in times.items()}
    for name in fns:
        print(f"{name:<20} {results[False][name]:>13.1f} {results[True][name]:>13.1f}")
    for gap, label in ((False, "back to back"), (True, "after a pass")):
        cost = {name: results[gap][name] - results[gap]["serial"] for name in ("run_rows", "ThreadPoolExecutor")}
        print(
            f"hand-off cost, {label}: run_rows {cost['run_rows']:.1f} us, "
            f"ThreadPoolExecutor {cost['ThreadPoolExecutor']:.1f} us"
        )
    pool.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
