"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_`` (as ``torch.nn.utils``)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..tensor import Tensor


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    """The ``.grad`` tensors of the parameters that have one."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    r"""Scale the gradients in place so that their joint norm is at most ``max_norm``.

    The total norm is that of all gradients concatenated into one vector::

        total = (sum_over_all_elements |g| ** norm_type) ** (1 / norm_type)   (max |g| for inf)
        coef  = max_norm / (total + 1e-6)
        g     = g * coef                  for every gradient, only when coef < 1

    As ``torch.nn.utils.clip_grad_norm_``: the 1e-6 keeps the division finite and clips
    to slightly below ``max_norm``; parameters whose ``grad`` is None are skipped.

    Args:
        parameters: a parameter or an iterable of parameters (e.g. ``model.parameters()``).
        max_norm: the largest allowed total norm.
        norm_type: the p of the p-norm (``2.0``, ``1.0``, ``float("inf")``...).
        error_if_nonfinite: raise RuntimeError when the total norm is nan or inf.

    Returns:
        The total norm of the gradients *before* clipping, as a Python float.
    """
    grads = _grads(parameters)
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    # partial results stay on their device (0-d arrays), one transfer per device at the end
    partial: dict[str, Any] = {}
    for g in grads:
        flat = g.data.reshape(-1)
        if norm_type == math.inf:
            part = abs(flat).max()
            prev = partial.get(g.device)
            partial[g.device] = part if prev is None else g.backend.xp.maximum(prev, part)
            continue
        if norm_type == 2.0:
            part = flat.dot(flat)
        elif norm_type == 1.0:
            part = abs(flat).sum()
        else:
            part = (abs(flat) ** norm_type).sum()
        prev = partial.get(g.device)
        partial[g.device] = part if prev is None else prev + part
    values = [float(v) for v in partial.values()]
    if norm_type == math.inf:
        total = max(values)
    else:
        total = math.fsum(values)
        total = math.sqrt(total) if norm_type == 2.0 else total ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}; "
            "pass error_if_nonfinite=False to clip anyway"
        )
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g.data *= coef
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``, in place."""
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        g.backend.xp.clip(g.data, -clip_value, clip_value, out=g.data)
