"""Training and evaluation of a model on a task: the loop a user watches.

    trainer = Trainer(TrainConfig(task="sort", steps=2000), ModelConfig(...))
    result = trainer.train()          # progress bar, validation, metrics, checkpoint
    trainer.evaluate()                # {"loss": ..., "token_acc": ..., "seq_acc": ...}

The package, one concept a module: :mod:`.config` (:class:`TrainConfig`, the optimizer
and schedule names, :func:`model_config_for`), :mod:`.trainer` (:class:`Trainer`: the
loop, evaluation, saving and resuming), :mod:`.metrics` (accuracy counts and the JSONL
log) and :mod:`.plots` (the curves as a PNG). The determinism of a run is described in
:mod:`.trainer`.
"""

from .config import OPTIMIZERS, SCHEDULES, TrainConfig, model_config_for
from .metrics import MetricsLog, batch_metrics
from .plots import plot_metrics
from .trainer import NonFiniteLossError, Trainer, TrainingInterrupted

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "MetricsLog",
    "NonFiniteLossError",
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "batch_metrics",
    "model_config_for",
    "plot_metrics",
]
