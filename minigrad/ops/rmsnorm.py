"""RMS normalization over the last axes (``torch.nn.functional.rms_norm``), one node.

Forward, over the N elements of the normalized axes (no mean is subtracted, unlike
layer_norm):

    r = 1 / sqrt(mean(x**2) + eps),   xhat = x * r,   y = xhat * w

Backward, with dxhat = g * w:

    dL/dx = r * (dxhat - xhat * mean(dxhat * xhat))
    dL/dw = sum of g * xhat over the leading (non-normalized) axes

(the mean is the gradient's path through r). eps=None takes the dtype's machine epsilon,
as PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import backend as B
from ..autograd import Function, is_grad_enabled
from .checks import require_float, require_tensor


class RMSNorm(Function):
    """y = x / sqrt(mean(x**2) + eps) * weight over the last ``naxes`` axes (see the module
    docstring for the derivatives). Saves x and r; recomputes xhat in backward."""

    name = "rms_norm"

    def forward(self, x, *weight, naxes=1, eps=1e-6):
        self.axes = tuple(range(x.ndim - naxes, x.ndim))
        self.eps = eps
        self.r = 1.0 / self.xp.sqrt((x * x).mean(axis=self.axes, keepdims=True) + eps)
        y = x * self.r
        if weight:
            y *= weight[0]
        return y

    def _stats(self):
        """xhat and r: constants from forward, or recomputed with a graph for higher order."""
        x = self.inputs[0]
        if not is_grad_enabled():
            return self.const(x.data * self.r), self.const(self.r)
        r = ((x * x).mean(self.axes, keepdims=True) + self.eps) ** -0.5
        return x * r, r

    def backward(self, g):
        xhat, r = self._stats()
        need = self.needs_input_grad
        weight = self.inputs[1] if len(self.inputs) > 1 else None
        gx = gw = None
        if need[0]:
            dxhat = g * weight if weight is not None else g
            gx = r * (dxhat - xhat * (dxhat * xhat).mean(self.axes, keepdims=True))
        if weight is not None and need[1]:
            gw = (g * xhat).sum_to_size(self.in_shapes[1])
        return (gx, gw) if weight is not None else gx


def rms_norm(x: Any, normalized_shape: int | Sequence[int], weight: Any = None, eps: float | None = None) -> Any:
    """Normalize by the root mean square over the last ``len(normalized_shape)`` axes, then
    scale by ``weight`` (as ``torch.nn.functional.rms_norm``)."""
    require_tensor(x, "rms_norm")
    require_float(x, "rms_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if len(shape) > x.ndim or x.shape[x.ndim - len(shape) :] != shape:
        raise ValueError(f"rms_norm: input of shape {x.shape} does not end with normalized_shape {shape}")
    if weight is not None:
        require_tensor(weight, "rms_norm", "weight")
        if weight.shape != shape:
            raise ValueError(f"rms_norm: weight has shape {weight.shape}, expected {shape}")
    if eps is None:
        eps = float(B.np.finfo(x.dtype).eps)
    if not eps >= 0:
        raise ValueError(f"rms_norm: eps must be >= 0, got {eps}")
    extra = (weight,) if weight is not None else ()
    return RMSNorm.apply(x, *extra, naxes=len(shape), eps=float(eps))
