"""Losses: cross-entropy on logits (one node, fused with log-softmax) and mean squared error.

For logits x (..., C) and p = softmax(x), cross-entropy is loss = -sum_c q_c * log p_c for
a target distribution q per position, as PyTorch builds it:

* class indices t (integers, shape (...)), label smoothing eps, class weights w:
      q = (1 - eps) * w_t * onehot(t) + eps / C * w        (w = 1 without weights)
  positions whose target equals ``ignore_index`` get q = 0 (0 loss and 0 gradient), and
  ``reduction="mean"`` divides by the sum of w_t over the positions not ignored;
* class probabilities P (floats, the logits' shape): q = ((1 - eps) * P + eps / C) * w,
  and ``"mean"`` divides by the number of positions (``ignore_index`` does not apply).

Since sum_c p_c = 1, dloss/dx = p * sum_c(q_c) - q  (= p - q when q sums to 1), and for
probability targets dloss/dP = -(1 - eps) * w * log p: P may require grad, like PyTorch's.
:func:`cross_entropy_composite` builds the same loss from log_softmax and indexing.
"""

from __future__ import annotations

import numbers
from typing import Any

from ..autograd import Function, is_grad_enabled
from .checks import is_tensor, refuse_grad, require_tensor
from .softmax import log_softmax, softmax


class CrossEntropy(Function):
    """Mean/sum/none of -sum_c q_c log softmax(x)_c (see the module docstring for q).

    dL/dx = (softmax(x) * sum_c q_c - q) * g_position / D,   dL/dP = -(1 - eps) w log softmax(x) * g_position / D
    (D: the mean's divisor, 1 for "sum" and "none").
    """

    name = "cross_entropy"

    def forward(self, x, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
        xp = self.xp
        C = x.shape[-1]
        self.reduction, self.eps, self.C, self.weight = reduction, label_smoothing, C, weight
        z = x - x.max(axis=-1, keepdims=True)
        log_p = z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))
        self.probs = xp.exp(log_p)
        self.soft = target.dtype.kind == "f"
        if self.soft:  # class probabilities
            self.q = self._soft_q(target, weight)
            self.valid = None
            loss = -(self.q * log_p).sum(axis=-1)
            self.qsum = self.q.sum(axis=-1)
            denom = loss.size
        else:
            valid = target != ignore_index
            bad = valid & ((target < 0) | (target >= C))
            if bool(bad.any()):
                raise IndexError(
                    f"cross_entropy: target values must be in [0, {C}) or ignore_index={ignore_index}, "
                    f"got {int(target[bad][0])}"
                )
            t = xp.where(valid, target, 0)
            self.q = self._smoothed(t, x.dtype)
            loss = -(self.q * log_p).sum(axis=-1) * valid
            self.valid = valid.astype(x.dtype)
            if weight is None:
                self.qsum = None  # q sums to 1 on every position
                denom = int(valid.sum())
            else:
                self.qsum = self.q.sum(axis=-1)
                denom = float((weight[t] * self.valid).sum())
        self.denom = denom
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        return loss.sum() / x.dtype.type(denom) if denom else loss.sum() * x.dtype.type("nan")

    def _soft_q(self, target, weight):
        """q = ((1 - eps) * P + eps / C) * w   (arrays in forward, Tensors in backward)."""
        q = target * (1.0 - self.eps) + self.eps / self.C if self.eps else target
        return q * weight if weight is not None else q

    def _smoothed(self, target, dtype):
        """q = (1 - eps) * w_t * onehot(target) + eps / C * w."""
        q = (self.xp.arange(self.C) == target[..., None]).astype(dtype)
        q = q * (1.0 - self.eps) + self.eps / self.C if self.eps else q
        return q * self.weight if self.weight is not None else q

    def backward(self, g):
        x, target = self.inputs
        recording = is_grad_enabled()
        probs = softmax(x, -1) if recording else self.const(self.probs)
        rows = g / self.denom if self.reduction == "mean" and self.denom else g
        if self.valid is not None:
            rows = rows * self.const(self.valid)  # 0 where the target is ignored
        rows = rows.unsqueeze(-1)
        if self.soft and recording and target.requires_grad:  # q depends on P: keep that in the graph
            q = self._soft_q(target, None if self.weight is None else self.const(self.weight))
            qsum = q.sum(-1, keepdims=True)
        else:
            q = self.const(self.q)
            qsum = None if self.qsum is None else self.const(self.qsum[..., None])
        gx = ((probs if qsum is None else probs * qsum) - q) * rows if self.needs_input_grad[0] else None
        gt = None
        if self.needs_input_grad[1]:
            gt = log_softmax(x, -1) * rows * -(1.0 - self.eps)
            if self.weight is not None:
                gt = gt * self.const(self.weight)
        return gx, gt


