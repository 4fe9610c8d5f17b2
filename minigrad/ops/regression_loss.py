"""Regression losses on a difference d = input - target: l1, smooth_l1 and huber.

Each is one node, elementwise then reduced (see :mod:`minigrad.ops.loss_reduction`).
Both input and target get a gradient (as in PyTorch): the loss depends on d only, so
dL/dtarget = -dL/dinput. (``mse_loss`` is in :mod:`minigrad.ops.loss`.)
"""

from __future__ import annotations

from typing import Any

from ..autograd import Function
from .loss_reduction import check_pair, per_element, reduce_array


class L1Loss(Function):
    """loss = |input - target| (reduced).   dL/dinput = g * sign(d) (0 at d = 0, as PyTorch)."""

    name = "l1_loss"

    def forward(self, x, t, reduction="mean"):
        self.reduction = reduction
        d = x - t
        self.sign = self.xp.sign(d)
        return reduce_array(self.xp.abs(d), reduction)

    def backward(self, g):
        gx = per_element(g, self.in_shapes[0], self.reduction) * self.const(self.sign)
        return gx, -gx


class SmoothL1Loss(Function):
    """loss = 0.5 d**2 / beta where |d| < beta, else |d| - 0.5 beta   (d = input - target).

    dL/dinput = g * (d / beta where |d| < beta, else sign(d)); beta = 0 is l1_loss.
    """

    name = "smooth_l1_loss"

    def forward(self, x, t, reduction="mean", beta=1.0):
        xp = self.xp
        self.reduction, self.beta = reduction, beta
        d = x - t
        ad = xp.abs(d)
        inside = ad < beta
        self.inside, self.sign = inside.astype(x.dtype), xp.sign(d) * ~inside
        loss = xp.where(inside, 0.5 * d * d / (beta if beta else 1.0), ad - 0.5 * beta)
        return reduce_array(loss, reduction)

    def backward(self, g):
        x, t = self.inputs
        slope = self.const(self.sign)
        if self.beta:
            slope = slope + (x - t) * self.const(self.inside / self.beta)
        gx = per_element(g, self.in_shapes[0], self.reduction) * slope
        return gx, -gx


class HuberLoss(Function):
    """loss = 0.5 d**2 where |d| < delta, else delta * (|d| - 0.5 delta)   (d = input - target).

    dL/dinput = g * (d where |d| < delta, else delta * sign(d)); huber = delta * smooth_l1(beta=delta).
    """

    name = "huber_loss"

    def forward(self, x, t, reduction="mean", delta=1.0):
        xp = self.xp
        self.reduction, self.delta = reduction, delta
        d = x - t
        ad = xp.abs(d)
        inside = ad < delta
        self.inside, self.sign = inside.astype(x.dtype), xp.sign(d) * ~inside * delta
        return reduce_array(xp.where(inside, 0.5 * d * d, delta * (ad - 0.5 * delta)), reduction)

    def backward(self, g):
        x, t = self.inputs
        slope = self.const(self.sign) + (x - t) * self.const(self.inside)
        gx = per_element(g, self.in_shapes[0], self.reduction) * slope
        return gx, -gx



def l1_loss(input: Any, target: Any, reduction: str = "mean") -> Any:
    """Mean (or sum, or none) of |input - target| (``torch.nn.functional.l1_loss``)."""
    check_pair("l1_loss", input, target, reduction)
    return L1Loss.apply(input, target, reduction=reduction)


def smooth_l1_loss(input: Any, target: Any, reduction: str = "mean", beta: float = 1.0) -> Any:
    """Quadratic for |d| < beta, linear beyond (``torch.nn.functional.smooth_l1_loss``)."""
    check_pair("smooth_l1_loss", input, target, reduction)
    if not beta >= 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    return SmoothL1Loss.apply(input, target, reduction=reduction, beta=float(beta))


def huber_loss(input: Any, target: Any, reduction: str = "mean", delta: float = 1.0) -> Any:
    """Quadratic for |d| < delta, delta-scaled linear beyond (``torch.nn.functional.huber_loss``)."""
    check_pair("huber_loss", input, target, reduction)
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    return HuberLoss.apply(input, target, reduction=reduction, delta=float(delta))
