"""Attention weights as one node: W = softmax(q k^T * scale + mask).

For queries q (..., Sq, D), keys k (..., Sk, D) and a scale (1/sqrt(D) usually):

    S = q @ k^T * scale  (+ an additive float mask; a boolean mask sets S to -inf)
    W = softmax(S) along the last axis

Backward, with dW the upstream gradient (the weights' gradient):

    dS = W * (dW - sum(dW * W, axis=-1))        (the softmax vector-Jacobian product)
    dq = dS @ k * scale,    dk = dS^T @ q * scale,    dmask = dS   (a float mask)

A row whose every key is masked would be 0/0. Policy (documented in
``encoder.attention``): such a row gets weights exactly 0, so the attention output there
is 0 and finite, and no gradient flows through it.

The composite version (matmul, mul, masked_fill, softmax as separate nodes) is in
``encoder.attention``; tests prove both agree in value and gradient.
"""

from __future__ import annotations

from typing import Any

from .. import backend as B
from ..autograd import Function
from .checks import broadcast_shapes, number_arg, refuse_grad, require_tensor


class AttentionWeights(Function):
    """W = softmax(q @ k^T * scale + mask); see the module docstring for the derivatives.

    Inputs: q, k and, optionally, a float mask (a tensor that may require grad); a
    boolean mask is a parameter (``bool_mask``), since it has no gradient.
    """

    name = "attention_weights"

    def forward(self, q, k, *float_mask, bool_mask=None, scale=1.0):
        xp = self.xp
        self.scale = scale
        s = q @ k.swapaxes(-1, -2)  # the scores, then (in place) the weights
        s *= scale
        if float_mask:
            s += float_mask[0]
        if bool_mask is not None:
            s = xp.where(bool_mask, -xp.inf, s)
        m = s.max(axis=-1, keepdims=True)
        m[xp.isneginf(m)] = 0.0  # a fully masked row: exp(-inf - 0) = 0 everywhere
        s -= m
        xp.exp(s, out=s)
        total = s.sum(axis=-1, keepdims=True)
        total[total == 0] = 1.0  # that row stays 0, not 0/0
        s /= total
        self.out = s
        return s

    def backward(self, g):
        q, k = self.inputs[0], self.inputs[1]
        w = self.saved_output()
        ds = w * (g - (g * w).sum(-1, keepdims=True))
        need = self.needs_input_grad
        dq = (ds @ k * self.scale).sum_to_size(q.shape) if need[0] else None
        dk = (ds.swapaxes(-1, -2) @ q * self.scale).sum_to_size(k.shape) if need[1] else None
        if len(need) == 2:
            return dq, dk
        return dq, dk, (ds.sum_to_size(self.in_shapes[2]) if need[2] else None)


def attention_weights(q: Any, k: Any, mask: Any = None, scale: float | None = None) -> Any:
    """softmax(q @ k^T * scale + mask) along the last axis, as one node.

    ``mask`` broadcasts to (..., Sq, Sk): boolean (True = not allowed) or floating (added
    to the scores; -inf forbids; it may require grad). ``scale`` defaults to
    1/sqrt(q.shape[-1]). Rows where every key is masked get weights exactly 0 (never NaN).
    """
    require_tensor(q, "attention_weights", "q")
    require_tensor(k, "attention_weights", "k")
    if q.ndim < 2 or k.ndim < 2 or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention_weights: q of shape {q.shape} and k of shape {k.shape} need matching last dims")
    batch = broadcast_shapes("attention_weights", q.shape[:-2], k.shape[:-2])
    if scale is None:
        scale = 1.0 / float(q.shape[-1]) ** 0.5
    else:  # a value of the op, not an input: a tensor here cannot carry a gradient
        scale = number_arg(scale, "attention_weights", "scale")
    if mask is None:
        return AttentionWeights.apply(q, k, scale=scale)
    require_tensor(mask, "attention_weights", "mask")
    scores_shape = batch + (q.shape[-2], k.shape[-2])
    if broadcast_shapes("attention_weights mask", mask.shape, scores_shape) != scores_shape:
        raise ValueError(f"attention_weights: mask of shape {mask.shape} does not broadcast to {scores_shape}")
    if mask.device != q.device:
        raise RuntimeError(f"attention_weights: mask on device {mask.device}, q on device {q.device}")
    if mask.dtype == B.bool_:
        refuse_grad(mask, "attention_weights", "mask")
        return AttentionWeights.apply(q, k, bool_mask=mask.data, scale=scale)
    if mask.dtype != q.dtype:
        raise TypeError(f"attention_weights: mask must be bool or {q.dtype}, got {mask.dtype}")
    return AttentionWeights.apply(q, k, mask, scale=scale)