def _check_targets(
    logits: Any, target: Any, ignore_index: Any, reduction: str, label_smoothing: float, weight: Any
) -> Any:
    require_tensor(logits, "cross_entropy", "logits")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not is_tensor(target):
        target = type(logits)(target, device=logits.device)
    if target.device != logits.device:
        raise RuntimeError(f"cross_entropy: target on device {target.device}, logits on device {logits.device}")
    if logits.ndim < 1:
        raise ValueError(f"cross_entropy: logits must have a class axis (..., C), got shape {logits.shape}")
    if target.dtype.kind == "f":
        if target.shape != logits.shape:
            raise ValueError(
                f"cross_entropy: float targets are class probabilities of the logits' shape {logits.shape}, "
                f"got {target.shape} (integer class indices would have shape {logits.shape[:-1]})"
            )
        if target.dtype != logits.dtype:
            raise TypeError(f"cross_entropy: probability targets must be {logits.dtype}, got {target.dtype}")
    elif target.dtype.kind not in "iu":
        raise TypeError(
            "cross_entropy: target must hold integer class indices or float class probabilities, "
            f"got dtype {target.dtype}"
        )
    elif target.shape != logits.shape[:-1]:
        raise ValueError(
            f"cross_entropy: logits of shape {logits.shape} need targets of shape {logits.shape[:-1]} "
            f"(class indices) or {logits.shape} (class probabilities), got {target.shape}"
        )
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(
            f"cross_entropy: ignore_index must be an integer, got {type(ignore_index).__name__} "
            "(class weights go in weight=)"
        )
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if weight is not None:
        require_tensor(weight, "cross_entropy", "weight")
        refuse_grad(weight, "cross_entropy", "weight")
        if weight.shape != logits.shape[-1:] or weight.dtype != logits.dtype or weight.device != logits.device:
            raise ValueError(
                f"cross_entropy: weight must be a {logits.dtype} tensor of shape {logits.shape[-1:]} on "
                f"{logits.device} (one per class), got {weight.dtype} {weight.shape} on {weight.device}"
            )
    return target


def cross_entropy(
    logits: Any,
    target: Any,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    weight: Any = None,
) -> Any:
    """Cross-entropy of (..., C) logits against integer class targets of shape (...) or
    class probabilities of shape (..., C), as ``torch.nn.functional.cross_entropy`` (with
    ``weight``, one per class, ``ignore_index`` and ``label_smoothing``)."""
    target = _check_targets(logits, target, ignore_index, reduction, label_smoothing, weight)
    return CrossEntropy.apply(
        logits,
        target,
        weight=None if weight is None else weight.data,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )


def cross_entropy_composite(
    logits: Any,
    target: Any,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    weight: Any = None,
) -> Any:
    """:func:`cross_entropy` from primitive ops: log_softmax, then -log p[target] picked by
    indexing (or -sum P log p for probabilities), mixed with the (weighted) sum of -log p
    for label smoothing, masked where ignored."""
    target = _check_targets(logits, target, ignore_index, reduction, label_smoothing, weight)
    C = logits.shape[-1]
    log_p = log_softmax(logits, -1)
    if target.dtype.kind == "f":
        q = target * (1.0 - label_smoothing) + label_smoothing / C if label_smoothing else target
        if weight is not None:
            q = q * weight
        loss = -(log_p * q).sum(-1)
        if reduction == "mean":
            return loss.sum() / loss.data.size if loss.data.size else loss.sum() * float("nan")
        return loss.sum() if reduction == "sum" else loss
    xp = logits.backend.xp
    log_p = log_p.reshape(-1, C)
    t = target.data.reshape(-1)
    valid = t != ignore_index
    safe = xp.where(valid, t, 0)
    picked = log_p[xp.arange(t.shape[0]), safe]
    w_t = None if weight is None else weight[safe]
    nll = -picked if w_t is None else -picked * w_t
    if label_smoothing:
        smooth = -(log_p if weight is None else log_p * weight).sum(-1)
        loss = nll * (1.0 - label_smoothing) + smooth * (label_smoothing / C)
    else:
        loss = nll
    mask = type(logits)._make(valid.astype(logits.dtype), logits.device, False, None)
    loss = loss * mask
    if reduction == "none":
        return loss.reshape(target.shape)
    if reduction == "sum":
        return loss.sum()
    denom = float(valid.sum()) if w_t is None else float((w_t * mask).sum().item())
    return loss.sum() / denom if denom else loss.sum() * float("nan")


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

