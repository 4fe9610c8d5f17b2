"""The compiled loops behind ``minigrad.accel.numba_kernels`` (which validates the arrays first).

Every function here is compiled by numba (``@njit``) for the element type of its arrays,
float32 or float64, and works on C-contiguous arrays of the shapes its docstring names;
nothing here checks shapes or bounds, so call them only through ``numba_kernels``.

How they are written, and why:

* ``_serial`` loops run on the calling thread; ``_parallel`` kernels split their rows (or
  blocks of rows, or chunks of elements) over numba's threads with ``prange``. All release
  the GIL (``nogil``) and skip Python's division-by-zero checks (``error_model="numpy"``:
  a float division gives inf or NaN, as in NumPy);
* elementwise arithmetic is strict IEEE, in the order of the NumPy expressions each kernel
  replaces, so it gives NumPy's bits. Only the row sums (``_reduction`` helpers) may be
  reassociated (``fastmath={"reassoc"}``), which lets them vectorize; their last bits
  differ from NumPy's pairwise sums;
* scalars arrive as Python floats (float64; an ``np.float32`` argument costs more to pass)
  and are cast to the arrays' type ``T`` first: a float64 scalar in float32 arithmetic
  would turn it into float64 arithmetic;
* a sum over rows (a bias or weight gradient) is summed per block of rows, at most
  ``BLOCKS`` blocks fixed by the row count alone, and the blocks are added in order: the
  same bits for any number of threads;
* exp is a polynomial (``_exp_nonpositive``): numba has no vectorized exp, and NumPy's
  would need a pass over the array of its own.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}
_serial = njit(**_OPTIONS)
_parallel = njit(parallel=True, **_OPTIONS)
_reduction = njit(fastmath={"reassoc"}, **_OPTIONS)

BLOCKS = 32  # at most this many partial sums in a sum over rows
CHUNK = 1 << 15  # elements per thread task of the elementwise kernels (Adam)


# ---- scalar helpers (type-specialized: float32 and float64 differ in their bits) ----------------
def _order_key(x):
    """The bits of the float ``x`` as a signed integer that sorts like the floats (a negative
    float's magnitude bits are flipped): NaNs sort above +inf (or below -inf, with the sign bit)."""
    raise NotImplementedError("compiled only")


@overload(_order_key)
def _order_key_jit(x):
    if x == types.float32:

        def order_key32(x):
            i = np.float32(x).view(np.int32)
            return np.int32(i ^ ((i >> 31) & 0x7FFFFFFF))

        return order_key32

    def order_key64(x):
        i = np.float64(x).view(np.int64)
        return np.int64(i ^ ((i >> 63) & 0x7FFFFFFFFFFFFFFF))

    return order_key64


def _from_order_key(k):
    """The float whose ``_order_key`` is ``k`` (the key's flip undone)."""
    raise NotImplementedError("compiled only")


@overload(_from_order_key)
def _from_order_key_jit(k):
    if k == types.int32:
        return lambda k: np.int32(k ^ ((k >> 31) & 0x7FFFFFFF)).view(np.float32)
    return lambda k: np.int64(k ^ ((k >> 63) & 0x7FFFFFFFFFFFFFFF)).view(np.float64)


def _exp_nonpositive(x):
    """exp(x) for x <= 0, NaN or -inf (a softmax's shifted scores)."""
    raise NotImplementedError("compiled only")


@overload(_exp_nonpositive, jit_options={"fastmath": {"contract"}})
def _exp_nonpositive_jit(x):
    """exp(x) = 2**k * exp(r) with k = round(x / ln 2) and r = x - k ln 2 (|r| <= ln2 / 2, ln 2
    split in two so that k ln 2 is exact), exp(r) by its Taylor polynomial (degree 7 for
    float32, 13 for float64: within an ulp or two of NumPy's exp), 2**k built from its bits.
    Below ``lowest`` the result would be under the smallest normal float: 0. The polynomial's
    steps may contract into fused multiply-adds (one rounding instead of two): the chain of
    dependent steps is what an exp costs, and a fused step is shorter."""
    single = x == types.float32
    T, I = (np.float32, np.int32) if single else (np.float64, np.int64)
    lowest = T(-87.0 if single else -708.0)
    ln2_hi, ln2_lo = (0.693359375, -2.12194440e-4) if single else (0.693145751953125, 1.42860682030941723e-6)
    ln2_hi, ln2_lo = T(ln2_hi), T(ln2_lo)
    coefs = tuple(T(1 / math.factorial(k)) for k in range(7 if single else 13, -1, -1))  # Horner: highest first
    mantissa_bits, exponent_bias = I(23 if single else 52), I(127 if single else 1023)
    log2e, half, zero = T(1 / math.log(2)), T(0.5), T(0)

    def exp_nonpositive(x):
        t = x if x > lowest else lowest  # also NaN -> lowest: a finite t keeps k's conversion defined
        k = np.floor(t * log2e + half)
        r = (t - k * ln2_hi) - k * ln2_lo
        p = zero
        for c in coefs:
            p = p * r + c
        if single:
            two_k = np.int32((np.int32(k) + exponent_bias) << mantissa_bits).view(np.float32)
        else:
            two_k = np.int64((np.int64(k) + exponent_bias) << mantissa_bits).view(np.float64)
        y = p * two_k if x >= lowest else zero
        return y if x == x else x  # NaN stays NaN

    return exp_nonpositive


# ---- row reductions ------------------------------------------------------------------------
@_reduction
def _sum(a):
    """sum_j a[j]"""
    total = a.dtype.type(0)
    for j in range(a.size):
        total += a[j]
    return total


@_reduction
def _sum_sq_dev(a, mu):
    """sum_j (a[j] - mu)**2"""
    total = a.dtype.type(0)
    for j in range(a.size):
        d = a[j] - mu
        total += d * d
    return total


@_reduction
def _dot(a, b):
    """sum_j a[j] b[j]"""
    total = a.dtype.type(0)
    for j in range(a.size):
        total += a[j] * b[j]
    return total


@_reduction
def _layer_norm_sums(g, x, w, mu, rstd):
    """(sum_j dxhat_j, sum_j dxhat_j xhat_j) with dxhat = g w and xhat = (x - mu) rstd."""
    s1 = s2 = g.dtype.type(0)
    for j in range(g.size):
        d = g[j] * w[j]
        s1 += d
        s2 += d * ((x[j] - mu) * rstd)
    return s1, s2


@_serial
def _row_max(s):
    """max_j s[j] with NaNs skipped (as np.fmax.reduce); -inf when every entry is -inf or NaN.
    A float max does not vectorize; the max of the floats' integer order keys does."""
    lowest = _order_key(s.dtype.type(-np.inf))
    highest = _order_key(s.dtype.type(np.inf))
    top = lowest
    for j in range(s.size):
        k = _order_key(s[j])
        k = k if k <= highest else lowest  # a NaN does not count
        top = k if k > top else top
    return _from_order_key(top)


@_serial
def _block(b, blocks, rows):
    """Rows [lo, hi) of block b when ``rows`` rows are cut into ``blocks`` blocks."""
    return b * rows // blocks, (b + 1) * rows // blocks


@_serial
def _add_blocks(parts, total):
    """total[j] = sum_b parts[b, j], adding the blocks in order."""
    for b in range(parts.shape[0]):
        for j in range(total.size):
            total[j] += parts[b, j]


# ---- layer norm ---------------------------------------------------------------------------
@_parallel
def layer_norm_forward(x, weight, bias, eps, out, mean, rstd):
    """Per row r of x (rows, n): mean = sum(x) / n, var = sum((x - mean)**2) / n,
    rstd = 1 / sqrt(var + eps), out = (x - mean) * rstd * weight + bias (weight, bias: (n,))."""
    rows, n = x.shape
    T = x.dtype.type
    eps, count, one = T(eps), T(n), T(1)
    for r in prange(rows):
        xr, yr = x[r], out[r]
        mu = _sum(xr) / count
        rs = one / np.sqrt(_sum_sq_dev(xr, mu) / count + eps)
        mean[r, 0], rstd[r, 0] = mu, rs
        for j in range(n):
            yr[j] = (xr[j] - mu) * rs * weight[j] + bias[j]


@_parallel
def layer_norm_backward(g, x, mean, rstd, weight, dx, want_dx, want_dw, want_db):
    """With xhat = (x - mean) * rstd and dxhat = g * weight, per row:
    dx = rstd * (dxhat - sum(dxhat) / n - xhat * sum(dxhat * xhat) / n) (when want_dx);
    returns (dw, db) = (sum_rows g * xhat, sum_rows g), each (n,) (zeros when not wanted)."""
    rows, n = x.shape
    T = x.dtype.type
    count = T(n)
    blocks = max(1, min(rows, BLOCKS))
    dw_parts = np.zeros((blocks, n if want_dw else 0), dtype=x.dtype)
    db_parts = np.zeros((blocks, n if want_db else 0), dtype=x.dtype)
    for b in prange(blocks):
        lo, hi = _block(b, blocks, rows)
        dw_b, db_b = dw_parts[b], db_parts[b]
        for r in range(lo, hi):
            gr, xr, mu, rs = g[r], x[r], mean[r, 0], rstd[r, 0]
            if want_dw:
                for j in range(n):
                    dw_b[j] += gr[j] * ((xr[j] - mu) * rs)
            if want_db:
                for j in range(n):
                    db_b[j] += gr[j]
            if want_dx:
                s1, s2 = _layer_norm_sums(gr, xr, weight, mu, rs)
                m1, m2 = s1 / count, s2 / count
                dr = dx[r]
                for j in range(n):
                    dr[j] = rs * (gr[j] * weight[j] - m1 - ((xr[j] - mu) * rs) * m2)
    dw, db = np.zeros(n, dtype=x.dtype), np.zeros(n, dtype=x.dtype)
    if want_dw:
        _add_blocks(dw_parts, dw)
    if want_db:
        _add_blocks(db_parts, db)
    return dw, db


# ---- softmax ------------------------------------------------------------------------------
@_serial
def _softmax_row(s, dead_rows_zero):
    """In place: s = exp(s - max(s)) / sum(exp(s - max(s))). With dead_rows_zero, a row whose
    max is -inf (every score masked) becomes 0 where it is -inf (NaNs stay NaN); without, it
    becomes NaN, as (-inf) - (-inf) does."""
    T = s.dtype.type
    top = _row_max(s)
    if dead_rows_zero and top == T(-np.inf):
        for j in range(s.size):
            s[j] = T(0) if s[j] == top else s[j]
        return
    for j in range(s.size):
        s[j] = _exp_nonpositive(s[j] - top)
    inv = T(1) / _sum(s)
    for j in range(s.size):
        s[j] = s[j] * inv


def _masked_score(s, m, scale):
    """s * scale, then -inf where a bool mask entry m is True, or + a float mask entry m."""
    raise NotImplementedError("compiled only")


@overload(_masked_score)
def _masked_score_jit(s, m, scale):
    if isinstance(m, types.Boolean):
        minus_inf = np.float32(-np.inf) if s == types.float32 else np.float64(-np.inf)
        return lambda s, m, scale: minus_inf if m else s * scale
    return lambda s, m, scale: s * scale + m


@_parallel
def attention_softmax(w, scale, mask, offsets, sq, q_step):
    """In place on the scores w (rows, n): w = softmax(w * scale + mask) per row, rows with
    every key masked 0. Row r = o * sq + i (o: the batch entry, i: the query) reads the n
    mask entries at mask[offsets[o] + i * q_step:] (mask: bool, or float of w's type)."""
    rows, n = w.shape
    scale = w.dtype.type(scale)
    for r in prange(rows):
        o = r // sq
        start = offsets[o] + (r - o * sq) * q_step
        m, s = mask[start : start + n], w[r]
        for j in range(n):
            s[j] = _masked_score(s[j], m[j], scale)
        _softmax_row(s, True)


@_parallel
def softmax_forward(x, out):
    """out = exp(x - max(x)) / sum(exp(x - max(x))) per row of x (rows, n)."""
    for r in prange(x.shape[0]):
        o = out[r]
        o[:] = x[r]
        _softmax_row(o, False)


@_parallel
def softmax_backward(g, w, scale, out):
    """out = w * (g - sum(g * w)) * scale per row (softmax's vector-Jacobian product)."""
    scale = w.dtype.type(scale)
    for r in prange(w.shape[0]):
        gr, wr, o = g[r], w[r], out[r]
        dot = _dot(gr, wr)
        for j in range(wr.size):
            o[j] = wr[j] * (gr[j] - dot) * scale


# ---- ReLU ---------------------------------------------------------------------------------
@_parallel
def bias_relu(out, bias):
    """In place on out (rows, n): out = max(out + bias, 0) as np.maximum gives it: 0 for -0
    and below, NaN stays NaN."""
    zero = out.dtype.type(0)
    for r in prange(out.shape[0]):
        o = out[r]
        for j in range(o.size):
            v = o[j] + bias[j]
            o[j] = zero if v <= zero else v


@_parallel
def relu_backward(g, y, dx, want_dbias):
    """dx = g * [y > 0] for g, y, dx (rows, n) (g * 0 where y <= 0 or NaN: a NaN or inf in g
    gives NaN there, as in NumPy); returns sum_rows dx (n,) (zeros when not wanted)."""
    rows, n = g.shape
    T = g.dtype.type
    one, zero = T(1), T(0)
    blocks = max(1, min(rows, BLOCKS))
    parts = np.zeros((blocks, n if want_dbias else 0), dtype=g.dtype)
    for b in prange(blocks):
        lo, hi = _block(b, blocks, rows)
        part = parts[b]
        for r in range(lo, hi):
            gr, yr, dr = g[r], y[r], dx[r]
            for j in range(n):
                dr[j] = gr[j] * (one if yr[j] > zero else zero)
            if want_dbias:
                for j in range(n):
                    part[j] += dr[j]
    total = np.zeros(n, dtype=g.dtype)
    if want_dbias:
        _add_blocks(parts, total)
    return total


# ---- Adam ---------------------------------------------------------------------------------
@_serial
def adam_update(p, g, m, v, beta1, beta2, step_size, bias_correction2_sqrt, eps):
    """In place on p, m, v (any shape, one size), in the order of NumPy's expressions:
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p = p + (m / (sqrt(v) / bias_correction2_sqrt + eps)) * -step_size."""
    p, g, m, v = p.reshape(p.size), g.reshape(g.size), m.reshape(m.size), v.reshape(v.size)
    T = p.dtype.type
    b1, b2, one_minus_b1, one_minus_b2 = T(beta1), T(beta2), T(1.0 - beta1), T(1.0 - beta2)
    minus_step, bc2, eps = T(-step_size), T(bias_correction2_sqrt), T(eps)
    for i in range(p.size):
        gi = g[i]
        mi = m[i] * b1 + gi * one_minus_b1
        vi = v[i] * b2 + (gi * gi) * one_minus_b2
        m[i], v[i] = mi, vi
        p[i] = p[i] + (mi / (np.sqrt(vi) / bc2 + eps)) * minus_step


@_parallel
def adam_update_chunks(p, g, m, v, beta1, beta2, step_size, bias_correction2_sqrt, eps):
    """adam_update with the elements cut into chunks of CHUNK for the threads."""
    p, g, m, v = p.reshape(p.size), g.reshape(g.size), m.reshape(m.size), v.reshape(v.size)
    for c in prange((p.size + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min((c + 1) * CHUNK, p.size)
        adam_update(p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], beta1, beta2, step_size, bias_correction2_sqrt, eps)


# ---- scatter-add --------------------------------------------------------------------------
@_serial
def checked_rows(index, n_rows):
    """(index with negative entries counted from the end, as target[index] does, the first
    position whose entry is out of range or -1)."""
    rows = np.empty(index.size, dtype=np.int64)
    for i in range(index.size):
        k = index[i] + n_rows if index[i] < 0 else index[i]
        if k < 0 or k >= n_rows:
            return rows, i
        rows[i] = k
    return rows, -1


@_serial
def scatter_add(target, rows, values):
    """target[rows[i]] += values[i] for i = 0, 1, ... in order (target (V, D), values
    (len(rows), D)): np.add.at's additions in its order, so its bits. One thread: the rows
    are short and scattered, and splitting their columns over threads does not pay."""
    for i in range(rows.size):
        t, v = target[rows[i]], values[i]
        for j in range(t.size):
            t[j] += v[j]
