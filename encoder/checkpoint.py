"""Checkpoints in the safetensors format: arrays only, so loading can never execute code.

One file ``NAME.safetensors`` holds

* the model's parameters under ``model.<dotted path>`` (PyTorch users can open them
  with ``safetensors.torch.load_file``),
* the optimizer's per-parameter buffers under ``optim.<index>.<name>``,
* in the header's metadata, one JSON document (key ``"encoder"``): the step, the model,
  task and training configs, the optimizer's hyperparameters and step counts, the
  schedule's state, the random generator's state and the latest metrics.

Nothing is ever unpickled. Files are written atomically: to a temporary file in the same
folder, flushed to disk, then renamed over the target, so a crash leaves either the old
checkpoint or the new one, never half of one. A save killed outright (SIGKILL, power loss)
can leave its temporary file behind; the next save to the same path removes it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import minigrad
from minigrad import Tensor, nn
from minigrad.files import atomic_path

FORMAT = "minigrad-encoder-checkpoint"
VERSION = 1
_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's zip container (pickle inside)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model."""


@dataclass
class Checkpoint:
    """What a checkpoint file holds, loaded into memory (arrays are NumPy arrays)."""

    model_state: dict[str, Any]
    optimizer_arrays: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))

    def optimizer_state(self) -> dict[str, Any] | None:
        """The optimizer state dict (``Optimizer.load_state_dict`` format), or None."""
        opt = self.meta.get("optimizer")
        if opt is None:
            return None
        state: dict[int, dict[str, Any]] = {}
        for i, scalars in opt["state"].items():
            state[int(i)] = dict(scalars)
        for key, array in self.optimizer_arrays.items():
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = array
        return {"param_groups": opt["param_groups"], "state": state}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"checkpoint: cannot store {type(value).__name__} in the metadata")


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed saves of ``path`` left behind; returns them.

    They are named as :func:`minigrad.files.atomic_path` names them:
    ``.<name>.<random>.tmp<suffix>`` in the same folder.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = sorted(path.parent.glob(f".{path.name}.*.tmp{path.suffix}"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: minigrad.optim.Optimizer | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write model (and optimizer) state plus JSON metadata atomically; returns the path."""
    from safetensors.numpy import save_file

    path = Path(path)
    tensors: dict[str, Any] = {}
    for name, t in model.state_dict().items():
        tensors[f"model.{name}"] = t.numpy()
    info = dict(meta or {})
    info["format"], info["version"] = FORMAT, VERSION
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for i, pstate in sd["state"].items():
            scalars[str(i)] = {}
            for k, v in pstate.items():
                if isinstance(v, Tensor):
                    tensors[f"optim.{i}.{k}"] = v.numpy()
                else:
                    scalars[str(i)][k] = v
        info["optimizer"] = {"type": type(optimizer).__name__, "param_groups": sd["param_groups"], "state": scalars}
    metadata = {"encoder": json.dumps(_jsonable(info), sort_keys=True)}
    remove_stale_temporaries(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint; anything that is not one of ours fails with a clear CheckpointError."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.safetensors"
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:2] in _PICKLE_MAGIC or head[:4] == _ZIP_MAGIC:
        raise CheckpointError(
            f"{path} is a pickle file (e.g. from torch.save); refusing to load it, because unpickling "
            "can execute arbitrary code. Checkpoints here are safetensors files."
        )
    try:
        arrays = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a valid safetensors checkpoint (truncated or corrupt?): {exc}") from None
    if "encoder" not in metadata:
        raise CheckpointError(f"{path} is a safetensors file but not an encoder checkpoint (no 'encoder' metadata)")
    try:
        meta = json.loads(metadata["encoder"])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: the checkpoint's metadata is corrupt: {exc}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    model_state = {k[len("model.") :]: v for k, v in arrays.items() if k.startswith("model.")}
    opt_arrays = {k: v for k, v in arrays.items() if k.startswith("optim.")}
    return Checkpoint(model_state, opt_arrays, meta)


def restore_model(model: nn.Module, checkpoint: Checkpoint) -> None:
    """Load the checkpoint's weights into ``model`` (strict; mismatches are named; a weight
    holding NaN or an infinity is refused, naming it: such a model predicts garbage silently)."""
    for name, array in checkpoint.model_state.items():
        finite = array * 0 == 0  # False exactly where the value is NaN or infinite
        if array.dtype.kind == "f" and not finite.all():
            bad = int(finite.size - finite.sum())
            raise CheckpointError(
                f"the checkpoint's weight {name!r} holds {bad} NaN or infinite value(s) of {array.size}: "
                "the run that saved it diverged (train with --detect-anomaly to find where)"
            )
    try:
        model.load_state_dict(checkpoint.model_state)
    except RuntimeError as exc:
        raise CheckpointError(f"the checkpoint does not fit this model: {exc}") from None
