"""Reductions: sum, mean, var, max, min, any, all, argmax, argmin (and sum_to_size, the
reduction broadcasting needs).

A reduction maps many inputs to one output, so its backward copies (broadcasts) the
upstream gradient back over the reduced axes. Inside the ops ``axis`` is a tuple of
non-negative ints or None; the wrappers normalize it (and take PyTorch's ``dim``/``keepdim``).

Empty reductions follow PyTorch: the mean of no elements is NaN, and so is a variance
with ``ddof >= N`` when the values are all equal (inf otherwise: the divisor is
max(0, N - ddof)); their backward never divides by zero in Python.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from .. import backend as B
from ..autograd import Function, is_grad_enabled
from .checks import axes_arg, axis_arg, broadcast_shapes, constant, require_float, torch_names
from .indexing import concat
from .scan import cumprod, flip_axis


def keepdims_shape(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape of a reduction's result with ``keepdims=True``."""
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if i in axis else s for i, s in enumerate(shape))


def dropped_shape(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape of a reduction's result with ``keepdims=False``."""
    if axis is None:
        return ()
    return tuple(s for i, s in enumerate(shape) if i not in axis)


def reduced_count(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> int:
    n = 1
    for i, s in enumerate(shape):
        if axis is None or i in axis:
            n *= s
    return n


def mean_array(xp, a, axis, keepdims, count):
    """The mean of the array ``a``; NaN over no elements (without NumPy's warning)."""
    if count:
        return a.mean(axis=axis, keepdims=keepdims)
    shape = keepdims_shape(a.shape, axis) if keepdims else dropped_shape(a.shape, axis)
    return xp.full(shape, xp.nan, dtype=a.dtype)


def spread(g, in_shape, axis, keepdims):
    """Broadcast a reduction's gradient back to the input's shape."""
    if not keepdims:
        g = g.reshape(keepdims_shape(in_shape, axis))
    return g.expand(in_shape)


class Sum(Function):
    """out = sum of a over ``axis``.   dL/da = g broadcast back over the summed axes."""

    saves_inputs = False

    def forward(self, a, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims
        return a.sum(axis=axis, keepdims=keepdims)

    def backward(self, g):
        return spread(g, self.in_shapes[0], self.axis, self.keepdims)


class Mean(Function):
    """out = sum(a) / N over ``axis`` (N elements reduced).   dL/da = g / N, broadcast back."""

    saves_inputs = False

    def forward(self, a, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims
        self.count = reduced_count(a.shape, axis)
        return mean_array(self.xp, a, axis, keepdims, self.count)

    def backward(self, g):
        scale = 1.0 / self.count if self.count else float("nan")  # no elements: the input is empty too
        return spread(g * scale, self.in_shapes[0], self.axis, self.keepdims)


class Var(Function):
    """out = sum((a - mean(a))**2) / (N - ddof) over ``axis``.

    dL/da = g * 2 (a - mean(a)) / (N - ddof)   (the mean's own dependence on a cancels,
    because the centred values sum to zero). With ddof >= N the divisor is 0, as PyTorch's
    max(0, N - ddof): the result is inf, or NaN where the values are all equal.
    """

    def forward(self, a, axis=None, keepdims=False, ddof=0):
        self.axis, self.keepdims, self.ddof = axis, keepdims, ddof
        self.count = reduced_count(a.shape, axis)
        self.dof = builtins.max(self.count - ddof, 0)
        self.centered = a - mean_array(self.xp, a, axis, True, self.count)
        total = (self.centered * self.centered).sum(axis=axis, keepdims=keepdims)
        if self.dof == 0:  # inf, or NaN for 0/0, without NumPy's warning
            return self.xp.where(total == 0, a.dtype.type("nan"), a.dtype.type("inf"))
        return total / self.dof

    def backward(self, g):
        if is_grad_enabled():  # recompute with a graph, for higher-order gradients
            a = self.inputs[0]
            centered = a - a.mean(self.axis, keepdims=True)
        else:
            centered = self.const(self.centered)
        scale = 2.0 / self.dof if self.dof else float("inf")
        return spread(g, self.in_shapes[0], self.axis, self.keepdims) * centered * scale


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
        return out if keepdims else out.reshape(dropped_shape(a.shape, axis))

    def backward(self, g):
        return spread(g, self.in_shapes[0], self.axis, self.keepdims) * self.const(self.weights)


class Min(Max):
    """out = min of a over ``axis``; the gradient goes to the minima (ties split)."""

    reduce = "min"


def sum_to_array(g, shape: tuple[int, ...]):
    """The array ``g`` summed down to ``shape`` (undoing a broadcast from ``shape``)."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1)
    out = g.sum(axis=axes, keepdims=True) if axes else g
    return out.reshape(shape)


class SumTo(Function):
    """out = a summed down to ``shape`` (undoes NumPy broadcasting).

    dL/da = g broadcast back to a's shape. SumTo and Expand are each other's backward.
    """

    name = "sum_to"
    saves_inputs = False

    def forward(self, a, shape=()):
        return sum_to_array(a, shape)

    def backward(self, g):
        return g.expand(self.in_shapes[0])


@torch_names
def sum(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Sum over ``axis`` (None: all; ``dim``/``keepdim`` also accepted)."""
    return Sum.apply(a, axis=axes_arg(axis, a.ndim, "sum"), keepdims=keepdims)


@torch_names
def mean(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Mean over ``axis`` (None: all); over no elements it is NaN, as PyTorch."""
    require_float(a, "mean")
    return Mean.apply(a, axis=axes_arg(axis, a.ndim, "mean"), keepdims=keepdims)


@torch_names
def var(a: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
    """Variance over ``axis``; ``ddof=0`` is the biased (population) variance, as NumPy
    (PyTorch's default is ``correction=1``: pass ``ddof=1`` for it)."""
    require_float(a, "var")
    if isinstance(ddof, bool) or not isinstance(ddof, int) or ddof < 0:
        raise ValueError(f"var: ddof must be a non-negative integer, got {ddof!r}")
    return Var.apply(a, axis=axes_arg(axis, a.ndim, "var"), keepdims=keepdims, ddof=ddof)


@torch_names
def max(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Maximum over ``axis``; ties share the gradient equally."""
    if a.data.size == 0:
        raise ValueError(f"max: empty tensor of shape {a.shape}")
    return Max.apply(a, axis=axes_arg(axis, a.ndim, "max"), keepdims=keepdims)


@torch_names
def min(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Minimum over ``axis``; ties share the gradient equally."""
    if a.data.size == 0:
        raise ValueError(f"min: empty tensor of shape {a.shape}")
    return Min.apply(a, axis=axes_arg(axis, a.ndim, "min"), keepdims=keepdims)


def _arg_reduce(a: Any, axis: int | None, keepdims: bool, opname: str) -> Any:
    """argmax/argmin: int64 indices, no gradient; with ``keepdims`` and no axis, all-ones shape (PyTorch)."""
    if a.data.size == 0:
        raise ValueError(f"{opname}: empty tensor of shape {a.shape}")
    if axis is None or a.ndim == 0:
        if axis is not None:
            axis_arg(axis, 0, opname, scalar_ok=True)
        out = getattr(a.data, opname)()
        shape = (1,) * a.ndim if keepdims else ()
    else:
        ax = axis_arg(axis, a.ndim, opname)
        out = getattr(a.data, opname)(axis=ax)
        shape = a.shape[:ax] + (1,) + a.shape[ax + 1 :] if keepdims else out.shape
    out = a.backend.xp.asarray(out).reshape(shape)
    return constant(a.backend.normalize(out).astype(B.int64, copy=False), a)


@torch_names
def argmax(a: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """Index of the maximum (int64, no gradient; the first one on ties)."""
    return _arg_reduce(a, axis, keepdims, "argmax")


@torch_names
def argmin(a: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """Index of the minimum (int64, no gradient; the first one on ties)."""
    return _arg_reduce(a, axis, keepdims, "argmin")


def _bool_reduce(a: Any, axis: Any, keepdims: bool, opname: str) -> Any:
    axes = axes_arg(axis, a.ndim, opname)
    out = getattr(a.data, opname)(axis=axes, keepdims=keepdims)
    return constant(a.backend.normalize(a.backend.xp.asarray(out)), a)


@torch_names
def any(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Whether any element over ``axis`` is nonzero (None: all), as a boolean tensor (no gradient)."""
    return _bool_reduce(a, axis, keepdims, "any")


@torch_names
def all(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Whether every element over ``axis`` is nonzero (None: all), as a boolean tensor (no gradient)."""
    return _bool_reduce(a, axis, keepdims, "all")


def sum_to(a: Any, shape: Sequence[int]) -> Any:
    """Sum ``a`` down to ``shape`` (the reverse of broadcasting ``shape`` to ``a.shape``)."""
    shape = tuple(shape)
    if a.shape == shape:
        return a
    if broadcast_shapes("sum_to", a.shape, shape) != a.shape:
        raise ValueError(f"sum_to: cannot sum shape {a.shape} down to {shape}")
    return SumTo.apply(a, shape=shape)


# ---- amax, amin, std, prod --------------------------------------------------------
@torch_names
def amax(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Maximum over ``axis`` (None: all); ties share the gradient equally (``torch.amax``)."""
    if a.numel() == 0:
        raise ValueError(f"amax: empty tensor of shape {a.shape}")
    return Max.apply(a, axis=axes_arg(axis, a.ndim, "amax"), keepdims=keepdims)


@torch_names
def amin(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Minimum over ``axis`` (None: all); ties share the gradient equally (``torch.amin``)."""
    if a.numel() == 0:
        raise ValueError(f"amin: empty tensor of shape {a.shape}")
    return Min.apply(a, axis=axes_arg(axis, a.ndim, "amin"), keepdims=keepdims)


class Std(Function):
    """out = sqrt(sum((a - mean(a))**2) / (N - correction)) over ``axis``.

    dL/da = g * (a - mean(a)) / ((N - correction) * out), and 0 where out = 0 (as PyTorch;
    the centred values are all 0 there). As for var, the mean's own dependence on a cancels.
    """

    def forward(self, a, axis=None, keepdims=False, correction=1):
        xp = self.xp
        self.axis, self.keepdims, self.correction = axis, keepdims, correction
        self.dof = builtins.max(reduced_count(a.shape, axis) - correction, 0)
        self.centered = a - a.mean(axis=axis, keepdims=True)
        squares = (self.centered * self.centered).sum(axis=axis, keepdims=True)
        if self.dof:
            self.out = xp.sqrt(squares / self.dof)
        else:  # PyTorch divides by max(N - correction, 0): inf, or NaN where the squares are 0
            self.out = xp.where(squares > 0, xp.inf, xp.nan).astype(a.dtype)
        return self.out if keepdims else self.out.reshape(dropped_shape(a.shape, axis))

    def backward(self, g):
        if is_grad_enabled():  # recompute with a graph, for higher-order gradients
            a = self.inputs[0]
            centered = a - a.mean(self.axis, keepdims=True)
            out = std(a, self.axis, keepdims=True, correction=self.correction)
        else:
            centered, out = self.const(self.centered), self.const(self.out)
        zero = self.const(self.out == 0)
        g = g if self.keepdims else g.reshape(keepdims_shape(self.in_shapes[0], self.axis))
        dof = float(self.dof) if self.dof else float("nan")
        per_row = (g / (out * dof).masked_fill(zero, 1.0)).masked_fill(zero, 0.0)
        return per_row.expand(self.in_shapes[0]) * centered


class Prod(Function):
    """out = product of a over ``axis`` (one axis, or None: all).

    dL/da_k = g * prod(a_j for j != k). Without zeros that is g * out / a_k; here it is the
    product of the running products to the left and to the right of k (two cumprods), which
    stays exact with zeros: a lone zero gets the product of the others, and with two zeros
    every gradient is 0.
    """

    def forward(self, a, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims
        return a.prod(axis=axis, keepdims=keepdims)

    def backward(self, g):
        a = self.inputs[0]
        if self.axis is None:
            others = _product_of_others(a.reshape(-1), 0).reshape(a.shape)
            return spread(g, a.shape, None, self.keepdims) * others
        return spread(g, a.shape, (self.axis,), self.keepdims) * _product_of_others(a, self.axis)


def _product_of_others(x, axis):
    """[.., k, ..] = the product along ``axis`` of every entry but the k-th (no division)."""
    n = x.shape[axis]
    ones_shape = tuple(1 if d == axis else s for d, s in enumerate(x.shape))
    ones = constant(x.backend.xp.ones(ones_shape, dtype=x.dtype), x)
    if n == 1:
        return ones
    head = (slice(None),) * axis + (slice(0, n - 1),)
    left = concat([ones, cumprod(x, axis)[head]], axis)  # [k] = x_0 * .. * x_(k-1)
    right = flip_axis(concat([ones, cumprod(flip_axis(x, axis), axis)[head]], axis), axis)  # x_(k+1) * ..
    return left * right


@torch_names
def std(a: Any, axis: Any = None, *, correction: Any = None, keepdims: bool = False, unbiased: Any = None) -> Any:
    """Standard deviation over ``axis``, dividing by N - correction (``torch.std``).

    The default is ``correction=1`` (unbiased), as PyTorch; ``unbiased=False`` means
    ``correction=0``. (``var`` keeps NumPy's ``ddof=0`` default.) The arguments after
    ``axis`` are keyword-only, as in PyTorch's current signature: ``x.std(1, True)``, which
    old PyTorch read as unbiased=True, is an error rather than a silent keepdims.
    """
    require_float(a, "std")
    if correction is not None and unbiased is not None:
        raise ValueError(f"std: give correction or unbiased, not both (got {correction!r} and {unbiased!r})")
    if unbiased is not None:
        if not isinstance(unbiased, bool):
            raise TypeError(f"std: unbiased must be True or False, got {unbiased!r}")
        correction = int(unbiased)
    correction = 1 if correction is None else correction
    if not isinstance(correction, (int, float)) or isinstance(correction, bool) or correction < 0:
        raise ValueError(f"std: correction must be a non-negative number, got {correction!r}")
    return Std.apply(a, axis=axes_arg(axis, a.ndim, "std"), keepdims=keepdims, correction=correction)


@torch_names
def prod(a: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """Product over one ``axis`` (None: all) (``torch.prod``); exact gradients with zeros too."""
    if axis is not None:
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise TypeError(f"prod: axis must be an int or None, got {axis!r}")
        axis = axis_arg(axis, builtins.max(a.ndim, 1), "prod") if a.ndim else None  # 0-d: the one element
    return Prod.apply(a, axis=axis, keepdims=keepdims)
