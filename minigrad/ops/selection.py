"""Selection: maximum, minimum, clip, where, masked_fill; and the comparisons, logical and
bitwise ops, whose results carry no gradient.

Each selecting op routes the upstream gradient to the input whose value it picked.
"""

from __future__ import annotations

from typing import Any

from .. import backend as B
from ..autograd import Function
from .checks import broadcast_shapes, constant, is_tensor, refuse_grad
from .conversion import promote


class Maximum(Function):
    """out = max(a, b) elementwise.

    dL/da = g * ([a > b] + [a == b] / 2),  dL/db = g * ([b > a] + [a == b] / 2):
    a tie splits the gradient equally, as PyTorch does.
    """

    saves_inputs = False

    def forward(self, a, b):
        self.wa = ((a > b) + 0.5 * (a == b)).astype(a.dtype, copy=False)
        return self.xp.maximum(a, b)

    def backward(self, g):
        sa, sb = self.in_shapes
        wa = self.const(self.wa)
        return (g * wa).sum_to_size(sa), (g * (1.0 - wa)).sum_to_size(sb)


class Minimum(Maximum):
    """out = min(a, b) elementwise; the gradient goes to the smaller input (ties split)."""

    name = "minimum"

    def forward(self, a, b):
        self.wa = ((a < b) + 0.5 * (a == b)).astype(a.dtype, copy=False)
        return self.xp.minimum(a, b)


class Clip(Function):
    """out = min(max(a, lo), hi).   dL/da = g * [lo <= a <= hi]   (as torch.clamp)."""

    saves_inputs = False

    def forward(self, a, lo=None, hi=None):
        inside = None
        if lo is not None:
            inside = a >= lo
        if hi is not None:
            inside = (a <= hi) if inside is None else inside & (a <= hi)
        self.inside = inside
        return self.xp.clip(a, lo, hi)

    def backward(self, g):
        if self.inside is None:
            return g
        return g * self.const(self.inside.astype(g.dtype))


class Where(Function):
    """out = cond ? a : b   (cond is boolean, no gradient).

    dL/da = g where cond, else 0;   dL/db = g where not cond, else 0.
    """

    saves_inputs = False

    def forward(self, cond, a, b):
        self.cond = cond
        return self.xp.where(cond, a, b)

    def backward(self, g):
        _, sa, sb = self.in_shapes
        cond = self.const(self.cond)
        ga = g.masked_fill(~cond, 0.0).sum_to_size(sa) if self.needs_input_grad[1] else None
        gb = g.masked_fill(cond, 0.0).sum_to_size(sb) if self.needs_input_grad[2] else None
        return None, ga, gb


class MaskedFill(Function):
    """out = a with ``value`` where mask is True.   dL/da = g where the mask is False, else 0."""

    name = "masked_fill"
    saves_inputs = False

    def forward(self, a, mask, value=0.0):
        self.mask = mask
        return self.xp.where(mask, self.xp.asarray(value, dtype=a.dtype), a)

    def backward(self, g):
        return masked_fill(g, self.const(self.mask), 0.0), None


def maximum(a: Any, b: Any) -> Any:
    return Maximum.apply(*promote("maximum", a, b))


def minimum(a: Any, b: Any) -> Any:
    return Minimum.apply(*promote("minimum", a, b))


def _bound(value: Any, a: Any, what: str) -> Any:
    """A clip bound as a number or an array of ``a``'s device (a tensor bound has no gradient here)."""
    if value is None or not is_tensor(value):
        return value
    refuse_grad(value, "clip", what)
    if value.device != a.device:
        raise RuntimeError(f"clip: {what} on device {value.device}, input on device {a.device}")
    if broadcast_shapes("clip", a.shape, value.shape) != a.shape:
        raise ValueError(f"clip: {what} of shape {value.shape} would broadcast the input of shape {a.shape}")
    return value.data.astype(a.dtype, copy=False)


def clip(a: Any, min: Any = None, max: Any = None) -> Any:
    """Limit values to [min, max] (either may be None; numbers, or tensors that broadcast to
    ``a`` and do not require grad), as ``torch.clamp``."""
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    return Clip.apply(a, lo=_bound(min, a, "min"), hi=_bound(max, a, "max"))


clamp = clip


