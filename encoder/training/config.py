"""How to train: the run's settings and the model shape that fits a task."""

from __future__ import annotations

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
        if self.target_metric not in ("seq_acc", "token_acc", "loss"):
            raise ValueError(
                f"TrainConfig: target_metric must be seq_acc, token_acc or loss, got {self.target_metric!r}"
            )


def model_config_for(task: Task, **overrides: Any) -> ModelConfig:
    """A ModelConfig whose vocabulary, classes, head and length fit ``task``."""
    head = "mlm" if task.name == "mlm" else task.target_kind
    params = dict(vocab_size=task.vocab_size, num_classes=task.num_classes, head=head, max_len=task.max_len)
    if head == "sequence" and task.cls_id is not None and task.use_cls:
        params["pooling"] = "cls"
    params.update({k: v for k, v in overrides.items() if v is not None})
    return ModelConfig(**params)
