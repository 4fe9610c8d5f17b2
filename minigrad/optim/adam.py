"""Adam and AdamW (Kingma & Ba, 2015; Loshchilov & Hutter, 2019), as in PyTorch."""

from __future__ import annotations

import math
from typing import Any

from ..registry import lookup
from ..tensor import Tensor
from .optimizer import Optimizer, ParamsLike

# one parameter's update: (param, grad, exp_avg, exp_avg_sq, step_size, bias_correction2_sqrt)
AdamUpdate = tuple[Any, Any, Any, Any, float, float]


def adam_update(updates: list[AdamUpdate], beta1: float, beta2: float, eps: float) -> None:
    """Adam's update of each ``(p, g, m, v, step_size, bias_correction2_sqrt)``, in place::

        m = b1 m + (1 - b1) g
        v = b2 v + (1 - b2) g^2
        p = p - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)

    (``step_size = lr / (1 - b1**t)``, ``bias_correction2_sqrt = sqrt(1 - b2**t)``).
    This is the reference; ``minigrad.accel`` may register a faster one for a device.
    """
    for p, g, m, v, step_size, bc2_sqrt in updates:
        m *= beta1
        m += g * (1.0 - beta1)
        v *= beta2
        v += (g * g) * (1.0 - beta2)
        denom = v**0.5 / bc2_sqrt + eps
        p -= step_size * (m / denom)


class Adam(Optimizer):
    r"""Adam, exactly as ``torch.optim.Adam`` (no amsgrad).

    For each parameter ``p`` with gradient ``g``, at its step ``t = 1, 2, ...``
    (``b1, b2`` = betas, ``lambda`` = weight_decay)::

        g    = g + lambda * p                           if weight_decay != 0  (L2, coupled)
        m_t  = b1 * m_{t-1} + (1 - b1) * g              first moment,  m_0 = 0
        v_t  = b2 * v_{t-1} + (1 - b2) * g * g          second moment, v_0 = 0
        denom = sqrt(v_t) / sqrt(1 - b2**t) + eps       eps is added after the bias correction
        p    = p - lr / (1 - b1**t) * m_t / denom

    (that is ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with the bias-corrected moments
    ``m_hat = m_t / (1 - b1**t)`` and ``v_hat = v_t / (1 - b2**t)``).

    Args:
        params: parameters or param-group dicts (see :class:`Optimizer`).
        lr: learning rate (>= 0).
        betas: ``(b1, b2)``, the decay rates of the moment averages, each in [0, 1).
        eps: added to the denominator for numerical stability (>= 0).
        weight_decay: L2 penalty ``lambda`` added to the gradient (>= 0); see
            :class:`AdamW` for the decoupled form.

    State per parameter: ``"step"`` (int), ``"exp_avg"`` (m), ``"exp_avg_sq"`` (v).
    """

    decoupled_weight_decay = False

    def __init__(
        self,
        params: ParamsLike,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        name = type(self).__name__
        betas = tuple(group["betas"])
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (b1, b2), got {group['betas']!r}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name}: invalid beta parameter at index {i}: {b!r} (must be in [0, 1))")
        if not group["eps"] >= 0.0:
            raise ValueError(f"{name}: invalid eps {group['eps']!r} (must be >= 0)")
        if not group["weight_decay"] >= 0.0:
            raise ValueError(f"{name}: invalid weight_decay {group['weight_decay']!r} (must be >= 0)")

    def _update_all(self, work: list[tuple[Tensor, Any, dict[str, Any], dict[str, Any]]]) -> None:
        """Prepare every parameter's update (state, step count, weight decay), then update
        each group's parameters of one device with one call of :func:`adam_update`."""
        batches: dict[tuple[int, str], tuple[dict[str, Any], list[Any]]] = {}
        for p, grad, state, group in work:
            batch = batches.setdefault((id(group), p.device), (group, []))
            batch[1].append(self._prepare(p, grad, state, group))
        for (_, device), (group, updates) in batches.items():
            b1, b2 = group["betas"]
            lookup(adam_update, device)(updates, b1, b2, group["eps"])

    def _prepare(self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> tuple:
        """Advance ``p``'s step count and return the arguments of its update:
        ``(p.data, g, m, v, step_size, bias_correction2_sqrt)``."""
        xp = p.backend.xp
        lr = group["lr"]
        b1, b2 = group["betas"]
        weight_decay = group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]

        if weight_decay != 0:
            if self.decoupled_weight_decay:
                p.data *= 1.0 - lr * weight_decay  # AdamW: shrink p before the Adam step
            else:
                g = p.data * weight_decay  # Adam: L2, g + lambda * p (a new array)
                g += grad
                grad = g

        bias_correction1 = 1.0 - b1**t
        bias_correction2 = 1.0 - b2**t
        step_size = lr / bias_correction1
        return p.data, grad, state["exp_avg"], state["exp_avg_sq"], step_size, math.sqrt(bias_correction2)


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay, exactly as ``torch.optim.AdamW``.

    The weight decay shrinks the parameter directly instead of entering the gradient
    (so it is not rescaled by the adaptive denominator). At step ``t``::

        p    = p * (1 - lr * lambda)                    decoupled weight decay, first
        m_t  = b1 * m_{t-1} + (1 - b1) * g
        v_t  = b2 * v_{t-1} + (1 - b2) * g * g
        denom = sqrt(v_t) / sqrt(1 - b2**t) + eps
        p    = p - lr / (1 - b1**t) * m_t / denom

    Args: as :class:`Adam`, but ``weight_decay`` (default 1e-2) is decoupled.

    State per parameter: ``"step"`` (int), ``"exp_avg"`` (m), ``"exp_avg_sq"`` (v).
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params: ParamsLike,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
