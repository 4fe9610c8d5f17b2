"""FlashAttention as one node: O = softmax(q k^T * scale + mask) @ v, never forming the weights.

For one query row i with scores s_j = q_i . k_j * scale (+ mask) over the keys j:

    O_i = sum_j P_ij v_j,    P_ij = exp(s_ij - L_i),    L_i = log(sum_j exp(s_ij))

Forward walks the keys in blocks with an *online softmax*: a running row max m, a
running sum l = sum exp(s - m) and an unnormalized output acc = sum exp(s - m) v. When a
block raises the max from m to m', everything summed so far is rescaled by
exp(m - m') -- exactly, since exp(s - m) * exp(m - m') = exp(s - m'). After the last
block O = acc / l, and only O and L = m + log(l) are kept: (seq_q, d) + (seq_q, 1)
numbers per head instead of the (seq_q, seq_k) weights.

Backward, with dO the upstream gradient, recomputes each block of P from q, k and L
(cheaper than storing it: one more product per block instead of seq_q * seq_k memory):

    D_i = sum_j P_ij (dO_i . v_j) = dO_i . O_i    so  D = rowsum(dO * O)   (no P needed)
    per block (i, j):  P = exp(S - L)
                       dV_j += P^T dO_i             (O = P V)
                       dP    = dO_i V_j^T
                       dS    = P * (dP - D_i)       (the softmax vector-Jacobian product)
                       dQ_i += dS K_j * scale,  dK_j += dS^T Q_i * scale,  dmask = dS

Masks: a boolean mask (True = not allowed) and ``causal`` (key j > query i is not
allowed, top-left aligned as PyTorch's ``is_causal``) set scores to -inf; a float mask is
added and gets the gradient dS. A row whose every key is masked gets O = 0 and L = 0 (so
P = exp(-inf - 0) = 0 in backward): the plain attention's policy, no NaN, no gradient.

Backward is written in Tensor ops, so double backward works by itself; with
``create_graph`` it rebuilds L from the blocks as a differentiable logsumexp (its value
is the saved L, and its gradient is P), since L depends on q, k and the mask too.
"""

from __future__ import annotations

import math
from typing import Any

from .. import backend as B
from ..autograd import Function, is_grad_enabled
from .checks import broadcast_shapes, refuse_grad, require_tensor
from .indexing import concat


