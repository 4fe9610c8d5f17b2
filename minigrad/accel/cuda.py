"""The GPU's kernel set for ``minigrad.accel.ops``: CUDA kernels through CuPy.

The kernels' source is ``minigrad/accel/cuda_kernels.py``; it compiles once, on first
use. Each row kernel runs one block of threads per row (layer norm, the attention
softmax and its backward), since on a GPU every separate array expression is a kernel
launch that costs CPU time. Functions decline (None or False) for arrays they do not
take: the op then runs its reference code, in CuPy calls.
"""

from __future__ import annotations

from typing import Any

import cupy
import numpy as np

from . import cuda_kernels

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_compiled: dict[Any, Any] = {}  # (name, dtype) -> kernel; "module" -> the RawModule


def _kernel(name: str, dtype: np.dtype) -> Any:
    """The compiled kernel ``name`` for float32 or float64 (the module compiles once)."""
    kernel = _compiled.get((name, dtype))
    if kernel is None:
        if "module" not in _compiled:
            names = [f"{k}<{t}>" for k in cuda_kernels.KERNELS for t in ("float", "double")]
            _compiled["module"] = cupy.RawModule(code=cuda_kernels.SOURCE, name_expressions=names)
        kernel = _compiled["module"].get_function(f"{name}<{'float' if dtype == np.float32 else 'double'}>")
        _compiled[name, dtype] = kernel
    return kernel


def _rows_fit(*arrays: Any) -> bool:
    """True when the row kernels apply: float32/float64, one dtype, C-contiguous, not
    empty, and no more rows than a grid has blocks."""
    present = [a for a in arrays if a is not None]
    a = present[0]
    if not isinstance(a, cupy.ndarray) or a.dtype not in _FLOATS or a.ndim == 0 or a.size == 0:
        return False
    if a.size // a.shape[-1] >= 2**31:
        return False
    return all(isinstance(b, cupy.ndarray) and b.dtype == a.dtype and b.flags.c_contiguous for b in present)


def _threads(n: int) -> int:
    """Threads per block for rows of n values: a power of two in [32, 256]."""
    threads = 32
    while threads < n and threads < 256:
        threads *= 2
    return threads


