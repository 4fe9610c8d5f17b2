"""Losses on probabilities: nll_loss, binary_cross_entropy (on probabilities and on
logits) and kl_div, each one node with PyTorch's semantics.

Targets that are values (class indices) carry no gradient; targets that are numbers
the loss is smooth in (bce's probabilities, kl_div's distribution) get their gradient,
as in PyTorch. Weights are constants: passing one that requires grad is an error.
"""

from __future__ import annotations

from typing import Any

from ..autograd import Function
from .checks import broadcast_shapes, is_tensor, refuse_grad, require_float, require_tensor
from .loss_reduction import check_pair, check_reduction, per_element, reduce_array


class NLLLoss(Function):
    """loss_i = -w[t_i] * x[i, t_i]   (x: log-probabilities, class axis 1, or 0 for 1-D x).

    Positions whose target is ``ignore_index`` add 0; "mean" divides by the sum of w[t_i]
    over the positions not ignored (as PyTorch). dL/dx = -g_i * w[t_i] at (i, t_i), 0 elsewhere.
    """

    name = "nll_loss"

    def forward(self, x, target, *weight, ignore_index=-100, reduction="mean"):
        xp = self.xp
        self.reduction = reduction
        axis = 1 if x.ndim > 1 else 0
        C = x.shape[axis]
        valid = target != ignore_index
        bad = valid & ((target < 0) | (target >= C))
        if bool(bad.any()):
            raise IndexError(f"nll_loss: target values must be in [0, {C}) or ignore_index={ignore_index}, "
                             f"got {int(target[bad].reshape(-1)[0])}")  # fmt: skip
        safe = xp.where(valid, target, 0)
        w = (weight[0][safe] if weight else xp.ones(target.shape, dtype=x.dtype)) * valid
        onehot = xp.expand_dims(safe, axis) == xp.arange(C).reshape((C,) + (1,) * (x.ndim - axis - 1))
        self.pick = onehot * xp.expand_dims(w, axis)  # w[t_i] at (i, t_i), 0 elsewhere
        self.count = float(w.sum())
        return reduce_array(-(x * self.pick).sum(axis=axis), reduction, self.count)

    def backward(self, g):
        axis = 1 if len(self.in_shapes[0]) > 1 else 0
        shape = self.in_shapes[1]
        gi = per_element(g, shape, self.reduction, self.count)
        return -gi.unsqueeze(axis) * self.const(self.pick), None, *([None] * (len(self.in_shapes) - 2))


def _clamped_log(xp, p):
    """max(log p, -100), with log 0 = -100 computed without a log of 0 (no warning)."""
    positive = p > 0
    return xp.where(positive, xp.maximum(xp.log(xp.where(positive, p, 1.0)), -100.0), -100.0)


class BinaryCrossEntropy(Function):
    """loss = -w * (t log x + (1 - t) log(1 - x)), each log clamped to >= -100 (as PyTorch).

    dL/dx = g * w * (x - t) / (x (1 - x));   dL/dt = g * w * (log(1 - x) - log x).
    """

    name = "binary_cross_entropy"

    def forward(self, x, t, *weight, reduction="mean"):
        xp = self.xp
        self.reduction = reduction
        log_x, log_1mx = _clamped_log(xp, x), _clamped_log(xp, 1.0 - x)
        loss = -(t * log_x + (1.0 - t) * log_1mx)
        return reduce_array(loss * weight[0] if weight else loss, reduction)

    def backward(self, g):
        x, t = self.inputs[:2]
        gi = per_element(g, self.in_shapes[0], self.reduction)
        if len(self.inputs) > 2:
            gi = gi * self.inputs[2]
        gx = gi * (x - t) / (x * (1.0 - x)).clip(min=1e-12) if self.needs_input_grad[0] else None
        gt = gi * ((1.0 - x).log().clip(min=-100.0) - x.log().clip(min=-100.0)) if self.needs_input_grad[1] else None
        return gx, gt, *([None] * (len(self.inputs) - 2))