def blocks(n: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) ranges of ``size`` covering 0..n (the last one may be shorter)."""
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def key_blocks(n_keys: int, size: int, causal: bool, q_stop: int) -> list[tuple[int, int]]:
    """The key blocks a query block [.., q_stop) sees: all, or with ``causal`` those that
    start at or before its last query (later ones are masked everywhere)."""
    return [(j0, j1) for j0, j1 in blocks(n_keys, size) if not causal or j0 < q_stop]


def mask_block(mask: Any, i0: int, i1: int, j0: int, j1: int) -> Any:
    """The (i0:i1, j0:j1) block of a mask that broadcasts to the scores (axes of size 1 stay)."""
    rows = slice(None) if mask.shape[-2] == 1 else slice(i0, i1)
    cols = slice(None) if mask.shape[-1] == 1 else slice(j0, j1)
    return mask[..., rows, cols]


def causal_block(xp: Any, i0: int, i1: int, j0: int, j1: int) -> Any:
    """True where key j > query i in the block: what ``causal`` forbids."""
    return xp.arange(j0, j1)[None, :] > xp.arange(i0, i1)[:, None]


class FlashAttention(Function):
    """O = softmax(q @ k^T * scale + mask) @ v in key/query blocks; see the module docstring.

    Inputs: q, k, v and, optionally, a float mask (it may require grad); a boolean mask
    is a parameter (``bool_mask``). Saved for backward: the output O and L (``self.lse``).
    """

    name = "flash_attention"

    def forward(self, q, k, v, *float_mask, bool_mask=None, scale=1.0, causal=False, block_size=128):
        xp = self.xp
        self.scale, self.causal, self.block_size, self.bool_mask = scale, causal, block_size, bool_mask
        fmask = float_mask[0] if float_mask else None
        out = xp.zeros(q.shape[:-1] + v.shape[-1:], dtype=q.dtype)
        lse = xp.zeros(q.shape[:-1] + (1,), dtype=q.dtype)
        for i0, i1 in blocks(q.shape[-2], block_size):
            qi = q[..., i0:i1, :]
            m = xp.full(qi.shape[:-1] + (1,), -xp.inf, dtype=q.dtype)  # running row max
            l = xp.zeros_like(m)  # running sum of exp(s - m)
            acc = out[..., i0:i1, :]  # the unnormalized output, summed in place
            for j0, j1 in key_blocks(k.shape[-2], block_size, causal, i1):
                s = qi @ k[..., j0:j1, :].swapaxes(-1, -2)
                s *= scale
                if fmask is not None:
                    s = s + mask_block(fmask, i0, i1, j0, j1)
                if bool_mask is not None:
                    s = xp.where(mask_block(bool_mask, i0, i1, j0, j1), -xp.inf, s)
                if causal and j1 > i0 + 1:
                    s = xp.where(causal_block(xp, i0, i1, j0, j1), -xp.inf, s)
                m_new = xp.maximum(m, s.max(axis=-1, keepdims=True))
                shift = xp.where(xp.isneginf(m_new), 0.0, m_new)  # no allowed key yet: exp(-inf - 0) = 0
                p = xp.exp(s - shift)
                alpha = xp.exp(m - shift)  # rescales what was summed under the old max
                l *= alpha
                l += p.sum(axis=-1, keepdims=True)
                acc *= alpha
                acc += p @ v[..., j0:j1, :]
                m = m_new
            dead = l == 0  # every key masked: O = 0 and L = 0 (then P = exp(-inf) = 0)
            l[dead] = 1.0
            acc /= l
            lse[..., i0:i1, :] = xp.where(dead, 0.0, m + xp.log(l))
        self.out, self.lse = out, lse
        return out

    # ---- backward, in Tensor ops ----------------------------------------------------------
    def scores(self, qi: Any, kj: Any, i0: int, i1: int, j0: int, j1: int) -> Any:
        """The block S = qi kj^T * scale with the masks applied (Tensor ops)."""
        s = (qi @ kj.swapaxes(-1, -2)) * self.scale
        if len(self.inputs) > 3:
            s = s + mask_block(self.inputs[3], i0, i1, j0, j1)
        if self.bool_mask is not None:
            s = s.masked_fill(self.const(mask_block(self.bool_mask, i0, i1, j0, j1)), -math.inf)
        if self.causal and j1 > i0 + 1:
            s = s.masked_fill(self.const(causal_block(self.xp, i0, i1, j0, j1)), -math.inf)
        return s

    def logsumexp(self) -> Any:
        """L: the saved constant, or with recording on L = Lc + log(sum exp(S - Lc)), whose
        value is Lc and whose gradient with respect to S is P (for second order)."""
        lc = self.const(self.lse)
        if not is_grad_enabled():
            return lc
        q, k = self.inputs[0], self.inputs[1]
        rows = []
        for i0, i1 in blocks(q.shape[-2], self.block_size):
            qi, li = q[..., i0:i1, :], lc[..., i0:i1, :]
            total = None
            for j0, j1 in key_blocks(k.shape[-2], self.block_size, self.causal, i1):
                s = self.scores(qi, k[..., j0:j1, :], i0, i1, j0, j1)
                total = _add(total, (s - li).exp().sum(-1, keepdims=True))
            total = total + self.const((total.data == 0).astype(total.dtype))  # a dead row: log(1) = 0, L = 0
            rows.append(li + total.log())
        return concat(rows, axis=-2)

    def backward(self, g):
        q, k, v = self.inputs[:3]
        need = self.needs_input_grad
        o = self.saved_output()
        big_d = (g * o).sum(-1, keepdims=True)  # D = rowsum(dO * O)
        lse = self.logsumexp()
        kb = blocks(k.shape[-2], self.block_size)
        dq_rows, dk, dv, dmask_rows = [], [None] * len(kb), [None] * len(kb), []
        want_mask = len(need) > 3 and need[3]
        for i0, i1 in blocks(q.shape[-2], self.block_size):
            qi, gi, di, li = q[..., i0:i1, :], g[..., i0:i1, :], big_d[..., i0:i1, :], lse[..., i0:i1, :]
            dqi, dmask_row = None, []
            for j, (j0, j1) in enumerate(key_blocks(k.shape[-2], self.block_size, self.causal, i1)):
                kj, vj = k[..., j0:j1, :], v[..., j0:j1, :]
                p = (self.scores(qi, kj, i0, i1, j0, j1) - li).exp()  # P = exp(S - L)
                dv[j] = _add(dv[j], p.swapaxes(-1, -2) @ gi)  # dV += P^T dO
                ds = p * (gi @ vj.swapaxes(-1, -2) - di)  # dS = P * (dP - D), dP = dO V^T
                dqi = _add(dqi, ds @ kj * self.scale)  # dQ += dS K scale
                dk[j] = _add(dk[j], ds.swapaxes(-1, -2) @ qi * self.scale)  # dK += dS^T Q scale
                if want_mask:  # a float mask's gradient, dS, block by block (only then are they kept)
                    dmask_row.append(ds)
            dq_rows.append(dqi if dqi is not None else (qi * 0.0))
            dmask_rows.append(dmask_row)
        grads = [
            _join(dq_rows, q) if need[0] else None,
            _join(_fill(dk, k, kb), k) if need[1] else None,
            _join(_fill(dv, v, kb), v) if need[2] else None,
        ]
        if len(need) > 3:
            grads.append(self.mask_grad(dmask_rows, kb) if want_mask else None)
        return tuple(grads)

    def mask_grad(self, ds_rows: list[list[Any]], kb: list[tuple[int, int]]) -> Any:
        """dmask = dS, summed to the float mask's shape (its broadcast axes, its size-1 rows/columns)."""
        shape = self.in_shapes[3]
        rows = []
        for row in ds_rows:
            n = 1 if shape[-2] == 1 else row[0].shape[-2]
            parts = [ds.sum_to_size(shape[:-2] + (n, 1 if shape[-1] == 1 else ds.shape[-1])) for ds in row]
            if shape[-1] == 1:
                rows.append(_sum(parts))
                continue
            width = sum(j1 - j0 for j0, j1 in kb[len(parts) :])
            if width:  # keys a causal row of blocks never saw: their gradient is 0
                parts.append(self.const(self.xp.zeros(shape[:-2] + (n, width), dtype=self.out.dtype)))
            rows.append(concat(parts, axis=-1) if len(parts) > 1 else parts[0])
        return _sum(rows) if shape[-2] == 1 else (concat(rows, axis=-2) if len(rows) > 1 else rows[0])