def _col_sum(x: Any) -> Any:
    rows, cols = x.shape
    out = cupy.empty(cols, dtype=x.dtype)
    _kernel("col_sum", x.dtype)(((cols + 31) // 32,), (32, 32), (x, out, np.int64(rows), np.int64(cols)))
    return out


def _masking_kernel(kind: str) -> Any:
    """``w = w * scale`` and then -inf where a boolean mask is True, or + a float mask."""
    kernel = _compiled.get(kind)
    if kernel is None:
        if kind == "bool":
            minus_inf = "(T)__longlong_as_double(0xfff0000000000000LL)"
            params, body = "bool m, float64 scale", f"w = m ? {minus_inf} : (T)(w * scale)"
        else:
            params, body = "T m, float64 scale", "w = (T)(w * scale) + m"
        kernel = _compiled[kind] = cupy.ElementwiseKernel(params, "T w", body, f"minigrad_{kind}_mask")
    return kernel


def _softmax_rows(w: Any, scale: float) -> None:
    n = w.shape[-1]
    rows = w.size // n
    _kernel("softmax_rows", w.dtype)((rows,), (_threads(n),), (w, np.int64(rows), np.int32(n), w.dtype.type(scale)))


def attention_softmax(w, scale, bool_mask, float_mask) -> bool:
    if not _rows_fit(w):
        return False
    if bool_mask is not None:  # scale and mask in one elementwise pass (CuPy broadcasts the mask)
        _masking_kernel("bool")(bool_mask, scale, w)
        scale = 1.0
    elif float_mask is not None:
        _masking_kernel("float")(float_mask.astype(w.dtype, copy=False), scale, w)
        scale = 1.0
    _softmax_rows(w, scale)
    return True


def softmax_forward(x):
    if not _rows_fit(x):
        return None
    y = x.copy()
    _softmax_rows(y, 1.0)
    return y


def softmax_backward(g, w, scale):
    g = cupy.ascontiguousarray(g)
    if g.shape != w.shape or not _rows_fit(w, g):
        return None
    n = w.shape[-1]
    rows = w.size // n
    out = cupy.empty_like(w)
    _kernel("softmax_backward_rows", w.dtype)(
        (rows,), (_threads(n),), (g, w, out, np.int64(rows), np.int32(n), w.dtype.type(scale))
    )
    return out


def layer_norm_forward(x, weight, bias, eps):
    affine = [a for a in (weight, bias) if a is not None]
    if x.ndim != 2 or not _rows_fit(x, *affine) or any(a.shape != x.shape[-1:] for a in affine):
        return None
    rows, n = x.shape
    out = cupy.empty_like(x)
    mean = cupy.empty((rows, 1), dtype=x.dtype)
    rstd = cupy.empty_like(mean)
    flags = (1 if weight is not None else 0) | (2 if bias is not None else 0)
    args = (x, weight if weight is not None else x, bias if bias is not None else x, out, mean, rstd,
            np.int64(rows), np.int32(n), x.dtype.type(eps), np.int32(flags))  # fmt: skip
    _kernel("layer_norm_forward", x.dtype)((rows,), (_threads(n),), args)
    return out, mean, rstd


def layer_norm_backward(g, x, mean, rstd, weight, want_dx, want_dw, want_db):
    g = cupy.ascontiguousarray(g)
    arrays = [x, g, mean, rstd] + ([weight] if weight is not None else [])
    if x.ndim != 2 or g.shape != x.shape or mean.size != x.shape[0] or not _rows_fit(*arrays):
        return None
    if weight is not None and weight.shape != x.shape[-1:]:
        return None
    rows, n = x.shape
    dx = cupy.empty_like(x) if want_dx else None
    gxhat = cupy.empty_like(x) if want_dw else None
    flags = (1 if weight is not None else 0) | (2 if want_dx else 0) | (4 if want_dw else 0)
    args = (g, x, mean, rstd, weight if weight is not None else x, dx if want_dx else x,
            gxhat if want_dw else x, np.int64(rows), np.int32(n), np.int32(flags))  # fmt: skip
    _kernel("layer_norm_backward", x.dtype)((rows,), (_threads(n),), args)
    return dx, (_col_sum(gxhat) if want_dw else None), (_col_sum(g) if want_db else None)


def bias_relu(out, bias) -> bool:
    return False  # CuPy's two array expressions are the reference's


def relu_backward(g2, y2, want_dbias):
    return None


def scatter_add(target, index, values) -> bool:
    return False


def adam_update(updates, beta1, beta2, eps) -> bool:
    """Each parameter's update as one elementwise kernel (instead of a dozen launches)."""
    kernel = _compiled.get("adam")
    if kernel is None:
        # p, m and v are both read and written (in-place outputs); the scalars stay double
        kernel = _compiled["adam"] = cupy.ElementwiseKernel(
            "T g, float64 b1, float64 b2, float64 step_size, float64 bc2_sqrt, float64 eps",
            "T p, T m, T v",
            """
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            p = p - step_size * m / (sqrt((double)v) / bc2_sqrt + eps);
            """,
            "minigrad_adam_update",
        )
    for p, g, m, v, step_size, bc2_sqrt in updates:
        kernel(g, beta1, beta2, step_size, bc2_sqrt, eps, p, m, v)
    return True


def bias_add(out, bias):
    """CuPy adds the bias itself (False: the op adds it)."""
    return False


def column_sum(g2):
    return None


def matmul(a, b):
    """CuPy's matmul runs as it is (None: the op multiplies itself)."""
    return None


def matmul_pair(a, b, a2, b2):
    """None: the op runs CuPy's two products one after the other (each fills the GPU)."""
    return None


def matmul_stack(a, b, heads_layout=False):
    return None
