"""FlashAttention against the plain attention: peak memory and time of forward + backward.

    PYTHONPATH=. python benchmarks/flash_attention.py [--seqs 1024,2048,4096] [--block-size 256] [--accel on]

One attention call, batch 1, 8 heads, d_head 64, float32 (``--dtype``): q, k, v
(1, 8, seq, 64) that require grad, the output's backward with a random upstream gradient.
"plain" is ``scaled_dot_product_attention(impl="naive")`` (the fused weights op, then
weights @ v); "flash" is ``impl="flash"``. For each:

* peak memory: :mod:`tracemalloc`'s peak (it sees NumPy's allocations) during one forward
  + backward, minus what was allocated before it (the inputs): the weights, what backward
  keeps and the temporaries;
* time: the median of ``--repeats`` forward + backward calls, the two interleaved (and
  without tracemalloc, which slows allocations);
* agreement: the largest difference of the outputs and of dq, dk, dv, relative to their
  largest value.

The acceleration is on by default (``--accel off``: the reference path). The figures go to
docs/performance.md with the command and the date.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_env as be  # noqa: E402
import bench_measure as bm  # noqa: E402
import numpy as np  # noqa: E402

import minigrad  # noqa: E402
from encoder.attention import scaled_dot_product_attention  # noqa: E402

HEADS, D_HEAD = 8, 64


def make_inputs(seq: int, dtype: str, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((1, HEADS, seq, D_HEAD)).astype(dtype) for _ in range(3)]
    return arrays, rng.standard_normal((1, HEADS, seq, D_HEAD)).astype(dtype)


def step(impl: str, arrays: list[np.ndarray], upstream: np.ndarray, block: int) -> list[np.ndarray]:
    """One forward + backward; the output and dq, dk, dv."""
    xs = [minigrad.tensor(a, requires_grad=True) for a in arrays]
    out, _ = scaled_dot_product_attention(*xs, impl=impl, block_size=block)
    grads = minigrad.grad(out, xs, minigrad.tensor(upstream))
    return [out.detach().numpy()] + [g.numpy() for g in grads]


def peak_bytes(impl: str, arrays: list[np.ndarray], upstream: np.ndarray, block: int) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = step(impl, arrays, upstream, block)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del result
    return peak


def measure(seq: int, args: argparse.Namespace) -> dict[str, float]:
    arrays, upstream = make_inputs(seq, args.dtype)
    plain = step("naive", arrays, upstream, args.block_size)
    flash = step("flash", arrays, upstream, args.block_size)  # also the warm-up (numba compiles here)
    error = max(float(np.abs(f - p).max() / np.abs(p).max()) for f, p in zip(flash, plain))
    del plain, flash
    row = {"seq": seq, "error": error}
    for impl in ("naive", "flash"):
        row[f"{impl}_mb"] = peak_bytes(impl, arrays, upstream, args.block_size) / 2**20
    times, _ = bm.time_interleaved(
        {impl: (lambda impl=impl: step(impl, arrays, upstream, args.block_size)) for impl in ("naive", "flash")},
        repeats=args.repeats,
        warmup=0,
    )
    for impl in ("naive", "flash"):
        row[f"{impl}_s"] = bm.median(times[impl])
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seqs", default="1024,2048,4096", help="sequence lengths (default 1024,2048,4096)")
    p.add_argument("--block-size", type=int, default=256, help="flash's block of queries and keys (default 256)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds (default 3)")
    p.add_argument("--threads", type=int, default=None, help="minigrad.set_num_threads (default: minigrad's)")
    be.add_accel_flags(p)
    args = p.parse_args(argv)
    if args.threads is not None:
        minigrad.set_num_threads(args.threads)
    be.apply_accel(args)
    print("\n".join(be.environment_lines()))
    print(f"batch 1, {HEADS} heads, d_head {D_HEAD}, {args.dtype}, flash block {args.block_size}, forward + backward")
    header = ("seq", "plain MB", "flash MB", "ratio", "plain s", "flash s", "ratio", "max rel diff")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (6, 10, 10, 7, 9, 9, 7, 13))))
    started = time.perf_counter()
    for seq in (int(s) for s in args.seqs.split(",")):
        r = measure(seq, args)
        print(
            f"{seq:>6} {r['naive_mb']:>10.1f} {r['flash_mb']:>10.1f} {r['flash_mb'] / r['naive_mb']:>7.3f} "
            f"{r['naive_s']:>9.3f} {r['flash_s']:>9.3f} {r['flash_s'] / r['naive_s']:>7.2f} {r['error']:>13.1e}",
            flush=True,
        )
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
