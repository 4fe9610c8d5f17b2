"""Scans (running totals along one axis): cumsum, cumprod, logcumsumexp.

out_i depends on a_0 .. a_i, so the gradient of a_k collects g_i from every i >= k: a
sum over the *rest* of the axis, which is a scan run backwards (a reversed cumsum).
"""

from __future__ import annotations

from typing import Any

from ..autograd import Function, is_grad_enabled
from .checks import axis_arg, require_float, require_tensor, torch_names
from .indexing import GetItem


def flip_axis(t: Any, axis: int) -> Any:
    """``t`` reversed along ``axis`` (a getitem with step -1, so it has a gradient)."""
    return GetItem.apply(t, index=(slice(None),) * axis + (slice(None, None, -1),), advanced=False)


def _later_positions(fn: Function, n: int) -> Any:
    """(n, n) boolean constant, True at [k, i] where i >= k (the outputs a_k feeds)."""
    return fn.const(fn.xp.triu(fn.xp.ones((n, n), dtype=bool)))


class CumSum(Function):
    """out_i = a_0 + ... + a_i along ``axis``.

    dL/da_k = sum over i >= k of g_i: the reversed cumsum of g.
    """

    name = "cumsum"
    saves_inputs = False

    def forward(self, a, axis=0):
        self.axis = axis
        return self.xp.cumsum(a, axis=axis)

    def backward(self, g):
        return flip_axis(cumsum(flip_axis(g, self.axis), self.axis), self.axis)


class CumProd(Function):
    """out_i = a_0 * ... * a_i along ``axis``.

    dL/da_k = sum over i >= k of g_i * prod(a_j for j <= i, j != k).
    Without zeros that is revcumsum(g * out)_k / a_k. With a zero the division is
    undefined, so the products that leave a_k out are computed directly: an (n, n)
    matrix per position along the axis, with a_k replaced by 1 in row k, cumprod-ed.
    """

    name = "cumprod"

    def forward(self, a, axis=0):
        self.axis = axis
        self.has_zero = bool((a == 0).any())
        return self.xp.cumprod(a, axis=axis)

    def backward(self, g):
        a, ax = self.inputs[0], self.axis
        if not self.has_zero:
            out = cumprod(a, ax) if is_grad_enabled() else self.const(self.xp.cumprod(a.data, axis=ax))
            return flip_axis(cumsum(flip_axis(g * out, ax), ax), ax) / a
        x, gl = a.swapaxes(ax, -1), g.swapaxes(ax, -1)  # the scanned axis last
        n = x.shape[-1]
        eye = self.const(self.xp.eye(n, dtype=bool))
        rows = x.unsqueeze(-2).expand(*x.shape[:-1], n, n).masked_fill(eye, 1.0)  # row k: a with a_k = 1
        leave_out = cumprod(rows, -1)  # [k, i] = prod(a_j for j <= i, j != k)
        terms = (leave_out * gl.unsqueeze(-2)).masked_fill(~_later_positions(self, n), 0.0)
        return terms.sum(-1).swapaxes(ax, -1)


class LogCumSumExp(Function):
    """out_i = log(exp(a_0) + ... + exp(a_i)) along ``axis`` (computed stably, with logaddexp).

    dL/da_k = sum over i >= k of g_i * exp(a_k - out_i). Each exp(a_k - out_i) <= 1 (out_i
    includes a_k), so the (n, n) matrix of them is formed directly, with no overflow.
    """

    name = "logcumsumexp"

    def forward(self, a, axis=0):
        self.axis = axis
        accumulate = getattr(self.xp.logaddexp, "accumulate", None)
        try:  # log(exp(s) + exp(a_i)) step by step: stable for any spread of a
            self.out = accumulate(a, axis=axis)
        except (TypeError, NotImplementedError):  # an array module without logaddexp.accumulate
            self.out = logcumsumexp_by_matrix(self.xp, a, axis)
        return self.out

    def backward(self, g):
        a, ax = self.inputs[0], self.axis
        out = logcumsumexp(a, ax) if is_grad_enabled() else self.const(self.out)
        x, y, gl = a.swapaxes(ax, -1), out.swapaxes(ax, -1), g.swapaxes(ax, -1)
        n = x.shape[-1]
        exponent = (x.unsqueeze(-1) - y.unsqueeze(-2)).masked_fill(~_later_positions(self, n), -float("inf"))
        return (exponent.exp() * gl.unsqueeze(-2)).sum(-1).swapaxes(ax, -1)


def logcumsumexp_by_matrix(xp: Any, a: Any, axis: int) -> Any:
    """logcumsumexp without ufunc.accumulate: out_i = logsumexp(a_j for j <= i), one (n, n)
    matrix per position, each column shifted by its own maximum."""
    x = xp.moveaxis(a, axis, -1)
    n = x.shape[-1]
    if n == 0:
        return a.copy()
    earlier = xp.triu(xp.ones((n, n), dtype=bool))  # [j, i]: j <= i
    m = xp.where(earlier, x[..., :, None], -xp.inf)
    shift = m.max(axis=-2, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, 0.0)
    out = xp.log(xp.exp(m - shift).sum(axis=-2)) + shift[..., 0, :]
    return xp.moveaxis(out.astype(a.dtype, copy=False), -1, axis)


def _scan_args(a: Any, axis: Any, opname: str) -> int:
    require_tensor(a, opname)
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"{opname}: axis must be an int, got {axis!r}")
    if a.ndim == 0:  # PyTorch scans a 0-d tensor as one element along axis 0 or -1
        axis_arg(axis, 1, opname)
        return -1
    return axis_arg(axis, a.ndim, opname)


def _scan(op: type, a: Any, ax: int) -> Any:
    """Apply a scan ``op`` along ``ax``; ``ax`` < 0 is a 0-d tensor, scanned as one element."""
    if ax < 0:
        return op.apply(a.reshape(1), axis=0).reshape(())
    return op.apply(a, axis=ax)


@torch_names
def cumsum(a: Any, axis: int) -> Any:
    """Running sum along ``axis`` (``torch.cumsum``)."""
    ax = _scan_args(a, axis, "cumsum")
    return _scan(CumSum, a, ax)


@torch_names
def cumprod(a: Any, axis: int) -> Any:
    """Running product along ``axis`` (``torch.cumprod``); zeros are handled exactly in backward."""
    ax = _scan_args(a, axis, "cumprod")
    return _scan(CumProd, a, ax)


@torch_names
def logcumsumexp(a: Any, axis: int) -> Any:
    """log of the running sum of exp along ``axis``, computed stably (``torch.logcumsumexp``)."""
    ax = _scan_args(a, axis, "logcumsumexp")
    require_float(a, "logcumsumexp")
    return _scan(LogCumSumExp, a, ax)
