"""Layer normalization over the last axes, as one node with a hand-derived backward.

Forward, over the N elements of the normalized axes (PyTorch semantics: biased
variance, eps inside the square root):

    mu = mean(x),  var = mean((x - mu)**2),  rstd = 1 / sqrt(var + eps)
    xhat = (x - mu) * rstd,  y = xhat * w + b

Backward, with dxhat = g * w:

    dL/dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    dL/dw = sum of g * xhat over the leading (non-normalized) axes
    dL/db = sum of g over the leading axes

(the two means are the gradient's paths through mu and through var). The composite
version, built op by op, is :func:`layer_norm_composite`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..autograd import Function, is_grad_enabled
from .checks import number_arg, require_tensor


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last ``naxes`` axes.

    See the module docstring for the derivatives. Like PyTorch, it saves x, the means and
    the reciprocal standard deviations, and recomputes xhat in backward.
    """

    name = "layer_norm"

    def forward(self, x, *affine, naxes=1, eps=1e-5, has_weight=True, has_bias=True):
        xp = self.xp
        self.axes = tuple(range(x.ndim - naxes, x.ndim))
        self.eps, self.has_weight, self.has_bias = eps, has_weight, has_bias
        self.mu = x.mean(axis=self.axes, keepdims=True)
        y = x - self.mu  # x - mu, then (in place) xhat, then y
        var = (y * y).mean(axis=self.axes, keepdims=True)
        self.rstd = 1.0 / xp.sqrt(var + eps)
        y *= self.rstd
        if has_weight:
            y *= affine[0]
        if has_bias:
            y += affine[-1]
        return y

    def _stats(self):
        """xhat and rstd: constants from forward, or recomputed with a graph for higher order."""
        x = self.inputs[0]
        if not is_grad_enabled():
            return self.const((x.data - self.mu) * self.rstd), self.const(self.rstd)
        xc = x - x.mean(self.axes, keepdims=True)
        rstd = ((xc * xc).mean(self.axes, keepdims=True) + self.eps) ** -0.5
        return xc * rstd, rstd

    def backward(self, g):
        xhat, rstd = self._stats()
        need = self.needs_input_grad
        weight = self.inputs[1] if self.has_weight else None
        grads = [None] * len(need)
        if need[0]:
            dxhat = g * weight if weight is not None else g
            mean1 = dxhat.mean(self.axes, keepdims=True)
            mean2 = (dxhat * xhat).mean(self.axes, keepdims=True)
            grads[0] = rstd * (dxhat - mean1 - xhat * mean2)
        if self.has_weight and need[1]:
            grads[1] = (g * xhat).sum_to_size(self.in_shapes[1])
        if self.has_bias and need[-1]:
            grads[-1] = g.sum_to_size(self.in_shapes[-1])
        return tuple(grads)


def _normalized(x: Any, normalized_shape: int | Sequence[int], weight: Any, bias: Any) -> tuple[int, ...]:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    require_tensor(x, "layer_norm")
    if x.shape[x.ndim - len(shape) :] != shape or len(shape) > x.ndim:
        raise ValueError(f"layer_norm: input of shape {x.shape} does not end with normalized_shape {shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            require_tensor(p, "layer_norm", name)
            if p.shape != shape:
                raise ValueError(f"layer_norm: {name} has shape {p.shape}, expected {shape}")
    return shape


def layer_norm(
    x: Any, normalized_shape: int | Sequence[int], weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> Any:
    """Normalize over the last ``len(normalized_shape)`` axes (as ``torch.nn.functional.layer_norm``)."""
    shape = _normalized(x, normalized_shape, weight, bias)
    eps = number_arg(eps, "layer_norm", "eps")
    affine = [p for p in (weight, bias) if p is not None]
    return LayerNorm.apply(
        x, *affine, naxes=len(shape), eps=eps, has_weight=weight is not None, has_bias=bias is not None
    )


def layer_norm_composite(
    x: Any, normalized_shape: int | Sequence[int], weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> Any:
    """layer_norm built from primitive ops (mean, sub, mul, sqrt, div...): every step in the graph."""
    shape = _normalized(x, normalized_shape, weight, bias)
    eps = number_arg(eps, "layer_norm", "eps")
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    centered = x - x.mean(axes, keepdims=True)
    variance = (centered * centered).mean(axes, keepdims=True)
    out = centered / (variance + eps).sqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out
