"""Activation modules: each one calls its function of :mod:`minigrad.functional`.

They hold no parameters; the arguments (a slope, beta, an axis) are checked when the
module is made, so a bad one fails at construction with the module's name. ReLU, GELU
(``approximate="none"`` or ``"tanh"``) and Tanh are in :mod:`minigrad.nn.layers`.
"""

from __future__ import annotations

import numbers
from typing import Any

from .. import functional as F
from ..tensor import Tensor
from .module import Module


def _number(value: Any, module: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{module}: {what} must be a number, got {value!r}")
    return float(value)


def _axis(axis: Any, dim: Any, module: str) -> int:
    """``axis`` (minigrad's name) or ``dim`` (PyTorch's), not both."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{module}: give axis or dim, not both (got axis={axis!r}, dim={dim!r})")
        axis = dim
    axis = -1 if axis is None else axis
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"{module}: axis must be an int, got {axis!r}")
    return axis


class Softmax(Module):
    """softmax along ``axis`` (default -1; ``dim=`` as in PyTorch works too)."""

    def __init__(self, axis: int | None = None, *, dim: int | None = None) -> None:
        super().__init__()
        self.axis = _axis(axis, dim, "Softmax")

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    """log_softmax along ``axis`` (default -1; ``dim=`` works too)."""

    def __init__(self, axis: int | None = None, *, dim: int | None = None) -> None:
        Module.__init__(self)
        self.axis = _axis(axis, dim, "LogSoftmax")

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.axis)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class SiLU(Module):
    """x * sigmoid(x)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = _number(negative_slope, "LeakyReLU", "negative_slope")

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = _number(alpha, "ELU", "alpha")

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class SELU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.selu(x)


class Softplus(Module):
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = _number(beta, "Softplus", "beta")
        self.threshold = _number(threshold, "Softplus", "threshold")
        if self.beta == 0:
            raise ValueError("Softplus: beta must be non-zero, got 0")

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softsign(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.softsign(x)


class Mish(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.mish(x)


class Hardtanh(Module):
    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__()
        self.min_val = _number(min_val, "Hardtanh", "min_val")
        self.max_val = _number(max_val, "Hardtanh", "max_val")
        if self.min_val > self.max_val:
            raise ValueError(f"Hardtanh: min_val must not exceed max_val, got min_val={min_val}, max_val={max_val}")

    def forward(self, x: Tensor) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class ReLU6(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.relu6(x)


class Hardswish(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.hardswish(x)


class LogSigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.logsigmoid(x)
