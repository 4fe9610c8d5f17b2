"""Reductions: sum, mean, var, max, min (and sum_to, the reduction broadcasting needs).

A reduction maps many inputs to one output, so its backward copies (broadcasts) the
upstream gradient back over the reduced axes. ``axis`` is always a tuple of
non-negative ints or None here; :mod:`minigrad.functional` normalizes it.
"""

from __future__ import annotations

from .. import functional as F
from ..autograd import Function


def sum_to_array(g, shape: tuple[int, ...]):
    """``g`` (an array) summed down to ``shape``: the array form of ``F.sum_to``."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1)
    out = g.sum(axis=axes, keepdims=True) if axes else g
    return out.reshape(shape)


def keepdims_shape(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape of a reduction's result with ``keepdims=True``."""
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if i in axis else s for i, s in enumerate(shape))


def reduced_count(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> int:
    n = 1
    for i, s in enumerate(shape):
        if axis is None or i in axis:
            n *= s
    return n


def _spread(g, in_shape, axis, keepdims):
    """Broadcast a reduction's gradient back to the input's shape."""
    if not keepdims:
        g = F.reshape(g, keepdims_shape(in_shape, axis))
    return F.expand(g, in_shape)


def _spread_array(xp, g, in_shape, axis, keepdims):
    if not keepdims:
        g = g.reshape(keepdims_shape(in_shape, axis))
    return xp.broadcast_to(g, in_shape)


class Sum(Function):
    """out = sum of a over ``axis``.   dL/da = g broadcast back over the summed axes."""

    saves_inputs = False

    def forward(self, a, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims
        return a.sum(axis=axis, keepdims=keepdims)

    def backward(self, g):
        return _spread(g, self.in_shapes[0], self.axis, self.keepdims)

    def backward_array(self, g):
        return _spread_array(self.xp, g, self.in_shapes[0], self.axis, self.keepdims)


class Mean(Function):
    """out = sum(a) / N over ``axis`` (N elements reduced).   dL/da = g / N, broadcast back."""

    saves_inputs = False

    def forward(self, a, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims
        self.count = reduced_count(a.shape, axis)
        return a.mean(axis=axis, keepdims=keepdims)

    def backward(self, g):
        return _spread(g * (1.0 / self.count), self.in_shapes[0], self.axis, self.keepdims)

    def backward_array(self, g):
        return _spread_array(self.xp, g * g.dtype.type(1.0 / self.count), self.in_shapes[0], self.axis, self.keepdims)


class Var(Function):
    """out = sum((a - mean(a))**2) / (N - ddof) over ``axis``.

    dL/da = g * 2 (a - mean(a)) / (N - ddof)   (the mean's own dependence on a cancels,
    because the centred values sum to zero).
    """

    def forward(self, a, axis=None, keepdims=False, ddof=0):
        self.axis, self.keepdims, self.ddof = axis, keepdims, ddof
        self.count = reduced_count(a.shape, axis)
        self.centered = a - a.mean(axis=axis, keepdims=True)
        return (self.centered * self.centered).sum(axis=axis, keepdims=keepdims) / (self.count - ddof)

    def backward(self, g):
        if F.is_grad_enabled():  # recompute with a graph, for higher-order gradients
            a = self.inputs[0]
            centered = a - F.mean(a, self.axis, keepdims=True)
        else:
            centered = self.const(self.centered)
        scale = 2.0 / (self.count - self.ddof)
        return _spread(g, self.in_shapes[0], self.axis, self.keepdims) * centered * scale


class Max(Function):
    """out = max of a over ``axis``.

    dL/da = g at the positions that hold the maximum, split equally between ties
    (as ``torch.amax``), 0 elsewhere.
    """

    saves_inputs = False
    reduce = "max"

    def forward(self, a, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims
        out = getattr(a, self.reduce)(axis=axis, keepdims=True)
        hit = (a == out).astype(a.dtype)
        self.weights = hit / hit.sum(axis=axis, keepdims=True)
        return out if keepdims else out.reshape(keepdims_shape_drop(a.shape, axis))

    def backward(self, g):
        return _spread(g, self.in_shapes[0], self.axis, self.keepdims) * self.const(self.weights)


class Min(Max):
    """out = min of a over ``axis``; the gradient goes to the minima (ties split)."""

    reduce = "min"


def keepdims_shape_drop(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape of a reduction's result with ``keepdims=False``."""
    if axis is None:
        return ()
    return tuple(s for i, s in enumerate(shape) if i not in axis)


class SumTo(Function):
    """out = a summed down to ``shape`` (undoes NumPy broadcasting).

    dL/da = g broadcast back to a's shape. SumTo and Expand are each other's backward.
    """

    name = "sum_to"
    saves_inputs = False

    def forward(self, a, shape=()):
        return sum_to_array(a, shape)

    def backward(self, g):
        return F.expand(g, self.in_shapes[0])

    def backward_array(self, g):
        return self.xp.broadcast_to(g, self.in_shapes[0])
