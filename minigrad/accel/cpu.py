"""The CPU's kernel set for ``minigrad.accel.ops``: the numba kernels, where they apply.

Each function takes the arrays an accelerated op has and either runs a numba kernel
(``minigrad.accel.numba_kernels``) or declines (None, or False for the in-place ones)
when the arrays are not plain C-contiguous float32/float64 NumPy arrays of one dtype;
the op then runs its reference code. FlashAttention's block loops
(``minigrad.accel.numba_flash``) take any float32/float64 NumPy arrays of one dtype and
split the heads over minigrad's threads. Importing this module imports numba (the
``fast`` extra) but compiles nothing; each kernel compiles on its first call, or loads
from numba's cache.
"""

from __future__ import annotations

from threading import get_ident

import numba
import numpy as np

from . import numba_add, numba_flash, numba_gemm, numba_gemm_loops, threads
from . import numba_kernels as K

_checked: list[list[str]] = []  # the self-check's failures, once it ran


def version() -> str:
    return numba.__version__


def check() -> list[str]:
    """Set up numba's threads, then run every kernel's self-check once; the failures."""
    if not _checked:
        K.configure_threading()
        set_threads(max(2, threads.get_num_threads()))  # the self-check covers the rows split over threads too
        _checked.append(K.self_check())
    return _checked[0]


_wanted = [1]  # the kernel thread count asked for (numba keeps one per calling thread)
_asked: dict[int, int] = {}  # Python thread -> the kernel thread count asked for in it
_actual: dict[int, int] = {}  # Python thread -> numba's count in it right now
SMALL = 1 << 15  # elements: below this a kernel runs on the calling thread alone


def set_threads(n: int) -> int:
    _wanted[0] = n
    return use_in_this_thread(n)


def use_in_this_thread(n: int | None = None) -> int:
    """Give this thread ``n`` kernel threads (default: the count asked for): numba's setting
    is per calling thread, and a worker thread starts with numba's default (every core)."""
    me = get_ident()
    _asked[me] = _actual[me] = K.set_threads(_wanted[0] if n is None else n)
    return _asked[me]


def _here() -> int:
    """The kernel thread count asked for in this Python thread."""
    me = get_ident()
    if me not in _asked:
        use_in_this_thread()
    return _asked[me]


def _run_on(n: int) -> None:
    """numba's count in this thread for the next kernel (set only when it changes)."""
    me = get_ident()
    if _actual[me] != n:
        _actual[me] = K.set_threads(n)


def _sized(size: int) -> None:
    """Run the next kernel on this thread's count, or on the calling thread alone for a small
    array (waking the other threads would cost more than they save)."""
    _run_on(_here() if size >= SMALL else 1)


def get_threads() -> int:
    return _here()


_products: list = [False]  # [on, NumPy's BLAS thread count before] while the products run on numba's threads


def use_thread_products(on: bool) -> str | None:
    """Run the accelerated ops' matrix products as slices on numba's threads, one BLAS
    thread each, and hold NumPy's own BLAS to one thread (process-wide); None when done,
    else why not (the products then stay NumPy's)."""
    if not on:
        if _products[0]:
            numba_gemm.blas_threads(_products[1])
        _products[:] = [False]
        return None
    why = numba_gemm.load()
    if why is None and not _products[0]:
        _products[:] = [True, numba_gemm.blas_threads()]  # NumPy's BLAS count, given back when turned off
        numba_gemm.blas_threads(1)
    return why


def _split_threads() -> int:
    """This thread's kernel thread count, set in numba for the next kernel, when it is two or
    more; else 0 (the caller then leaves the work to NumPy)."""
    n = _here()
    if n < 2:
        return 0
    _run_on(n)
    return n


def _product_threads(a, b) -> int:
    """The threads a @ b is split over (numba's count set to it), or 0: NumPy's matmul runs it."""
    if not _products[0] or not numba_gemm.worth_threads(a, b):
        return 0
    return _split_threads()


def matmul(a, b):
    """a @ b for 2-D arrays on numba's threads, or None (NumPy's matmul then)."""
    n = _product_threads(a, b)
    return numba_gemm.matmul(a, b, n) if n else None


