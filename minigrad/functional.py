"""Every minigrad op as a function (``import minigrad.functional as F``).

These wrappers check their arguments (shapes, dtypes, devices, axes) and give errors
that name the op, then apply the op's :class:`~minigrad.autograd.Function`. The ops
themselves, with their derivatives, live in :mod:`minigrad.ops`.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from . import backend as B
from .autograd import is_grad_enabled, no_grad  # noqa: F401  (is_grad_enabled is used by ops' backward)
from .tensor import Tensor

Number = int | float | bool
TensorLike = Tensor | Number


# ---- argument helpers -------------------------------------------------------------------------
def _scalar_like(value: Any, like: Tensor, opname: str) -> Tensor:
    """A Python number as a 0-d tensor of ``like``'s dtype and device (no gradient)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (bool, int, float)) or B.is_host_array(value) and getattr(value, "ndim", 1) == 0:
        if like.dtype.kind == "f" or isinstance(value, (bool, int)) and not isinstance(value, float):
            dtype = like.dtype
        else:
            dtype = B.get_default_dtype()
        return Tensor._make(like.backend.asarray(value, dtype=dtype), like.device, False, None)
    raise TypeError(
        f"{opname}: expected a Tensor or a Python number, got {type(value).__name__}; "
        "wrap arrays with minigrad.tensor(...)"
    )


