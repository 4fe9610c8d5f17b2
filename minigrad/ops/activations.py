"""Activation functions: silu, leaky_relu, elu, selu, softplus, softsign, logsigmoid,
hardtanh, relu6, hardswish, mish (relu, gelu, sigmoid and tanh are in
:mod:`minigrad.ops.unary`).

Each is elementwise, so each backward is ``g`` times the local derivative. At a kink the
derivative is the one-sided value PyTorch picks, named in each docstring. ``selu`` is
``elu`` with fixed constants and ``relu6`` is ``hardtanh(a, 0, 6)``, as in PyTorch (whose
graph shows EluBackward and HardtanhBackward for them).
"""

from __future__ import annotations

import numbers
from typing import Any

from ..autograd import Function
from .checks import require_float, require_tensor
from .unary import sigmoid, tanh

# the constants of "Self-Normalizing Neural Networks" (Klambauer et al., 2017), as PyTorch
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class SiLU(Function):
    """out = a * sigmoid(a)   (also called swish).

    dL/da = g * s * (1 + a * (1 - s)),   s = sigmoid(a).
    """

    name = "silu"

    def forward(self, a):
        xp = self.xp
        e = xp.exp(-xp.abs(a))  # a stable sigmoid, as ops.unary.Sigmoid
        s = xp.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)
        return a * s

    def backward(self, g):
        a = self.inputs[0]
        s = sigmoid(a)
        return g * s * (1.0 + a * (1.0 - s))


class LeakyReLU(Function):
    """out = a if a > 0 else slope * a.   dL/da = g if a > 0 else g * slope   (slope at 0, as PyTorch)."""

    name = "leaky_relu"
    saves_inputs = False

    def forward(self, a, negative_slope=0.01):
        self.slope = negative_slope
        self.positive = a > 0
        return self.xp.where(self.positive, a, a * negative_slope)

    def backward(self, g):
        pos = self.const(self.positive.astype(g.dtype))
        return g * (pos + (1.0 - pos) * self.slope)


class ELU(Function):
    """out = scale * a if a > 0 else scale * alpha * (exp(a) - 1).

    dL/da = g * scale if a > 0 else g * scale * alpha * exp(a) = g * (out + scale * alpha)
    (the second form at 0, as PyTorch). selu is this op with PyTorch's fixed alpha and scale.
    """

    saves_inputs = False

    def forward(self, a, alpha=1.0, scale=1.0):
        xp = self.xp
        self.alpha, self.scale = alpha, scale
        self.positive = a > 0
        negative = (alpha * scale) * xp.expm1(xp.minimum(a, 0))  # no overflow where a > 0
        self.out = xp.where(self.positive, a * scale, negative).astype(a.dtype, copy=False)
        return self.out

    def backward(self, g):
        pos = self.const(self.positive.astype(g.dtype))
        y = self.saved_output()
        return g * (pos * self.scale + (1.0 - pos) * (y + self.alpha * self.scale))


class Softplus(Function):
    """out = log(1 + exp(beta * a)) / beta, or a itself where beta * a > threshold (as PyTorch).

    dL/da = g * sigmoid(beta * a), or g where beta * a > threshold.
    """

    def forward(self, a, beta=1.0, threshold=20.0):
        xp = self.xp
        self.beta = beta
        z = a * beta
        self.linear = z > threshold
        soft = (xp.log1p(xp.exp(-xp.abs(z))) + xp.maximum(z, 0)) / beta  # stable for any z
        return xp.where(self.linear, a, soft).astype(a.dtype, copy=False)

    def backward(self, g):
        lin = self.const(self.linear.astype(g.dtype))
        s = sigmoid(self.inputs[0] * self.beta)
        return g * (lin + (1.0 - lin) * s)


class Softsign(Function):
    """out = a / (1 + |a|).   dL/da = g / (1 + |a|)**2."""

    def forward(self, a):
        return a / (1.0 + self.xp.abs(a))

    def backward(self, g):
        d = 1.0 + self.inputs[0].abs()
        return g / (d * d)


class LogSigmoid(Function):
    """out = log(sigmoid(a)) = min(a, 0) - log(1 + exp(-|a|)).   dL/da = g * sigmoid(-a)."""

    name = "logsigmoid"

    def forward(self, a):
        xp = self.xp
        return xp.minimum(a, 0) - xp.log1p(xp.exp(-xp.abs(a)))

    def backward(self, g):
        return g * sigmoid(-self.inputs[0])