def matmul_pair(a, b, a2, b2):
    """(a @ b, a2 @ b2) for two 2-D products of the same cost, at once on numba's threads
    (half on each), or None (the op then runs them one after the other)."""
    n = _product_threads(a, b)  # the second costs the same, so it is worth the threads too
    return numba_gemm.matmul_pair(a, b, a2, b2, n) if n else None


def matmul_stack(a, b, heads_layout=False):
    """a @ b for stacks of matrices on numba's threads, or None (``numba_gemm.matmul_stack``)."""
    n = _product_threads(a, b)
    return numba_gemm.matmul_stack(a, b, n, heads_layout) if n else None


_fits = K.supported  # plain C-contiguous float32/float64 NumPy arrays of one dtype (None skipped)


def layer_norm_forward(x2, weight, bias, eps):
    if not _fits(x2, weight, bias) or x2.ndim != 2 or x2.shape[-1] == 0:
        return None
    _sized(x2.size)
    return K.layer_norm_forward(x2, weight, bias, eps)


def layer_norm_backward(g2, x2, mu, rstd, weight, want_dx, want_dw, want_db):
    if not _fits(g2, x2, mu, rstd, weight) or x2.ndim != 2 or x2.shape[-1] == 0:
        return None
    _sized(x2.size)
    return K.layer_norm_backward(g2, x2, mu, rstd, weight, want_dx, want_dw, want_db)


def attention_softmax(w, scale, bool_mask, float_mask) -> bool:
    if not _fits(w, float_mask) or w.ndim < 2 or w.shape[-1] == 0:
        return False
    if bool_mask is not None and (type(bool_mask) is not np.ndarray or bool_mask.dtype != np.bool_):
        return False
    _sized(w.size)
    K.attention_softmax(w, scale, bool_mask, float_mask)
    return True


def softmax_forward(x):
    if not _fits(x) or x.ndim == 0 or x.shape[-1] == 0:
        return None
    _sized(x.size)
    return K.softmax_forward(x)


def softmax_backward(g, w, scale):
    if not _fits(g, w) or g.shape != w.shape or w.ndim == 0 or w.shape[-1] == 0:
        return None
    _sized(w.size)
    return K.softmax_backward(g, w, scale)


def bias_relu(out, bias) -> bool:
    if not _fits(out, bias) or out.ndim != 2 or out.shape[-1] == 0:
        return False
    _sized(out.size)
    K.bias_relu(out, bias)
    return True


def bias_add(out, bias) -> bool:
    """out += bias in place (out (rows, n), bias (n,)), or False when they do not fit."""
    if not _fits(out, bias) or out.ndim != 2 or bias.shape != out.shape[-1:] or out.shape[-1] == 0:
        return False
    _sized(out.size)
    numba_gemm_loops.bias_add(out, bias)
    return True


def column_sum(g2):
    """The sum of g2's rows, or None when it does not fit."""
    if not _fits(g2) or g2.ndim != 2 or 0 in g2.shape:
        return None
    _sized(g2.size)
    return numba_gemm_loops.column_sum(g2)


