"""What several commands share: loading a run, the device flag, the examples shown, extras."""

from __future__ import annotations

from typing import Any

import minigrad

from ..checkpoint import CheckpointError
from ..training import Trainer
from .errors import CLIError

PREDICT_SEED = 1  # predict's examples; `attention --example N` draws predict's N-th


def parse_device(name: str) -> str:
    """Check a device flag early: `--device cuda` without a GPU is a one-line error."""
    try:
        minigrad.backend.get_backend(name)
    except minigrad.BackendError as exc:
        message = str(exc)
        if "CuPy" in message and "not installed" in message:
            message = f"--device {name} needs CuPy and a GPU: {missing_extra('gpu', 'cupy-cuda12x')}"
        raise CLIError(message) from None
    return minigrad.backend.normalize_device(name)


def load_trainer(path: str, **overrides: Any) -> Trainer:
    """The run saved at ``path`` (a folder or checkpoint file); a bad file is a one-line error."""
    overrides = {"progress": False, **overrides}
    try:
        return Trainer.from_checkpoint(path, **overrides)
    except CheckpointError as exc:
        raise CLIError(str(exc)) from None


def validation_examples(task: Any, n: int, seed: int = PREDICT_SEED) -> list[Any]:
    """The first ``n`` validation examples that ``predict`` shows (and ``attention --example`` draws)."""
    return task.examples("valid", n, seed=seed)


def missing_extra(extra: str, package: str) -> str:
    """One line: which extra is missing and the pip command that installs it."""
    return (
        f"the '{extra}' extra is not installed ({package}): pip install -e '.[{extra}]' in the project "
        f"folder, or pip install {package}"
    )