class Hardtanh(Function):
    """out = a clipped to [min_val, max_val].

    dL/da = g where min_val < a < max_val, else 0 (0 at both ends, as PyTorch).
    relu6 is hardtanh(a, 0, 6).
    """

    saves_inputs = False

    def forward(self, a, min_val=-1.0, max_val=1.0):
        self.inside = (a > min_val) & (a < max_val)
        return self.xp.clip(a, min_val, max_val)

    def backward(self, g):
        return g * self.const(self.inside.astype(g.dtype))


class Hardswish(Function):
    """out = a * min(max(a + 3, 0), 6) / 6.

    dL/da = 0 for a <= -3,  g * (a / 3 + 1/2) for -3 < a < 3,  g for a >= 3   (the ends as PyTorch).
    """

    def forward(self, a):
        xp = self.xp
        self.middle = (a > -3.0) & (a < 3.0)
        self.above = a >= 3.0
        return a * xp.clip(a + 3.0, 0.0, 6.0) / 6.0

    def backward(self, g):
        mid = self.const(self.middle.astype(g.dtype))
        above = self.const(self.above.astype(g.dtype))
        return g * (mid * (self.inputs[0] * (1.0 / 3.0) + 0.5) + above)


class Mish(Function):
    """out = a * tanh(softplus(a)).

    dL/da = g * (t + a * sigmoid(a) * (1 - t**2)),   t = tanh(softplus(a))
    (d softplus(a)/da = sigmoid(a)).
    """

    def forward(self, a):
        xp = self.xp
        soft = xp.where(a > 20.0, a, xp.log1p(xp.exp(-xp.abs(a))) + xp.maximum(a, 0))
        return a * xp.tanh(soft)

    def backward(self, g):
        a = self.inputs[0]
        t = tanh(softplus(a))
        return g * (t + a * sigmoid(a) * (1.0 - t * t))


def _number(value: Any, opname: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{opname}: {what} must be a number, got {value!r}")
    return float(value)


def _float_input(a: Any, opname: str) -> None:
    require_tensor(a, opname)
    require_float(a, opname)


def silu(a: Any) -> Any:
    _float_input(a, "silu")
    return SiLU.apply(a)


def leaky_relu(a: Any, negative_slope: float = 0.01) -> Any:
    _float_input(a, "leaky_relu")
    return LeakyReLU.apply(a, negative_slope=_number(negative_slope, "leaky_relu", "negative_slope"))


def elu(a: Any, alpha: float = 1.0) -> Any:
    _float_input(a, "elu")
    return ELU.apply(a, alpha=_number(alpha, "elu", "alpha"))


def selu(a: Any) -> Any:
    """elu with alpha = 1.6732632423543772 and scale = 1.0507009873554805 (``torch.selu``)."""
    _float_input(a, "selu")
    return ELU.apply(a, alpha=SELU_ALPHA, scale=SELU_SCALE)


def softplus(a: Any, beta: float = 1.0, threshold: float = 20.0) -> Any:
    """log(1 + exp(beta * a)) / beta; linear where beta * a > threshold (``torch.nn.functional.softplus``)."""
    _float_input(a, "softplus")
    beta = _number(beta, "softplus", "beta")
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero, got 0")
    return Softplus.apply(a, beta=beta, threshold=_number(threshold, "softplus", "threshold"))


def softsign(a: Any) -> Any:
    _float_input(a, "softsign")
    return Softsign.apply(a)


def logsigmoid(a: Any) -> Any:
    _float_input(a, "logsigmoid")
    return LogSigmoid.apply(a)


def hardtanh(a: Any, min_val: float = -1.0, max_val: float = 1.0) -> Any:
    _float_input(a, "hardtanh")
    lo, hi = _number(min_val, "hardtanh", "min_val"), _number(max_val, "hardtanh", "max_val")
    if lo > hi:
        raise ValueError(f"hardtanh: min_val must not exceed max_val, got min_val={min_val}, max_val={max_val}")
    return Hardtanh.apply(a, min_val=lo, max_val=hi)


def relu6(a: Any) -> Any:
    """min(max(a, 0), 6): hardtanh(a, 0, 6), as PyTorch."""
    _float_input(a, "relu6")
    return Hardtanh.apply(a, min_val=0.0, max_val=6.0)


def hardswish(a: Any) -> Any:
    _float_input(a, "hardswish")
    return Hardswish.apply(a)


def mish(a: Any) -> Any:
    _float_input(a, "mish")
    return Mish.apply(a)