def add(a, b):
    """a + b on the kernel threads, for C-contiguous float arrays of one shape and dtype with at
    least SMALL elements; None otherwise (NumPy's add on one thread is as fast there)."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or a.size < SMALL or a.shape != b.shape:
        return None
    if a.dtype != b.dtype or a.dtype not in K._FLOATS or not (a.flags.c_contiguous and b.flags.c_contiguous):
        return None
    n = _split_threads()
    if not n:
        return None
    out = np.empty(a.shape, dtype=a.dtype)
    numba_add.add(a, b, out, n)
    return out


def relu_backward(g2, y2, want_dbias):
    if not _fits(g2, y2) or g2.shape != y2.shape or g2.ndim != 2 or g2.shape[-1] == 0:
        return None
    _sized(g2.size)
    return K.relu_backward(g2, y2, want_dbias)


def scatter_add(target, index, values) -> bool:
    if not _fits(target, values) or target.ndim < 2 or type(index) is not np.ndarray or index.dtype.kind not in "iu":
        return False
    if values.shape != index.shape + target.shape[1:]:
        return False
    K.scatter_add(target, index, values)
    return True


def adam_update(updates, beta1, beta2, eps) -> bool:
    """Every update of the list, or False (then none was made) when one does not fit."""
    if not all(_fits(p, m, v) and _fits(g) and g.dtype == p.dtype and g.shape == p.shape for p, g, m, v, *_ in updates):
        return False
    _sized(max(p.size for p, *_ in updates))
    K.adam_update_many(updates, beta1, beta2, eps)
    return True


# ---- FlashAttention: numba_flash's block loops, the heads split over the threads ----------------
def _heads(x):
    """(..., seq, d) -> a C-contiguous (R, seq, d) stack of heads."""
    return np.ascontiguousarray(x.reshape((-1,) + x.shape[-2:]))


def _flash_masks(bool_mask, float_mask, lead):
    """Each mask as (R or 1, rows or 1, keys or 1), for numba_flash's blocks."""
    out = []
    for mask in (bool_mask, float_mask):
        if mask is not None:
            tail = mask.shape[-2:]
            if all(n == 1 for n in mask.shape[:-2]):
                mask = mask.reshape((1,) + tail)
            else:
                mask = np.broadcast_to(mask, lead + tail).reshape((-1,) + tail)
        out.append(mask)
    return tuple(out)


def _flash_fits(bool_mask, *arrays):
    """NumPy float32/float64 arrays of one dtype (None skipped), and a NumPy boolean mask or None."""
    present = [a for a in arrays if a is not None]
    if bool_mask is not None and type(bool_mask) is not np.ndarray:
        return False
    return all(type(a) is np.ndarray and a.dtype == present[0].dtype and a.dtype in K._FLOATS for a in present)


def _split_heads(job, count):
    """``job(lo, hi)`` over the heads: split over minigrad's threads, with NumPy's BLAS held to
    one thread meanwhile (two threads' products each asking for every core slow both down)."""
    if not threads.allowed() or min(threads.get_num_threads(), count) < 2:
        return job(0, count)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return job(0, count)
    with threadpool_limits(limits=1, user_api="blas"):
        threads.run_jobs(job, count)


def flash_forward(q, k, v, float_mask, bool_mask, scale, causal, block):
    """(O, L) of FlashAttention, or None when the arrays do not fit."""
    if not _flash_fits(bool_mask, q, k, v, float_mask):
        return None
    lead = q.shape[:-2]
    qh, kh, vh = _heads(q), _heads(k), _heads(v)
    masks = _flash_masks(bool_mask, float_mask, lead)
    out = np.zeros(qh.shape[:-1] + vh.shape[-1:], dtype=q.dtype)
    lse = np.zeros(qh.shape[:-1], dtype=q.dtype)

    def job(lo, hi):
        numba_flash.forward(qh, kh, vh, out, lse, scale, causal, block, masks, lo, hi)

    _split_heads(job, qh.shape[0])
    return out.reshape(lead + out.shape[-2:]), lse.reshape(lead + (q.shape[-2], 1))


def flash_backward(q, k, v, out, lse, g, float_mask, bool_mask, scale, causal, block):
    """(dq, dk, dv) of FlashAttention, or None when the arrays do not fit."""
    if not _flash_fits(bool_mask, q, k, v, out, lse, g, float_mask):
        return None
    lead = q.shape[:-2]
    qh, kh, vh, oh, gh = _heads(q), _heads(k), _heads(v), _heads(out), _heads(g)
    lh = np.ascontiguousarray(lse.reshape(qh.shape[:-1]))
    masks = _flash_masks(bool_mask, float_mask, lead)
    dq, dk, dv = np.zeros_like(qh), np.zeros_like(kh), np.zeros_like(vh)

    def job(lo, hi):
        numba_flash.backward(qh, kh, vh, oh, lh, gh, dq, dk, dv, scale, causal, block, masks, lo, hi)

    _split_heads(job, qh.shape[0])
    return dq.reshape(q.shape), dk.reshape(k.shape), dv.reshape(v.shape)
