"""Matrix products on numba's threads: NumPy's own BLAS, one call per thread on a slice.

NumPy's BLAS (OpenBLAS in its wheels) threads each product itself, and its idle threads
spin for a while after each one, on the cores numba's kernels would use. With the
products cut into slices that numba's threads hand to the BLAS one thread each, every
pass of a step (products and kernels) runs on one pool of threads, as PyTorch's OpenMP
pool does. :func:`load` finds ``cblas_sgemm`` and ``cblas_dgemm`` in the OpenBLAS NumPy
loaded (threadpoolctl names its file); when it cannot, the products stay NumPy's. The loops
(``minigrad/accel/numba_gemm_loops.py``) take the two functions' addresses as arguments,
so numba caches them as it does the other kernels.

The slices: the output's rows (or columns, when it has more of them) in as many parts as
there are kernel threads, fixed by the shapes and that count alone, so a product gives the
same bits every time for a given thread count. :func:`matmul_pair` runs two products of
the same cost side by side (a Linear layer's two gradients), half of the threads slicing
each: on two threads each product is one whole BLAS call, and no thread waits for the
other between the two.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np

from . import numba_gemm_loops, numba_tiles

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_state: dict[str, Any] = {"loaded": None}
MIN_WORK = 1 << 21  # m * n * k (summed over a stack): below this, NumPy's matmul on one thread


def load() -> str | None:
    """Find NumPy's cblas (once); None when the products can run, else why not."""
    if _state["loaded"] is not None:
        return _state["loaded"] or None
    why = _load()
    _state["loaded"] = why or ""
    return why


def _load() -> str | None:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return "threadpoolctl is not installed"
    here = os.path.dirname(os.path.dirname(np.__file__))  # NumPy's own BLAS sits in site-packages/numpy.libs
    blas = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    blas.sort(key=lambda lib: not lib.filepath.startswith(os.path.join(here, "numpy")))
    if not blas or blas[0].internal_api != "openblas":
        return "NumPy's BLAS is not OpenBLAS"
    lib = blas[0]
    handle = ctypes.CDLL(lib.filepath)
    prefix = getattr(lib, "prefix", "")
    names = [(f"{p}cblas_sgemm{s}", f"{p}cblas_dgemm{s}") for p in ("scipy_", "") for s in ("64_", "")]
    for sname, dname in names:
        if hasattr(handle, sname) and hasattr(handle, dname):
            break
    else:
        return f"no cblas_sgemm in {lib.filepath}"
    int64 = "64_" in sname or prefix.endswith("64_")
    _state["set_threads"] = lib.set_num_threads
    _state["get_threads"] = lib.get_num_threads
    sgemm, dgemm = (ctypes.cast(getattr(handle, name), ctypes.c_void_p).value for name in (sname, dname))
    _state["fns"] = (sgemm, dgemm, 64 if int64 else 32)
    return None


def blas_threads(n: int | None = None) -> int:
    """NumPy's BLAS thread count; with ``n``, set it first."""
    if n is not None:
        _state["set_threads"](n)
    return _state["get_threads"]()


def _operand(a: np.ndarray) -> tuple[int, int] | None:
    """(transposed, leading dimension) for a 2-D array BLAS can read as it is, else None."""
    item = a.itemsize
    s0, s1 = a.strides
    if s1 == item and s0 >= max(1, a.shape[1]) * item and s0 % item == 0:
        return 0, s0 // item
    if s0 == item and s1 >= max(1, a.shape[0]) * item and s1 % item == 0:
        return 1, s1 // item
    return None


def _floats(a: Any, b: Any) -> bool:
    """NumPy arrays of one float dtype, float32 or float64."""
    return type(a) is np.ndarray and type(b) is np.ndarray and a.dtype == b.dtype and a.dtype in _FLOATS


def worth_threads(a: Any, b: Any) -> bool:
    """Whether a @ b (2-D, or stacks of one shape) has enough work, m * n * k, for the threads."""
    return a.ndim >= 2 and a.size * b.shape[-1] >= MIN_WORK


def _blas_operands(a: Any, b: Any) -> tuple | None:
    """(transposed, leading dimension) of a and b for a @ b of 2-D float32/float64 NumPy
    arrays of one dtype that BLAS can read as they are, else None."""
    if a.ndim != 2 or b.ndim != 2 or not _floats(a, b) or a.shape[1] != b.shape[0]:
        return None
    oa, ob = _operand(a), _operand(b)
    return None if oa is None or ob is None else (oa, ob)


def matmul(a: np.ndarray, b: np.ndarray, parts: int, out: np.ndarray | None = None) -> np.ndarray | None:
    """a @ b for 2-D float32/float64 NumPy arrays of one dtype, on ``parts`` threads; None
    when they do not fit (the caller then multiplies with NumPy)."""
    ops = _blas_operands(a, b)
    if ops is None:
        return None
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    numba_gemm_loops.gemm(_state["fns"], a, *ops[0], b, *ops[1], out, max(1, parts))
    return out


def matmul_pair(a: np.ndarray, b: np.ndarray, a2: np.ndarray, b2: np.ndarray, parts: int) -> tuple | None:
    """(a @ b, a2 @ b2) at once, each on half of ``parts`` threads (an even count of at least
    two); None when they do not fit. For two products of the same cost, a Linear layer's
    gradients: on two threads each runs whole, as one BLAS call."""
    ops, ops2 = _blas_operands(a, b), _blas_operands(a2, b2)
    if ops is None or ops2 is None or a.dtype != a2.dtype or parts < 2 or parts % 2:
        return None
    c, c2 = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype), np.empty((a2.shape[0], b2.shape[1]), dtype=a.dtype)
    numba_gemm_loops.gemm_pair(_state["fns"], a, *ops[0], b, *ops[1], c, a2, *ops2[0], b2, *ops2[1], c2, parts)
    return c, c2


def matmul_stack(a: np.ndarray, b: np.ndarray, parts: int, heads_layout: bool = False) -> np.ndarray | None:
    """a @ b for stacks (..., m, k) @ (..., k, n) with the same 1 or 2 leading axes and one
    float dtype, the stack split over ``parts`` threads; None when they do not fit.

    ``heads_layout`` (4-D only): the (B, H, m, n) result is a view of a C-contiguous
    (B, m, H, n) array, the layout in which merging the heads, (B, m, H * n), is a view
    instead of a copy (attention's output, and the gradients of q, k and v)."""
    if a.ndim != b.ndim or a.ndim not in (3, 4) or not _floats(a, b):
        return None
    if a.shape[-1] != b.shape[-2] or a.shape[:-2] != b.shape[:-2]:
        return None
    a4, b4 = (a[None], b[None]) if a.ndim == 3 else (a, b)
    oa, ob = _operand(a4[0, 0]), _operand(b4[0, 0])
    if oa is None or ob is None:
        return None
    m, n = a.shape[-2], b.shape[-1]
    if heads_layout and a.ndim == 4:
        out = np.empty((a.shape[0], m, a.shape[1], n), dtype=a.dtype).transpose(0, 2, 1, 3)
        ldc = a.shape[1] * n
    else:
        out, ldc = np.empty(a.shape[:-1] + (n,), dtype=a.dtype), n
    out4 = out if out.ndim == 4 else out[None]
    if numba_tiles.fits(m, a.shape[-1], n, a.itemsize):
        numba_tiles.stack_product(a4, b4, out4, max(1, parts))
    else:
        numba_gemm_loops.gemm_stack(_state["fns"], a4, *oa, b4, *ob, out4, ldc, max(1, parts))
    return out
