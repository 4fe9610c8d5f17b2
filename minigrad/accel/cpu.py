"""The CPU's kernel set for ``minigrad.accel.ops``: the numba kernels, where they apply.

Each function takes the arrays an accelerated op has and either runs a numba kernel
(``minigrad.accel.numba_kernels``) or declines (None, or False for the in-place ones)
when the arrays are not plain C-contiguous float32/float64 NumPy arrays of one dtype;
the op then runs its reference code. Importing this module imports numba (the ``fast``
extra) but compiles nothing; each kernel compiles on its first call, or loads from
numba's cache.
"""

from __future__ import annotations

import numba
import numpy as np

from . import numba_kernels as K
from . import threads

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


def set_threads(n: int) -> int:
    _wanted[0] = n
    return K.set_threads(n)


def use_in_this_thread() -> None:
    """Give this thread the kernel thread count asked for: numba's setting is per calling
    thread, and a worker thread starts with numba's default (every core)."""
    if K.get_threads() != _wanted[0]:
        K.set_threads(_wanted[0])


def get_threads() -> int:
    return K.get_threads()


_fits = K.supported  # plain C-contiguous float32/float64 NumPy arrays of one dtype (None skipped)


def layer_norm_forward(x2, weight, bias, eps):
    if not _fits(x2, weight, bias) or x2.ndim != 2 or x2.shape[-1] == 0:
        return None
    return K.layer_norm_forward(x2, weight, bias, eps)


def layer_norm_backward(g2, x2, mu, rstd, weight, want_dx, want_dw, want_db):
    if not _fits(g2, x2, mu, rstd, weight) or x2.ndim != 2 or x2.shape[-1] == 0:
        return None
    return K.layer_norm_backward(g2, x2, mu, rstd, weight, want_dx, want_dw, want_db)


def attention_softmax(w, scale, bool_mask, float_mask) -> bool:
    if not _fits(w, float_mask) or w.ndim < 2 or w.shape[-1] == 0:
        return False
    if bool_mask is not None and (type(bool_mask) is not np.ndarray or bool_mask.dtype != np.bool_):
        return False
    K.attention_softmax(w, scale, bool_mask, float_mask)
    return True


def softmax_forward(x):
    if not _fits(x) or x.ndim == 0 or x.shape[-1] == 0:
        return None
    return K.softmax_forward(x)


def softmax_backward(g, w, scale):
    if not _fits(g, w) or g.shape != w.shape or w.ndim == 0 or w.shape[-1] == 0:
        return None
    return K.softmax_backward(g, w, scale)


def bias_relu(out, bias) -> bool:
    if not _fits(out, bias) or out.ndim != 2 or out.shape[-1] == 0:
        return False
    K.bias_relu(out, bias)
    return True


def relu_backward(g2, y2, want_dbias):
    if not _fits(g2, y2) or g2.shape != y2.shape or g2.ndim != 2 or g2.shape[-1] == 0:
        return None
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
    K.adam_update_many(updates, beta1, beta2, eps)
    return True
