"""Sorting: sort, argsort, topk.

sort and topk pick values out of ``a`` (a permutation along the axis, or its first k),
so their backward puts each gradient back where its value came from, as getitem's does.
The indices are integers and carry no gradient (as PyTorch).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from .. import backend as B
from ..autograd import Function
from .checks import axis_arg, constant, require_tensor, torch_names
from .indexing import IndexAddZeros

#: what sort and topk return, as PyTorch's ``torch.return_types``: ``values, indices = ...``
SortResult = namedtuple("SortResult", ["values", "indices"])


def _order(xp: Any, a: Any, axis: int, descending: bool) -> Any:
    """Indices that sort ``a`` along ``axis``; ties keep their order (a stable sort).

    NaN counts as the largest value, as in PyTorch: last when ascending, first when descending.
    """
    if a.dtype.kind == "b":
        a = a.astype(xp.int8)
    key = -a if descending and a.dtype.kind != "u" else a
    order = xp.argsort(key, axis=axis, kind="stable")  # NaNs last
    if descending and a.dtype.kind == "u":
        order = xp.flip(order, axis=axis)
    if descending and a.dtype.kind == "f" and bool(xp.isnan(a).any()):
        not_nan = ~xp.isnan(xp.take_along_axis(a, order, axis=axis))  # a second stable sort: NaNs first
        order = xp.take_along_axis(order, xp.argsort(not_nan, axis=axis, kind="stable"), axis=axis)
    return order


def _along_axis(xp: Any, order: Any, axis: int) -> tuple[Any, ...]:
    """The index tuple that picks ``a[..., order[...], ...]`` (numpy's take_along_axis)."""
    index = []
    for d, size in enumerate(order.shape):
        if d == axis:
            index.append(order)
        else:
            shape = [1] * order.ndim
            shape[d] = size
            index.append(xp.arange(size).reshape(shape))
    return tuple(index)


class Sort(Function):
    """out = a sorted along ``axis`` (for topk: its first ``k`` values).

    out[.., i, ..] = a[.., order_i, ..], so dL/da = zeros with g_i put back at order_i
    (a scatter: the backward of the getitem that sorting is).
    """

    saves_inputs = False

    def forward(self, a, axis=-1, order=None):
        self.index = _along_axis(self.xp, order, axis)
        return a[self.index]

    def backward(self, g):
        return IndexAddZeros.apply(g, shape=self.in_shapes[0], index=self.index, advanced=True)


class TopK(Sort):
    """out = the k largest (or smallest) values along ``axis``, in order.

    dL/da = zeros with g_i put back where the i-th value came from.
    """

    name = "topk"


def _axis(a: Any, axis: Any, opname: str) -> int:
    require_tensor(a, opname)
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"{opname}: axis must be an int, got {axis!r}")
    return axis_arg(axis, a.ndim or 1, opname)  # a 0-d tensor sorts as one element (PyTorch)


def _picked(op: type, a: Any, ax: int, order: Any) -> SortResult:
    indices = constant(a.backend.normalize(order).astype(B.int64, copy=False), a)
    if a.ndim == 0:
        values = op.apply(a.reshape(1), axis=0, order=order.reshape(1)).reshape(())
        return SortResult(values, indices.reshape(()))
    return SortResult(op.apply(a, axis=ax, order=order), indices)


def _order_of(a: Any, ax: int, descending: bool) -> Any:
    data = a.data.reshape(1) if a.ndim == 0 else a.data
    return _order(a.backend.xp, data, ax, bool(descending))


@torch_names
def sort(a: Any, axis: int = -1, descending: bool = False) -> SortResult:
    """(values, indices) of ``a`` sorted along ``axis`` (``torch.sort``); ties keep their order."""
    ax = _axis(a, axis, "sort")
    return _picked(Sort, a, ax, _order_of(a, ax, descending))


@torch_names
def argsort(a: Any, axis: int = -1, descending: bool = False) -> Any:
    """The indices that sort ``a`` along ``axis`` (int64, no gradient; ``torch.argsort``)."""
    ax = _axis(a, axis, "argsort")
    order = a.backend.normalize(_order_of(a, ax, descending)).astype(B.int64, copy=False)
    return constant(order.reshape(()) if a.ndim == 0 else order, a)


@torch_names
def topk(a: Any, k: int, axis: int = -1, largest: bool = True, sorted: bool = True) -> SortResult:
    """(values, indices) of the ``k`` largest (``largest=False``: smallest) along ``axis`` (``torch.topk``).

    The values always come in order, largest (or smallest) first, which ``sorted=False`` allows too.
    """
    ax = _axis(a, axis, "topk")
    n = a.shape[ax] if a.ndim else 1
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= n:
        raise ValueError(f"topk: k must be an int in [0, {n}] for axis {axis} of shape {a.shape}, got {k!r}")
    order = _order_of(a, ax, largest)[(slice(None),) * ax + (slice(0, k),)]
    return _picked(TopK, a, ax, order)
