"""Attention weights, fused: softmax(q k^T * scale + mask) in one node.

For queries q (..., Sq, D), keys k (..., Sk, D) and a scale (1/sqrt(D) usually):

    S = q @ k^T * scale  (+ an additive float mask; a boolean mask sets S to -inf)
    W = softmax(S) along the last axis

Backward, with dW the upstream gradient (the weights' gradient):

    dS = W * (dW - sum(dW * W, axis=-1))        (the softmax vector-Jacobian product)
    dq = dS @ k * scale,    dk = dS^T @ q * scale

A row whose every key is masked would be 0/0. Policy (documented in
``encoder.attention``): such a row gets weights exactly 0, so the attention output there
is 0 and finite, and no gradient flows through it.

The composite version (matmul, mul, masked_fill, softmax as separate nodes) is in
``encoder.attention``; tests prove both agree in value and gradient.
"""

from __future__ import annotations

from .. import functional as F
from ..autograd import Function
from .reduction import sum_to_array


class AttentionWeights(Function):
    """W = softmax(q @ k^T * scale + mask); see the module docstring for the derivatives."""

    name = "attention_weights"

    def forward(self, q, k, bool_mask=None, float_mask=None, scale=1.0):
        xp, backend = self.xp, self.backend
        self.scale = scale
        batch = F.broadcast_shapes(self.op_name, q.shape[:-2], k.shape[:-2])
        w = xp.empty(batch + (q.shape[-2], k.shape[-2]), dtype=q.dtype)  # the shape of q @ k^T

        def weights(q, k, bool_mask, float_mask, w):  # W = softmax(q k^T * scale + mask), written into w
            xp.matmul(q, k.swapaxes(-1, -2), out=w)
            # the backend's kernel: scale, mask and softmax in one C loop per row (or one
            # GPU kernel); where it has none, NumPy calls below
            if backend.softmax_rows(w, scale, bool_mask, float_mask):
                return
            mask = float_mask
            if bool_mask is not None:  # as an additive mask: adding is cheaper than a full-size where
                mask = xp.where(bool_mask, -xp.inf, 0.0).astype(w.dtype)
            w *= scale
            if backend.asynchronous:  # a GPU: the mean trick's check below would wait for it
                max_shifted(q, k, mask, w, rescore=False)
                return
            # softmax(s) = exp(s - c) / sum(exp(s - c)) for any c per row. The textbook c is
            # the row max (no exp can overflow), but a max along short rows is NumPy's
            # slowest reduction; the mean of the scores before masking is a fast sum and
            # almost always safe. If some row's sum overflowed or vanished, redo with the max.
            with backend.quiet_overflow():
                c = backend.row_sum(w)
                c *= 1.0 / w.shape[-1]
                if mask is not None:
                    w += mask
                w -= c
                xp.exp(w, out=w)
                total = backend.row_sum(w)
            if not bool(xp.isfinite(total).all() and (total > 0).all()):
                max_shifted(q, k, mask, w, rescore=True)
                return
            w /= total

        def max_shifted(q, k, mask, w, rescore):  # c = row max; rows with every key masked get 0
            if rescore:  # the scores again (w holds the failed attempt)
                xp.matmul(q, k.swapaxes(-1, -2), out=w)
                w *= scale
            if mask is not None:
                w += mask
            m = backend.row_max(w)
            dead = xp.isneginf(m)  # rows with every key masked
            # on a GPU, asking whether any row is dead would wait for the GPU: fix them blindly
            has_dead = backend.asynchronous or bool(dead.any())
            if has_dead:
                m = xp.where(dead, 0.0, m)
            w -= m
            xp.exp(w, out=w)
            total = backend.row_sum(w)
            if has_dead:
                total = xp.where(dead, 1.0, total)
            w /= total

        self.run_batch(weights, (q, k, bool_mask, float_mask, w), w.shape)
        self.out = w
        return w

    def backward(self, g):
        q, k = self.inputs
        w = self.saved_output()
        ds = w * (g - F.sum(g * w, -1, keepdims=True))
        if self.scale != 1.0:
            ds = ds * self.scale
        dq = F.matmul(ds, k) if self.needs_input_grad[0] else None
        dk = F.matmul(F.swapaxes(ds, -1, -2), q) if self.needs_input_grad[1] else None
        if dq is not None:
            dq = F.sum_to(dq, q.shape)
        if dk is not None:
            dk = F.sum_to(dk, k.shape)
        return dq, dk

    def backward_array(self, g):
        xp, backend = self.xp, self.backend
        q, k = self.inputs[0].data, self.inputs[1].data
        scale = self.scale
        lead = self.out.shape[:-1]  # dq and dk before any sum over broadcast batch axes
        dq = _grad_buffer(xp, q, lead + q.shape[-1:]) if self.needs_input_grad[0] else None
        dk = _grad_buffer(xp, k, lead[:-1] + k.shape[-2:]) if self.needs_input_grad[1] else None

        def grads(q, k, g, w, dq, dk):
            ds = backend.softmax_backward(g, w, scale)  # dS * scale: a C loop per row, or one GPU kernel
            left = 1.0  # the scale still to apply to dq and dk
            if ds is None:
                ds = g - backend.row_dot(g, w)
                ds *= w  # dS, the softmax vector-Jacobian product
                left = scale
            if dq is not None:
                xp.matmul(ds, k, out=dq)
                if left != 1.0:
                    dq *= left
            if dk is not None:
                xp.matmul(ds.swapaxes(-1, -2), q, out=dk)
                if left != 1.0:
                    dk *= left

        self.run_batch(grads, (q, k, g, self.out, dq, dk), self.out.shape)
        return (
            sum_to_array(dq, q.shape) if dq is not None else None,
            sum_to_array(dk, k.shape) if dk is not None else None,
        )


def _grad_buffer(xp, x, shape):
    """An empty array for x's gradient, laid out in memory like x when it has x's shape.

    q, k and v are usually transposed views, (batch, seq, heads, d) in memory: a gradient
    with the same layout turns back into (batch, seq, d_model) as a view, not a copy.
    """
    if shape == x.shape:
        return xp.empty_like(x)
    return xp.empty(shape, dtype=x.dtype)