class BinaryCrossEntropyWithLogits(Function):
    """loss = -w * (p t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))   (p: pos_weight)
           = w * ((1 - t) x + (1 + (p - 1) t) softplus(-x)),  computed stably.

    dL/dx = g * w * ((1 + (p - 1) t) sigmoid(x) - p t)   (p = 1: sigmoid(x) - t);
    dL/dt = g * w * ((p - 1) softplus(-x) - x).
    """

    name = "binary_cross_entropy_with_logits"

    def forward(self, x, t, *consts, reduction="mean", has_weight=False, has_pos_weight=False):
        xp = self.xp
        self.reduction, self.has_weight, self.has_pos_weight = reduction, has_weight, has_pos_weight
        # (1 - t) x + s softplus(-x), with softplus(-x) = log1p(exp(-|x|)) + max(-x, 0) and
        # x + max(-x, 0) = max(x, 0) (no cancellation for large |x|)
        tail = xp.log1p(xp.exp(-xp.abs(x)))
        loss = xp.maximum(x, 0.0) - t * x + tail
        if has_pos_weight:
            scale_m1 = (consts[-1] - 1.0) * t  # s - 1
            loss = loss + scale_m1 * (tail + xp.maximum(-x, 0.0))
        return reduce_array(loss * consts[0] if has_weight else loss, reduction)

    def backward(self, g):
        x, t = self.inputs[:2]
        gi = per_element(g, self.in_shapes[0], self.reduction)
        if self.has_weight:
            gi = gi * self.inputs[2]
        pw = self.inputs[-1] if self.has_pos_weight else None
        gx = gt = None
        if self.needs_input_grad[0]:
            if pw is None:
                gx = gi * (x.sigmoid() - t)
            else:
                gx = gi * ((1.0 + (pw - 1.0) * t) * x.sigmoid() - pw * t)
        if self.needs_input_grad[1]:
            if pw is None:
                gt = -gi * x
            else:
                softplus_neg = ((-x.abs()).exp() + 1.0).log() + (-x).relu()
                gt = gi * ((pw - 1.0) * softplus_neg - x)
        return gx, gt, *([None] * (len(self.inputs) - 2))


class KLDiv(Function):
    """loss = t (log t - x)   (x: log-probabilities; 0 where t = 0), or with log_target
    (t given as log-probabilities) exp(t) (t - x).

    dL/dx = -g * t   (log_target: -g * exp(t));
    dL/dt = g * (log t + 1 - x)   (log_target: g * exp(t) (t + 1 - x)); 0 where t = 0.
    """

    name = "kl_div"

    def forward(self, x, t, reduction="mean", log_target=False):
        xp = self.xp
        self.reduction, self.log_target = reduction, log_target
        if log_target:
            loss = xp.exp(t) * (t - x)
        else:
            self.positive = t > 0
            loss = xp.where(self.positive, t * xp.log(xp.where(self.positive, t, 1.0)), 0.0) - t * x
        if reduction == "batchmean":
            return reduce_array(loss, "mean", x.shape[0] if x.ndim else 1)
        return reduce_array(loss, reduction)

    def backward(self, g):
        x, t = self.inputs
        shape = self.in_shapes[0]
        if self.reduction == "batchmean":
            gi = per_element(g, shape, "mean", shape[0] if shape else 1)
        else:
            gi = per_element(g, shape, self.reduction)
        if self.log_target:
            p = t.exp()
            return -gi * p, gi * p * (t + 1.0 - x)
        positive = self.const(self.positive)
        log_t = t.masked_fill(~positive, 1.0).log()
        return -gi * t, (gi * (log_t + 1.0 - x)).masked_fill(~positive, 0.0)


