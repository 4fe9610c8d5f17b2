"""Plain NumPy versions of the backend's single-kernel hooks (``Backend.softmax_rows``,
``softmax_backward``, ``layer_norm_forward``, ``layer_norm_backward``).

The NumPy backend runs them as C loops when it can compile them (``minigrad.native``;
otherwise the ops compose the same formulas from array calls); the CuPy backend runs each
as one CUDA kernel. These references are written from the hooks' docstrings,
independently of all three, so that

* on the CPU, tests can install them on the NumPy backend and prove that the ops call
  the hooks correctly (arguments, flags, shapes) and get the CPU path's values and
  gradients (``tests/test_fused_kernel_hooks.py``);
* the C kernels (``tests/test_native.py``) and, on a GPU, the CUDA kernels
  (``tests/test_cupy.py``) are compared with them.
"""

from __future__ import annotations

import numpy as np


def softmax_rows(w, scale=1.0, bool_mask=None, float_mask=None):
    s = np.asarray(w) * scale
    if bool_mask is not None:
        s = np.where(np.asarray(bool_mask), -np.inf, s)
    elif float_mask is not None:
        s = s + np.asarray(float_mask)
    m = np.fmax.reduce(s, axis=-1, keepdims=True)
    dead = m == -np.inf  # every entry masked: the row becomes 0 (NaNs stay NaN)
    with np.errstate(invalid="ignore"):
        e = np.exp(s - np.where(dead, 0.0, m))
        w[...] = e / np.where(dead, 1.0, e.sum(axis=-1, keepdims=True))
    return True


def softmax_backward(g, w, scale=1.0):
    g, w = np.asarray(g), np.asarray(w)
    return w * (g - (g * w).sum(axis=-1, keepdims=True)) * scale


def layer_norm_forward(x, weight, bias, eps):
    x = np.asarray(x)
    mean = x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + eps)
    y = (x - mean) * rstd
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y, mean, rstd


def layer_norm_backward(g, x, mean, rstd, weight, want_dx, want_dweight, want_dbias):
    g, x = np.asarray(g), np.asarray(x)
    xhat = (x - mean) * rstd
    dxhat = g * weight if weight is not None else g
    dx = None
    if want_dx:
        dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True) - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
    return dx, ((g * xhat).sum(axis=0) if want_dweight else None), (g.sum(axis=0) if want_dbias else None)


HOOKS = {
    "softmax_rows": softmax_rows,
    "softmax_backward": softmax_backward,
    "layer_norm_forward": layer_norm_forward,
    "layer_norm_backward": layer_norm_backward,
}
