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
from .shape import reshaped


class CrossEntropy(Function):
    """Mean/sum/none of -sum_c q_c log softmax(x)_c; dL/dx = (softmax(x) - q) * g_position."""

    name = "cross_entropy"

    def forward(self, x, target, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
        xp = self.xp
        C = x.shape[-1]
        self.reduction, self.eps, self.C = reduction, label_smoothing, C
        t = target.reshape(-1)
        valid = t != ignore_index
        bad = valid & ((t < 0) | (t >= C))
        if bool(bad.any()):
            raise IndexError(
                f"cross_entropy: target values must be in [0, {C}) or ignore_index={ignore_index}, "
                f"got {int(t[bad][0])}"
            )
        safe = xp.where(valid, t, 0)
        rows = xp.arange(t.shape[0])
        x2 = x.reshape(-1, C)
        z = x2 - self.backend.row_max(x2)
        z_target = z[rows, safe]
        z_mean = z.mean(axis=-1) if label_smoothing else None
        e = xp.exp(z, out=z)  # z is not needed any more: exp(z) takes its memory
        total = self.backend.row_sum(e)
        lse = xp.log(total)[:, 0]
        loss = lse - z_target  # -log p_target
        if label_smoothing:
            loss = (1.0 - label_smoothing) * loss + label_smoothing * (lse - z_mean)
        loss *= valid
        # keep exp(z) and its row sums: probabilities = e / total, formed in backward's one pass
        self.e, self.total, self.safe, self.rows, self.valid = e, total, safe, rows, valid
        self.target = target
        self.count = int(valid.sum())
        if reduction == "none":
            return loss.reshape(target.shape)
        total_loss = loss.sum()
        if reduction == "sum":
            return total_loss
        return total_loss / x.dtype.type(self.count) if self.count else total_loss * x.dtype.type("nan")

    def _weights(self, g):
        """Per-position factor of (p - q): the upstream gradient, 0 where ignored."""
        if self.reduction == "mean":
            return self.valid * (g / max(self.count, 1))
        if self.reduction == "sum":
            return self.valid * g
        return self.valid * g.reshape(-1)

    def _targets(self, like):
        """q = (1 - eps) * onehot + eps / C, as a constant of ``like``'s dtype."""
        xp = self.xp
        q = (xp.arange(self.C) == self.target[..., None]).astype(like.dtype)
        if self.eps:
            q = q * (1.0 - self.eps) + self.eps / self.C
        return self.const(q)

    def backward(self, g):
        x = self.inputs[0]
        if F.is_grad_enabled():
            probs = F.softmax(x, -1)
        else:
            probs = self.const((self.e / self.total).reshape(x.shape))
        delta = probs - self._targets(probs)
        weight = self.const(self.valid.reshape(self.target.shape).astype(self.e.dtype))
        if self.reduction == "mean":
            weight = weight * (g / max(self.count, 1))
        else:  # "sum" (g is a scalar) or "none" (g has the target's shape)
            weight = weight * g
        return delta * F.unsqueeze(weight, -1), None

    def backward_array(self, g):
        w = self._weights(g).astype(self.e.dtype, copy=False)
        d = self.e * (w[:, None] / self.total)  # softmax(x) * w in one pass
        d[self.rows, self.safe] -= (1.0 - self.eps) * w
        if self.eps:
            d -= (self.eps / self.C) * w[:, None]
        return reshaped(d, self.inputs[0].shape), None
