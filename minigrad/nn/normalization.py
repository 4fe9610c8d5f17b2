"""``nn.RMSNorm``: root-mean-square normalization over the last axes (as ``torch.nn.RMSNorm``)."""

from __future__ import annotations

from typing import Any

from .. import creation
from .. import functional as F
from ..tensor import Tensor
from .module import Module, Parameter


class RMSNorm(Module):
    """y = x / sqrt(mean(x**2) + eps) * weight over the last ``len(normalized_shape)`` axes.

    weight starts at 1 (``elementwise_affine=False``: no weight); eps=None takes the input
    dtype's machine epsilon, as PyTorch.
    """

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float | None = None,
        elementwise_affine: bool = True,
        device: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if eps is not None and not eps >= 0:
            raise ValueError(f"RMSNorm: eps must be >= 0 or None, got {eps}")
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        self.weight = Parameter(creation.ones(*shape, device=device, dtype=dtype)) if elementwise_affine else None

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
