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


class AttentionWeights(Function):
    """W = softmax(q @ k^T * scale + mask); see the module docstring for the derivatives."""

    name = "attention_weights"

    def forward(self, q, k, bool_mask=None, float_mask=None, scale=1.0):
        xp = self.xp
        self.scale = scale
        s = q @ k.swapaxes(-1, -2)
        s *= scale
        if bool_mask is not None:  # as an additive mask: adding is cheaper than a full-size where
            float_mask = xp.where(bool_mask, -xp.inf, 0.0).astype(s.dtype)
        if float_mask is not None:
            s += float_mask
        m = s.max(axis=-1, keepdims=True)
        dead = xp.isneginf(m)  # rows with every key masked
        has_dead = bool(dead.any())
        if has_dead:
            m = xp.where(dead, 0.0, m)
        s -= m
        w = xp.exp(s, out=s)
        total = w.sum(axis=-1, keepdims=True)
        if has_dead:
            total = xp.where(dead, 1.0, total)
        w /= total
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
        q, k = self.inputs[0].data, self.inputs[1].data
        w = self.out
        ds = g - (g * w).sum(axis=-1, keepdims=True)
        ds *= w
        dq = dk = None
        if self.needs_input_grad[0]:
            dq = ds @ k
            dq *= self.scale
            dq = _sum_to(dq, q.shape)
        if self.needs_input_grad[1]:
            dk = ds.swapaxes(-1, -2) @ q
            dk *= self.scale
            dk = _sum_to(dk, k.shape)
        return dq, dk


def _sum_to(a, shape):
    from .reduction import sum_to_array

    return sum_to_array(a, shape)
