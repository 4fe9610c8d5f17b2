"""Index-driven ops along one axis: gather, scatter, scatter_add; masked_select; one_hot.

For an integer ``index`` tensor of the input's number of axes, gather along ``dim`` reads

    out[i][j][k] = a[index[i][j][k]][j][k]          (dim = 0; likewise for other dims)

and scatter writes the other way round. Each position of ``index`` names one element of
the input, so an index tuple (``index`` on axis ``dim``, a range on every other axis)
turns both into plain advanced indexing: gather is ``a[idx]`` and its backward is the
scatter-add of g at ``idx``; a scatter's backward gathers g back at ``idx``.
Indices carry no gradient (integer tensors).
"""

from __future__ import annotations

from typing import Any

from .. import backend as B
from ..autograd import Function
from .checks import axis_arg, broadcast_shapes, constant, is_number, is_tensor, refuse_grad, require_tensor
from .indexing import GetItem, IndexAddZeros


def _gathered(fn: Function, g: Any, src_shape: tuple[int, ...], index_shape: tuple[int, ...]) -> Any:
    """g[idx] (the values written from src), placed in zeros of src's shape if src is larger."""
    picked = GetItem.apply(g, index=fn.index, advanced=True)
    if tuple(src_shape) == tuple(index_shape):
        return picked
    corner = tuple(slice(0, n) for n in index_shape)
    return IndexAddZeros.apply(picked, shape=src_shape, index=corner, advanced=False)


class Gather(Function):
    """out = a[idx]: along ``dim`` the element ``index`` names, elsewhere the same position.

    dL/da = zeros like a with g added at idx (scatter-add: an element gathered twice gets
    both gradients).
    """

    saves_inputs = False

    def forward(self, a, index=()):
        self.index = index
        return a[index]

    def backward(self, g):
        return IndexAddZeros.apply(g, shape=self.in_shapes[0], index=self.index, advanced=True)


class ScatterAdd(Function):
    """out = a, then src[p] added at idx[p] for every position p of index (repeats add up).

    dL/da = g (every element of a reaches the output once);
    dL/dsrc = g[idx] at the positions of index, 0 where src is larger than index.
    """

    name = "scatter_add"
    saves_inputs = False

    def forward(self, a, src, index=(), index_shape=()):
        self.index, self.index_shape = index, index_shape
        out = a.copy()
        self.backend.scatter_add(out, index, src[tuple(slice(0, n) for n in index_shape)])
        return out

    def backward(self, g):
        ga = g if self.needs_input_grad[0] else None
        gsrc = _gathered(self, g, self.in_shapes[1], self.index_shape) if self.needs_input_grad[1] else None
        return ga, gsrc


class Scatter(Function):
    """out = a with src[p] (or ``value``) written at idx[p] for every position p of index.

    dL/da = g where nothing was written, 0 where a was overwritten;
    dL/dsrc = g[idx] (as PyTorch, also for an index that repeats, where the written value
    is one of the writers': keep indices distinct along ``dim`` for a well-defined gradient).
    """

    saves_inputs = False

    def forward(self, a, *src, index=(), index_shape=(), value=0.0):
        xp = self.xp
        self.index, self.index_shape = index, index_shape
        out = a.copy()
        out[index] = src[0][tuple(slice(0, n) for n in index_shape)] if src else value
        keep = xp.ones(a.shape, dtype=a.dtype)
        keep[index] = 0
        self.keep = keep
        return out

    def backward(self, g):
        ga = g * self.const(self.keep) if self.needs_input_grad[0] else None
        if len(self.in_shapes) == 1:
            return ga
        gsrc = _gathered(self, g, self.in_shapes[1], self.index_shape) if self.needs_input_grad[1] else None
        return ga, gsrc


class MaskedSelect(Function):
    """out = the elements of a (broadcast with mask) where mask is True, as a 1-D tensor.

    dL/da = zeros of the broadcast shape with g put back at the True positions, summed
    back to a's shape where a was broadcast.
    """

    name = "masked_select"
    saves_inputs = False

    def forward(self, a, mask=None, shape=()):
        xp = self.xp
        self.shape = shape
        self.index = xp.broadcast_to(mask, shape).nonzero()
        return xp.broadcast_to(a, shape)[self.index]

    def backward(self, g):
        full = IndexAddZeros.apply(g, shape=self.shape, index=self.index, advanced=True)
        return full.sum_to_size(self.in_shapes[0])


