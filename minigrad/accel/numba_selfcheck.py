"""The self-check of the numba kernels: each kernel against its plain NumPy formula.

``minigrad.accel.numba_kernels.self_check`` calls :func:`run` with its table of kernels.
The formulas here are written from the kernels' docstrings, as the NumPy ops compute them
(float32 data in float32), independently of the compiled loops. A kernel that gives
NumPy's bits must give them exactly (even the sign of a zero and where the NaNs are); the
others may differ by 1e-12 (float64) or 1e-5 (float32), relative to max(|NumPy's value|, 1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..optim.adam import adam_update

ROWS = (1, 3, 17, 64)
TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
BITS = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}

# what a check yields: (which output, the kernel's array, NumPy's array, whether the bits must agree)
Comparison = tuple[str, Any, Any, bool]


def run(kernels: dict[str, Callable[..., Any]], big: int) -> list[str]:
    """Every check of ``CHECKS`` with ``kernels[name]``, for each dtype and row count; the
    failures. ``big``: a parameter size from which Adam splits its elements over threads."""
    failures = []
    for name, check in CHECKS.items():
        for dtype in TOLERANCE:
            for rows in ROWS:
                case = f"{name} {dtype} rows={rows}"
                rng = np.random.default_rng([rows, dtype.itemsize])
                try:
                    for output, got, want, exact in check(kernels[name], dtype, rows, rng, big):
                        error = _error(got, want, exact)
                        allowed = 0.0 if exact else TOLERANCE[dtype]
                        if not error <= allowed:
                            failures.append(f"{case} ({output}): max error {error:.3g} (allowed {allowed:g})")
                except Exception as exc:  # noqa: BLE001 - a kernel that raises is a failure to report
                    failures.append(f"{case}: raised {type(exc).__name__}: {exc}")
    return failures


def _error(got: Any, want: Any, exact: bool) -> float:
    """0 when the arrays agree (bit for bit when exact), else the largest difference relative
    to max(|want|, 1); inf for another shape or dtype, or a NaN where the other has none."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or got.dtype != want.dtype:
        return float("inf")
    if exact:
        differ = got.view(BITS[got.dtype]) != want.view(BITS[want.dtype])
        if not differ.any():
            return 0.0
        with np.errstate(invalid="ignore"):
            gap = np.abs(got[differ].astype(np.float64) - want[differ])
        return float(np.nan_to_num(gap, nan=np.inf).max()) or float(np.finfo(got.dtype).tiny)  # -0 vs 0: tiny
    same = (got == want) | (np.isnan(got) & np.isnan(want))  # equal infinities and NaNs count 0
    with np.errstate(invalid="ignore"):
        gap = np.abs(got.astype(np.float64) - want) / np.maximum(np.abs(want.astype(np.float64)), 1.0)
    return float(np.nan_to_num(np.where(same, 0.0, gap), nan=np.inf).max(initial=0.0))


def _softmax(s: np.ndarray, dead_rows_zero: bool) -> np.ndarray:
    """exp(s - max) / sum along the last axis (NaNs skipped by the max); rows whose max is -inf
    become 0 (their NaNs stay) when dead_rows_zero."""
    top = np.fmax.reduce(s, axis=-1, keepdims=True)
    dead = (top == -np.inf) & dead_rows_zero
    with np.errstate(invalid="ignore"):
        e = np.exp(s - np.where(dead, 0, top).astype(s.dtype))
        return e / np.where(dead, 1, e.sum(axis=-1, keepdims=True)).astype(s.dtype)


def _layer_norm(x: np.ndarray, w: Any, b: Any, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + eps)
    y = (x - mean) * rstd
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y, mean, rstd


def _adam(p, g, m, v, step_size, bc2_sqrt, beta1=0.9, beta2=0.999, eps=1e-8) -> None:
    """The reference update, ``minigrad.optim.adam.adam_update``, in place."""
    adam_update([(p, g, m, v, step_size, bc2_sqrt)], beta1, beta2, eps)


def _check_layer_norm_forward(kernel, dtype, rows, rng, big) -> Iterator[Comparison]:
    x = (2 + 3 * rng.standard_normal((rows, 37))).astype(dtype)
    w, b = rng.standard_normal(37).astype(dtype), rng.standard_normal(37).astype(dtype)
    for label, weight, bias in (("affine", w, b), ("no affine", None, None)):
        got, want = kernel(x, weight, bias, 1e-5), _layer_norm(x, weight, bias, 1e-5)
        for output, a, b in zip(("y", "mean", "rstd"), got, want):
            yield f"{label} {output}", a, b, False


def _check_layer_norm_backward(kernel, dtype, rows, rng, big) -> Iterator[Comparison]:
    x = (2 + 3 * rng.standard_normal((rows, 37))).astype(dtype)
    g, w = rng.standard_normal((rows, 37)).astype(dtype), rng.standard_normal(37).astype(dtype)
    _, mean, rstd = _layer_norm(x, None, None, 1e-5)
    xhat = (x - mean) * rstd
    for label, weight in (("weight", w), ("no weight", None)):
        dxhat = g if weight is None else g * weight
        dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True) - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
        got = kernel(g, x, mean, rstd, weight, True, True, True)
        for output, a, b in zip(("dx", "dw", "db"), got, (dx, (g * xhat).sum(axis=0), g.sum(axis=0))):
            yield f"{label} {output}", a, b, False


