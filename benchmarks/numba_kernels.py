"""Time each numba kernel (``minigrad.accel.numba_kernels``) against its plain NumPy formula.

    PYTHONPATH=. python benchmarks/numba_kernels.py [--rounds 3] [--samples 15] [--only KERNEL ...]

Shapes: those of a training step of the "small" and "medium" benchmark models
(``benchmarks/bench_utils.py``): layer norm (2048, 256); attention softmax (32, 8, 64, 64)
with a key-padding bool mask and its backward; Adam on the small model's 35 parameters
(405,252 elements); bias + ReLU (2048, 1024); scatter-add of 32 x 64 rows into (1000, 128).
float32 throughout, as the models train.

Each cell is the median, in ms per call, of ``--samples`` samples per round, each the
mean of enough calls to last about 2 ms; the rounds alternate NumPy, numba on 1 thread and
numba on 2 threads, so that a change in the machine's load hits all three alike. NumPy runs
on one thread (its elementwise passes always do); the numba kernels use numba's OpenMP
threads (``configure_threading``). The first call of each kernel (compiling, or loading
numba's cache) is made before timing.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable

import numba
import numpy as np

from minigrad.accel import numba_kernels as K
from minigrad.optim.adam import adam_update

F32 = np.float32


def small_model_shapes() -> list[tuple[int, ...]]:
    """The parameters of the small model (d_model 128, d_ff 512, 2 layers, vocab 64, 4 classes)."""
    d, ff = 128, 512
    layer = [(d, d), (d,)] * 4 + [(ff, d), (ff,), (d, ff), (d,)] + [(d,)] * 4  # attention, feed-forward, 2 norms
    return [(64, d)] + layer * 2 + [(4, d), (4,)]


# ---- the NumPy formulas (what the ops compute without the kernels) -----------------------------
def np_layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + eps)
    return (x - mean) * rstd * w + b, mean, rstd


def np_layer_norm_backward(g, x, mean, rstd, w):
    xhat = (x - mean) * rstd
    d = g * w
    dx = rstd * (d - d.mean(axis=-1, keepdims=True) - xhat * (d * xhat).mean(axis=-1, keepdims=True))
    return dx, (g * xhat).sum(axis=0), g.sum(axis=0)


def np_attention_softmax(w, scale, bool_mask):
    w *= scale
    np.copyto(w, -np.inf, where=bool_mask)
    top = np.fmax.reduce(w, axis=-1, keepdims=True)
    dead = top == -np.inf
    w -= np.where(dead, 0, top)
    np.exp(w, out=w)
    w /= np.where(dead, 1, w.sum(axis=-1, keepdims=True))


def np_softmax_backward(g, w, scale):
    return w * (g - (g * w).sum(axis=-1, keepdims=True)) * scale


def np_softmax(x):
    e = np.exp(x - np.fmax.reduce(x, axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def np_adam(updates, beta1=0.9, beta2=0.999, eps=1e-8):
    adam_update(updates, beta1, beta2, eps)  # the reference op's NumPy expressions


def np_bias_relu(out, bias):
    out += bias
    np.maximum(out, 0, out=out)


def np_relu_backward(g, y):
    dx = g * (y > 0)
    return dx, dx.sum(axis=0)


# ---- the cases ----------------------------------------------------------------------------------
def cases() -> list[tuple[str, str, Callable[[], object], Callable[[], object]]]:
    """(kernel, shape, the NumPy formula, the numba kernel), each a call on prepared arrays."""
    rng = np.random.default_rng(0)
    x, g = (1 + rng.standard_normal((2048, 256))).astype(F32), rng.standard_normal((2048, 256)).astype(F32)
    w, b = rng.standard_normal(256).astype(F32), rng.standard_normal(256).astype(F32)
    _, mean, rstd = np_layer_norm(x, w, b)
    scores = (3 * rng.standard_normal((32, 8, 64, 64))).astype(F32)
    padding = rng.random((32, 1, 1, 64)) < 0.2
    weights = scores.copy()
    K.attention_softmax(weights, 0.125, bool_mask=padding)
    dweights = rng.standard_normal(weights.shape).astype(F32)
    updates = []
    for t, shape in enumerate(small_model_shapes(), start=1):
        p, grad, m = (rng.standard_normal(shape).astype(F32) for _ in range(3))
        updates.append((p, grad, m, np.abs(rng.standard_normal(shape)).astype(F32), 1e-3, 0.5 + t / 100))
    np_updates = [tuple(a.copy() for a in u[:4]) + u[4:] for u in updates]
    hidden, bias = rng.standard_normal((2048, 1024)).astype(F32), rng.standard_normal(1024).astype(F32)
    hidden_np, grad_hidden = hidden.copy(), rng.standard_normal((2048, 1024)).astype(F32)
    table, table_np = np.zeros((1000, 128), dtype=F32), np.zeros((1000, 128), dtype=F32)
    index, rows = rng.integers(0, 1000, size=(32, 64)), rng.standard_normal((32, 64, 128)).astype(F32)
    scores_np = scores.copy()
    return [
        ("layer_norm_forward", "(2048, 256)", lambda: np_layer_norm(x, w, b),
         lambda: K.layer_norm_forward(x, w, b, 1e-5)),
        ("layer_norm_backward", "(2048, 256)", lambda: np_layer_norm_backward(g, x, mean, rstd, w),
         lambda: K.layer_norm_backward(g, x, mean, rstd, w, True, True, True)),
        ("attention_softmax", "(32, 8, 64, 64) + bool key padding",
         lambda: np_attention_softmax(scores_np, 0.125, padding), lambda: K.attention_softmax(scores, 0.125, padding)),
        ("softmax_backward", "(32, 8, 64, 64)", lambda: np_softmax_backward(dweights, weights, 0.125),
         lambda: K.softmax_backward(dweights, weights, 0.125)),
        ("softmax_forward", "(32, 8, 64, 64)", lambda: np_softmax(scores), lambda: K.softmax_forward(scores)),
        ("adam_update_many", "35 params, 405,252 elements", lambda: np_adam(np_updates),
         lambda: K.adam_update_many(updates, 0.9, 0.999, 1e-8)),
        ("bias_relu", "(2048, 1024)", lambda: np_bias_relu(hidden_np, bias), lambda: K.bias_relu(hidden, bias)),
        ("relu_backward", "(2048, 1024)", lambda: np_relu_backward(grad_hidden, hidden),
         lambda: K.relu_backward(grad_hidden, hidden, True)),
        ("scatter_add", "(1000, 128) += 32 x 64 rows", lambda: np.add.at(table_np, index, rows),
         lambda: K.scatter_add(table, index, rows)),
    ]  # fmt: skip


def sample_ms(call: Callable[[], object], samples: int) -> list[float]:
    """``samples`` timings, each the mean ms per call of enough calls to last about 2 ms."""
    once = timeit.timeit(call, number=1)
    number = max(1, int(2e-3 / max(once, 1e-7)))
    return [t / number * 1e3 for t in timeit.repeat(call, number=number, repeat=samples)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--only", nargs="+", metavar="KERNEL", help="time only these kernels (names as in the table)")
    args = parser.parse_args()
    layer = K.configure_threading()
    two = min(2, numba.config.NUMBA_NUM_THREADS)
    most = numba.config.NUMBA_NUM_THREADS
    print(f"numba {numba.__version__} ({layer} threads, up to {most}), NumPy {np.__version__}")
    print(f"ms per call, median of {args.rounds} x {args.samples} samples; float32\n")
    columns = ("NumPy", "numba 1", f"numba {two}", "x 1 thr", f"x {two} thr")
    header = f"{'kernel':20s} {'shape':36s} " + " ".join(f"{c:>8s}" for c in columns)
    print(header + "\n" + "-" * len(header))
    for name, shape, numpy_call, numba_call in cases():
        if args.only and name not in args.only:
            continue
        numpy_call(), numba_call()  # compiled (or loaded from the cache) before timing
        times: dict[str, list[float]] = {"numpy": [], "1": [], "2": []}
        for _ in range(args.rounds):
            times["numpy"] += sample_ms(numpy_call, args.samples)
            for n in ("1", "2"):
                K.set_threads(1 if n == "1" else two)
                times[n] += sample_ms(numba_call, args.samples)
        base, one, both = (statistics.median(times[k]) for k in ("numpy", "1", "2"))
        print(f"{name:20s} {shape:36s} {base:8.3f} {one:8.3f} {both:8.3f} {base / one:7.1f}x {base / both:7.1f}x")


if __name__ == "__main__":
    main()