# ---- the functions ----------------------------------------------------------------------------
def _index_tuple(opname: str, a: Any, dim: int, index: Any, limit: tuple[int, ...] | None = None) -> tuple:
    """Check ``index`` against ``a`` and build (index on axis dim, ranges elsewhere)."""
    require_tensor(a, opname)
    if not is_tensor(index):
        index = type(a)(index, device=a.device)
    if index.device != a.device:
        raise RuntimeError(f"{opname}: index on device {index.device}, input on device {a.device}")
    if index.dtype.kind not in "iu":
        raise TypeError(f"{opname}: index must hold integers, got dtype {index.dtype}")
    ax = axis_arg(dim, max(a.ndim, 1), opname)
    if index.ndim != a.ndim:
        raise ValueError(f"{opname}: index must have the input's {a.ndim} dimensions, got shape {index.shape}")
    for d, (n, m) in enumerate(zip(index.shape, a.shape)):
        if d != ax and n > m:
            raise ValueError(
                f"{opname}: index of shape {index.shape} is larger than the input {a.shape} on dimension {d}"
            )
        if limit is not None and n > limit[d]:
            raise ValueError(f"{opname}: index of shape {index.shape} is larger than src {limit} on dimension {d}")
    size = a.shape[ax] if a.ndim else 1
    if index.size and (int(index.data.min()) < 0 or int(index.data.max()) >= size):
        raise IndexError(
            f"{opname}: index values must be in [0, {size}) for dimension {dim} of shape {a.shape}, "
            f"got values in [{int(index.data.min())}, {int(index.data.max())}]"
        )
    xp = a.backend.xp
    idx = []
    for d, n in enumerate(index.shape):
        if d == ax:
            idx.append(index.data)
        else:
            idx.append(xp.arange(n).reshape((1,) * d + (n,) + (1,) * (index.ndim - d - 1)))
    return tuple(idx), index.shape


def gather(a: Any, dim: int, index: Any) -> Any:
    """``torch.gather``: out[i][j] = a[index[i][j]][j] for dim=0 (index has a's number of
    dimensions, and is no larger than a outside ``dim``)."""
    idx, _ = _index_tuple("gather", a, dim, index)
    return Gather.apply(a, index=idx)


def _src_tensor(opname: str, a: Any, src: Any) -> Any:
    require_tensor(src, opname, "src")
    if src.ndim != a.ndim:
        raise ValueError(f"{opname}: src must have the input's {a.ndim} dimensions, got shape {src.shape}")
    return src


def scatter_add(a: Any, dim: int, index: Any, src: Any) -> Any:
    """``torch.scatter_add``: a copy of ``a`` with src[p] added at the element index[p]
    names along ``dim`` (repeated indices add up); differentiable in a and src."""
    src = _src_tensor("scatter_add", a, src)
    idx, shape = _index_tuple("scatter_add", a, dim, index, limit=src.shape)
    return ScatterAdd.apply(a, src, index=idx, index_shape=shape)


def scatter(a: Any, dim: int, index: Any, src: Any = None, value: Any = None) -> Any:
    """``torch.scatter``: a copy of ``a`` with src[p] (or the number ``value``) written at
    the element index[p] names along ``dim``."""
    if (src is None) == (value is None):
        raise ValueError("scatter: give exactly one of src (a tensor) and value (a number)")
    if src is not None and not is_tensor(src) and is_number(src):
        src, value = None, src  # torch.scatter(input, dim, index, 2.0)
    if src is None:
        if is_tensor(value):
            refuse_grad(value, "scatter", "value")
            value = value.item()
        if not is_number(value):
            raise TypeError(f"scatter: value must be a number, got {type(value).__name__}")
        idx, shape = _index_tuple("scatter", a, dim, index)
        return Scatter.apply(a, index=idx, index_shape=shape, value=value)
    src = _src_tensor("scatter", a, src)
    idx, shape = _index_tuple("scatter", a, dim, index, limit=src.shape)
    return Scatter.apply(a, src, index=idx, index_shape=shape)


def masked_select(a: Any, mask: Any) -> Any:
    """``torch.masked_select``: the elements where the boolean ``mask`` is True, as a 1-D
    tensor (a and mask broadcast together)."""
    require_tensor(a, "masked_select")
    if not is_tensor(mask) or mask.dtype != B.bool_:
        got = getattr(mask, "dtype", type(mask).__name__)
        raise TypeError(f"masked_select: mask must be a boolean Tensor, got {got}")
    if mask.device != a.device:
        raise RuntimeError(f"masked_select: mask on device {mask.device}, input on device {a.device}")
    shape = broadcast_shapes("masked_select", a.shape, mask.shape)
    return MaskedSelect.apply(a, mask=mask.data, shape=shape)


def one_hot(index: Any, num_classes: int = -1) -> Any:
    """``torch.nn.functional.one_hot``: int64 tensor of shape index.shape + (num_classes,),
    1 at each index (no gradient: the input is integer). num_classes=-1 uses max + 1."""
    require_tensor(index, "one_hot")
    if index.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expects an integer tensor of class indices, got dtype {index.dtype}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < -1:
        raise ValueError(f"one_hot: num_classes must be a non-negative integer or -1, got {num_classes!r}")
    data = index.data
    low = int(data.min()) if data.size else 0
    high = int(data.max()) if data.size else -1
    if num_classes == -1:
        if not data.size:
            raise ValueError("one_hot: cannot infer num_classes from an empty tensor; pass num_classes")
        num_classes = high + 1
    if low < 0 or high >= num_classes:
        raise ValueError(f"one_hot: class values must be in [0, {num_classes}), got values in [{low}, {high}]")
    xp = index.backend.xp
    return constant((data[..., None] == xp.arange(num_classes)).astype(B.int64), index)