def broadcast_shapes(opname: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy's broadcasting rule, with an error that names the op and the shapes."""
    ndim = builtins.max(len(s) for s in shapes)
    out = []
    for i in range(ndim):
        size = 1
        for s in shapes:
            j = i - (ndim - len(s))
            if j < 0:
                continue
            d = s[j]
            if d != 1:
                if size != 1 and d != size:
                    listed = " and ".join(str(tuple(x)) for x in shapes)
                    raise ValueError(f"{opname}: shapes {listed} cannot be broadcast together")
                size = d
        out.append(size)
    return tuple(out)


def _binary(opname: str, a: Any, b: Any) -> tuple[Tensor, Tensor]:
    if isinstance(a, Tensor):
        b = _scalar_like(b, a, opname)
    elif isinstance(b, Tensor):
        a = _scalar_like(a, b, opname)
    else:
        raise TypeError(f"{opname}: expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")
    if a.dtype != b.dtype and (a.dtype.kind != "f" or b.dtype.kind != "f"):
        # an integer or boolean tensor meets a float one: compute in the float dtype
        if a.dtype.kind != "f" and b.dtype.kind == "f":
            a = cast(a, b.dtype)
        elif b.dtype.kind != "f" and a.dtype.kind == "f":
            b = cast(b, a.dtype)
    if a.data.shape != b.data.shape:
        broadcast_shapes(opname, a.shape, b.shape)
    return a, b


def _axes(axis: Any, ndim: int, opname: str) -> tuple[int, ...] | None:
    """Normalize ``axis`` (None, int or sequence; negative allowed) to a sorted tuple."""
    if axis is None:
        return None
    items = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for ax in items:
        if not -ndim <= ax < builtins.max(ndim, 1):
            raise ValueError(f"{opname}: axis {ax} is out of range for a tensor with {ndim} dimensions")
        out.append(ax % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"{opname}: repeated axis in {axis}")
    return tuple(sorted(out))


def _axis(axis: int, ndim: int, opname: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{opname}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return axis % ndim


def _require_float(t: Tensor, opname: str) -> None:
    if t.dtype.kind != "f":
        raise TypeError(f"{opname}: expected a floating tensor, got dtype {t.dtype}")


from .ops import dropout as _dropout  # noqa: E402
from .ops import elementwise as _ew  # noqa: E402
from .ops import layernorm as _ln  # noqa: E402
from .ops import linalg as _linalg  # noqa: E402
from .ops import loss as _loss  # noqa: E402
from .ops import reduction as _red  # noqa: E402
from .ops import shape as _shape  # noqa: E402
from .ops import softmax as _sm  # noqa: E402


# ---- arithmetic --------------------------------------------------------------------------------
def add(a: TensorLike, b: TensorLike) -> Tensor:
    """a + b with broadcasting."""
    return _ew.Add.apply(*_binary("add", a, b))


def sub(a: TensorLike, b: TensorLike) -> Tensor:
    """a - b with broadcasting."""
    return _ew.Sub.apply(*_binary("sub", a, b))


def mul(a: TensorLike, b: TensorLike) -> Tensor:
    """a * b with broadcasting."""
    return _ew.Mul.apply(*_binary("mul", a, b))


def div(a: TensorLike, b: TensorLike) -> Tensor:
    """a / b with broadcasting."""
    return _ew.Div.apply(*_binary("div", a, b))


def neg(a: Tensor) -> Tensor:
    return _ew.Neg.apply(a)


def pow(a: TensorLike, b: TensorLike) -> Tensor:
    """a ** b: a Python-number exponent uses the simpler op ``tensor ** scalar``."""
    if isinstance(a, Tensor) and isinstance(b, (int, float)) and not isinstance(b, bool):
        _require_float(a, "pow")
        return _ew.PowScalar.apply(a, p=b)
    return _ew.Pow.apply(*_binary("pow", a, b))


def exp(a: Tensor) -> Tensor:
    return _ew.Exp.apply(a)


def log(a: Tensor) -> Tensor:
    return _ew.Log.apply(a)


def sqrt(a: Tensor) -> Tensor:
    return _ew.Sqrt.apply(a)


def abs(a: Tensor) -> Tensor:
    return _ew.Abs.apply(a)


def sign(a: Tensor) -> Tensor:
    """-1, 0 or 1 elementwise (no gradient: its derivative is 0 almost everywhere)."""
    return Tensor._make(a.backend.xp.sign(a.data), a.device, False, None)


def tanh(a: Tensor) -> Tensor:
    return _ew.Tanh.apply(a)


def sigmoid(a: Tensor) -> Tensor:
    return _ew.Sigmoid.apply(a)


def relu(a: Tensor) -> Tensor:
    return _ew.ReLU.apply(a)


def erf(a: Tensor) -> Tensor:
    return _ew.Erf.apply(a)


def gelu(a: Tensor, approximate: str = "none") -> Tensor:
    """GELU; ``approximate="tanh"`` for the tanh form (as ``torch.nn.functional.gelu``)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _ew.GELU.apply(a, approximate=approximate)


def maximum(a: TensorLike, b: TensorLike) -> Tensor:
    return _ew.Maximum.apply(*_binary("maximum", a, b))


def minimum(a: TensorLike, b: TensorLike) -> Tensor:
    return _ew.Minimum.apply(*_binary("minimum", a, b))


def clip(a: Tensor, min: Number | None = None, max: Number | None = None) -> Tensor:
    """Limit values to [min, max] (either may be None), as ``torch.clamp``."""
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    return _ew.Clip.apply(a, lo=min, hi=max)


clamp = clip


def where(cond: Tensor, a: TensorLike, b: TensorLike) -> Tensor:
    """``a`` where ``cond`` is True, else ``b`` (cond must be boolean)."""
    if not isinstance(cond, Tensor) or cond.dtype != B.bool_:
        raise TypeError(f"where: cond must be a boolean Tensor, got {getattr(cond, 'dtype', type(cond).__name__)}")
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = Tensor(a, device=cond.device)
    a, b = _binary("where", a, b)
    broadcast_shapes("where", cond.shape, a.shape, b.shape)
    return _ew.Where.apply(cond, a, b)


def masked_fill(a: Tensor, mask: Tensor, value: float) -> Tensor:
    """``a`` with ``value`` where ``mask`` is True; mask broadcasts to ``a``'s shape only."""
    if not isinstance(mask, Tensor) or mask.dtype != B.bool_:
        raise TypeError(
            f"masked_fill: mask must be a boolean Tensor, got {getattr(mask, 'dtype', type(mask).__name__)}"
        )
    if broadcast_shapes("masked_fill", a.shape, mask.shape) != a.shape:
        raise ValueError(
            f"masked_fill: mask of shape {mask.shape} would broadcast the input of shape {a.shape} "
            "to a larger shape"
        )
    return _ew.MaskedFill.apply(a, mask, value=value)


def cast(a: Tensor, dtype: Any) -> Tensor:
    """Convert to ``dtype`` (differentiable between floating dtypes)."""
    dt = B.as_dtype(dtype)
    if dt == a.dtype:
        return a
    if a.requires_grad and is_grad_enabled() and dt.kind != "f":
        return Tensor._make(a.data.astype(dt), a.device, False, None)
    return _ew.Cast.apply(a, dtype=dt)


def to_device(a: Tensor, device: str) -> Tensor:
    """Copy to another device (differentiable: the gradient is copied back)."""
    if B.normalize_device(device) == a.device:
        return a
    return _ew.ToDevice.apply(a, device=device)


# ---- comparison and logic (no gradient) --------------------------------------------------------
_COMPARE = {
    "lt": lambda x, y: x < y,
    "le": lambda x, y: x <= y,
    "gt": lambda x, y: x > y,
    "ge": lambda x, y: x >= y,
    "eq": lambda x, y: x == y,
    "ne": lambda x, y: x != y,
}


def compare(a: TensorLike, b: TensorLike, op: str) -> Tensor:
    """Elementwise comparison (``"lt"``, ``"le"``, ``"gt"``, ``"ge"``, ``"eq"``, ``"ne"``) -> bool."""
    a, b = _binary(op, a, b)
    return Tensor._make(a.backend.normalize(_COMPARE[op](a.data, b.data)), a.device, False, None)


def logical_not(a: Tensor) -> Tensor:
    return Tensor._make(a.backend.normalize(~a.data.astype(bool)), a.device, False, None)


def logical_and(a: Tensor, b: Tensor) -> Tensor:
    a, b = _binary("logical_and", a, b)
    return Tensor._make(a.backend.normalize(a.data.astype(bool) & b.data.astype(bool)), a.device, False, None)


def logical_or(a: Tensor, b: Tensor) -> Tensor:
    a, b = _binary("logical_or", a, b)
    return Tensor._make(a.backend.normalize(a.data.astype(bool) | b.data.astype(bool)), a.device, False, None)


# ---- reductions -----------------------------------------------------------------------------------
def sum(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (None: all)."""
    return _red.Sum.apply(a, axis=_axes(axis, a.ndim, "sum"), keepdims=keepdims)


def mean(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (None: all)."""
    _require_float(a, "mean")
    return _red.Mean.apply(a, axis=_axes(axis, a.ndim, "mean"), keepdims=keepdims)


def var(a: Tensor, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance over ``axis``; ``ddof=0`` is the biased (population) variance, as NumPy."""
    _require_float(a, "var")
    return _red.Var.apply(a, axis=_axes(axis, a.ndim, "var"), keepdims=keepdims, ddof=ddof)


def max(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Maximum over ``axis``; ties share the gradient equally."""
    if a.size == 0:
        raise ValueError(f"max: empty tensor of shape {a.shape}")
    return _red.Max.apply(a, axis=_axes(axis, a.ndim, "max"), keepdims=keepdims)


def min(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Minimum over ``axis``; ties share the gradient equally."""
    if a.size == 0:
        raise ValueError(f"min: empty tensor of shape {a.shape}")
    return _red.Min.apply(a, axis=_axes(axis, a.ndim, "min"), keepdims=keepdims)


def argmax(a: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the maximum (int64, no gradient)."""
    ax = None if axis is None else _axis(axis, a.ndim, "argmax")
    out = a.data.argmax(axis=ax)
    if keepdims and ax is not None:
        out = a.backend.xp.expand_dims(out, ax)
    return Tensor._make(a.backend.normalize(out).astype(B.int64, copy=False), a.device, False, None)


def argmin(a: Tensor, axis: int | None = None) -> Tensor:
    ax = None if axis is None else _axis(axis, a.ndim, "argmin")
    return Tensor._make(a.backend.normalize(a.data.argmin(axis=ax)).astype(B.int64), a.device, False, None)


def sum_to(a: Tensor, shape: Sequence[int]) -> Tensor:
    """Sum ``a`` down to ``shape`` (the reverse of broadcasting ``shape`` to ``a.shape``)."""
    shape = tuple(shape)
    if a.shape == shape:
        return a
    if broadcast_shapes("sum_to", a.shape, shape) != a.shape:
        raise ValueError(f"sum_to: cannot sum shape {a.shape} down to {shape}")
    return _red.SumTo.apply(a, shape=shape)


def logsumexp(a: Tensor, axis: int = -1, keepdims: bool = False) -> Tensor:
    """log(sum(exp(a))) along ``axis``, computed stably."""
    return _sm.LogSumExp.apply(a, axis=_axis(axis, a.ndim, "logsumexp"), keepdims=keepdims)


def softmax(a: Tensor, axis: int = -1) -> Tensor:
    """exp(a) / sum(exp(a)) along ``axis`` (fused op, hand-derived backward)."""
    _require_float(a, "softmax")
    return _sm.Softmax.apply(a, axis=_axis(axis, a.ndim, "softmax"))


def log_softmax(a: Tensor, axis: int = -1) -> Tensor:
    """a - logsumexp(a) along ``axis`` (fused op, hand-derived backward)."""
    _require_float(a, "log_softmax")
    return _sm.LogSoftmax.apply(a, axis=_axis(axis, a.ndim, "log_softmax"))


def softmax_composite(a: Tensor, axis: int = -1) -> Tensor:
    """softmax built from primitive ops (max, sub, exp, sum, div): every step is in the graph."""
    with no_grad():  # a constant shift does not change softmax, so it needs no gradient
        shift = max(a, axis, keepdims=True)
    e = exp(a - shift)
    return e / sum(e, axis, keepdims=True)


def log_softmax_composite(a: Tensor, axis: int = -1) -> Tensor:
    """log_softmax from primitive ops: a - shift - log(sum(exp(a - shift)))."""
    with no_grad():
        shift = max(a, axis, keepdims=True)
    shifted = a - shift
    return shifted - log(sum(exp(shifted), axis, keepdims=True))


# ---- shapes --------------------------------------------------------------------------------------
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


def reshape(a: Tensor, shape: Sequence[int]) -> Tensor:
    """Same elements, new shape (one entry may be -1)."""
    shape = _resolve_shape("reshape", shape, a.size, a.shape)
    if shape == a.shape:
        return a
    return _shape.Reshape.apply(a, shape=shape)


def flatten(a: Tensor, start_axis: int = 0, end_axis: int = -1) -> Tensor:
    if a.ndim == 0:
        return reshape(a, (1,))
    s, e = _axis(start_axis, a.ndim, "flatten"), _axis(end_axis, a.ndim, "flatten")
    return reshape(a, a.shape[:s] + (-1,) + a.shape[e + 1 :])


def transpose(a: Tensor, axes: Sequence[int] | None = None) -> Tensor:
    """Permute axes (NumPy's ``transpose``; None reverses them)."""
    if axes is None:
        axes = tuple(range(a.ndim - 1, -1, -1))
    axes = tuple(_axis(ax, a.ndim, "transpose") for ax in axes)
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of {a.ndim} dimensions")
    if axes == tuple(range(a.ndim)):
        return a
    return _shape.Transpose.apply(a, axes=axes)


permute = transpose


def swapaxes(a: Tensor, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes (a transpose)."""
    i, j = _axis(axis1, a.ndim, "swapaxes"), _axis(axis2, a.ndim, "swapaxes")
    axes = list(range(a.ndim))
    axes[i], axes[j] = axes[j], axes[i]
    return transpose(a, axes)


def split_heads(a: Tensor, heads: int) -> Tensor:
    """(batch, seq, heads * d) -> (batch, heads, seq, d), one node: what
    ``a.reshape(batch, seq, heads, d).transpose(1, 2)`` computes (multi-head attention)."""
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
        raise ValueError(f"split_heads: heads must be a positive integer, got {heads!r}")
    if a.ndim != 3 or a.shape[-1] % heads:
        raise ValueError(
            f"split_heads: expected (batch, seq, features) with features divisible by heads={heads}, "
            f"got shape {a.shape}"
        )
    return _shape.SplitHeads.apply(a, heads=heads)


def merge_heads(a: Tensor) -> Tensor:
    """(batch, heads, seq, d) -> (batch, seq, heads * d), one node: the inverse of
    :func:`split_heads` (``a.transpose(1, 2).reshape(batch, seq, heads * d)``)."""
    if a.ndim != 4:
        raise ValueError(f"merge_heads: expected (batch, heads, seq, d), got shape {a.shape}")
    return _shape.MergeHeads.apply(a)


def expand(a: Tensor, shape: Sequence[int]) -> Tensor:
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
    return _shape.Expand.apply(a, shape=shape)


def squeeze(a: Tensor, axis: int | Sequence[int] | None = None) -> Tensor:
    """Remove size-1 axes (all, or those in ``axis``; a non-1 axis is left as is, as PyTorch)."""
    axes = _axes(axis, a.ndim, "squeeze") if axis is not None else None
    shape = tuple(s for i, s in enumerate(a.shape) if not (s == 1 and (axes is None or i in axes)))
    if shape == a.shape:
        return a
    return _shape.Squeeze.apply(a, shape=shape)


def unsqueeze(a: Tensor, axis: int) -> Tensor:
    """Insert a size-1 axis at ``axis`` (negative counts from the new end)."""
    ndim = a.ndim + 1
    ax = _axis(axis, ndim, "unsqueeze")
    shape = a.shape[:ax] + (1,) + a.shape[ax:]
    return _shape.Unsqueeze.apply(a, shape=shape)


def _index_array(t: Tensor, item: Any) -> Any:
    if isinstance(item, Tensor):
        if item.device != t.device:
            raise RuntimeError(f"getitem: index on device {item.device}, tensor on device {t.device}")
        arr = item.data
    else:
        arr = t.backend.asarray(item)
    if arr.dtype.kind not in "iub":
        raise IndexError(f"getitem: index arrays must be integer or boolean, got dtype {arr.dtype}")
    return arr


def _normalize_index(t: Tensor, index: Any) -> tuple[Any, bool]:
    """Raw index for the backend and whether it uses integer arrays (advanced indexing)."""
    items = index if isinstance(index, tuple) else (index,)
    out: list[Any] = []
    advanced = False
    for item in items:
        if item is None or item is Ellipsis or isinstance(item, slice):
            out.append(item)
        elif isinstance(item, (bool,)):
            raise IndexError("getitem: a Python bool is not a valid index")
        elif isinstance(item, int) or (B.is_host_array(item) and getattr(item, "ndim", 1) == 0):
            out.append(int(item))
        elif isinstance(item, (Tensor, list)) or hasattr(item, "__array__") or hasattr(item, "shape"):
            arr = _index_array(t, item)
            advanced = True
            if arr.dtype.kind == "b":
                out.extend(arr.nonzero())  # a boolean mask selects its True positions
            else:
                out.append(arr)
        else:
            raise IndexError(f"getitem: unsupported index {item!r}")
    return tuple(out), advanced


def getitem(a: Tensor, index: Any) -> Tensor:
    """``a[index]``: ints, slices, None, Ellipsis, integer or boolean index tensors/lists."""
    raw, advanced = _normalize_index(a, index)
    try:
        return _shape.GetItem.apply(a, index=raw, advanced=advanced)
    except IndexError as exc:
        raise IndexError(f"getitem: index {index!r} is invalid for a tensor of shape {a.shape}: {exc}") from None


def getitem_raw(a: Tensor, index: Any, advanced: bool) -> Tensor:
    """``a[index]`` for an index already normalized by :func:`getitem`."""
    return _shape.GetItem.apply(a, index=index, advanced=advanced)


def index_add_zeros(g: Tensor, shape: tuple[int, ...], index: Any, advanced: bool) -> Tensor:
    """zeros(shape) with ``g`` added at ``index`` (the backward of getitem)."""
    return _shape.IndexAddZeros.apply(g, shape=tuple(shape), index=index, advanced=advanced)


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat: expected at least one tensor")
    ndim = tensors[0].ndim
    ax = _axis(axis, ndim, "concat")
    for t in tensors[1:]:
        if t.ndim != ndim or t.shape[:ax] + t.shape[ax + 1 :] != tensors[0].shape[:ax] + tensors[0].shape[ax + 1 :]:
            shapes = ", ".join(str(x.shape) for x in tensors)
            raise ValueError(f"concat: shapes ({shapes}) differ outside axis {axis}")
    if len(tensors) == 1:
        return tensors[0]
    return _shape.Concat.apply(*tensors, axis=ax)


cat = concat


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected at least one tensor")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            shapes = ", ".join(str(x.shape) for x in tensors)
            raise ValueError(f"stack: all tensors must have the same shape, got ({shapes})")
    ax = _axis(axis, tensors[0].ndim + 1, "stack")
    return _shape.Concat.apply(*[unsqueeze(t, ax) for t in tensors], axis=ax)


def split(a: Tensor, split_size_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """Split into pieces of ``split_size`` (last may be smaller) or of the given sizes (PyTorch)."""
    ax = _axis(axis, a.ndim, "split")
    n = a.shape[ax]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError(f"split: split_size must be positive, got {split_size_or_sections}")
        sizes = [builtins.min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to {n} (axis {axis} of shape {a.shape})")
    pieces = []
    start = 0
    for size in sizes:
        index = (slice(None),) * ax + (slice(start, start + size),)
        pieces.append(getitem_raw(a, index, False))
        start += size
    return pieces


def chunk(a: Tensor, chunks: int, axis: int = 0) -> list[Tensor]:
    n = a.shape[_axis(axis, a.ndim, "chunk")]
    return split(a, -(-n // chunks), axis)


# ---- linear algebra ------------------------------------------------------------------------------
def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's rules: 1-D, 2-D and batched N-D (batch axes broadcast)."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"matmul: expected two Tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: scalars are not allowed, got shapes {a.shape} and {b.shape}; use mul")
    k_a = a.shape[-1]
    k_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
            f"{k_a} (last dim of the first) != {k_b} ({'second-to-last' if b.ndim > 1 else 'only'} dim of the second)"
        )
    if a.ndim > 2 or b.ndim > 2:
        try:
            broadcast_shapes("matmul", a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of shapes {a.shape} and {b.shape} cannot be broadcast together"
            ) from None
    if a.ndim == 1:
        return squeeze(matmul(unsqueeze(a, 0), b), -2 if b.ndim > 1 else -1)
    if b.ndim == 1:
        return squeeze(matmul(a, unsqueeze(b, -1)), -1)
    return _linalg.MatMul.apply(a, b)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight^T + bias for x of shape (..., in_features) and weight (out_features, in_features)."""
    _check_linear("linear", x, weight, bias)
    return _linalg.Linear.apply(x, weight, *([bias] if bias is not None else []))


def linear_relu(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """relu(linear(x, weight, bias)) as one fused node (fewer passes over the output)."""
    _check_linear("linear_relu", x, weight, bias)
    return _linalg.LinearReLU.apply(x, weight, *([bias] if bias is not None else []))


def _check_linear(op: str, x: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if x.ndim == 0:
        raise ValueError(f"{op}: the input must have at least one dimension")
    if x.shape[-1:] != weight.shape[1:]:
        raise ValueError(
            f"{op}: input of shape {x.shape} does not match weight of shape {weight.shape} "
            f"(expected last dim {weight.shape[1]})"
        )
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"{op}: bias of shape {bias.shape} does not match weight of shape {weight.shape}")


# ---- neural-network ops -----------------------------------------------------------------------------
def layer_norm(
    x: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize over the last ``len(normalized_shape)`` axes (fused op, as ``torch.nn.functional.layer_norm``)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.shape[x.ndim - len(shape) :] != shape or len(shape) > x.ndim:
        raise ValueError(f"layer_norm: input of shape {x.shape} does not end with normalized_shape {shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != shape:
            raise ValueError(f"layer_norm: {name} has shape {p.shape}, expected {shape}")
    affine = [p for p in (weight, bias) if p is not None]
    return _ln.LayerNorm.apply(
        x, *affine, naxes=len(shape), eps=eps, has_weight=weight is not None, has_bias=bias is not None
    )


def layer_norm_composite(
    x: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """layer_norm built from primitive ops (mean, sub, mul, sqrt, div...): every step in the graph."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    centered = x - mean(x, axes, keepdims=True)
    variance = mean(centered * centered, axes, keepdims=True)
    out = centered / sqrt(variance + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return _dropout.Dropout.apply(x, p=p)


def embedding(indices: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ``indices`` (any shape).

    The row ``padding_idx`` receives no gradient (as ``torch.nn.functional.embedding``).
    """
    if not isinstance(indices, Tensor):
        indices = Tensor(indices, device=weight.device)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {indices.dtype}")
    if indices.device != weight.device:
        raise RuntimeError(f"embedding: indices on device {indices.device}, weight on device {weight.device}")
    n = weight.shape[0]
    if indices.size and (int(indices.data.min()) < 0 or int(indices.data.max()) >= n):
        raise IndexError(
            f"embedding: indices must be in [0, {n}), got values in "
            f"[{int(indices.data.min())}, {int(indices.data.max())}]"
        )
    return _shape.Embedding.apply(weight, index=indices.data, padding_idx=padding_idx)


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    """Cross-entropy of (..., C) logits against integer targets of shape (...)."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not isinstance(target, Tensor):
        target = Tensor(target, device=logits.device)
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold integer class indices, got dtype {target.dtype}")
    if logits.ndim < 1 or target.shape != logits.shape[:-1]:
        raise ValueError(
            f"cross_entropy: logits of shape {logits.shape} need targets of shape {logits.shape[:-1]}, "
            f"got {target.shape}"
        )
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    return _loss.CrossEntropy.apply(
        logits, target, ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction
    )


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or none) of (input - target)**2; the shapes must match exactly."""
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input has shape {input.shape} but target has shape {target.shape}")
    diff = input - target
    sq = diff * diff
    if reduction == "mean":
        return mean(sq)
    if reduction == "sum":
        return sum(sq)
    if reduction == "none":
        return sq
    raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# ---- small constructors used by backward formulas ----------------------------------------------
def zeros_like(a: Tensor) -> Tensor:
    return Tensor._make(a.backend.xp.zeros_like(a.data), a.device, False, None)


def ones_like(a: Tensor) -> Tensor:
    return Tensor._make(a.backend.xp.ones_like(a.data), a.device, False, None)


# ---- attention -------------------------------------------------------------------------------------
from .ops import attention as _attn  # noqa: E402


def attention_weights(
    q: Tensor,
    k: Tensor,
    mask: Tensor | None = None,
    scale: float | None = None,
) -> Tensor:
    """softmax(q @ k^T * scale + mask) along the last axis, as one fused node.

    ``mask`` broadcasts to (..., Sq, Sk): boolean (True = not allowed) or floating (added
    to the scores; -inf forbids). ``scale`` defaults to 1/sqrt(q.shape[-1]). Rows where
    every key is masked get weights exactly 0 (never NaN).
    """
    if q.ndim < 2 or k.ndim < 2 or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention_weights: q of shape {q.shape} and k of shape {k.shape} need matching last dims")
    broadcast_shapes("attention_weights", q.shape[:-2], k.shape[:-2])
    if scale is None:
        scale = 1.0 / float(q.shape[-1]) ** 0.5
    bool_mask = float_mask = None
    if mask is not None:
        scores_shape = broadcast_shapes("attention_weights", q.shape[:-2], k.shape[:-2]) + (q.shape[-2], k.shape[-2])
        if broadcast_shapes("attention_weights mask", mask.shape, scores_shape) != scores_shape:
            raise ValueError(f"attention_weights: mask of shape {mask.shape} does not broadcast to {scores_shape}")
        if mask.device != q.device:
            raise RuntimeError(f"attention_weights: mask on device {mask.device}, q on device {q.device}")
        if mask.dtype == B.bool_:
            bool_mask = mask.data
        elif mask.dtype == q.dtype:
            float_mask = mask.data
        else:
            raise TypeError(f"attention_weights: mask must be bool or {q.dtype}, got {mask.dtype}")
    return _attn.AttentionWeights.apply(q, k, bool_mask=bool_mask, float_mask=float_mask, scale=scale)


def sin(a: Tensor) -> Tensor:
    return _ew.Sin.apply(a)


def cos(a: Tensor) -> Tensor:
    return _ew.Cos.apply(a)
