"""What does one call cost the CPU on a GPU? CuPy primitives, minigrad's kernels, PyTorch.

    PYTHONPATH=. python benchmarks/cupy_overhead.py [--calls 2000] [--no-torch] [--accel off]

On a GPU a small model's training step is bound by the CPU time spent issuing kernels,
so what matters is not how fast a kernel runs but what its call costs the host. Each
row issues ``--calls`` calls of one primitive on small arrays (so that the GPU keeps up
and the queue never fills), synchronizes once at the end, and prints the host time per
call, the median of 5 such runs. The arrays have
the medium config's sizes where the GPU work stays short (a (2048, 256) activation, the
(32, 8, 64, 64) attention scores). Rows whose API is missing print ``n/a`` and why.
The ``accel.cuda`` rows call minigrad's CUDA kernels (``minigrad.accel.cuda``) directly;
the ``minigrad`` rows run whole ops, with the acceleration on (``--accel on``, the
default) or on the reference path (``--accel off``).

Needs CuPy and a GPU; PyTorch rows need a torch with CUDA.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import bench_env as be
import bench_measure as bm
import numpy as np

import minigrad
import minigrad.functional as F


def per_call_us(fn: Callable[[], object], calls: int, sync: Callable[[], None]) -> float:
    """Median over 5 runs of (time of ``calls`` calls + one synchronize) / calls, in us."""
    for _ in range(min(calls, 200)):  # warm-up: compile, fill the memory pool
        fn()
    sync()
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        runs.append((time.perf_counter() - start) / calls * 1e6)
    return bm.median(runs)


def cupy_rows(cupy: object) -> dict[str, Callable[[], object]]:
    from minigrad.accel import cuda as kernels

    cp = cupy
    f32 = np.float32
    x = cp.random.standard_normal((2048, 256), dtype=f32)
    y = cp.random.standard_normal((2048, 256), dtype=f32)
    out = cp.empty_like(x)
    w = cp.random.standard_normal((256, 256), dtype=f32)
    bias = cp.random.standard_normal(256, dtype=f32)
    qkv = cp.random.standard_normal((32, 64, 3, 8, 32), dtype=f32)
    q, k = qkv[:, :, 0].transpose(0, 2, 1, 3), qkv[:, :, 1].transpose(0, 2, 1, 3)  # heads' views
    scores = cp.empty((32, 8, 64, 64), dtype=f32)
    small = cp.ones((64, 64), dtype=f32)
    # one parameter's Adam update: (p, g, m, v, step size, sqrt of the second bias correction)
    adam = [(w.copy(), cp.ones_like(w), cp.zeros_like(w), cp.zeros_like(w), 1e-3, 1.0)]
    double = cp.ElementwiseKernel("T x", "T y", "y = x * 2", "overhead_double")
    rows: dict[str, Callable[[], object]] = {
        "cupy.empty (2048, 256)": lambda: cp.empty((2048, 256), dtype=f32),
        "x + y (new array)": lambda: x + y,
        "cupy.add(x, y, out=out)": lambda: cp.add(x, y, out=out),
        "out *= 2.0": lambda: out.__imul__(2.0),
        "out += bias (broadcast)": lambda: out.__iadd__(bias),
        "ElementwiseKernel y = 2x": lambda: double(x, out),
        "x.reshape(-1, 128)": lambda: x.reshape(-1, 128),
        "x.sum(axis=-1)": lambda: x.sum(axis=-1),
        "x.sum(axis=0)": lambda: x.sum(axis=0),
        "accel.cuda.layer_norm_forward": lambda: kernels.layer_norm_forward(x, bias, bias, 1e-5),
        "accel.cuda.attention_softmax (in place)": lambda: kernels.attention_softmax(scores, 1.0, None, None),
        "accel.cuda.softmax_forward (32,8,64,64)": lambda: kernels.softmax_forward(scores),
        "accel.cuda.adam_update (256x256)": lambda: kernels.adam_update(adam, 0.9, 0.999, 1e-8),
        "x @ w.T (2048x256x256)": lambda: x @ w.T,
        "small @ small (64x64)": lambda: small @ small,
        "cupy.dot(x, w)": lambda: cp.dot(x, w),
        "cupy.matmul(q, k^T) heads' views": lambda: cp.matmul(q, k.swapaxes(-1, -2)),
        "cupy.matmul(q, k^T, out=scores)": lambda: cp.matmul(q, k.swapaxes(-1, -2), out=scores),
    }
    try:  # cuBLAS called directly: the floor for a 2-D product
        from cupy_backends.cuda.libs import cublas

        handle = cp.cuda.device.get_cublas_handle()
        one, zero = np.array(1.0, f32), np.array(0.0, f32)
        c = cp.empty((2048, 256), dtype=f32)

        def sgemm() -> None:  # row-major c = x @ w^T is column-major c^T = w x^T
            cublas.sgemm(handle, cublas.CUBLAS_OP_T, cublas.CUBLAS_OP_N, 256, 2048, 256, one.ctypes.data,
                         w.data.ptr, 256, x.data.ptr, 256, zero.ctypes.data, c.data.ptr, 256)  # fmt: skip

        sgemm()
        cp.cuda.Device().synchronize()
        err = float(cp.abs(c - x @ w.T).max())
        rows[f"cublas.sgemm direct (max err {err:.1e})"] = sgemm
    except Exception as exc:  # noqa: BLE001 - a row, not a failure
        rows[f"cublas.sgemm direct: n/a ({type(exc).__name__}: {exc})"] = None  # type: ignore[assignment]
    mx = minigrad.tensor(cp.asnumpy(x), device="cuda", requires_grad=True)
    my = minigrad.tensor(cp.asnumpy(y), device="cuda")
    rows["minigrad a + b (graph recorded)"] = lambda: mx + my
    rows["minigrad a + b (no_grad)"] = lambda: _no_grad(lambda: mx + my)
    mw, mb = minigrad.tensor(cp.asnumpy(bias), device="cuda"), minigrad.tensor(cp.asnumpy(bias), device="cuda")
    rows["minigrad F.layer_norm (no_grad)"] = lambda: _no_grad(lambda: F.layer_norm(mx, 256, mw, mb))
    return rows


def _no_grad(fn: Callable[[], object]) -> object:
    with minigrad.no_grad():
        return fn()


def torch_rows(torch: object) -> dict[str, Callable[[], object]]:
    t = torch
    x = t.randn(2048, 256, device="cuda")  # type: ignore[attr-defined]
    y = t.randn(2048, 256, device="cuda")  # type: ignore[attr-defined]
    w = t.randn(256, 256, device="cuda")  # type: ignore[attr-defined]
    bias = t.randn(256, device="cuda")  # type: ignore[attr-defined]
    scores = t.randn(32, 8, 64, 64, device="cuda")  # type: ignore[attr-defined]
    xg = x.clone().requires_grad_()
    F = t.nn.functional  # type: ignore[attr-defined]
    return {
        "torch x + y": lambda: x + y,
        "torch x + y (autograd recorded)": lambda: xg + y,
        "torch x @ w.T": lambda: x @ w.T,
        "torch F.linear(x, w, bias)": lambda: F.linear(x, w, bias),
        "torch F.layer_norm": lambda: F.layer_norm(x, (256,), bias, bias),
        "torch softmax (32,8,64,64)": lambda: t.softmax(scores, -1),  # type: ignore[attr-defined]
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--accel", choices=("on", "off"), default="on", help="for the minigrad rows (default on)")
    args = p.parse_args(argv)
    if not minigrad.is_available("cuda"):
        print("cupy_overhead: needs CuPy and a GPU (minigrad.is_available('cuda') is False)")
        return 1
    import cupy

    be.apply_accel(argparse.Namespace(accel=args.accel, kernel_threads=None, malloc_tuning="off"))  # glibc: untouched
    for line in be.environment_lines():
        print(line)
    print(f"cupy {cupy.__version__}, device {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}")
    print(f"host time per call, us (median of 5 runs of {args.calls} calls, one synchronize each)\n")
    sync = cupy.cuda.Device().synchronize
    for name, fn in cupy_rows(cupy).items():
        print(f"{name:48s} {'n/a' if fn is None else f'{per_call_us(fn, args.calls, sync):8.1f}'}")
    torch = None if args.no_torch else be.import_torch()
    if torch is not None and torch.cuda.is_available():
        print()
        for name, fn in torch_rows(torch).items():
            print(f"{name:48s} {per_call_us(fn, args.calls, torch.cuda.synchronize):8.1f}")
    else:
        print("\n(no torch with CUDA: PyTorch rows skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
