"""Softmax, log-softmax and logsumexp, fused and numerically stable.

All three subtract the maximum along ``axis`` before exponentiating, so exp never
overflows (the result is unchanged: softmax(x) = softmax(x - c) for any constant c).

The composite (op-by-op) versions live in :mod:`minigrad.functional` as
``softmax_composite`` etc.; tests prove that both agree in value and gradient.
"""

from __future__ import annotations

from .. import functional as F
from ..autograd import Function


class Softmax(Function):
    """y = exp(x) / sum(exp(x)) along ``axis``.

    The Jacobian is dy_i/dx_j = y_i (delta_ij - y_j), so the vector-Jacobian product is
    dL/dx = y * (g - sum(g * y, axis))   -- O(n) work, no n x n matrix.
    """

    saves_inputs = False

    def forward(self, x, axis=-1):
        self.axis = axis
        last = axis in (-1, x.ndim - 1)
        backend = self.backend
        z = x - (backend.row_max(x) if last else x.max(axis=axis, keepdims=True))
        e = self.xp.exp(z, out=z)
        e /= backend.row_sum(e) if last else e.sum(axis=axis, keepdims=True)
        self.out = e
        return e

    def backward(self, g):
        y = self.saved_output()
        return y * (g - F.sum(g * y, self.axis, keepdims=True))

    def backward_array(self, g):
        y = self.out
        if self.axis in (-1, y.ndim - 1):
            dx = self.backend.softmax_backward(g, y)  # one kernel on a GPU
            if dx is not None:
                return dx
        dx = g * y
        total = self.backend.row_sum(dx) if self.axis in (-1, y.ndim - 1) else dx.sum(axis=self.axis, keepdims=True)
        dx -= y * total  # y * g - y * sum(g * y)
        return dx


class LogSoftmax(Function):
    """y = x - logsumexp(x) along ``axis``.

    dy_i/dx_j = delta_ij - softmax(x)_j, so dL/dx = g - exp(y) * sum(g, axis).
    """

    name = "log_softmax"
    saves_inputs = False

    def forward(self, x, axis=-1):
        self.axis = axis
        z = x - x.max(axis=axis, keepdims=True)
        z -= self.xp.log(self.xp.exp(z).sum(axis=axis, keepdims=True))
        self.out = z
        return z

    def backward(self, g):
        y = self.saved_output()
        return g - F.exp(y) * F.sum(g, self.axis, keepdims=True)

    def backward_array(self, g):
        return g - self.xp.exp(self.out) * g.sum(axis=self.axis, keepdims=True)


class LogSumExp(Function):
    """y = log(sum(exp(x))) along ``axis``.   dL/dx = g * softmax(x) = g * exp(x - y)."""

    def forward(self, x, axis=-1, keepdims=False):
        self.axis, self.keepdims = axis, keepdims
        m = x.max(axis=axis, keepdims=True)
        out = self.xp.log(self.xp.exp(x - m).sum(axis=axis, keepdims=True)) + m
        self.out = out
        return out if keepdims else out.squeeze(axis)

    def backward(self, g):
        x = self.inputs[0]
        y = F.logsumexp(x, self.axis, keepdims=True) if F.is_grad_enabled() else self.const(self.out)
        if not self.keepdims:
            g = F.unsqueeze(g, self.axis)
        return g * F.exp(x - y)
