"""Conversions: a tensor in another dtype or on another device, and the promotion of a
binary op's operands (numbers become tensors; an integer tensor meeting a float one is
cast to the float dtype).

Both conversions are differentiable, and each one's backward is the conversion back:
the gradient of ``cast(a, float64)`` is the float64 gradient cast to ``a``'s dtype.
"""

from __future__ import annotations

from typing import Any

from .. import backend as B
from ..autograd import Function, is_grad_enabled
from .checks import broadcast_shapes, constant, is_tensor, scalar_like


class Cast(Function):
    """out = a converted to another dtype.   dL/da = g converted back to a's dtype."""

    saves_inputs = False
    check_dtypes = False

    def forward(self, a, dtype=None):
        self.src = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return cast(g, self.src)


def cast(a: Any, dtype: Any) -> Any:
    """Convert to ``dtype`` (differentiable between floating dtypes)."""
    dt = B.as_dtype(dtype)
    if dt == a.dtype:
        return a
    if dt.kind != "f" and a.requires_grad and is_grad_enabled():
        return constant(a.data.astype(dt), a)  # an integer result has no gradient
    return Cast.apply(a, dtype=dt)


class ToDevice(Function):
    """out = a copied to another device.   dL/da = g copied back to a's device."""

    name = "to_device"
    saves_inputs = False

    @classmethod
    def apply(cls, a, device=None):
        target = B.get_backend(device)
        out = type(a)._make(target.from_host(a.backend.to_host(a.data)), target.device, False, None)
        if not (a.requires_grad and is_grad_enabled()):
            return out
        # record the node by hand: forward ran on the source device, the output lives on the target
        node = super().apply(a, device=None)._ctx
        node.src_device = a.device
        out._ctx = node
        out.requires_grad = True
        return out

    def forward(self, a, device=None):
        return a

    def backward(self, g):
        return to_device(g, self.src_device)


def to_device(a: Any, device: str) -> Any:
    """Copy to another device (differentiable: the gradient is copied back)."""
    if B.normalize_device(device) == a.device:
        return a
    return ToDevice.apply(a, device=device)


def promote(opname: str, a: Any, b: Any) -> tuple[Any, Any]:
    """The operands of a binary op as two tensors of one device whose shapes broadcast.

    A Python number takes the other operand's dtype; an integer or boolean tensor meeting
    a floating one is cast to the floating dtype (two floating dtypes must already match).
    """
    if is_tensor(a):
        b = scalar_like(b, a, opname)
    elif is_tensor(b):
        a = scalar_like(a, b, opname)
    else:
        raise TypeError(f"{opname}: expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")
    if a.dtype != b.dtype:
        if a.dtype.kind != "f" and b.dtype.kind == "f":
            a = cast(a, b.dtype)
        elif b.dtype.kind != "f" and a.dtype.kind == "f":
            b = cast(b, a.dtype)
    if a.data.shape != b.data.shape:
        broadcast_shapes(opname, a.shape, b.shape)
    return a, b
