"""Layer normalization over the last axes, fused (one node, hand-derived backward).

Forward, over the N elements of the normalized axes (PyTorch semantics: biased
variance, eps inside the square root):

    mu = mean(x),  var = mean((x - mu)**2),  rstd = 1 / sqrt(var + eps)
    xhat = (x - mu) * rstd,  y = xhat * w + b

Backward, with dxhat = g * w:

    dL/dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    dL/dw = sum of g * xhat over the leading (non-normalized) axes
    dL/db = sum of g over the leading axes

(the two means are the gradient's paths through mu and through var). The composite
version, built op by op, is ``minigrad.functional.layer_norm_composite``.
"""

from __future__ import annotations

from .. import functional as F
from ..autograd import Function


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last ``len(normalized_shape)`` axes.

    See the module docstring for the derivatives. Like PyTorch, it saves x, the means and
    the reciprocal standard deviations, and recomputes xhat in backward (one pass) rather
    than keeping a second activation-sized array alive until backward.
    """

    name = "layer_norm"

    def forward(self, x, *affine, naxes=1, eps=1e-5, has_weight=True, has_bias=True):
        self.axes = tuple(range(x.ndim - naxes, x.ndim))
        self.eps, self.has_weight, self.has_bias = eps, has_weight, has_bias
        mu = x.mean(axis=self.axes, keepdims=True)
        out = x - mu
        var = (out * out).mean(axis=self.axes, keepdims=True)
        rstd = 1.0 / self.xp.sqrt(var + eps)
        out *= rstd  # xhat, computed in the output's buffer
        if has_weight:
            out *= affine[0]
        if has_bias:
            out += affine[-1]
        self.mu, self.rstd = mu, rstd
        return out

    def _xhat(self):
        xhat = self.inputs[0].data - self.mu
        xhat *= self.rstd
        return xhat

    def _stats(self):
        """xhat and rstd: constants from forward, or recomputed with a graph for higher order."""
        if not F.is_grad_enabled():
            return self.const(self._xhat()), self.const(self.rstd)
        x = self.inputs[0]
        xc = x - F.mean(x, self.axes, keepdims=True)
        rstd = (F.mean(xc * xc, self.axes, keepdims=True) + self.eps) ** -0.5
        return xc * rstd, rstd

    def backward(self, g):
        xhat, rstd = self._stats()
        weight = self.inputs[1] if self.has_weight else None
        grads = []
        need = self.needs_input_grad
        if need[0]:
            dxhat = g * weight if weight is not None else g
            mean1 = F.mean(dxhat, self.axes, keepdims=True)
            mean2 = F.mean(dxhat * xhat, self.axes, keepdims=True)
            grads.append(rstd * (dxhat - mean1 - xhat * mean2))
        else:
            grads.append(None)
        i = 1
        if self.has_weight:
            grads.append(F.sum_to(g * xhat, self.in_shapes[i]) if need[i] else None)
            i += 1
        if self.has_bias:
            grads.append(F.sum_to(g, self.in_shapes[i]) if need[i] else None)
        return tuple(grads)

    def backward_array(self, g):
        """The same formulas on arrays, with as few full-size temporaries as possible."""
        from .reduction import sum_to_array

        need = self.needs_input_grad
        xhat = self._xhat()
        gx = g * xhat
        grads = [None]
        i = 1
        if self.has_weight:
            grads.append(sum_to_array(gx, self.in_shapes[i]) if need[i] else None)
            i += 1
        if self.has_bias:
            grads.append(sum_to_array(g, self.in_shapes[i]) if need[i] else None)
        if need[0]:
            if self.has_weight:
                w = self.inputs[1].data
                dxhat = g * w
                gx *= w  # now dxhat * xhat
            else:
                dxhat = g.copy()
            mean1 = dxhat.mean(axis=self.axes, keepdims=True)
            mean2 = gx.mean(axis=self.axes, keepdims=True)
            xhat *= mean2
            dxhat -= xhat
            dxhat -= mean1
            dxhat *= self.rstd
            grads[0] = dxhat
        return tuple(grads)
