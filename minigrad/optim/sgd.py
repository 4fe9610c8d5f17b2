"""Stochastic gradient descent with momentum, dampening, weight decay and Nesterov."""

from __future__ import annotations

from typing import Any

from ..tensor import Tensor
from .optimizer import Optimizer, ParamsLike


class SGD(Optimizer):
    r"""Stochastic gradient descent, exactly as ``torch.optim.SGD``.

    For each parameter ``p`` with gradient ``g`` at step ``t`` (``mu`` = momentum,
    ``tau`` = dampening, ``lambda`` = weight_decay)::

        g   = g + lambda * p                      if weight_decay != 0  (L2 penalty)
        b_1 = g                                   first step: the buffer starts as g
        b_t = mu * b_{t-1} + (1 - tau) * g        later steps           if momentum != 0
        g   = g + mu * b_t                        if nesterov
            = b_t                                 otherwise (momentum != 0)
        p   = p - lr * g

    Args:
        params: parameters or param-group dicts (see :class:`Optimizer`).
        lr: learning rate (>= 0).
        momentum: momentum factor ``mu`` (>= 0).
        dampening: ``tau``, scales the new gradient into the buffer (not on the first step).
        weight_decay: L2 penalty ``lambda`` added to the gradient (>= 0).
        nesterov: Nesterov momentum (needs momentum > 0 and dampening == 0).

    State per parameter: ``"momentum_buffer"`` (only when momentum != 0).
    """

    def __init__(
        self,
        params: ParamsLike,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
        }
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        if not group["momentum"] >= 0.0:
            raise ValueError(f"SGD: invalid momentum {group['momentum']!r} (must be >= 0)")
        if not group["weight_decay"] >= 0.0:
            raise ValueError(f"SGD: invalid weight_decay {group['weight_decay']!r} (must be >= 0)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires momentum > 0 and dampening == 0")

    def _update(self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr = group["lr"]
        momentum = group["momentum"]
        dampening = group["dampening"]
        weight_decay = group["weight_decay"]

        d = grad  # the direction; never modified in place while it is still p.grad's array
        if weight_decay != 0:
            d = p.data * weight_decay  # a new array: g + lambda * p
            d += grad
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d.copy()
            else:
                buf *= momentum
                if dampening == 0:
                    buf += d
                else:
                    buf += (1.0 - dampening) * d
            if group["nesterov"]:
                step = buf * momentum  # a new array: g + mu * b
                step += d
                d = step
            else:
                d = buf
        if d is grad or d is state.get("momentum_buffer"):
            p.data -= lr * d
        else:  # d is a temporary of ours: scale it in place
            d *= lr
            p.data -= d
