"""numba CPU kernels for minigrad's fused ops: pure array functions, NumPy in, NumPy out.

Each function below does one op's whole pass over its rows in one compiled loop (the loops
are in ``minigrad/accel/numba_loops.py``): layer norm forward and backward, the attention
weights' masked softmax, softmax and its backward, the feed-forward layer's bias + ReLU and
its backward, Adam's update and the embedding gradient's scatter-add. ``minigrad.accel``
registers them beneath the ops; nothing here knows tensors, autograd or the backend.

Arrays: float32 or float64, all of one dtype (the element type is kept: float32 math stays
float32). Inputs that are only read may have any layout (they are copied to C order when
they are not); arrays written in place (``attention_softmax``'s scores, ``bias_relu``'s
``out``, Adam's parameter and moments, ``scatter_add``'s target) must be C-contiguous.
Anything else raises ValueError (IndexError for an index out of range), before any array
is touched. :func:`supported` says whether arrays can be written in place.

Numerics: ``bias_relu``, ``relu_backward``'s dx, ``adam_update`` and ``scatter_add`` give
the bits of their NumPy formulas; row sums are added in another order than NumPy's
(last-bit differences); the softmax kernels' exp is a polynomial within a few ulp of
NumPy's. Sums over rows (weight and bias gradients) do not depend on the thread count.

Threads: the kernels split rows over numba's threads. Call :func:`configure_threading`
once before the first kernel (it pins numba's OpenMP threading layer), and
:func:`set_threads` to change the count. The first call of each kernel compiles it
(seconds), or loads it from numba's cache next to the source (``__pycache__``).
:func:`self_check` runs every kernel against plain NumPy formulas.
"""

from __future__ import annotations

import os
from typing import Any

import numba
import numpy as np

from . import numba_loops as loops

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def supported(*arrays: Any) -> bool:
    """True when ``arrays`` (None entries skipped) are writable NumPy arrays of one dtype,
    float32 or float64, and C-contiguous: what the kernels can write in place."""
    dtype = None
    for a in arrays:
        if a is None:
            continue
        if type(a) is not np.ndarray:
            return False
        if dtype is None:
            dtype = a.dtype
            if dtype not in _FLOATS:
                return False
        elif a.dtype != dtype:
            return False
        flags = a.flags
        if not (flags.c_contiguous and flags.writeable):
            return False
    return dtype is not None


def _writable(name: str, *arrays: Any) -> None:
    if not supported(*arrays):
        raise ValueError(f"{name}: needs writable C-contiguous float32 or float64 NumPy arrays of one dtype")


def _readable(name: str, a: Any, like: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``a`` as a C-contiguous array of ``like``'s dtype (a copy only when needed), checked against ``shape``."""
    a = np.asarray(a)
    if a.dtype != like.dtype:
        raise ValueError(f"{name}: got a {a.dtype} array with {like.dtype} arrays")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name}: got shape {a.shape}, expected {shape}")
    return np.ascontiguousarray(a)


def _vector(name: str, a: Any, like: np.ndarray, fill: float) -> np.ndarray:
    """A (n,) weight or bias for the rows of ``like``; None becomes ``fill`` everywhere (1, or
    -0.0, which x * 1 and x + (-0.0) leave bit for bit as they are)."""
    if a is None:
        return np.full(like.shape[-1], fill, dtype=like.dtype)
    return _readable(name, a, like, like.shape[-1:])


def _rows_input(name: str, x: Any) -> np.ndarray:
    x = np.ascontiguousarray(x)
    if x.dtype not in _FLOATS or x.ndim == 0:
        raise ValueError(f"{name}: needs a float32 or float64 array with at least one axis, got {x.dtype} {x.shape}")
    return x


