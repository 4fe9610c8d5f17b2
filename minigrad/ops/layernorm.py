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

import math

from .. import functional as F
from ..autograd import Function
from ..parallel import add_partials
from .shape import reshaped


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last ``len(normalized_shape)`` axes.

    See the module docstring for the derivatives. Like PyTorch, it saves x, the means and
    the reciprocal standard deviations, and recomputes xhat in backward (one pass) rather
    than keeping a second activation-sized array alive until backward.
    """

    name = "layer_norm"

    def forward(self, x, *affine, naxes=1, eps=1e-5, has_weight=True, has_bias=True):
        xp, backend = self.xp, self.backend
        self.axes = tuple(range(x.ndim - naxes, x.ndim))
        self.eps, self.has_weight, self.has_bias = eps, has_weight, has_bias
        n = math.prod(x.shape[x.ndim - naxes :])
        dtype = xp.result_type(x.dtype, xp.float16)  # x's float type (integers compute in float64)
        x2 = x.reshape(-1, n).astype(dtype, copy=False)  # one row per normalized group
        weight = affine[0].reshape(-1) if has_weight else None
        bias = affine[-1].reshape(-1) if has_bias else None
        stats_shape = x.shape[: x.ndim - naxes] + (1,) * naxes
        fused = backend.layer_norm_forward(x2, weight, bias, eps)  # a C loop per row, or one GPU kernel
        if fused is not None:
            out, mu, rstd = fused
            self.mu, self.rstd = mu.reshape(stats_shape), rstd.reshape(stats_shape)
            return out.reshape(x.shape)
        out = xp.empty(x2.shape, dtype=dtype)
        mu = xp.empty((x2.shape[0], 1), dtype=dtype)
        rstd = xp.empty_like(mu)

        def rows(lo, hi):  # the rows are independent: the CPU runs slices of them on threads
            xs, o = x2[lo:hi], out[lo:hi]
            m = backend.row_sum(xs)
            m *= 1.0 / n  # the row means
            xp.subtract(xs, m, out=o)
            var = backend.row_dot(o, o)
            var *= 1.0 / n
            r = 1.0 / xp.sqrt(var + eps)
            o *= r  # xhat, computed in the output's buffer
            if weight is not None:
                o *= weight
            if bias is not None:
                o += bias
            mu[lo:hi], rstd[lo:hi] = m, r

        self.run_rows(rows, x2.shape[0], 3 * x2.size)
        self.mu, self.rstd = mu.reshape(stats_shape), rstd.reshape(stats_shape)
        return out.reshape(x.shape)

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
        """The same formulas on arrays, slice by slice of rows, with few full-size temporaries."""
        xp, backend = self.xp, self.backend
        need = self.needs_input_grad
        n = math.prod(g.shape[g.ndim - len(self.axes) :])
        x2, g2 = self.inputs[0].data.reshape(-1, n), g.reshape(-1, n)
        mu, rstd = self.mu.reshape(-1, 1), self.rstd.reshape(-1, 1)
        weight = self.inputs[1].data.reshape(-1) if self.has_weight else None
        want_w = self.has_weight and need[1]
        want_b = self.has_bias and need[-1]
        fused = backend.layer_norm_backward(g2, x2, mu, rstd, weight, need[0], want_w, want_b)  # C or CUDA
        if fused is not None:
            dx2, dw, db = fused
            grads = [dx2.reshape(g.shape) if need[0] else None]
            if self.has_weight:
                grads.append(reshaped(dw, self.in_shapes[1]) if want_w else None)
            if self.has_bias:
                grads.append(reshaped(db, self.in_shapes[-1]) if want_b else None)
            return tuple(grads)
        dx = xp.empty(g.shape, dtype=g.dtype) if need[0] else None  # returned as is: not a view
        dx2 = dx.reshape(-1, n) if dx is not None else None

        def rows(lo, hi):  # returns this slice's share of dL/dw and dL/db
            gs = g2[lo:hi]
            xhat = x2[lo:hi] - mu[lo:hi]
            xhat *= rstd[lo:hi]
            gx = gs * xhat
            partial = (backend.col_sum(gx) if want_w else None, backend.col_sum(gs) if want_b else None)
            if dx2 is not None:
                dxhat = dx2[lo:hi]
                if weight is not None:
                    xp.multiply(gs, weight, out=dxhat)
                else:
                    dxhat[...] = gs
                mean1 = backend.row_sum(dxhat)
                mean1 *= 1.0 / n
                mean2 = backend.row_dot(dxhat, xhat)  # n * mean(dxhat * xhat)
                mean2 *= 1.0 / n
                xhat *= mean2
                dxhat -= xhat
                dxhat -= mean1
                dxhat *= rstd[lo:hi]
            return partial

        partials = self.run_rows(rows, g2.shape[0], 4 * g2.size)
        grads = [dx]
        if self.has_weight:
            grads.append(reshaped(add_partials([p[0] for p in partials]), self.in_shapes[1]) if want_w else None)
        if self.has_bias:
            grads.append(reshaped(add_partials([p[1] for p in partials]), self.in_shapes[-1]) if want_b else None)
        return tuple(grads)