# ---- the functions ----------------------------------------------------------------------------
def _constant(opname: str, value: Any, like: Any, what: str, shape: tuple[int, ...] | None = None) -> Any:
    """A weight: a tensor that does not require grad, on like's device, broadcastable to shape."""
    if value is None:
        return None
    if not is_tensor(value):
        value = type(like)(value, dtype=like.dtype, device=like.device)
    refuse_grad(value, opname, what)
    if value.device != like.device:
        raise RuntimeError(f"{opname}: {what} on device {value.device}, input on device {like.device}")
    if value.dtype != like.dtype:
        value = value.to(dtype=like.dtype)
    if shape is not None and broadcast_shapes(opname, value.shape, shape) != tuple(shape):
        raise ValueError(f"{opname}: {what} of shape {value.shape} does not broadcast to the input's {shape}")
    return value


def nll_loss(input: Any, target: Any, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> Any:
    """``torch.nn.functional.nll_loss``: -input[i, target[i]] (input: log-probabilities of
    shape (N, C), (N, C, d1, ...) or (C,)); ``weight`` (C,) rescales each class."""
    require_tensor(input, "nll_loss", "input")
    require_float(input, "nll_loss")
    check_reduction("nll_loss", reduction)
    if not is_tensor(target):
        target = type(input)(target, device=input.device)
    refuse_grad(target, "nll_loss", "target")
    if target.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold integer class indices, got dtype {target.dtype}")
    if input.ndim < 1:
        raise ValueError(f"nll_loss: input must have a class axis, got shape {input.shape}")
    expected = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
    if target.shape != expected:
        raise ValueError(
            f"nll_loss: input of shape {input.shape} needs a target of shape {expected}, got {target.shape}"
        )
    C = input.shape[1 if input.ndim > 1 else 0]
    weight = _constant("nll_loss", weight, input, "weight")
    if weight is not None and weight.shape != (C,):
        raise ValueError(f"nll_loss: weight must have shape ({C},), one per class, got {weight.shape}")
    extra = (weight,) if weight is not None else ()
    return NLLLoss.apply(input, target, *extra, ignore_index=ignore_index, reduction=reduction)



def binary_cross_entropy(input: Any, target: Any, weight: Any = None, reduction: str = "mean") -> Any:
    """``torch.nn.functional.binary_cross_entropy`` on probabilities in [0, 1]; the target
    (probabilities too) gets its gradient; ``weight`` broadcasts to the input."""
    check_pair("binary_cross_entropy", input, target, reduction)
    data = input.data
    if data.size and (bool((data < 0).any()) or bool((data > 1).any())):
        raise ValueError(
            "binary_cross_entropy: input must hold probabilities in [0, 1] (for logits use "
            "binary_cross_entropy_with_logits)"
        )
    weight = _constant("binary_cross_entropy", weight, input, "weight", input.shape)
    extra = (weight,) if weight is not None else ()
    return BinaryCrossEntropy.apply(input, target, *extra, reduction=reduction)


def binary_cross_entropy_with_logits(
    input: Any, target: Any, weight: Any = None, reduction: str = "mean", pos_weight: Any = None
) -> Any:
    """``torch.nn.functional.binary_cross_entropy_with_logits``: sigmoid and bce in one stable
    node; ``pos_weight`` (broadcast along the last axis, e.g. one per class) weighs positives."""
    opname = "binary_cross_entropy_with_logits"
    check_pair(opname, input, target, reduction)
    weight = _constant(opname, weight, input, "weight", input.shape)
    pos_weight = _constant(opname, pos_weight, input, "pos_weight", input.shape)
    extra = tuple(c for c in (weight, pos_weight) if c is not None)
    return BinaryCrossEntropyWithLogits.apply(
        input, target, *extra, reduction=reduction, has_weight=weight is not None, has_pos_weight=pos_weight is not None
    )


def kl_div(input: Any, target: Any, reduction: str = "mean", log_target: bool = False) -> Any:
    """``torch.nn.functional.kl_div``: input holds log-probabilities, target probabilities
    (or log-probabilities with ``log_target=True``); "batchmean" divides the sum by the
    batch size (the true KL divergence per sample), "mean" by the number of elements."""
    check_pair("kl_div", input, target, "mean")
    check_reduction("kl_div", reduction, ("mean", "batchmean", "sum", "none"))
    return KLDiv.apply(input, target, reduction=reduction, log_target=bool(log_target))
