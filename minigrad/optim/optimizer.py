"""``Optimizer``: the base class of every optimizer (PyTorch's ``torch.optim.Optimizer``).

An optimizer holds the parameters it updates in *param groups*: a list of dicts, each
with the key ``"params"`` (a list of tensors, in the order given) and the group's
hyperparameters (``"lr"``, ``"momentum"``...). Schedules change ``group["lr"]`` between
steps. Per-parameter state (momentum buffers, Adam's moments) lives in ``self.state``,
a dict keyed by the parameter tensor itself.

Updates run outside the autograd graph: they read ``p.grad.data`` and write ``p.data``
in place with the array API of the parameter's own backend (NumPy on the CPU, CuPy on
the GPU), never importing either library here.

State dict (what ``state_dict()`` returns and ``load_state_dict()`` accepts)::

    {
        "param_groups": [                      # one dict per group, in order
            {"lr": 0.001, "betas": (0.9, 0.999), ...,   # every hyperparameter
             "params": [0, 1, 2]},             # the parameters' indices (see below)
            ...
        ],
        "state": {                             # only parameters that have state
            0: {"step": 3,                     # a Python int
                "exp_avg": Tensor, "exp_avg_sq": Tensor},   # Adam / AdamW
            1: {"momentum_buffer": Tensor},    # SGD with momentum
            ...
        },
    }

Parameters are numbered 0, 1, 2... across all groups in order, so the state can be
loaded into a fresh optimizer built over parameters of the same shapes, in the same
order. The buffers are minigrad Tensors that *share memory* with the live state (as
``Module.state_dict`` and PyTorch do): write them out (e.g. with safetensors, after
``.numpy()``) before stepping again. ``load_state_dict`` always copies what it is given
(Tensors, NumPy arrays or backend arrays; integer keys may also be strings such as
``"0"``, as JSON or flat checkpoint formats produce), onto the parameter's device and
dtype, so training continues bit-identically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..autograd import enable_grad
from ..tensor import Tensor

ParamsLike = Iterable[Tensor] | Iterable[dict[str, Any]]


class Optimizer:
    """Base class: holds param groups and per-parameter state; subclasses define ``_update``.

    Args:
        params: an iterable of parameters (e.g. ``model.parameters()``), or a list of
            param-group dicts such as ``[{"params": [...]}, {"params": [...], "lr": 0.01}]``;
            a group's missing hyperparameters are taken from ``defaults``.
        defaults: the default hyperparameters of every group (``{"lr": ..., ...}``).

    Subclasses implement ``_update(p, grad, state, group)``, which changes ``p.data`` in
    place given the gradient array ``grad``, the parameter's state dict and its group (or
    override ``_update_all(work)`` to update the parameters together, as Adam does), and
    may override ``_check_group(group)`` to validate hyperparameters.
    """

    def __init__(self, params: ParamsLike, defaults: dict[str, Any]) -> None:
        self.defaults: dict[str, Any] = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        if isinstance(params, (Tensor, dict)):
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Tensors or of param-group dicts, "
                f"got a single {type(params).__name__}; wrap it in a list"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(f"{type(self).__name__}: params must be an ordered iterable (a list), not a set")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        if not any(g["params"] for g in self.param_groups):
            raise ValueError(f"{type(self).__name__} got an empty parameter list (every param group is empty)")

    # ---- groups ---------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (a dict with ``"params"``) with its own hyperparameters."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a param group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{name}: a param group needs the key 'params'")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: a group's params must be an ordered iterable (a list), not a set")
        params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name} can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name} can't optimize a non-leaf Tensor (one computed by an op)")
            if p.dtype.kind != "f":
                raise TypeError(f"{name} can only optimize floating tensors, got dtype {p.dtype}")
        seen = {id(q) for g in self.param_groups for q in g["params"]}
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids) or seen.intersection(ids):
            raise ValueError(f"{name}: some parameters appear more than once (in this group or another)")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError for invalid hyperparameters (subclasses extend this)."""
        lr = group.get("lr")
        if lr is not None and not lr >= 0.0:
            raise ValueError(f"{type(self).__name__}: invalid learning rate {lr!r} (must be >= 0)")

    def _params(self) -> list[Tensor]:
        """Every parameter, in order (the numbering the state dict uses)."""
        return [p for group in self.param_groups for p in group["params"]]

    # ---- the update -----------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set ``p.grad = None`` (default) or fill them with zeros."""
        for p in self._params():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                if p.grad._ctx is not None or p.grad.requires_grad:
                    p.grad = p.grad.detach()
                p.grad.data[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; parameters with ``grad is None`` are skipped.

        ``closure`` (optional) re-evaluates the model and returns the loss, which is returned.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        work = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                if grad.shape != p.data.shape:
                    raise ValueError(
                        f"{type(self).__name__}.step: gradient shape {tuple(grad.shape)} "
                        f"!= parameter shape {tuple(p.data.shape)}"
                    )
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                work.append((p, grad, state, group))
        self._update_all(work)
        return loss

    def _update_all(self, work: list[tuple[Tensor, Any, dict[str, Any], dict[str, Any]]]) -> None:
        """``_update`` each parameter, one after the other."""
        for item in work:
            self._update(*item)

    def _update(self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _update")  # pragma: no cover

    # ---- saving and restoring -----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's hyperparameters and per-parameter state (see the module docstring)."""
        groups = []
        index = 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = list(range(index, index + len(group["params"])))
            index += len(group["params"])
            groups.append(packed)
        state: dict[int, dict[str, Any]] = {}
        for i, p in enumerate(self._params()):
            pstate = self.state.get(p)
            if not pstate:
                continue
            state[i] = {
                k: (v if isinstance(v, (int, float)) else Tensor._make(v, p.device, False, None))
                for k, v in pstate.items()
            }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and state saved by ``state_dict()`` (copies every buffer).

        The optimizer must have as many groups, with as many parameters of the same shapes,
        as the one that was saved. Nothing changes when a check fails.
        """
        name = type(self).__name__
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: saved state has {len(saved_groups)} param groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: param group {i} has {len(saved['params'])} parameters "
                    f"in the saved state, {len(group['params'])} here"
                )
        params = self._params()
        new_state: dict[Tensor, dict[str, Any]] = {}
        problems = []
        for key, saved in state_dict.get("state", {}).items():
            i = int(key)
            if not 0 <= i < len(params):
                problems.append(f"state for parameter {key!r}, but there are only {len(params)} parameters")
                continue
            p = params[i]
            pstate: dict[str, Any] = {}
            for k, v in saved.items():
                if k == "step":
                    pstate[k] = int(v)
                elif isinstance(v, (int, float)):
                    pstate[k] = v
                elif tuple(v.shape) != tuple(p.shape):
                    problems.append(f"parameter {i} {k}: saved shape {tuple(v.shape)} != parameter shape {p.shape}")
                else:
                    # Tensor(...) copies onto the parameter's device, in its dtype
                    pstate[k] = Tensor(v, dtype=p.dtype, device=p.device).data
            new_state[p] = pstate
        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            new = {k: (tuple(v) if isinstance(v, list) else v) for k, v in saved.items() if k != "params"}
            new["params"] = group["params"]
            for k, v in self.defaults.items():
                new.setdefault(k, v)
            try:
                self._check_group(new)
            except ValueError as exc:
                problems.append(str(exc))
            new_groups.append(new)
        if problems:
            raise ValueError(f"{name}.load_state_dict failed:\n  " + "\n  ".join(problems))
        for group, new in zip(self.param_groups, new_groups):
            group.clear()
            group.update(new)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)
