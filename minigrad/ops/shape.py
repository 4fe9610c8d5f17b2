"""Shape ops: they move values around without changing them.

Their backward moves the gradient back the same way: reshape undoes reshape,
transposing by the inverse permutation undoes a transpose, and indexing scatters
the gradient back into zeros (adding where an index repeats).
"""

from __future__ import annotations

from .. import functional as F
from ..autograd import Function


def reshaped(a, shape):
    """``a`` in ``shape``, reshaped only when needed. A gradient returned as a view of a
    fresh array would be copied by the engine before it becomes a leaf's ``.grad``."""
    return a if a.shape == tuple(shape) else a.reshape(shape)


class Reshape(Function):
    """out = a with a new shape (same elements, row-major order).   dL/da = g reshaped back."""

    saves_inputs = False

    def forward(self, a, shape=()):
        return a.reshape(shape)

    def backward(self, g):
        return F.reshape(g, self.in_shapes[0])

    def backward_array(self, g):
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
        return F.transpose(g, tuple(inverse))

    def backward_array(self, g):
        inverse = [0] * len(self.axes)
        for i, ax in enumerate(self.axes):
            inverse[ax] = i
        return g.transpose(inverse)


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
        return F.merge_heads(g)

    def backward_array(self, g):
        b, h, s, d = g.shape
        return g.transpose(0, 2, 1, 3).reshape(b, s, h * d)


class MergeHeads(Function):
    """(batch, heads, seq, d) -> (batch, seq, heads * d): the inverse of SplitHeads (the
    heads' outputs side by side for each position). A view when ``a`` is laid out
    (batch, seq, heads, d) in memory, as the attention ops lay out their outputs; a copy
    otherwise.

    dL/da = g split into heads again (a view of g).
    """

    name = "merge_heads"
    saves_inputs = False

    def forward(self, a):
        b, h, s, d = a.shape
        return a.transpose(0, 2, 1, 3).reshape(b, s, h * d)

    def backward(self, g):
        return F.split_heads(g, self.in_shapes[0][1])

    def backward_array(self, g):
        b, s, m = g.shape
        h = self.in_shapes[0][1]
        return g.reshape(b, s, h, m // h).transpose(0, 2, 1, 3)


class Expand(Function):
    """out = a broadcast to ``shape`` (a read-only view, no copy).

    dL/da = g summed over the broadcast axes (``sum_to``).
    """

    saves_inputs = False

    def forward(self, a, shape=()):
        return self.xp.broadcast_to(a, shape)

    def backward(self, g):
        return F.sum_to(g, self.in_shapes[0])

    def backward_array(self, g):
        from .reduction import sum_to_array

        return sum_to_array(g, self.in_shapes[0])


class GetItem(Function):
    """out = a[index] (basic slicing and integer-array indexing).

    dL/da = zeros like a, with g added at ``index``; where an integer array repeats an
    index, the contributions add up (scatter-add).
    """

    name = "getitem"
    saves_inputs = False

    def forward(self, a, index=None, advanced=False):
        self.index, self.advanced = index, advanced
        return a[index]

    def backward(self, g):
        return F.index_add_zeros(g, self.in_shapes[0], self.index, self.advanced)

    def backward_array(self, g):
        return _index_add_zeros(self, g, self.in_shapes[0], self.index, self.advanced)


class Embedding(GetItem):
    """out = weight[indices]: a row of the table per index.

    dL/dweight = zeros with each g row added to the row it came from (scatter-add);
    the row ``padding_idx`` (if given) gets no gradient, as in PyTorch.
    """

    name = "embedding"

    def forward(self, weight, index=None, padding_idx=None):
        self.padding_idx = padding_idx
        return super().forward(weight, index=index, advanced=True)

    def backward(self, g):
        if self.padding_idx is not None:
            keep = (self.index != self.padding_idx)[..., None].astype(g.dtype)
            g = g * self.const(keep)
        return F.index_add_zeros(g, self.in_shapes[0], self.index, True)

    def backward_array(self, g):
        if self.padding_idx is not None:
            g = g * (self.index != self.padding_idx)[..., None]
        return _index_add_zeros(self, g, self.in_shapes[0], self.index, True)


class IndexAddZeros(Function):
    """out = zeros(shape) with g added at ``index`` (the backward of getitem).

    Its own backward is the matching getitem: dL/dg = gg[index].
    """

    name = "index_backward"
    saves_inputs = False

    def forward(self, g, shape=(), index=None, advanced=False):
        self.index, self.advanced = index, advanced
        return _index_add_zeros(self, g, shape, index, advanced)

    def backward(self, gg):
        return F.getitem_raw(gg, self.index, self.advanced)


def _index_add_zeros(fn: Function, g, shape, index, advanced):
    """zeros(shape) with the array g added at index (scatter-add when indices may repeat)."""
    out = fn.xp.zeros(shape, dtype=g.dtype)
    if advanced:
        fn.backend.scatter_add(out, index, g)
    else:
        out[index] = g
    return out


class Concat(Function):
    """out = the inputs joined along ``axis``.   dL/d(input i) = the slice of g it fills."""

    saves_inputs = False

    def forward(self, *arrays, axis=0):
        self.axis = axis
        return self.xp.concatenate(arrays, axis=axis)

    def backward(self, g):
        grads = []
        start = 0
        for shape, need in zip(self.in_shapes, self.needs_input_grad):
            stop = start + shape[self.axis]
            if need:
                index = (slice(None),) * self.axis + (slice(start, stop),)
                grads.append(F.getitem_raw(g, index, False))
            else:
                grads.append(None)
            start = stop
        return tuple(grads)

    def backward_array(self, g):
        grads = []
        start = 0
        for shape, need in zip(self.in_shapes, self.needs_input_grad):
            stop = start + shape[self.axis]
            index = (slice(None),) * self.axis + (slice(start, stop),)
            grads.append(g[index] if need else None)
            start = stop
        return tuple(grads)
