"""Inverted dropout.

In training each element is kept with probability 1 - p and scaled by 1 / (1 - p), so
the expected value is unchanged and evaluation needs no rescaling (identity in eval).
"""

from __future__ import annotations

from typing import Any

from ..autograd import Function
from .checks import number_arg


class Dropout(Function):
    """out = x * m / (1 - p), m_i ~ Bernoulli(1 - p) drawn from the device's seeded generator.

    dL/dx = g * m / (1 - p)   (the same mask).
    """

    saves_inputs = False

    def forward(self, x, p=0.5):
        keep = self.backend.uniform(x.shape, x.dtype) >= p
        self.scale = keep * x.dtype.type(1.0 / (1.0 - p))
        return x * self.scale

    def backward(self, g):
        return g * self.const(self.scale)


def dropout(x: Any, p: float = 0.5, training: bool = True) -> Any:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p)."""
    p = number_arg(p, "dropout", "p")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return Dropout.apply(x, p=p)
