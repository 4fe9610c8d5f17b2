"""Shape ops: they move values around without changing them.

Their backward moves the gradient back the same way: reshape undoes reshape,
transposing by the inverse permutation undoes a transpose, and summing over the
broadcast axes undoes an expand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..autograd import Function
from .checks import axes_arg, axis_arg, broadcast_shapes, torch_names


class Reshape(Function):
    """out = a with a new shape (same elements, row-major order).   dL/da = g reshaped back."""

    saves_inputs = False

    def forward(self, a, shape=()):
        return a.reshape(shape)

    def backward(self, g):
        return g.reshape(self.in_shapes[0])


class Squeeze(Reshape):
    """Remove size-1 axes (a reshape).   dL/da = g reshaped back."""

    name = "squeeze"


class Unsqueeze(Reshape):
    """Insert a size-1 axis (a reshape).   dL/da = g reshaped back."""

    name = "unsqueeze"


class Transpose(Function):
    """out = a with its axes permuted: out.shape[i] = a.shape[axes[i]].

    dL/da = g permuted by the inverse permutation.
    """

    saves_inputs = False

    def forward(self, a, axes=()):
        self.axes = axes
        return a.transpose(axes)

    def backward(self, g):
        inverse = [0] * len(self.axes)
        for i, ax in enumerate(self.axes):
            inverse[ax] = i
        return transpose(g, inverse)


class SplitHeads(Function):
    """(batch, seq, heads * d) -> (batch, heads, seq, d): split the last axis into ``heads``
    blocks of d and move the head axis in front of the sequence (a reshape, then swapping
    axes 1 and 2, as one node; a view, no copy).

    dL/da = g moved back the same way: axes 1 and 2 swapped, the heads joined again.
    """

    name = "split_heads"
    saves_inputs = False

    def forward(self, a, heads=1):
        b, s, m = a.shape
        return a.reshape(b, s, heads, m // heads).transpose(0, 2, 1, 3)

    def backward(self, g):
        return merge_heads(g)


class MergeHeads(Function):
    """(batch, heads, seq, d) -> (batch, seq, heads * d): the inverse of SplitHeads (the
    heads' outputs side by side for each position; a copy unless ``a`` is laid out
    (batch, seq, heads, d) in memory).

    dL/da = g split into heads again.
    """

    name = "merge_heads"
    saves_inputs = False

    def forward(self, a):
        b, h, s, d = a.shape
        return a.transpose(0, 2, 1, 3).reshape(b, s, h * d)

    def backward(self, g):
        return split_heads(g, self.in_shapes[0][1])


class Expand(Function):
    """out = a broadcast to ``shape`` (a read-only view, no copy).

    dL/da = g summed over the broadcast axes (``sum_to_size``).
    """

    saves_inputs = False

    def forward(self, a, shape=()):
        return self.xp.broadcast_to(a, shape)

    def backward(self, g):
        return g.sum_to_size(self.in_shapes[0])


def _resolve_shape(opname: str, shape: Sequence[int], size: int, from_shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise ValueError(f"{opname}: only one dimension can be -1, got {shape}")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if -1 in shape:
        if known == 0 or size % known:
            raise ValueError(f"{opname}: cannot reshape {from_shape} ({size} elements) to {shape}")
        shape = tuple(size // known if s == -1 else s for s in shape)
    elif known != size:
        raise ValueError(f"{opname}: cannot reshape {from_shape} ({size} elements) to {shape}")
    return shape


def reshape(a: Any, shape: Sequence[int]) -> Any:
    """Same elements, new shape (one entry may be -1)."""
    shape = _resolve_shape("reshape", shape, a.data.size, a.shape)
    if shape == a.shape:
        return a
    return Reshape.apply(a, shape=shape)


@torch_names
def flatten(a: Any, start_axis: int = 0, end_axis: int = -1) -> Any:
    if a.ndim == 0:
        return reshape(a, (1,))
    s, e = axis_arg(start_axis, a.ndim, "flatten"), axis_arg(end_axis, a.ndim, "flatten")
    return reshape(a, a.shape[:s] + (-1,) + a.shape[e + 1 :])


def transpose(a: Any, axes: Sequence[int] | None = None) -> Any:
    """Permute axes (NumPy's ``transpose``; None reverses them)."""
    if axes is None:
        axes = tuple(range(a.ndim - 1, -1, -1))
    axes = tuple(axis_arg(ax, a.ndim, "transpose") for ax in axes)
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of {a.ndim} dimensions")
    if axes == tuple(range(a.ndim)):
        return a
    return Transpose.apply(a, axes=axes)


permute = transpose


@torch_names
def swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    """Exchange two axes (a transpose)."""
    i, j = axis_arg(axis1, a.ndim, "swapaxes"), axis_arg(axis2, a.ndim, "swapaxes")
    axes = list(range(a.ndim))
    axes[i], axes[j] = axes[j], axes[i]
    return transpose(a, axes)


def split_heads(a: Any, heads: int) -> Any:
    """(batch, seq, heads * d) -> (batch, heads, seq, d), one node: what
    ``a.reshape(batch, seq, heads, d).transpose(1, 2)`` computes (multi-head attention)."""
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
        raise ValueError(f"split_heads: heads must be a positive integer, got {heads!r}")
    if a.ndim != 3 or a.shape[-1] % heads:
        raise ValueError(
            f"split_heads: expected (batch, seq, features) with features divisible by heads={heads}, "
            f"got shape {a.shape}"
        )
    return SplitHeads.apply(a, heads=heads)


def merge_heads(a: Any) -> Any:
    """(batch, heads, seq, d) -> (batch, seq, heads * d), one node: the inverse of
    :func:`split_heads` (``a.transpose(1, 2).reshape(batch, seq, heads * d)``)."""
    if a.ndim != 4:
        raise ValueError(f"merge_heads: expected (batch, heads, seq, d), got shape {a.shape}")
    return MergeHeads.apply(a)


def expand(a: Any, shape: Sequence[int]) -> Any:
    """Broadcast to ``shape`` without copying (-1 keeps a dimension)."""
    shape = tuple(shape)
    lead = len(shape) - a.ndim
    if lead < 0:
        raise ValueError(f"expand: cannot expand shape {a.shape} to fewer dimensions {shape}")
    shape = tuple(a.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
    if broadcast_shapes("expand", a.shape, shape) != shape:
        raise ValueError(f"expand: cannot expand shape {a.shape} to {shape}")
    if shape == a.shape:
        return a
    return Expand.apply(a, shape=shape)


@torch_names
def squeeze(a: Any, axis: int | Sequence[int] | None = None) -> Any:
    """Remove size-1 axes (all, or those in ``axis``; a non-1 axis is left as is, as PyTorch;
    a 0-d tensor accepts axis 0 and -1)."""
    axes = axes_arg(axis, a.ndim, "squeeze") if axis is not None else None
    shape = tuple(s for i, s in enumerate(a.shape) if not (s == 1 and (axes is None or i in axes)))
    if shape == a.shape:
        return a
    return Squeeze.apply(a, shape=shape)


@torch_names
def unsqueeze(a: Any, axis: int) -> Any:
    """Insert a size-1 axis at ``axis`` (negative counts from the new end)."""
    ax = axis_arg(axis, a.ndim + 1, "unsqueeze")
    return Unsqueeze.apply(a, shape=a.shape[:ax] + (1,) + a.shape[ax:])