def _check_attention_softmax(kernel, dtype, rows, rng, big) -> Iterator[Comparison]:
    scores = (3 * rng.standard_normal((2, rows, 19))).astype(dtype)
    padding = rng.random((2, 1, 19)) < 0.3
    padding[1] = True  # batch entry 1: every key masked
    causal = np.triu(np.full((rows, 19), -np.inf), 1).astype(dtype)
    causal[0] = -np.inf  # query 0: every key masked
    s = scores * dtype.type(0.7)
    cases = {
        "no mask": ({}, s),
        "bool key padding": ({"bool_mask": padding}, np.where(padding, dtype.type(-np.inf), s)),
        "float causal": ({"float_mask": causal}, s + causal),
    }
    for label, (kwargs, masked) in cases.items():
        got = scores.copy()
        kernel(got, 0.7, **kwargs)
        yield label, got, _softmax(masked, dead_rows_zero=True), False


def _check_softmax_forward(kernel, dtype, rows, rng, big) -> Iterator[Comparison]:
    x = (3 * rng.standard_normal((rows, 19))).astype(dtype)
    yield "y", kernel(x), _softmax(x, dead_rows_zero=False), False


def _check_softmax_backward(kernel, dtype, rows, rng, big) -> Iterator[Comparison]:
    w = _softmax(rng.standard_normal((rows, 19)).astype(dtype), dead_rows_zero=False)
    g = rng.standard_normal((rows, 19)).astype(dtype)
    yield "ds", kernel(g, w, 0.7), w * (g - (g * w).sum(axis=-1, keepdims=True)) * 0.7, False


def _check_bias_relu(kernel, dtype, rows, rng, big) -> Iterator[Comparison]:
    h = rng.standard_normal((rows, 33)).astype(dtype)
    h[0, :3] = np.nan, -0.0, -np.inf
    b = rng.standard_normal(33).astype(dtype)
    for label, bias, want in (("bias", b, np.maximum(h + b, 0)), ("no bias", None, np.maximum(h, 0))):
        got = h.copy()
        kernel(got, bias)
        yield label, got, want, True


def _check_relu_backward(kernel, dtype, rows, rng, big) -> Iterator[Comparison]:
    y = np.maximum(rng.standard_normal((rows, 2, 33)), 0).astype(dtype)
    g = rng.standard_normal((rows, 2, 33)).astype(dtype)
    y[0, 0, :2], g[0, 0, 2:4] = np.nan, np.inf  # y NaN: no gradient; g inf where y is 0: NaN
    y[0, 0, 3] = 0
    dx, dbias = kernel(g, y, True)
    with np.errstate(invalid="ignore"):
        want = g * (y > 0)
    yield "dx", dx, want, True
    yield "dbias", dbias, want.sum(axis=(0, 1)), False


def _adam_case(dtype, shape, rng, t):
    p, g, m = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    v = np.abs(rng.standard_normal(shape)).astype(dtype)
    return p, g, m, v, 1e-3 / (1 - 0.9**t), (1 - 0.999**t) ** 0.5


def _check_adam_update(kernel, dtype, rows, rng, big) -> Iterator[Comparison]:
    p, g, m, v, step_size, bc2_sqrt = _adam_case(dtype, (rows, big // 16 + 7), rng, 3)  # 64 rows: over `big`
    want = [a.copy() for a in (p, g, m, v)]
    kernel(p, g, m, v, step_size, bc2_sqrt, 0.9, 0.999, 1e-8)
    _adam(*want, step_size, bc2_sqrt)
    yield from zip("pgmv", (p, g, m, v), want, (True,) * 4)


def _check_adam_update_many(kernel, dtype, rows, rng, big) -> Iterator[Comparison]:
    other = np.dtype(np.float64 if dtype == np.float32 else np.float32)
    cases = [(dtype, (rows, 5)), (other, (7,)), (dtype, (rows, 3, 2))]
    updates = [_adam_case(d, shape, rng, t) for t, (d, shape) in enumerate(cases, start=1)]
    wants = [[a.copy() for a in u[:4]] for u in updates]
    kernel(updates, 0.9, 0.999, 1e-8)
    for i, (update, want) in enumerate(zip(updates, wants)):
        _adam(*want, *update[4:])
        yield from zip((f"parameter {i} {name}" for name in "pgmv"), update[:4], want, (True,) * 4)


def _check_scatter_add(kernel, dtype, rows, rng, big) -> Iterator[Comparison]:
    target = rng.standard_normal((9, 70)).astype(dtype)
    index = rng.integers(-9, 9, size=(rows, 3))
    values = rng.standard_normal((rows, 3, 70)).astype(dtype)
    want = target.copy()
    np.add.at(want, index, values)
    kernel(target, index, values)
    yield "target", target, want, True


CHECKS = {
    "layer_norm_forward": _check_layer_norm_forward,
    "layer_norm_backward": _check_layer_norm_backward,
    "attention_softmax": _check_attention_softmax,
    "softmax_forward": _check_softmax_forward,
    "softmax_backward": _check_softmax_backward,
    "bias_relu": _check_bias_relu,
    "relu_backward": _check_relu_backward,
    "adam_update": _check_adam_update,
    "adam_update_many": _check_adam_update_many,
    "scatter_add": _check_scatter_add,
}
