"""More elementwise functions of one tensor: trigonometric and hyperbolic functions and
their inverses, logarithms and exponentials in other bases, rsqrt, and lerp.

As in :mod:`minigrad.ops.unary`, each derivative is elementwise, so each backward is
``g`` times the local derivative (``g`` = dL/d(out)). The functions with no useful
derivative (rounding, the ``isnan`` family) live in :mod:`minigrad.ops.rounding`.
"""

from __future__ import annotations

import math
from typing import Any

from ..autograd import Function
from .checks import is_number, is_tensor, require_float, scalar_like
from .conversion import promote

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


class Tan(Function):
    """out = tan(a).   dL/da = g * (1 + out**2)."""

    saves_inputs = False

    def forward(self, a):
        self.out = self.xp.tan(a)
        return self.out

    def backward(self, g):
        y = self.saved_output()
        return g * (1.0 + y * y)


class Asin(Function):
    """out = asin(a), |a| <= 1.   dL/da = g / sqrt(1 - a**2)."""

    def forward(self, a):
        return self.xp.arcsin(a)

    def backward(self, g):
        a = self.inputs[0]
        return g / (1.0 - a * a).sqrt()


class Acos(Function):
    """out = acos(a), |a| <= 1.   dL/da = -g / sqrt(1 - a**2)."""

    def forward(self, a):
        return self.xp.arccos(a)

    def backward(self, g):
        a = self.inputs[0]
        return -g / (1.0 - a * a).sqrt()


class Atan(Function):
    """out = atan(a).   dL/da = g / (1 + a**2)."""

    def forward(self, a):
        return self.xp.arctan(a)

    def backward(self, g):
        a = self.inputs[0]
        return g / (1.0 + a * a)


class Sinh(Function):
    """out = sinh(a).   dL/da = g * cosh(a)."""

    def forward(self, a):
        return self.xp.sinh(a)

    def backward(self, g):
        return g * cosh(self.inputs[0])


class Cosh(Function):
    """out = cosh(a).   dL/da = g * sinh(a)."""

    def forward(self, a):
        return self.xp.cosh(a)

    def backward(self, g):
        return g * sinh(self.inputs[0])


class Asinh(Function):
    """out = asinh(a).   dL/da = g / sqrt(a**2 + 1)."""

    def forward(self, a):
        return self.xp.arcsinh(a)

    def backward(self, g):
        a = self.inputs[0]
        return g / (a * a + 1.0).sqrt()


class Acosh(Function):
    """out = acosh(a), a >= 1.   dL/da = g / sqrt(a**2 - 1)."""

    def forward(self, a):
        return self.xp.arccosh(a)

    def backward(self, g):
        a = self.inputs[0]
        return g / (a * a - 1.0).sqrt()


class Atanh(Function):
    """out = atanh(a), |a| < 1.   dL/da = g / (1 - a**2)."""

    def forward(self, a):
        return self.xp.arctanh(a)

    def backward(self, g):
        a = self.inputs[0]
        return g / (1.0 - a * a)


class Log2(Function):
    """out = log2(a).   dL/da = g / (a ln 2)."""

    def forward(self, a):
        return self.xp.log2(a)

    def backward(self, g):
        return g / (self.inputs[0] * _LN2)


class Log10(Function):
    """out = log10(a).   dL/da = g / (a ln 10)."""

    def forward(self, a):
        return self.xp.log10(a)

    def backward(self, g):
        return g / (self.inputs[0] * _LN10)


class Exp2(Function):
    """out = 2**a.   dL/da = g * out * ln 2."""

    saves_inputs = False

    def forward(self, a):
        self.out = self.xp.exp2(a)
        return self.out

    def backward(self, g):
        return g * self.saved_output() * _LN2


class Expm1(Function):
    """out = exp(a) - 1 (accurate for small a).   dL/da = g * (out + 1) = g * exp(a)."""

    saves_inputs = False

    def forward(self, a):
        self.out = self.xp.expm1(a)
        return self.out

    def backward(self, g):
        return g * (self.saved_output() + 1.0)


class Log1p(Function):
    """out = log(1 + a) (accurate for small a).   dL/da = g / (1 + a)."""

    def forward(self, a):
        return self.xp.log1p(a)

    def backward(self, g):
        return g / (self.inputs[0] + 1.0)


class Rsqrt(Function):
    """out = 1 / sqrt(a).   dL/da = -g / (2 a**(3/2)) = -g * out**3 / 2."""

    saves_inputs = False

    def forward(self, a):
        self.out = 1.0 / self.xp.sqrt(a)
        return self.out

    def backward(self, g):
        y = self.saved_output()
        return g * y * y * y * -0.5


class Lerp(Function):
    """out = start + weight * (end - start)   (linear interpolation, broadcasting).

    dL/dstart = g * (1 - weight),   dL/dend = g * weight,   dL/dweight = g * (end - start)
    (each summed to its input's shape).
    """

    def forward(self, start, end, weight):
        xp = self.xp
        diff = end - start
        # as PyTorch: from the nearer end, so that weight = 1 gives exactly `end`
        return xp.where(xp.abs(weight) < 0.5, start + weight * diff, end - diff * (1.0 - weight))

    def backward(self, g):
        start, end, weight = self.inputs
        need = self.needs_input_grad
        gs = (g * (1.0 - weight)).sum_to_size(start.shape) if need[0] else None
        ge = (g * weight).sum_to_size(end.shape) if need[1] else None
        gw = (g * (end - start)).sum_to_size(weight.shape) if need[2] else None
        return gs, ge, gw


def tan(a: Any) -> Any:
    return Tan.apply(a)


def asin(a: Any) -> Any:
    return Asin.apply(a)


def acos(a: Any) -> Any:
    return Acos.apply(a)


def atan(a: Any) -> Any:
    return Atan.apply(a)


def sinh(a: Any) -> Any:
    return Sinh.apply(a)


def cosh(a: Any) -> Any:
    return Cosh.apply(a)


def asinh(a: Any) -> Any:
    return Asinh.apply(a)


def acosh(a: Any) -> Any:
    return Acosh.apply(a)


def atanh(a: Any) -> Any:
    return Atanh.apply(a)


def log2(a: Any) -> Any:
    return Log2.apply(a)


def log10(a: Any) -> Any:
    return Log10.apply(a)


def exp2(a: Any) -> Any:
    return Exp2.apply(a)


def expm1(a: Any) -> Any:
    return Expm1.apply(a)


def log1p(a: Any) -> Any:
    return Log1p.apply(a)


def rsqrt(a: Any) -> Any:
    return Rsqrt.apply(a)


def lerp(start: Any, end: Any, weight: Any) -> Any:
    """``start + weight * (end - start)``; ``weight`` a number or a tensor (as ``torch.lerp``)."""
    if not is_tensor(start) or not is_tensor(end):
        raise TypeError(f"lerp: start and end must be Tensors, got {type(start).__name__} and {type(end).__name__}")
    require_float(start, "lerp")
    start, end = promote("lerp", start, end)
    if is_number(weight):
        weight = scalar_like(float(weight), start, "lerp")
    elif not is_tensor(weight):
        raise TypeError(f"lerp: weight must be a number or a Tensor, got {type(weight).__name__}")
    else:
        require_float(weight, "lerp")
        promote("lerp", start, weight)  # same device, shapes that broadcast
        promote("lerp", end, weight)
    return Lerp.apply(start, end, weight)