# ---- the kernels ---------------------------------------------------------------------------
def layer_norm_forward(x2: Any, weight: Any, bias: Any, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(y, mean, rstd)`` of layer norm over each row of x2 (rows, n): mean and the biased
    variance of the row, rstd = 1 / sqrt(var + eps), y = (x - mean) * rstd * weight + bias
    (weight, bias: (n,) or None); mean and rstd shaped (rows, 1)."""
    x2 = _rows_input("layer_norm_forward", x2)
    if x2.ndim != 2:
        raise ValueError(f"layer_norm_forward: x2 must be 2-D, got shape {x2.shape}")
    w, b = _vector("layer_norm_forward weight", weight, x2, 1.0), _vector("layer_norm_forward bias", bias, x2, -0.0)
    out = np.empty_like(x2)
    mean, rstd = np.empty((x2.shape[0], 1), dtype=x2.dtype), np.empty((x2.shape[0], 1), dtype=x2.dtype)
    loops.layer_norm_forward(x2, w, b, float(eps), out, mean, rstd)
    return out, mean, rstd


def layer_norm_backward(
    g2: Any, x2: Any, mu: Any, rstd: Any, weight: Any, want_dx: bool, want_dw: bool, want_db: bool
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """``(dx, dw, db)`` of layer norm for the output gradient g2 (rows, n), each None when not
    wanted: with xhat = (x - mu) * rstd and dxhat = g * weight (g when weight is None),
    dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) per row,
    dw = sum over rows of g * xhat, db = sum over rows of g."""
    x2 = _rows_input("layer_norm_backward", x2)
    if x2.ndim != 2:
        raise ValueError(f"layer_norm_backward: x2 must be 2-D, got shape {x2.shape}")
    rows, n = x2.shape
    g2 = _readable("layer_norm_backward g2", g2, x2, x2.shape)
    mu = _readable("layer_norm_backward mu", np.reshape(mu, (-1, 1)), x2, (rows, 1))
    rstd = _readable("layer_norm_backward rstd", np.reshape(rstd, (-1, 1)), x2, (rows, 1))
    w = _vector("layer_norm_backward weight", weight, x2, 1.0)
    dx = np.empty_like(x2) if want_dx else np.empty((0, n), dtype=x2.dtype)
    dw, db = loops.layer_norm_backward(g2, x2, mu, rstd, w, dx, bool(want_dx), bool(want_dw), bool(want_db))
    return (dx if want_dx else None), (dw if want_dw else None), (db if want_db else None)


def attention_softmax(w: np.ndarray, scale: float, bool_mask: Any = None, float_mask: Any = None) -> np.ndarray:
    """In place on the raw scores w (..., Sq, Sk) (q @ k^T; C-contiguous): w = softmax(w * scale
    + mask) along the last axis, shifted by the row max. ``bool_mask`` (True: masked, score
    -inf) or ``float_mask`` (added, after a cast to w's dtype) broadcasts to w: key padding
    (B, 1, 1, Sk) or (B, 1, Sk), causal (Sq, Sk), full shape, ... (a bool mask wins when both
    are given, as in the NumPy formula). A row whose every key is masked becomes exactly 0.
    Returns w."""
    _writable("attention_softmax", w)
    if w.ndim == 0 or w.size == 0:
        return w
    n = w.shape[-1]
    if bool_mask is not None:
        mask, offsets, sq, q_step = _mask_layout(bool_mask, w.shape, np.dtype(bool))
    elif float_mask is not None:
        mask, offsets, sq, q_step = _mask_layout(float_mask, w.shape, w.dtype)
    else:  # no mask: an all-False row for every row
        mask, offsets, sq, q_step = np.zeros(n, dtype=bool), np.zeros(1, dtype=np.int64), w.size // n, 0
    loops.attention_softmax(w.reshape(-1, n), float(scale), mask, offsets, sq, q_step)
    return w


def _mask_layout(mask: Any, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(flat, offsets, sq, q_step)``: ``mask`` broadcast to ``shape`` without being copied to
    it. The n mask entries of score row o * sq + i (o: the index over the axes before the
    query axis, i: the query) are ``flat[offsets[o] + i * q_step:][:n]``."""
    mask = np.asarray(mask)
    if np.broadcast_shapes(mask.shape, shape) != shape:
        raise ValueError(f"attention_softmax: a mask of shape {mask.shape} does not broadcast to the scores {shape}")
    mask = mask.reshape((1,) * (len(shape) - mask.ndim) + mask.shape)
    if mask.shape[-1] != shape[-1]:  # one entry for all keys: spelled out per key
        mask = np.broadcast_to(mask, mask.shape[:-1] + shape[-1:])
    mask = np.ascontiguousarray(mask, dtype=dtype)
    steps = [stride // mask.itemsize if size > 1 else 0 for stride, size in zip(mask.strides, mask.shape)]
    if len(shape) == 1:
        return mask.reshape(-1), np.zeros(1, dtype=np.int64), 1, 0
    outer = shape[:-2]
    offsets = np.zeros(outer, dtype=np.int64)
    for d, size in enumerate(outer):
        if steps[d]:  # + index along axis d times its step, broadcast over the other axes
            along = np.arange(size, dtype=np.int64) * steps[d]
            offsets = offsets + along.reshape((size,) + (1,) * (len(outer) - d - 1))
    return mask.reshape(-1), offsets.reshape(-1), shape[-2], steps[-2]


def softmax_forward(x: Any) -> np.ndarray:
    """y = exp(x - max(x)) / sum(exp(x - max(x))) along the last axis (a new array). As with
    the NumPy formula, a row of -inf (or with +inf) gives NaN and NaNs spread over their row."""
    x = _rows_input("softmax_forward", x)
    out = np.empty_like(x)
    if x.size:
        loops.softmax_forward(x.reshape(-1, x.shape[-1]), out.reshape(-1, x.shape[-1]))
    return out


def softmax_backward(g: Any, w: Any, scale: float = 1.0) -> np.ndarray:
    """ds = w * (g - sum(g * w)) * scale along the last axis (softmax's vector-Jacobian
    product, times scale), a new array shaped like w."""
    w = _rows_input("softmax_backward", w)
    g = _readable("softmax_backward g", g, w, w.shape)
    out = np.empty_like(w)
    if w.size:
        n = w.shape[-1]
        loops.softmax_backward(g.reshape(-1, n), w.reshape(-1, n), float(scale), out.reshape(-1, n))
    return out


def bias_relu(out: np.ndarray, bias: Any) -> np.ndarray:
    """In place on out (rows, n) (C-contiguous): out = max(out + bias, 0) with np.maximum's
    bits (-0 becomes 0, NaN stays NaN); bias (n,) or None. Returns out."""
    _writable("bias_relu", out)
    if out.ndim != 2:
        raise ValueError(f"bias_relu: out must be 2-D, got shape {out.shape}")
    loops.bias_relu(out, _vector("bias_relu bias", bias, out, -0.0))
    return out


def relu_backward(g: Any, y: Any, want_dbias: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``(g * (y > 0), its sum over every axis but the last, or None)`` for g and y of one
    shape; the first is a new array shaped like g (NumPy's bits: g * 0 where y <= 0 or NaN)."""
    g = _rows_input("relu_backward", g)
    y = _readable("relu_backward y", y, g, g.shape)
    dx = np.empty_like(g)
    n = g.shape[-1]
    if g.size == 0:
        return dx, (np.zeros(n, dtype=g.dtype) if want_dbias else None)
    dbias = loops.relu_backward(g.reshape(-1, n), y.reshape(-1, n), dx.reshape(-1, n), bool(want_dbias))
    return dx, (dbias if want_dbias else None)


def adam_update(
    p: np.ndarray, g: Any, m: np.ndarray, v: np.ndarray, step_size: float, bias_correction2_sqrt: float,
    beta1: float, beta2: float, eps: float,
) -> None:  # fmt: skip
    """One Adam step in place on the parameter p and the moments m, v (C-contiguous, one
    shape; g: any layout), as ``torch.optim.Adam`` with NumPy's bits:
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p = p - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)."""
    _writable("adam_update", p, m, v)
    if m.shape != p.shape or v.shape != p.shape:
        raise ValueError(f"adam_update: p, m, v must have one shape, got {p.shape}, {m.shape}, {v.shape}")
    g = _readable("adam_update g", g, p, p.shape)
    kernel = loops.adam_update if p.size < 2 * loops.CHUNK else loops.adam_update_chunks
    kernel(p, g, m, v, float(beta1), float(beta2), float(step_size), float(bias_correction2_sqrt), float(eps))


def adam_update_many(updates: Any, beta1: float, beta2: float, eps: float) -> None:
    """:func:`adam_update` for each ``(p, g, m, v, step_size, bias_correction2_sqrt)`` of
    ``updates`` (any mix of float32 and float64 parameters): one compiled call per parameter,
    after a quick check (the full one, and a copy of g, when that fails)."""
    beta1, beta2, eps = float(beta1), float(beta2), float(eps)
    for p, g, m, v, step_size, bc2_sqrt in updates:
        if not _ready_for_adam(p, g, m, v):
            adam_update(p, g, m, v, step_size, bc2_sqrt, beta1, beta2, eps)
            continue
        kernel = loops.adam_update if p.size < 2 * loops.CHUNK else loops.adam_update_chunks
        kernel(p, g, m, v, beta1, beta2, float(step_size), float(bc2_sqrt), eps)


def _ready_for_adam(p: Any, g: Any, m: Any, v: Any) -> bool:
    """True when p, g, m, v are NumPy arrays of one shape and float dtype, C-contiguous, p, m, v writable."""
    if not (type(p) is type(g) is type(m) is type(v) is np.ndarray):
        return False
    if not (p.shape == g.shape == m.shape == v.shape and p.dtype == g.dtype == m.dtype == v.dtype):
        return False
    pf, gf, mf, vf = p.flags, g.flags, m.flags, v.flags
    return (
        p.dtype in _FLOATS
        and pf.c_contiguous
        and gf.c_contiguous
        and mf.c_contiguous
        and vf.c_contiguous
        and (pf.writeable and mf.writeable and vf.writeable)
    )


def scatter_add(target: np.ndarray, index: Any, values: Any) -> None:
    """target[index] += values with repeated indices adding up, as ``np.add.at(target, index,
    values)`` (the same order, so its bits): target (V, ...) C-contiguous, index integers of
    any shape (negative ones count from the end), values of shape index.shape + target.shape[1:]."""
    _writable("scatter_add", target)
    index = np.asarray(index)
    if target.ndim < 2 or index.dtype.kind not in "iu":
        raise ValueError(f"scatter_add: needs a target with rows ({target.shape}) and integer indices ({index.dtype})")
    values = _readable("scatter_add values", values, target, index.shape + target.shape[1:])
    n_rows = target.shape[0]
    if index.dtype.kind == "u" and index.size and index.max() >= n_rows:
        raise IndexError(f"scatter_add: index {int(index.max())} is out of range for {n_rows} rows")
    rows, bad = loops.checked_rows(np.ascontiguousarray(index, dtype=np.int64).reshape(-1), n_rows)
    if bad >= 0:
        raise IndexError(f"scatter_add: index {int(index.reshape(-1)[bad])} is out of range for {n_rows} rows")
    if rows.size:
        loops.scatter_add(target.reshape(n_rows, -1), rows, values.reshape(rows.size, -1))


# ---- threads ------------------------------------------------------------------------------
def configure_threading(layer: str = "omp", wait_policy: str | None = None) -> str:
    """Pin numba's threading layer before its threads start; returns the layer in use.

    numba starts its threads on the first parallel kernel (or ``set_threads``) with the
    layer named by ``numba.config.THREADING_LAYER``; the default may pick ``workqueue``,
    which aborts the process when two Python threads run parallel kernels at once. This
    sets ``layer`` (OpenMP by default) and starts the threads now with a tiny kernel; if
    that layer cannot load, numba's own choice is taken. ``wait_policy`` ("passive" or
    "active") sets ``OMP_WAIT_POLICY`` when the environment has none (OpenMP reads it as it
    loads): idle OpenMP threads spin for a while after each kernel, which costs CPU time
    that other work could use; passive ones sleep at once, and wake more slowly. Once the
    threads run, nothing changes (the layer in use is returned)."""
    try:
        return numba.threading_layer()  # started already
    except ValueError:
        pass
    if wait_policy is not None:
        os.environ.setdefault("OMP_WAIT_POLICY", wait_policy)
    previous = numba.config.THREADING_LAYER
    numba.config.THREADING_LAYER = layer
    try:
        loops.bias_relu(np.zeros((2, 1)), np.zeros(1))
    except ValueError:  # that layer is not installed here
        numba.config.THREADING_LAYER = previous
        loops.bias_relu(np.zeros((2, 1)), np.zeros(1))
    return numba.threading_layer()


def set_threads(n: int) -> int:
    """Use ``n`` threads in the kernels that this Python thread calls (numba's setting is per
    calling thread), at most ``numba.config.NUMBA_NUM_THREADS``; returns the count set."""
    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n


def get_threads() -> int:
    """The number of threads the kernels called from this Python thread use."""
    return numba.get_num_threads()


# ---- the self-check -----------------------------------------------------------------------
KERNELS = {
    "layer_norm_forward": layer_norm_forward,
    "layer_norm_backward": layer_norm_backward,
    "attention_softmax": attention_softmax,
    "softmax_forward": softmax_forward,
    "softmax_backward": softmax_backward,
    "bias_relu": bias_relu,
    "relu_backward": relu_backward,
    "adam_update": adam_update,
    "adam_update_many": adam_update_many,
    "scatter_add": scatter_add,
}
"""The functions :func:`self_check` runs, by name."""


def self_check() -> list[str]:
    """Run every kernel of :data:`KERNELS` on 1, 3, 17 and 64 rows of float32 and float64 data
    and compare with plain NumPy formulas (``minigrad/accel/numba_selfcheck.py``); returns one
    line per disagreement, naming the kernel, the case and the largest error (empty: all agree)."""
    from . import numba_selfcheck  # only here: the opt-in layer runs it once, on enable

    return numba_selfcheck.run(KERNELS, big=2 * loops.CHUNK)
