"""Rounding (floor, ceil, round, trunc) and the tests isnan, isinf, isfinite.

Rounding is piecewise constant: its derivative is 0 wherever it exists. As in PyTorch,
the result of rounding a tensor that requires grad still requires grad, and backward
gives its input a gradient of zeros (not None). The tests return booleans, which carry
no gradient at all (as comparisons).
"""

from __future__ import annotations

from typing import Any

from ..autograd import Function
from .checks import constant, require_tensor


class Floor(Function):
    """out = floor(a).   dL/da = 0 (the function is flat between the integers)."""

    saves_inputs = False
    method = "floor"

    def forward(self, a, decimals=0):
        if decimals:
            return self.xp.round(a, decimals)
        return getattr(self.xp, self.method)(a)

    def backward(self, g):
        return self.const(self.xp.zeros(self.in_shapes[0], dtype=g.dtype))


class Ceil(Floor):
    """out = ceil(a).   dL/da = 0."""

    method = "ceil"


class Round(Floor):
    """out = a rounded to ``decimals`` places, halves to even (as PyTorch and NumPy).   dL/da = 0."""

    method = "round"


class Trunc(Floor):
    """out = a rounded towards zero.   dL/da = 0."""

    method = "trunc"


def _rounded(cls: type, a: Any, opname: str, decimals: int = 0) -> Any:
    require_tensor(a, opname)
    if a.dtype.kind != "f":  # integers are already whole: PyTorch returns them unchanged
        return constant(a.data.copy(), a)
    return cls.apply(a, decimals=decimals)


def floor(a: Any) -> Any:
    return _rounded(Floor, a, "floor")


def ceil(a: Any) -> Any:
    return _rounded(Ceil, a, "ceil")


def round(a: Any, decimals: int = 0) -> Any:
    """Round to ``decimals`` places, halves to even (``torch.round``)."""
    if not isinstance(decimals, int) or isinstance(decimals, bool):
        raise TypeError(f"round: decimals must be an int, got {decimals!r}")
    return _rounded(Round, a, "round", decimals)


def trunc(a: Any) -> Any:
    return _rounded(Trunc, a, "trunc")


def isnan(a: Any) -> Any:
    """True where ``a`` is NaN (boolean, no gradient)."""
    require_tensor(a, "isnan")
    return constant(a.backend.normalize(a.backend.xp.isnan(a.data)), a)


def isinf(a: Any) -> Any:
    """True where ``a`` is +inf or -inf (boolean, no gradient)."""
    require_tensor(a, "isinf")
    return constant(a.backend.normalize(a.backend.xp.isinf(a.data)), a)


def isfinite(a: Any) -> Any:
    """True where ``a`` is neither NaN nor infinite (boolean, no gradient)."""
    require_tensor(a, "isfinite")
    return constant(a.backend.normalize(a.backend.xp.isfinite(a.data)), a)
