"""Softmax, log-softmax and logsumexp, each one node, numerically stable.

All three subtract the maximum along ``axis`` before exponentiating, so exp never
overflows (the result is unchanged: softmax(x) = softmax(x - c) for any constant c).

The composite versions, built op by op so that every step is a node of the graph, are
:func:`softmax_composite` and :func:`log_softmax_composite`; tests prove both agree.
"""

from __future__ import annotations

from typing import Any

from ..autograd import Function, is_grad_enabled, no_grad
from .checks import axis_arg, require_float, torch_names


class Softmax(Function):
    """y = exp(x) / sum(exp(x)) along ``axis``.

    The Jacobian is dy_i/dx_j = y_i (delta_ij - y_j), so the vector-Jacobian product is
    dL/dx = y * (g - sum(g * y, axis))   -- O(n) work, no n x n matrix.
    """

    saves_inputs = False

    def forward(self, x, axis=-1):
        self.axis = axis
        e = self.xp.exp(x - x.max(axis=axis, keepdims=True))
        self.out = e / e.sum(axis=axis, keepdims=True)
        return self.out

    def backward(self, g):
        y = self.saved_output()
        return y * (g - (g * y).sum(self.axis, keepdims=True))


class LogSoftmax(Function):
    """y = x - logsumexp(x) along ``axis``.

    dy_i/dx_j = delta_ij - softmax(x)_j, so dL/dx = g - exp(y) * sum(g, axis).
    """

    name = "log_softmax"
    saves_inputs = False

    def forward(self, x, axis=-1):
        self.axis = axis
        z = x - x.max(axis=axis, keepdims=True)
        self.out = z - self.xp.log(self.xp.exp(z).sum(axis=axis, keepdims=True))
        return self.out

    def backward(self, g):
        y = self.saved_output()
        return g - y.exp() * g.sum(self.axis, keepdims=True)


class LogSumExp(Function):
    """y = log(sum(exp(x))) along ``axis``.   dL/dx = g * softmax(x) = g * exp(x - y)."""

    def forward(self, x, axis=-1, keepdims=False):
        self.axis, self.keepdims = axis, keepdims
        m = x.max(axis=axis, keepdims=True)
        self.out = self.xp.log(self.xp.exp(x - m).sum(axis=axis, keepdims=True)) + m
        return self.out if keepdims else self.out.squeeze(axis)

    def backward(self, g):
        x = self.inputs[0]
        y = logsumexp(x, self.axis, keepdims=True) if is_grad_enabled() else self.const(self.out)
        if not self.keepdims:
            g = g.unsqueeze(self.axis)
        return g * (x - y).exp()


def _on_scalar(op: type[Function], a: Any, **params: Any) -> Any:
    """A 0-d tensor (axis 0 or -1, as PyTorch allows) as one element along axis 0."""
    return op.apply(a.reshape(1), axis=0, **params).reshape(())


@torch_names
def softmax(a: Any, axis: int = -1) -> Any:
    """exp(a) / sum(exp(a)) along ``axis`` (one node, hand-derived backward)."""
    require_float(a, "softmax")
    ax = axis_arg(axis, a.ndim, "softmax", scalar_ok=True)
    return Softmax.apply(a, axis=ax) if a.ndim else _on_scalar(Softmax, a)


@torch_names
def log_softmax(a: Any, axis: int = -1) -> Any:
    """a - logsumexp(a) along ``axis`` (one node, hand-derived backward)."""
    require_float(a, "log_softmax")
    ax = axis_arg(axis, a.ndim, "log_softmax", scalar_ok=True)
    return LogSoftmax.apply(a, axis=ax) if a.ndim else _on_scalar(LogSoftmax, a)


@torch_names
def logsumexp(a: Any, axis: int = -1, keepdims: bool = False) -> Any:
    """log(sum(exp(a))) along ``axis``, computed stably."""
    ax = axis_arg(axis, a.ndim, "logsumexp", scalar_ok=True)
    return LogSumExp.apply(a, axis=ax, keepdims=keepdims) if a.ndim else _on_scalar(LogSumExp, a, keepdims=True)


@torch_names
def softmax_composite(a: Any, axis: int = -1) -> Any:
    """softmax built from primitive ops (max, sub, exp, sum, div): every step is in the graph."""
    with no_grad():  # a constant shift does not change softmax, so it needs no gradient
        shift = a.max(axis, keepdims=True)
    e = (a - shift).exp()
    return e / e.sum(axis, keepdims=True)


@torch_names
def log_softmax_composite(a: Any, axis: int = -1) -> Any:
    """log_softmax from primitive ops: a - shift - log(sum(exp(a - shift)))."""
    with no_grad():
        shift = a.max(axis, keepdims=True)
    shifted = a - shift
    return shifted - shifted.exp().sum(axis, keepdims=True).log()
