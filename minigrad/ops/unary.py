"""Elementwise functions of one tensor: exp, log, sqrt, abs, tanh, sigmoid, relu, erf,
gelu, sin, cos (and sign, which has no gradient).

Each derivative is elementwise too, so each backward is ``g`` times the local
derivative (``g`` = dL/d(out)).
"""

from __future__ import annotations

import math
from typing import Any

from ..autograd import Function
from .checks import constant


class Exp(Function):
    """out = exp(a).   dL/da = g * out."""

    saves_inputs = False

    def forward(self, a):
        self.out = self.xp.exp(a)
        return self.out

    def backward(self, g):
        return g * self.saved_output()


class Log(Function):
    """out = log(a).   dL/da = g / a."""

    def forward(self, a):
        return self.xp.log(a)

    def backward(self, g):
        return g / self.inputs[0]


class Sqrt(Function):
    """out = sqrt(a).   dL/da = g / (2 * out)."""

    saves_inputs = False

    def forward(self, a):
        self.out = self.xp.sqrt(a)
        return self.out

    def backward(self, g):
        return g / (2.0 * self.saved_output())


class Abs(Function):
    """out = |a|.   dL/da = g * sign(a)   (0 at a = 0, as PyTorch)."""

    def forward(self, a):
        return self.xp.abs(a)

    def backward(self, g):
        return g * sign(self.inputs[0])


class Tanh(Function):
    """out = tanh(a).   dL/da = g * (1 - out**2)."""

    saves_inputs = False

    def forward(self, a):
        self.out = self.xp.tanh(a)
        return self.out

    def backward(self, g):
        y = self.saved_output()
        return g * (1.0 - y * y)


class Sigmoid(Function):
    """out = 1 / (1 + exp(-a)).   dL/da = g * out * (1 - out)."""

    saves_inputs = False

    def forward(self, a):
        xp = self.xp
        e = xp.exp(-xp.abs(a))  # numerically stable: exp of a non-positive number only
        self.out = xp.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)
        return self.out

    def backward(self, g):
        y = self.saved_output()
        return g * y * (1.0 - y)


class ReLU(Function):
    """out = max(a, 0).   dL/da = g * [a > 0]   (0 at a = 0, as PyTorch)."""

    saves_inputs = False

    def forward(self, a):
        self.out = self.xp.maximum(a, 0)
        return self.out

    def backward(self, g):
        return g * self.const((self.out > 0).astype(g.dtype))


class Erf(Function):
    """out = erf(a).   dL/da = g * 2/sqrt(pi) * exp(-a**2)."""

    def forward(self, a):
        return self.backend.erf(a)

    def backward(self, g):
        a = self.inputs[0]
        return g * (2.0 / math.sqrt(math.pi)) * (-(a * a)).exp()


class GELU(Function):
    """Gaussian error linear unit, out = a * Phi(a) with Phi the normal CDF.

    exact: Phi(a) = (1 + erf(a / sqrt 2)) / 2,
        dL/da = g * (Phi(a) + a * phi(a)),  phi(a) = exp(-a**2 / 2) / sqrt(2 pi).
    tanh:  out = a/2 * (1 + t),  t = tanh(k (a + c a**3)),  k = sqrt(2/pi), c = 0.044715,
        dL/da = g * (  (1 + t)/2 + a/2 * (1 - t**2) * k * (1 + 3 c a**2)  ).
    """

    name = "gelu"

    def forward(self, a, approximate="none"):
        xp = self.xp
        self.approximate = approximate
        if approximate == "tanh":
            k = math.sqrt(2.0 / math.pi)
            return 0.5 * a * (1.0 + xp.tanh(k * (a + 0.044715 * a * a * a)))
        return 0.5 * a * (1.0 + self.backend.erf(a * (1.0 / math.sqrt(2.0))))

    def backward(self, g):
        a = self.inputs[0]
        if self.approximate == "tanh":
            k = math.sqrt(2.0 / math.pi)
            t = (k * (a + 0.044715 * a * a * a)).tanh()
            return g * (0.5 * (1.0 + t) + 0.5 * a * (1.0 - t * t) * k * (1.0 + 3 * 0.044715 * a * a))
        cdf = 0.5 * (1.0 + (a * (1.0 / math.sqrt(2.0))).erf())
        pdf = (-0.5 * a * a).exp() * (1.0 / math.sqrt(2.0 * math.pi))
        return g * (cdf + a * pdf)


class Sin(Function):
    """out = sin(a).   dL/da = g * cos(a)."""

    def forward(self, a):
        return self.xp.sin(a)

    def backward(self, g):
        return g * self.inputs[0].cos()


class Cos(Function):
    """out = cos(a).   dL/da = -g * sin(a)."""

    def forward(self, a):
        return self.xp.cos(a)

    def backward(self, g):
        return -g * self.inputs[0].sin()


def exp(a: Any) -> Any:
    return Exp.apply(a)


def log(a: Any) -> Any:
    return Log.apply(a)


def sqrt(a: Any) -> Any:
    return Sqrt.apply(a)


def abs(a: Any) -> Any:
    return Abs.apply(a)


def sign(a: Any) -> Any:
    """-1, 0 or 1 elementwise (no gradient: its derivative is 0 almost everywhere)."""
    return constant(a.backend.xp.sign(a.data), a)


def tanh(a: Any) -> Any:
    return Tanh.apply(a)


def sigmoid(a: Any) -> Any:
    return Sigmoid.apply(a)


def relu(a: Any) -> Any:
    return ReLU.apply(a)


def erf(a: Any) -> Any:
    return Erf.apply(a)


def gelu(a: Any, approximate: str = "none") -> Any:
    """GELU; ``approximate="tanh"`` for the tanh form (as ``torch.nn.functional.gelu``)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(a, approximate=approximate)


def sin(a: Any) -> Any:
    return Sin.apply(a)


def cos(a: Any) -> Any:
    return Cos.apply(a)