def _bool_tensor(value: Any, opname: str, what: str) -> None:
    if not is_tensor(value) or value.dtype != B.bool_:
        got = getattr(value, "dtype", type(value).__name__)
        raise TypeError(f"{opname}: {what} must be a boolean Tensor, got {got}")


def where(cond: Any, a: Any, b: Any) -> Any:
    """``a`` where ``cond`` is True, else ``b`` (cond must be boolean)."""
    _bool_tensor(cond, "where", "cond")
    if not is_tensor(a) and not is_tensor(b):
        a = constant(cond.backend.asarray(a, dtype=B.get_default_dtype()), cond)
    a, b = promote("where", a, b)
    broadcast_shapes("where", cond.shape, a.shape, b.shape)
    return Where.apply(cond, a, b)


def masked_fill(a: Any, mask: Any, value: float) -> Any:
    """``a`` with ``value`` where ``mask`` is True; mask broadcasts to ``a``'s shape only."""
    _bool_tensor(mask, "masked_fill", "mask")
    if broadcast_shapes("masked_fill", a.shape, mask.shape) != a.shape:
        raise ValueError(
            f"masked_fill: mask of shape {mask.shape} would broadcast the input of shape {a.shape} "
            "to a larger shape"
        )
    if is_tensor(value):
        refuse_grad(value, "masked_fill", "value")
        value = value.item()
    return MaskedFill.apply(a, mask, value=value)


# ---- comparison and logic (no gradient) --------------------------------------------------------
_COMPARE = {
    "lt": lambda x, y: x < y,
    "le": lambda x, y: x <= y,
    "gt": lambda x, y: x > y,
    "ge": lambda x, y: x >= y,
    "eq": lambda x, y: x == y,
    "ne": lambda x, y: x != y,
}


def compare(a: Any, b: Any, op: str) -> Any:
    """Elementwise comparison (``"lt"``, ``"le"``, ``"gt"``, ``"ge"``, ``"eq"``, ``"ne"``) -> bool."""
    a, b = promote(op, a, b)
    return constant(a.backend.normalize(_COMPARE[op](a.data, b.data)), a)


def logical_not(a: Any) -> Any:
    return constant(a.backend.normalize(~a.data.astype(bool)), a)


def logical_and(a: Any, b: Any) -> Any:
    a, b = promote("logical_and", a, b)
    return constant(a.backend.normalize(a.data.astype(bool) & b.data.astype(bool)), a)


def logical_or(a: Any, b: Any) -> Any:
    a, b = promote("logical_or", a, b)
    return constant(a.backend.normalize(a.data.astype(bool) | b.data.astype(bool)), a)


def logical_xor(a: Any, b: Any) -> Any:
    a, b = promote("logical_xor", a, b)
    return constant(a.backend.normalize(a.data.astype(bool) ^ b.data.astype(bool)), a)


# ---- bitwise (the operators & | ^ ~): integers bit by bit, booleans logically, as PyTorch ----
def _integral(opname: str, *tensors: Any) -> None:
    for t in tensors:
        if t.dtype.kind not in "biu":
            raise TypeError(f"{opname}: expected integer or boolean tensors, got dtype {t.dtype}")


def _bitwise(opname: str, a: Any, b: Any, fn: Any) -> Any:
    if is_tensor(a) and is_tensor(b):
        _integral(opname, a, b)
    elif is_tensor(a) and isinstance(b, float) or is_tensor(b) and isinstance(a, float):
        raise TypeError(f"{opname}: expected an integer or bool operand, got a float")
    a, b = promote(opname, a, b)
    _integral(opname, a, b)
    return constant(a.backend.normalize(fn(a.data, b.data)), a)


def bitwise_and(a: Any, b: Any) -> Any:
    """a & b: bitwise for integers, logical for booleans (floats are refused)."""
    return _bitwise("bitwise_and", a, b, lambda x, y: x & y)


def bitwise_or(a: Any, b: Any) -> Any:
    """a | b: bitwise for integers, logical for booleans."""
    return _bitwise("bitwise_or", a, b, lambda x, y: x | y)


def bitwise_xor(a: Any, b: Any) -> Any:
    """a ^ b: bitwise for integers, logical for booleans."""
    return _bitwise("bitwise_xor", a, b, lambda x, y: x ^ y)


def bitwise_not(a: Any) -> Any:
    """~a: bitwise for integers (~5 == -6), logical for booleans."""
    _integral("bitwise_not", a)
    return constant(a.backend.normalize(~a.data), a)
