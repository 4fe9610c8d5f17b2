"""numba CPU kernels for FlashAttention (``minigrad.ops.flash_attention``): NumPy in, NumPy out.

The reference op walks blocks of queries and keys with one NumPy expression per step.
Here each block's products are single NumPy matmuls over a stack of heads (BLAS), and
everything between them is one compiled pass over the block's rows:

* forward, per block: scale (and causal) -> row max -> exp(s - m) in place -> the
  rescale factor exp(m_old - m_new) and the running sum, all in :func:`_forward_rows`;
* backward, per block: P = exp(S - L) in place (:func:`_probs_rows`), then
  dS * scale = P * (dP - D) * scale in place (:func:`_dscores_rows`).

Arrays are (R, seq, d) stacks of heads (the op flattens its leading axes), C-contiguous,
float32 or float64 of one dtype; masks arrive as NumPy arrays that broadcast to the
block (R, rows, keys). :func:`forward` and :func:`backward` work on the heads
``[lo, hi)`` they are given, so the caller can split the heads over threads; the loops
release the GIL. Nothing here knows tensors or autograd. The formulas are the
reference's, in its order; exp is numba_loops' polynomial (within an ulp or two of
NumPy's), and row sums are added in another order than NumPy's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from .numba_loops import _exp_nonpositive, _row_max, _sum

_serial = njit(cache=True, nogil=True, error_model="numpy")


@_serial
def _forward_rows(s, scale, causal, i0, j0, m, l, alpha):  # pragma: no cover - compiled
    """s (R, bq, bk) scores -> exp(s * scale - m_new) in place; the row max m and the running
    sum l (R, bq) updated; alpha = exp(m_old - m_new), the rescale of what was summed."""
    t = s.dtype.type
    sc, minus_inf, zero = t(scale), t(-np.inf), t(0.0)
    rows, bq, bk = s.shape
    for r in range(rows):
        for a in range(bq):
            row = s[r, a]
            allowed = bk if not causal else max(0, min(bk, i0 + a - j0 + 1))  # key j0 + c <= query i0 + a
            for c in range(allowed):
                row[c] = row[c] * sc
            for c in range(allowed, bk):
                row[c] = minus_inf
            top = max(m[r, a], _row_max(row))
            shift = top if top != minus_inf else zero  # no allowed key yet: exp(-inf - 0) = 0
            for c in range(bk):
                row[c] = _exp_nonpositive(row[c] - shift)
            al = _exp_nonpositive(m[r, a] - shift)
            alpha[r, a] = al
            l[r, a] = l[r, a] * al + _sum(row)
            m[r, a] = top


@_serial
def _probs_rows(s, scale, causal, i0, j0, lse):  # pragma: no cover - compiled
    """s (R, bq, bk) scores -> P = exp(s * scale - L) in place (0 where causal forbids)."""
    t = s.dtype.type
    sc = t(scale)
    rows, bq, bk = s.shape
    for r in range(rows):
        for a in range(bq):
            row = s[r, a]
            allowed = bk if not causal else max(0, min(bk, i0 + a - j0 + 1))
            li = lse[r, a]
            for c in range(allowed):
                row[c] = _exp_nonpositive(row[c] * sc - li)
            for c in range(allowed, bk):
                row[c] = t(0.0)


@_serial
def _dscores_rows(p, dp, d, scale):  # pragma: no cover - compiled
    """dp (R, bq, bk) -> P * (dP - D) * scale in place: dS, with the scale the products need."""
    t = p.dtype.type
    sc = t(scale)
    rows, bq, bk = p.shape
    for r in range(rows):
        for a in range(bq):
            pr, dr, da = p[r, a], dp[r, a], d[r, a]
            for c in range(bk):
                dr[c] = pr[c] * (dr[c] - da) * sc


def _blocks(n: int, size: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def _masked(s: np.ndarray, scale: float, masks: Any, lo: int, hi: int, i0: int, i1: int, j0: int, j1: int) -> float:
    """Apply the float and boolean masks to the raw products ``s`` of heads [lo, hi); returns
    the scale the kernel still has to apply (1 once a float mask needed the scaled scores)."""
    bool_mask, float_mask = masks
    if float_mask is not None:
        s *= scale
        s += _block(float_mask, lo, hi, i0, i1, j0, j1)
        scale = 1.0
    if bool_mask is not None:
        np.copyto(s, -np.inf, where=_block(bool_mask, lo, hi, i0, i1, j0, j1))
    return scale


def _block(mask: np.ndarray, lo: int, hi: int, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
    """A (R or 1, rows or 1, keys or 1) mask's block for heads [lo, hi)."""
    heads = slice(None) if mask.shape[0] == 1 else slice(lo, hi)
    rows = slice(None) if mask.shape[1] == 1 else slice(i0, i1)
    cols = slice(None) if mask.shape[2] == 1 else slice(j0, j1)
    return mask[heads, rows, cols]


