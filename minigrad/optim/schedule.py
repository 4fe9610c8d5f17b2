"""Learning-rate schedules: objects that set ``group["lr"]`` of an optimizer at every step.

Convention (the same for every schedule here): optimizer steps are numbered
``k = 1, 2, 3, ...`` and the k-th ``optimizer.step()`` runs with the learning rate
``lr_at(k)``. The schedule sets ``lr_at(1)`` when it is constructed, so the very first
step already uses it; call ``schedule.step()`` *after* each ``optimizer.step()``::

    opt = Adam(model.parameters())
    schedule = NoamSchedule(opt, d_model=512, warmup_steps=4000)   # lr = lr_at(1)
    for batch in data:
        loss = ...; loss.backward()
        opt.step()                 # step k uses lr_at(k)
        opt.zero_grad()
        schedule.step()            # lr = lr_at(k + 1)

``last_step`` counts the ``schedule.step()`` calls so far (the optimizer steps done), so
the learning rate currently set is ``lr_at(last_step + 1)``. Every learning rate is a
closed-form function of the step number, so ``state_dict()`` is just ``last_step`` and
the hyperparameters.
"""

from __future__ import annotations

import math
from typing import Any

from .optimizer import Optimizer


class LRSchedule:
    """Base class. Subclasses define ``lr_at(step, base_lr)``: the lr of optimizer step ``step``.

    Args:
        optimizer: the optimizer whose param groups' ``"lr"`` this schedule sets.
        base_lrs: one base learning rate per param group (default: each group's ``lr``
            at construction); schedules that scale a base rate use it.
    """

    def __init__(self, optimizer: Optimizer, base_lrs: list[float] | None = None) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if base_lrs is None:
            base_lrs = [group["lr"] for group in optimizer.param_groups]
        if len(base_lrs) != len(optimizer.param_groups):
            raise ValueError(f"{type(self).__name__}: expected one base lr per param group")
        for lr in base_lrs:
            if not lr >= 0.0:
                raise ValueError(f"{type(self).__name__}: invalid base learning rate {lr!r} (must be >= 0)")
        self.base_lrs: list[float] = [float(lr) for lr in base_lrs]
        self.last_step = 0
        self._last_lr: list[float] = []
        self._apply()

    def lr_at(self, step: int, base_lr: float | None = None) -> float:
        """The learning rate of optimizer step ``step`` (1-based) for a group with ``base_lr``."""
        raise NotImplementedError(f"{type(self).__name__} must define lr_at")  # pragma: no cover

    @property
    def current_step(self) -> int:
        """The number k of the next optimizer step, whose lr is set now (``last_step + 1``)."""
        return self.last_step + 1

    @property
    def lr(self) -> float:
        """The learning rate now set on the first param group."""
        return self._last_lr[0]

    def get_last_lr(self) -> list[float]:
        """The learning rates now set, one per param group (as PyTorch's schedulers)."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance by one optimizer step and set the next learning rate on every group."""
        self.last_step += 1
        self._apply()

    def _apply(self) -> None:
        k = self.current_step
        lrs = [self.lr_at(k, base) for base in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = lrs

    # ---- saving and restoring ---------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"last_step": int, "base_lrs": [...], <hyperparameters>...}`` (plain Python values)."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in vars(self).items() if k not in _NOT_SAVED}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``last_step`` and the hyperparameters, and set the matching lr on the optimizer."""
        unknown = [k for k in state_dict if k in _NOT_SAVED or k not in vars(self)]
        if unknown:
            raise ValueError(f"{type(self).__name__}.load_state_dict: unexpected keys {unknown}")
        if len(state_dict.get("base_lrs", self.base_lrs)) != len(self.optimizer.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: base_lrs do not match the param groups")
        for k, v in state_dict.items():
            setattr(self, k, list(v) if isinstance(v, (list, tuple)) else v)
        self.last_step = int(self.last_step)
        self._apply()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_step={self.last_step}, lr={self._last_lr})"


_NOT_SAVED = {"optimizer", "_last_lr"}


class ConstantSchedule(LRSchedule):
    """A constant learning rate: ``lr_at(k) = lr`` (default: each group's own lr)."""

    def __init__(self, optimizer: Optimizer, lr: float | None = None) -> None:
        base = None if lr is None else [lr] * len(optimizer.param_groups)
        super().__init__(optimizer, base)

    def lr_at(self, step: int, base_lr: float | None = None) -> float:
        return self.base_lrs[0] if base_lr is None else base_lr


class NoamSchedule(LRSchedule):
    r"""The schedule of "Attention Is All You Need" (Vaswani et al., 2017, eq. 3)::

        lr_at(k) = factor * d_model**-0.5 * min(k**-0.5, k * warmup_steps**-1.5)

    with ``k = 0`` treated as ``k = 1``. It rises linearly for ``warmup_steps`` steps,
    peaks at ``k == warmup_steps`` (``factor * (d_model * warmup_steps)**-0.5``), then
    decays as ``1/sqrt(k)``. Every param group gets this same lr (the groups' own lrs
    are ignored).
    """

    def __init__(self, optimizer: Optimizer, d_model: int, warmup_steps: int, factor: float = 1.0) -> None:
        if not d_model > 0:
            raise ValueError(f"NoamSchedule: d_model must be > 0, got {d_model!r}")
        if not warmup_steps > 0:
            raise ValueError(f"NoamSchedule: warmup_steps must be > 0, got {warmup_steps!r}")
        if not factor > 0:
            raise ValueError(f"NoamSchedule: factor must be > 0, got {factor!r}")
        self.d_model = d_model
        self.warmup_steps = warmup_steps
        self.factor = float(factor)
        super().__init__(optimizer)

    def lr_at(self, step: int, base_lr: float | None = None) -> float:
        k = max(int(step), 1)
        return self.factor * self.d_model**-0.5 * min(k**-0.5, k * self.warmup_steps**-1.5)


class WarmupCosineSchedule(LRSchedule):
    r"""Linear warmup from 0 to ``base_lr``, then a half cosine down to ``min_lr``.

    With ``w = warmup_steps`` and ``T = total_steps``, optimizer step ``k`` uses::

        lr_at(k) = base_lr * k / w                                        0 <= k <= w
        lr_at(k) = min_lr + (base_lr - min_lr) * (1 + cos(pi * (k - w) / (T - w))) / 2
                                                                          w <  k <= T
        lr_at(k) = min_lr                                                 k >= T

    So the first step runs with ``base_lr / w`` (the ramp starts at 0 for the step
    before training, k = 0, which is never used), step ``w`` runs at the peak
    ``base_lr``, and step ``T`` (and every later one) at ``min_lr``. With ``w = 0`` the
    cosine starts at ``base_lr`` for k = 0.

    Args:
        optimizer: the optimizer.
        warmup_steps: ``w`` (>= 0).
        total_steps: ``T`` (>= max(w, 1)).
        base_lr: the peak lr of every group (default: each group's lr at construction).
        min_lr: the final lr (>= 0).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int,
        total_steps: int,
        base_lr: float | None = None,
        min_lr: float = 0.0,
    ) -> None:
        if not warmup_steps >= 0:
            raise ValueError(f"WarmupCosineSchedule: warmup_steps must be >= 0, got {warmup_steps!r}")
        if not total_steps >= max(warmup_steps, 1):
            raise ValueError(
                f"WarmupCosineSchedule: total_steps must be >= max(warmup_steps, 1), "
                f"got total_steps={total_steps!r}, warmup_steps={warmup_steps!r}"
            )
        if not min_lr >= 0.0:
            raise ValueError(f"WarmupCosineSchedule: min_lr must be >= 0, got {min_lr!r}")
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.min_lr = float(min_lr)
        base = None if base_lr is None else [base_lr] * len(optimizer.param_groups)
        super().__init__(optimizer, base)

    def lr_at(self, step: int, base_lr: float | None = None) -> float:
        base = self.base_lrs[0] if base_lr is None else base_lr
        k, w, total = max(int(step), 0), self.warmup_steps, self.total_steps
        if w > 0 and k <= w:
            return base * k / w
        if k >= total:
            return self.min_lr
        progress = (k - w) / (total - w)
        return self.min_lr + (base - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
