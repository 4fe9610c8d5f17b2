"""How to train: the run's settings and the model shape that fits a task."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..models import ModelConfig
from ..tasks import Task

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("noam", "cosine", "constant")


@dataclass
class TrainConfig:
    """How to train (saved in checkpoints next to the model config)."""

    task: str = "sort"
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    steps: int = 2000
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 1e-3  # peak learning rate (cosine/constant); noam uses its own formula times lr_factor
    lr_factor: float = 1.0  # noam's factor
    weight_decay: float = 0.01
    schedule: str = "cosine"
    warmup: int = 100
    clip_norm: float | None = 1.0
    label_smoothing: float = 0.0
    eval_every: int = 200
    eval_batches: int | None = None  # None: the task's whole validation set
    target_accuracy: float | None = None  # stop once validation reaches it
    target_metric: str = "seq_acc"
    seed: int = 0
    device: str = "cpu"
    out: str | None = None  # run folder for metrics, plots and checkpoints
    checkpoint_every: int | None = None
    progress: bool = True
    # > 1: each batch is cut into this many chunks whose forward and backward run on CPU
    # threads (minigrad.data_parallel_backward); the same gradients up to float rounding.
    # With dropout the chunks draw random numbers in whichever order the threads run.
    data_parallel: int = 1

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainConfig: optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig: schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.steps < 0 or self.batch_size < 1:
            raise ValueError("TrainConfig: steps must be >= 0 and batch_size >= 1")
        if not 1 <= self.data_parallel <= self.batch_size:
            raise ValueError(
                f"TrainConfig: data_parallel must be between 1 and batch_size ({self.batch_size}), "
                f"got {self.data_parallel}"
            )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig: lr must be a finite number > 0, got {self.lr}")
        if self.seed < 0:
            raise ValueError(f"TrainConfig: seed must be an integer >= 0, got {self.seed}")
        if self.warmup < 0 or self.eval_every < 1:
            raise ValueError(f"TrainConfig: warmup must be >= 0 and eval_every >= 1, got {self.warmup}, "
                             f"{self.eval_every}")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise ValueError(f"TrainConfig: checkpoint_every must be >= 1 or None, got {self.checkpoint_every}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"TrainConfig: weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"TrainConfig: label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.target_metric not in ("seq_acc", "token_acc", "loss"):
            raise ValueError(
                f"TrainConfig: target_metric must be seq_acc, token_acc or loss, got {self.target_metric!r}"
            )
        target = self.target_accuracy
        if target is not None and self.target_metric != "loss" and not 0.0 < target <= 1.0:
            raise ValueError(f"TrainConfig: target_accuracy must be in (0, 1] for {self.target_metric}, got {target}")


def model_config_for(task: Task, **overrides: Any) -> ModelConfig:
    """A ModelConfig whose vocabulary, classes, head and length fit ``task``."""
    head = "mlm" if task.name == "mlm" else task.target_kind
    params = dict(vocab_size=task.vocab_size, num_classes=task.num_classes, head=head, max_len=task.max_len)
    if head == "sequence" and task.cls_id is not None and task.use_cls:
        params["pooling"] = "cls"
    params.update({k: v for k, v in overrides.items() if v is not None})
    return ModelConfig(**params)
