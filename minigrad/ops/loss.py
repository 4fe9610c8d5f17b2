"""Losses: cross-entropy on logits (one node, fused with log-softmax) and mean squared error.

For logits x (..., C), a target class t, label smoothing eps and p = softmax(x):

    q = (1 - eps) * onehot(t) + eps / C          (the smoothed target distribution)
    loss = -sum_c q_c * log p_c
    dloss/dx = p - q

Positions whose target equals ``ignore_index`` contribute 0 loss and 0 gradient;
``reduction="mean"`` divides by the number of positions not ignored (as PyTorch).
:func:`cross_entropy_composite` builds the same loss from log_softmax and indexing.
"""

from __future__ import annotations

from typing import Any

from ..autograd import Function, is_grad_enabled
from .checks import is_tensor, require_tensor
from .softmax import log_softmax, softmax


class CrossEntropy(Function):
    """Mean/sum/none of -sum_c q_c log softmax(x)_c; dL/dx = (softmax(x) - q) * g_position."""

    name = "cross_entropy"

    def forward(self, x, target, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
        xp = self.xp
        C = x.shape[-1]
        self.reduction, self.eps, self.C = reduction, label_smoothing, C
        valid = target != ignore_index
        bad = valid & ((target < 0) | (target >= C))
        if bool(bad.any()):
            raise IndexError(
                f"cross_entropy: target values must be in [0, {C}) or ignore_index={ignore_index}, "
                f"got {int(target[bad][0])}"
            )
        z = x - x.max(axis=-1, keepdims=True)
        log_p = z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))
        self.q = self._smoothed(xp.where(valid, target, 0), x.dtype)
        loss = -(self.q * log_p).sum(axis=-1) * valid
        self.valid = valid.astype(x.dtype)
        self.count = int(valid.sum())
        self.probs = xp.exp(log_p)
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        return loss.sum() / x.dtype.type(self.count) if self.count else loss.sum() * x.dtype.type("nan")

    def _smoothed(self, target, dtype):
        """q = (1 - eps) * onehot(target) + eps / C."""
        q = (self.xp.arange(self.C) == target[..., None]).astype(dtype)
        return q * (1.0 - self.eps) + self.eps / self.C if self.eps else q

    def backward(self, g):
        x = self.inputs[0]
        probs = softmax(x, -1) if is_grad_enabled() else self.const(self.probs)
        weight = self.const(self.valid)  # 0 where the target is ignored
        if self.reduction == "mean":
            weight = weight * (g / max(self.count, 1))
        else:  # "sum" (g is a scalar) or "none" (g has the target's shape)
            weight = weight * g
        return (probs - self.const(self.q)) * weight.unsqueeze(-1), None


def _check_targets(logits: Any, target: Any, reduction: str, label_smoothing: float) -> Any:
    require_tensor(logits, "cross_entropy", "logits")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not is_tensor(target):
        target = type(logits)(target, device=logits.device)
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold integer class indices, got dtype {target.dtype}")
    if logits.ndim < 1 or target.shape != logits.shape[:-1]:
        raise ValueError(
            f"cross_entropy: logits of shape {logits.shape} need targets of shape {logits.shape[:-1]}, "
            f"got {target.shape}"
        )
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    return target


def cross_entropy(
    logits: Any, target: Any, ignore_index: int = -100, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Any:
    """Cross-entropy of (..., C) logits against integer targets of shape (...)."""
    target = _check_targets(logits, target, reduction, label_smoothing)
    return CrossEntropy.apply(
        logits, target, ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction
    )


def cross_entropy_composite(
    logits: Any, target: Any, ignore_index: int = -100, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Any:
    """:func:`cross_entropy` from primitive ops: log_softmax, then -log p[target] picked by
    indexing, mixed with the mean of -log p for label smoothing, masked where ignored."""
    target = _check_targets(logits, target, reduction, label_smoothing)
    xp = logits.backend.xp
    log_p = log_softmax(logits, -1).reshape(-1, logits.shape[-1])
    t = target.data.reshape(-1)
    valid = t != ignore_index
    picked = log_p[xp.arange(t.shape[0]), xp.where(valid, t, 0)]
    loss = -picked * (1.0 - label_smoothing) - log_p.mean(-1) * label_smoothing if label_smoothing else -picked
    loss = loss * type(logits)._make(valid.astype(logits.dtype), logits.device, False, None)
    if reduction == "none":
        return loss.reshape(target.shape)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / max(int(valid.sum()), 1) if valid.any() else loss.sum() * float("nan")


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Any:
    """Mean (or sum, or none) of (input - target)**2; the shapes must match exactly."""
    require_tensor(input, "mse_loss", "input")
    require_tensor(target, "mse_loss", "target")
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input has shape {input.shape} but target has shape {target.shape}")
    diff = input - target
    sq = diff * diff
    if reduction == "mean":
        return sq.mean()
    if reduction == "sum":
        return sq.sum()
    if reduction == "none":
        return sq
    raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

