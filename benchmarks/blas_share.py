"""How much of the step-time ratio is the BLAS library? The projections' products alone.

    PYTHONPATH=. $TORCH_PYTHON benchmarks/blas_share.py --config medium [--threads 1] [--accel off]

A training step of the encoder is mostly the matrix products of its Linear layers (the
q, k, v and output projections, the feed-forward network, the head): forward
``x @ W^T`` and, in backward, ``g @ W`` (the input's gradient) and ``g^T @ x`` (the
weight's). minigrad runs them in NumPy's BLAS (OpenBLAS in NumPy's wheels), PyTorch in
its own (MKL in its CPU wheels). This script replays exactly those products, with each
framework's own shapes, in step order, and times them next to the full steps:

* ``numpy products``: our Linear layers' products (q, k and v are three products of
  d_model columns each), with NumPy;
* ``torch products``: ``torch.nn.TransformerEncoderLayer``'s products (q, k and v are one
  product of 3 * d_model columns: PyTorch packs them), with torch;
* ``numpy products, packed``: PyTorch's shapes with NumPy (what packing q, k and v
  would give minigrad's products);
* the two full steps, as in ``encoder_step.py`` (minigrad with ``--accel on``, the
  default, or ``off``: the projections' products are NumPy's either way).

All five alternate round by round (``bench_measure.time_interleaved``). It prints each
one's median, the ratio of the products alone, the time each step spends outside them
("the rest": step minus products), and the step ratio minigrad would have if its
products ran at PyTorch's speed. The replays run back to back on warm arrays, so they
are a little faster than the same products inside a step (cold caches, threads waking):
the split is an estimate. Not replayed: the attention's batched products (PyTorch runs a
fused attention kernel there, not comparable products); they count in "the rest".
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import bench_env as be
import bench_measure as bm
import bench_utils as bu
import numpy as np

DEFAULT_REPEATS = {"tiny": 100, "small": 30, "medium": 10}


def linear_shapes(cfg: bu.BenchConfig, packed_qkv: bool) -> list[tuple[int, int, int]]:
    """(rows, in, out) of every Linear layer of a step, in forward order."""
    n, d, f = cfg.batch * cfg.seq, cfg.d_model, cfg.d_ff
    qkv = [(n, d, 3 * d)] if packed_qkv else [(n, d, d)] * 3
    layer = [*qkv, (n, d, d), (n, d, f), (n, f, d)]
    return layer * cfg.layers + [(cfg.batch, d, cfg.num_classes)]


def replay(shapes: list[tuple[int, int, int]], matmul: Any, make: Any) -> tuple[Any, int]:
    """A function running the step's products (forward, then backward in reverse), and their FLOPs.

    ``make(shape)`` makes a random array; ``matmul(a, b)`` multiplies, and transposes
    are views (``.T``), as in the frameworks' own Linear layers.
    """
    arrays = [(make((n, i)), make((o, i)), make((n, o))) for n, i, o in shapes]
    flops = sum(3 * 2 * n * i * o for n, i, o in shapes)

    def run() -> None:
        for x, w, _ in arrays:
            matmul(x, w.T)  # out = x @ W^T
        for x, w, g in reversed(arrays):
            matmul(g, w)  # dL/dx = g @ W
            matmul(g.T, x)  # dL/dW = g^T @ x

    return run, flops


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=sorted(bu.CONFIGS), default="medium")
    p.add_argument("--threads", type=int, default=None, help="threads for both (default: what numpy's BLAS uses)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default: by config)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--settle-ms", type=float, default=None, help="as encoder_step.py")
    p.add_argument("--seed", type=int, default=0)
    be.add_accel_flags(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch = be.import_torch()
    if torch is None:
        print("blas_share: needs torch (run it with a Python that has torch, see benchmarks/README.md)")
        return 1
    cfg = bu.CONFIGS[args.config]
    repeats = args.repeats if args.repeats is not None else DEFAULT_REPEATS[args.config]
    threads, how = be.resolve_threads(args.threads)
    be.apply_accel(args)
    torch.set_num_threads(threads)
    print(f"blas_share: {cfg.describe()}; float32, minigrad --accel {args.accel}")
    for line in be.environment_lines(torch):
        print(line)
    print(f"threads: numpy BLAS {threads} [{how}], torch intra-op {torch.get_num_threads()}")

    batch = bu.make_batch(cfg, args.seed)
    model, opt = bu.build_minigrad(cfg, "cpu", args.seed)
    mg = (model, opt, bu.minigrad_inputs(batch))
    tmodel, topt = bu.build_torch(torch, cfg, model)
    th = (tmodel, topt, bu.torch_inputs(torch, batch))

    rng = np.random.default_rng(args.seed)

    def make(shape: tuple[int, int]) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    np_products, np_flops = replay(linear_shapes(cfg, packed_qkv=False), np.matmul, make)
    np_packed, _ = replay(linear_shapes(cfg, packed_qkv=True), np.matmul, make)
    torch_products, torch_flops = replay(
        linear_shapes(cfg, packed_qkv=True), torch.matmul, lambda shape: torch.from_numpy(make(shape))
    )
    fns = {
        "minigrad step": lambda: bu.minigrad_step(*mg),
        "pytorch step": lambda: bu.torch_step(torch, *th),
        "numpy products": np_products,
        "torch products": torch_products,
        "numpy products, packed": np_packed,
    }
    settle = bm.settle_seconds(threads, args.settle_ms)
    print(f"timing {repeats} rounds after {args.warmup} warmup, the five alternating")
    times, _ = bm.time_interleaved(fns, repeats, args.warmup, settle=settle)
    ms = {name: bm.median(ts) * 1e3 for name, ts in times.items()}

    print()
    print(f"{'':<22} {'median ms':>10} {'GFLOP/s':>8}")
    rows = (
        ("minigrad step", None),
        ("pytorch step", None),
        ("numpy products", np_flops),
        ("torch products", torch_flops),
        ("numpy products, packed", np_flops),
    )
    for name, flops in rows:
        rate = f"{flops / ms[name] / 1e6:8.1f}" if flops else f"{'':>8}"
        print(f"{name:<22} {ms[name]:>10.2f} {rate}")
    rest_mg = ms["minigrad step"] - ms["numpy products"]
    rest_th = ms["pytorch step"] - ms["torch products"]
    step_ratio = ms["minigrad step"] / ms["pytorch step"]
    print()
    print(f"step ratio minigrad/pytorch:               {step_ratio:.2f}x")
    print(f"products alone, numpy/torch:               {ms['numpy products'] / ms['torch products']:.2f}x")
    print(
        f"the rest of the step (step - products):    minigrad {rest_mg:.2f} ms, pytorch {rest_th:.2f} ms, "
        f"ratio {rest_mg / rest_th:.2f}x"
    )
    print(
        f"products' share of the step:               minigrad {ms['numpy products'] / ms['minigrad step']:.0%}, "
        f"pytorch {ms['torch products'] / ms['pytorch step']:.0%}"
    )
    print(f"step ratio with torch's products instead:  {(rest_mg + ms['torch products']) / ms['pytorch step']:.2f}x")
    print(f"numpy products, packed/unpacked:           {ms['numpy products, packed'] / ms['numpy products']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
