"""Cross-entropy on logits, fused with log-softmax.

For logits x (..., C), a target class t, label smoothing eps and p = softmax(x):

    q = (1 - eps) * onehot(t) + eps / C          (the smoothed target distribution)
    loss = -sum_c q_c * log p_c
    dloss/dx = p - q

Positions whose target equals ``ignore_index`` contribute 0 loss and 0 gradient;
``reduction="mean"`` divides by the number of positions not ignored (as PyTorch).
"""

from __future__ import annotations

from .. import functional as F
from ..autograd import Function


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
                f"got {int(target[bad].reshape(-1)[0])}"
            )
        z = x - x.max(axis=-1, keepdims=True)
        logp = z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))
        onehot = xp.arange(C) == target[..., None]
        nll = -(logp * onehot).sum(axis=-1)
        if label_smoothing:
            loss = (1.0 - label_smoothing) * nll - label_smoothing * logp.mean(axis=-1)
        else:
            loss = nll
        loss = loss * valid
        self.target, self.valid = target, valid
        self.count = int(valid.sum())
        self.probs = xp.exp(logp, out=logp)
        if reduction == "none":
            return loss
        total = loss.sum()
        if reduction == "sum":
            return total
        return total / x.dtype.type(self.count) if self.count else total * x.dtype.type("nan")

    def _targets(self, like):
        """q = (1 - eps) * onehot + eps / C, as a constant of ``like``'s dtype."""
        xp = self.xp
        q = (xp.arange(self.C) == self.target[..., None]).astype(like.dtype)
        if self.eps:
            q = q * (1.0 - self.eps) + self.eps / self.C
        return self.const(q)

    def backward(self, g):
        x = self.inputs[0]
        probs = F.softmax(x, -1) if F.is_grad_enabled() else self.const(self.probs)
        delta = probs - self._targets(self.probs)
        weight = self.const(self.valid.astype(self.probs.dtype))
        if self.reduction == "mean":
            weight = weight * (g / max(self.count, 1))
        else:  # "sum" (g is a scalar) or "none" (g has the target's shape)
            weight = weight * g
        return delta * F.unsqueeze(weight, -1), None