def _add(a: Any, b: Any) -> Any:
    return b if a is None else a + b


def _sum(parts: list[Any]) -> Any:
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def _fill(parts: list[Any], like: Any, kb: list[tuple[int, int]]) -> list[Any]:
    """Blocks no query reached (causal, keys past the last query) get a zero gradient."""
    return [p if p is not None else like[..., j0:j1, :] * 0.0 for p, (j0, j1) in zip(parts, kb)]


def _join(parts: list[Any], like: Any) -> Any:
    return (concat(parts, axis=-2) if len(parts) > 1 else parts[0]).sum_to_size(like.shape)


def flash_attention(
    q: Any,
    k: Any,
    v: Any,
    mask: Any = None,
    scale: float | None = None,
    causal: bool = False,
    block_size: int = 128,
) -> Any:
    """softmax(q @ k^T * scale + mask) @ v for q (..., Sq, D), k (..., Sk, D), v (..., Sk, Dv), as one node.

    The (Sq, Sk) weights are never stored: blocks of ``block_size`` keys and queries are
    computed, used and dropped (forward and backward). ``mask`` broadcasts to
    (..., Sq, Sk): boolean (True = not allowed) or floating (added; it may require grad).
    ``causal`` forbids key j > query i. ``scale`` defaults to 1/sqrt(D). A query with no
    allowed key gets output 0 (never NaN). Equal to ``attention_weights(q, k, mask) @ v``.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        require_tensor(t, "flash_attention", name)
        if t.ndim < 2:
            raise ValueError(f"flash_attention: {name} must have at least 2 dimensions, got shape {t.shape}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"flash_attention: q {q.shape}, k {k.shape}, v {v.shape}: q and k need one last dim, k and v one seq dim"
        )
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise ValueError(f"flash_attention: q {q.shape}, k {k.shape}, v {v.shape} need the same leading dims")
    if q.dtype.kind != "f":
        raise TypeError(f"flash_attention: expected floating q, k, v, got dtype {q.dtype}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"flash_attention: block_size must be a positive integer, got {block_size!r}")
    if scale is None:
        scale = 1.0 / float(q.shape[-1]) ** 0.5
    params = dict(scale=float(scale), causal=bool(causal), block_size=block_size)
    if mask is None:
        return FlashAttention.apply(q, k, v, **params)
    require_tensor(mask, "flash_attention", "mask")
    if mask.ndim < 2:
        mask = mask.reshape((1,) * (2 - mask.ndim) + mask.shape)
    scores_shape = q.shape[:-1] + (k.shape[-2],)
    if broadcast_shapes("flash_attention mask", mask.shape, scores_shape) != scores_shape:
        raise ValueError(f"flash_attention: mask of shape {mask.shape} does not broadcast to {scores_shape}")
    if mask.device != q.device:
        raise RuntimeError(f"flash_attention: mask on device {mask.device}, q on device {q.device}")
    if mask.dtype == B.bool_:
        refuse_grad(mask, "flash_attention", "mask")
        return FlashAttention.apply(q, k, v, bool_mask=mask.data, **params)
    if mask.dtype != q.dtype:
        raise TypeError(f"flash_attention: mask must be bool or {q.dtype}, got {mask.dtype}")
    return FlashAttention.apply(q, k, v, mask, **params)