def forward(q, k, v, out, lse, scale, causal, block, masks, lo, hi) -> None:
    """O and L of heads [lo, hi) into ``out`` (R, sq, dv) and ``lse`` (R, sq) (both zeroed)."""
    q, k, v, o = q[lo:hi], k[lo:hi], v[lo:hi], out[lo:hi]
    sq, sk = q.shape[1], k.shape[1]
    for i0, i1 in _blocks(sq, block):
        qi, acc = q[:, i0:i1], o[:, i0:i1]
        m = np.full((hi - lo, i1 - i0), -np.inf, dtype=q.dtype)
        l = np.zeros_like(m)
        alpha = np.empty_like(m)
        for j0, j1 in _blocks(sk, block):
            if causal and j0 >= i1:
                break
            s = np.matmul(qi, k[:, j0:j1].swapaxes(1, 2))
            left = _masked(s, scale, masks, lo, hi, i0, i1, j0, j1)
            _forward_rows(s, left, causal, i0, j0, m, l, alpha)
            acc *= alpha[:, :, None]
            acc += np.matmul(s, v[:, j0:j1])
        dead = l == 0  # every key masked: O = 0 and L = 0, as the reference
        l[dead] = 1.0
        acc /= l[:, :, None]
        lse[lo:hi, i0:i1] = np.where(dead, 0.0, m + np.log(l))


def backward(q, k, v, out, lse, g, dq, dk, dv, scale, causal, block, masks, lo, hi) -> None:
    """dq, dk, dv (zeroed, of q, k, v's shapes) of heads [lo, hi): key blocks outside, query blocks inside."""
    q, k, v, o, g, lse = q[lo:hi], k[lo:hi], v[lo:hi], out[lo:hi], g[lo:hi], lse[lo:hi]
    dq, dk, dv = dq[lo:hi], dk[lo:hi], dv[lo:hi]
    big_d = np.einsum("rid,rid->ri", g, o)  # D = rowsum(dO * O)
    sq, sk = q.shape[1], k.shape[1]
    for j0, j1 in _blocks(sk, block):
        kj, vj = k[:, j0:j1], v[:, j0:j1]
        for i0, i1 in _blocks(sq, block):
            if causal and j0 >= i1:
                continue
            qi, gi = q[:, i0:i1], g[:, i0:i1]
            p = np.matmul(qi, kj.swapaxes(1, 2))
            left = _masked(p, scale, masks, lo, hi, i0, i1, j0, j1)
            _probs_rows(p, left, causal, i0, j0, np.ascontiguousarray(lse[:, i0:i1]))
            dv[:, j0:j1] += np.matmul(p.swapaxes(1, 2), gi)  # dV += P^T dO
            ds = np.matmul(gi, vj.swapaxes(1, 2))  # dP = dO V^T
            _dscores_rows(p, ds, np.ascontiguousarray(big_d[:, i0:i1]), scale)  # dS * scale
            dq[:, i0:i1] += np.matmul(ds, kj)  # dQ += dS K scale
            dk[:, j0:j1] += np.matmul(ds.swapaxes(1, 2), qi)  # dK += dS^T Q scale
