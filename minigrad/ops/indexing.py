"""Indexing and joining: ``a[index]``, embedding lookups, concatenation and its inverses.

Indexing picks values out, so its backward puts the gradient back where each value came
from, into zeros, adding where an index repeats (scatter-add); joining is undone by
slicing the gradient.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from .. import backend as B
from ..autograd import Function
from .checks import axis_arg, is_tensor, refuse_grad, torch_names
from .shape import unsqueeze


def _add_into_zeros(fn: Function, g, shape, index, advanced):
    """zeros(shape) with the array g added at index (scatter-add when indices may repeat)."""
    out = fn.xp.zeros(shape, dtype=g.dtype)
    if advanced:
        fn.backend.scatter_add(out, index, g)
    else:
        out[index] = g
    return out


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
        return IndexAddZeros.apply(g, shape=self.in_shapes[0], index=self.index, advanced=self.advanced)


class IndexAddZeros(Function):
    """out = zeros(shape) with g added at ``index`` (the backward of getitem).

    Its own backward is the matching getitem: dL/dg = gg[index].
    """

    name = "index_backward"
    saves_inputs = False

    def forward(self, g, shape=(), index=None, advanced=False):
        self.index, self.advanced = index, advanced
        return _add_into_zeros(self, g, shape, index, advanced)

    def backward(self, gg):
        return GetItem.apply(gg, index=self.index, advanced=self.advanced)


class Embedding(Function):
    """out = weight[indices]: a row of the table per index.

    dL/dweight = zeros with each g row added to the row it came from (scatter-add);
    the row ``padding_idx`` (if given) gets no gradient, as in PyTorch.
    """

    name = "embedding"
    saves_inputs = False

    def forward(self, weight, index=None, padding_idx=None):
        self.index, self.padding_idx = index, padding_idx
        return weight[index]

    def backward(self, g):
        if self.padding_idx is not None:
            g = g.masked_fill(self.const((self.index == self.padding_idx)[..., None]), 0.0)
        return IndexAddZeros.apply(g, shape=self.in_shapes[0], index=self.index, advanced=True)


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
            index = (slice(None),) * self.axis + (slice(start, stop),)
            grads.append(GetItem.apply(g, index=index, advanced=False) if need else None)
            start = stop
        return tuple(grads)


def _index_array(t: Any, item: Any) -> Any:
    if is_tensor(item):
        if item.device != t.device:
            raise RuntimeError(f"getitem: index on device {item.device}, tensor on device {t.device}")
        refuse_grad(item, "getitem", "the index")
        arr = item.data
    else:
        arr = t.backend.asarray(item)
    if arr.dtype.kind not in "iub":
        raise IndexError(f"getitem: index arrays must be integer or boolean, got dtype {arr.dtype}")
    return arr


def _normalize_index(t: Any, index: Any) -> tuple[Any, bool]:
    """Raw index for the backend and whether it uses integer arrays (advanced indexing)."""
    items = index if isinstance(index, tuple) else (index,)
    out: list[Any] = []
    advanced = False
    for item in items:
        if item is None or item is Ellipsis or isinstance(item, slice):
            out.append(item)
        elif isinstance(item, bool):
            raise IndexError("getitem: a Python bool is not a valid index")
        elif isinstance(item, int) or (B.is_host_array(item) and getattr(item, "ndim", 1) == 0):
            out.append(int(item))
        elif is_tensor(item) or isinstance(item, (list, tuple)) or hasattr(item, "__array__") or hasattr(item, "shape"):
            # a tuple inside the index is an integer array, as in NumPy and PyTorch: x[((0,),)] is x[[0]]
            arr = _index_array(t, item)
            advanced = True
            if arr.dtype.kind == "b":
                out.extend(arr.nonzero())  # a boolean mask selects its True positions
            else:
                out.append(arr)
        else:
            raise IndexError(f"getitem: unsupported index {item!r}")
    return tuple(out), advanced


def getitem(a: Any, index: Any) -> Any:
    """``a[index]``: ints, slices, None, Ellipsis, integer or boolean index tensors/lists."""
    raw, advanced = _normalize_index(a, index)
    try:
        return GetItem.apply(a, index=raw, advanced=advanced)
    except IndexError as exc:
        raise IndexError(f"getitem: index {index!r} is invalid for a tensor of shape {a.shape}: {exc}") from None


def embedding(indices: Any, weight: Any, padding_idx: int | None = None) -> Any:
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ``indices`` (any shape).

    The row ``padding_idx`` receives no gradient (as ``torch.nn.functional.embedding``).
    """
    if not is_tensor(indices):
        indices = type(weight)(indices, device=weight.device)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {indices.dtype}")
    if indices.device != weight.device:
        raise RuntimeError(f"embedding: indices on device {indices.device}, weight on device {weight.device}")
    n = weight.shape[0]
    if indices.data.size and (int(indices.data.min()) < 0 or int(indices.data.max()) >= n):
        raise IndexError(
            f"embedding: indices must be in [0, {n}), got values in "
            f"[{int(indices.data.min())}, {int(indices.data.max())}]"
        )
    return Embedding.apply(weight, index=indices.data, padding_idx=padding_idx)


@torch_names
def concat(tensors: Sequence[Any], axis: int = 0) -> Any:
    """Join tensors along an existing axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat: expected at least one tensor")
    ndim = tensors[0].ndim
    ax = axis_arg(axis, ndim, "concat")
    for t in tensors[1:]:
        if t.ndim != ndim or t.shape[:ax] + t.shape[ax + 1 :] != tensors[0].shape[:ax] + tensors[0].shape[ax + 1 :]:
            shapes = ", ".join(str(x.shape) for x in tensors)
            raise ValueError(f"concat: shapes ({shapes}) differ outside axis {axis}")
    if len(tensors) == 1:
        return tensors[0]
    return Concat.apply(*tensors, axis=ax)


cat = concat


@torch_names
def stack(tensors: Sequence[Any], axis: int = 0) -> Any:
    """Join same-shaped tensors along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected at least one tensor")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            shapes = ", ".join(str(x.shape) for x in tensors)
            raise ValueError(f"stack: all tensors must have the same shape, got ({shapes})")
    ax = axis_arg(axis, tensors[0].ndim + 1, "stack")
    return Concat.apply(*[unsqueeze(t, ax) for t in tensors], axis=ax)


@torch_names
def split(a: Any, split_size_or_sections: int | Sequence[int], axis: int = 0) -> list[Any]:
    """Split into pieces of ``split_size`` (last may be smaller) or of the given sizes (PyTorch)."""
    ax = axis_arg(axis, a.ndim, "split")
    n = a.shape[ax]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError(f"split: split_size must be positive, got {split_size_or_sections}")
        sizes = [builtins.min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to {n} (axis {axis} of shape {a.shape})")
    pieces = []
    start = 0
    for size in sizes:
        index = (slice(None),) * ax + (slice(start, start + size),)
        pieces.append(GetItem.apply(a, index=index, advanced=False))
        start += size
    return pieces


@torch_names
def chunk(a: Any, chunks: int, axis: int = 0) -> list[Any]:
    """Split into ``chunks`` pieces of ceil(n / chunks) (the last smaller), as ``torch.chunk``:
    fewer pieces when n does not fill them (6 into 4 gives 3 pieces of 2)."""
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 1:
        raise ValueError(f"chunk: chunks must be a positive integer, got {chunks!r}")
    n = a.shape[axis_arg(axis, a.ndim, "chunk")]
    if n == 0:  # as PyTorch: ``chunks`` empty pieces
        return split(a, [0] * chunks, axis)
    return split(a, -(-n // chunks), axis)
