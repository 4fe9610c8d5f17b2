"""Parameter initializers (in place, like ``torch.nn.init``).

Every initializer draws from the seeded generator of the tensor's device, so
``minigrad.manual_seed(s)`` before building a model fixes every initial weight.
"""

from __future__ import annotations

import math

from ..tensor import Tensor


def _fans(t: Tensor) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError(f"fan in/out need at least 2 dimensions, got shape {t.shape}")
    receptive = 1
    for s in t.shape[2:]:
        receptive *= s
    return t.shape[1] * receptive, t.shape[0] * receptive


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with samples from U[a, b)."""
    u = t.backend.uniform(t.shape, t.dtype)
    t.data = (u * (b - a) + a).astype(t.dtype, copy=False)
    return t


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with samples from N(mean, std**2)."""
    n = t.backend.normal(t.shape, t.dtype)
    t.data = (n * std + mean).astype(t.dtype, copy=False)
    return t


def constant_(t: Tensor, value: float) -> Tensor:
    t.data = t.backend.xp.full(t.shape, value, dtype=t.dtype)
    return t


def zeros_(t: Tensor) -> Tensor:
    return constant_(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    return constant_(t, 1.0)


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = _fans(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std**2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(t: Tensor, a: float = 0.0) -> Tensor:
    """U(-b, b) with b = sqrt(6 / ((1 + a**2) fan_in)) (He et al. 2015, leaky-ReLU slope a)."""
    fan_in, _ = _fans(t)
    bound = math.sqrt(6.0 / ((1.0 + a * a) * fan_in))
    return uniform_(t, -bound, bound)


def kaiming_normal_(t: Tensor, a: float = 0.0) -> Tensor:
    fan_in, _ = _fans(t)
    return normal_(t, 0.0, math.sqrt(2.0 / ((1.0 + a * a) * fan_in)))
