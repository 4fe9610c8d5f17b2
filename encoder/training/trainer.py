"""The trainer: one model, its optimizer and schedule, and a task's data for one run.

Determinism: the model's initial weights come from ``minigrad.manual_seed(seed)``, the
batch of step k is drawn from a generator seeded by (seed, k), and dropout draws from the
device's seeded generator, whose state is saved in checkpoints. So the same seed gives
the same loss curve bit for bit on the CPU, and a run resumed from a checkpoint continues
exactly the curve of an uninterrupted run.

Interruptions: while :meth:`Trainer.train` runs in the main thread, SIGINT (Ctrl-C) and
SIGTERM finish the current step, save a checkpoint of it (when the run has a folder) and
raise :class:`TrainingInterrupted`; resuming from that checkpoint continues the same curve.
A second signal acts at once. The first non-finite loss stops the run before its update
with :class:`NonFiniteLossError` (the step, and a pointer to ``minigrad.detect_anomaly``).
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import minigrad
import minigrad.functional as F
from minigrad import Tensor, optim
from minigrad.files import write_atomic

from ..checkpoint import Checkpoint, CheckpointError, load_checkpoint, restore_model, save_checkpoint
from ..models import EncoderModel, ModelConfig, build_model
from ..tasks import Batch, Task, get_task
from .config import TrainConfig, model_config_for
from .metrics import MetricsLog, batch_metrics
from .plots import plot_metrics


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped :meth:`Trainer.train`; ``checkpoint`` is the file saved at ``step`` (or None)."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None) -> None:
        self.signal = signal.Signals(signum).name
        self.step = step
        self.checkpoint = checkpoint
        saved = f"saved {checkpoint}" if checkpoint is not None else "nothing saved (the run has no folder)"
        super().__init__(f"{self.signal} at step {step}: {saved}")


class NonFiniteLossError(FloatingPointError):
    """The loss of a training step is NaN or infinite (the step's update is not applied)."""

    def __init__(self, step: int, loss: float) -> None:
        self.step, self.loss = step, loss
        super().__init__(
            f"training diverged at step {step}: the loss is {loss}; the update was not applied. "
            "To find the first op that made a NaN or an infinity, run the step under "
            "minigrad.detect_anomaly() (train --detect-anomaly on the command line)"
        )


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Trainer:
    """Owns a model, its optimizer and schedule, and the task's data for one run."""

    def __init__(
        self,
        config: TrainConfig,
        model_config: ModelConfig | None = None,
        task: Task | None = None,
        model: EncoderModel | None = None,
    ) -> None:
        self.config = config
        self.task = task or get_task(config.task, **config.task_kwargs)
        self.model_config = model_config or model_config_for(self.task)
        minigrad.manual_seed(config.seed)
        self.device = minigrad.backend.normalize_device(config.device)
        minigrad.backend.get_backend(self.device)  # a clear error now if the device is missing
        self.model = model or build_model(self.model_config)
        self.model.to(self.device)
        self.optimizer = self._make_optimizer()
        self.schedule = self._make_schedule()
        self.step = 0
        self.out = Path(config.out) if config.out else None
        self.log = MetricsLog(self.out / "metrics.jsonl" if self.out else None)
        self.best: dict[str, float] = {}
        self._valid: list[Batch] | None = None
        self._stop_signal: int | None = None

    # ---- construction ---------------------------------------------------------------
    def _make_optimizer(self) -> optim.Optimizer:
        c = self.config
        params = list(self.model.parameters())
        if c.optimizer == "sgd":
            return optim.SGD(params, lr=c.lr, momentum=0.9, weight_decay=c.weight_decay)
        if c.optimizer == "adam":
            return optim.Adam(params, lr=c.lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=c.weight_decay)
        return optim.AdamW(params, lr=c.lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=c.weight_decay)

    def _make_schedule(self) -> optim.LRSchedule:
        c = self.config
        if c.schedule == "noam":
            return optim.NoamSchedule(self.optimizer, self.model_config.d_model, max(c.warmup, 1), factor=c.lr_factor)
        if c.schedule == "cosine":
            # a run shorter than its warmup only warms up (instead of failing to build the schedule)
            total = max(c.steps, c.warmup, 1)
            return optim.WarmupCosineSchedule(self.optimizer, warmup_steps=c.warmup, total_steps=total)
        return optim.ConstantSchedule(self.optimizer)

    # ---- data -------------------------------------------------------------------------
    def train_batch(self, step: int) -> Batch:
        """The batch of optimizer step ``step``: a pure function of (seed, step)."""
        examples = self.task.examples("train", self.config.batch_size, seed=self.config.seed * 1_000_003 + step)
        return self.task.collate(examples, device=self.device)

    def valid_batches(self) -> list[Batch]:
        if self._valid is None:
            n = self.config.eval_batches
            self._valid = list(
                self.task.batches("valid", self.config.batch_size, seed=self.config.seed, num_batches=n)
            )
            self._valid = [b.to(self.device) for b in self._valid]
        return self._valid

    def loss(self, logits: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(
            logits, batch.targets, ignore_index=self.task.ignore_index, label_smoothing=self.config.label_smoothing
        )

    # ---- one step and evaluation ---------------------------------------------------------
    def train_step(self, batch: Batch) -> tuple[float, dict[str, float], float]:
        """Forward, backward, clip, update; returns (loss, accuracy counts, grad norm)."""
        self.model.train()
        self.optimizer.zero_grad()
        if self.config.data_parallel > 1:
            loss, counts = self._backward_in_chunks(batch)
        else:
            logits = self.model(batch.tokens, batch.padding_mask)
            loss = self.loss(logits, batch)
            loss.backward()
            with minigrad.no_grad():
                counts = batch_metrics(logits.detach(), batch, self.task.ignore_index)
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(self.step + 1, value)
        norm = float("nan")
        if self.config.clip_norm:
            norm = optim.clip_grad_norm_(self.model.parameters(), self.config.clip_norm)
        self.optimizer.step()
        self.schedule.step()
        self.step += 1
        return value, counts, norm

    def _backward_in_chunks(self, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        """The batch's loss and gradients from chunks run on threads (``config.data_parallel``).

        The loss is a mean over the labelled targets, so each chunk weighs its share of them.
        """
        split = batch.split(self.config.data_parallel)
        counted = [(c, self._labelled(c)) for c in split]
        chunks = [c for c, n in counted if n > 0]  # a chunk with nothing to average would be 0/0
        labelled = [n for _, n in counted if n > 0]
        logits: list[Tensor | None] = [None] * len(chunks)

        def chunk_loss(i: int) -> Tensor:
            logits[i] = out = self.model(chunks[i].tokens, chunks[i].padding_mask)
            return self.loss(out, chunks[i])

        loss = minigrad.data_parallel_backward(
            chunk_loss, range(len(chunks)), self.model.parameters(), [n / sum(labelled) for n in labelled]
        )
        counts: dict[str, float] = {}
        with minigrad.no_grad():
            for out, chunk in zip(logits, chunks):
                for key, value in batch_metrics(out.detach(), chunk, self.task.ignore_index).items():
                    counts[key] = counts.get(key, 0.0) + value
        return loss, counts

    def _labelled(self, batch: Batch) -> int:
        """How many targets of ``batch`` the loss averages over."""
        return int(F.sum(F.cast(batch.targets != self.task.ignore_index, "int64")).item())

    def evaluate(self, batches: list[Batch] | None = None) -> dict[str, float]:
        """Mean loss, token accuracy and whole-sequence accuracy on the validation set."""
        self.model.eval()
        total = {"loss": 0.0, "tok_correct": 0.0, "tok_total": 0.0, "seq_correct": 0.0, "seq_total": 0.0}
        with minigrad.no_grad():
            for batch in batches if batches is not None else self.valid_batches():
                logits = self.model(batch.tokens, batch.padding_mask)
                labelled = batch.targets != self.task.ignore_index
                n = batch.size if batch.targets.ndim == 1 else int(labelled.sum().item())
                total["loss"] += self.loss(logits, batch).item() * n
                for k, v in batch_metrics(logits, batch, self.task.ignore_index).items():
                    total[k] += v
        self.model.train()
        tokens = max(total["tok_total"], 1.0)
        return {
            "loss": total["loss"] / tokens,
            "token_acc": total["tok_correct"] / tokens,
            "seq_acc": total["seq_correct"] / max(total["seq_total"], 1.0),
        }

    def predict(self, batch: Batch) -> Tensor:
        self.model.eval()
        with minigrad.no_grad():
            pred = F.argmax(self.model(batch.tokens, batch.padding_mask), -1)
        self.model.train()
        return pred

    # ---- the loop ----------------------------------------------------------------------------
    def train(self, callback: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train until ``steps`` or the target accuracy; returns the final summary.

        SIGINT and SIGTERM stop it after the current step, with a checkpoint of that step
        in the run folder: :class:`TrainingInterrupted` (see the module docstring).
        """
        previous = self._catch_stop_signals()
        try:
            summary = self._train(callback)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return summary

    def _catch_stop_signals(self) -> dict[int, Any]:
        """Route SIGINT and SIGTERM to a flag the loop checks after each step (main thread only)."""
        self._stop_signal = None
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

        def stop(signum: int, frame: Any) -> None:
            self._stop_signal = signum
            for other, handler in previous.items():  # a second signal acts at once
                signal.signal(other, handler if handler is not None else signal.SIG_DFL)

        for signum in STOP_SIGNALS:
            signal.signal(signum, stop)
        return {k: (v if v is not None else signal.SIG_DFL) for k, v in previous.items()}

    def _interrupted(self, bar: Any) -> TrainingInterrupted:
        """Save the step just finished (when the run has a folder) and describe the stop."""
        assert self._stop_signal is not None
        if bar is not None:
            bar.set_description(f"train {self.task.name} (stopped)")
            bar.close()
        saved = None
        if self.out is not None:
            saved = self.save()
            plot_metrics(self.log.rows, self.out / "metrics.png")
        return TrainingInterrupted(self._stop_signal, self.step, saved)

    def _train(self, callback: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
        c = self.config
        bar = None
        if c.progress:
            from tqdm import tqdm

            bar = tqdm(total=c.steps, initial=self.step, desc=f"train {self.task.name}", unit="step", leave=True)
        window: list[float] = []
        counts = {"tok_correct": 0.0, "tok_total": 0.0}
        tokens_seen, started = 0, time.perf_counter()
        reached = False
        self.log.start(self.step)
        last_eval: dict[str, float] = {}
        eval_step = -1
        while self.step < c.steps:
            batch = self.train_batch(self.step)
            lr = self.schedule.lr
            try:
                loss, bc, norm = self.train_step(batch)
            except NonFiniteLossError:
                if bar is not None:
                    bar.close()
                raise
            window.append(loss)
            counts["tok_correct"] += bc["tok_correct"]
            counts["tok_total"] += bc["tok_total"]
            tokens_seen += sum(batch.lengths)
            elapsed = time.perf_counter() - started
            row = {"step": self.step, "loss": loss, "lr": lr, "grad_norm": norm, "time": elapsed}
            if self.step % c.eval_every == 0 or self.step == c.steps:
                last_eval, eval_step = self.evaluate(), self.step
                row.update({f"val_{k}": v for k, v in last_eval.items()})
                row["train_acc"] = counts["tok_correct"] / max(counts["tok_total"], 1.0)
                counts = {"tok_correct": 0.0, "tok_total": 0.0}
                if c.target_accuracy is not None:
                    value = last_eval[c.target_metric]
                    reached = value <= c.target_accuracy if c.target_metric == "loss" else value >= c.target_accuracy
            self.log.write(row)
            if callback is not None:
                callback(row)
            if bar is not None:
                bar.update(1)
                if self.step % 10 == 0 or "val_loss" in row:
                    post = {
                        "loss": f"{sum(window) / len(window):.3f}",
                        "acc": f"{row.get('train_acc', counts['tok_correct'] / max(counts['tok_total'], 1.0)):.3f}",
                        "lr": f"{lr:.2e}",
                        "tok/s": f"{tokens_seen / max(elapsed, 1e-9):.0f}",
                    }
                    if last_eval:
                        post["val_acc"] = f"{last_eval['seq_acc']:.3f}"
                    bar.set_postfix(post)
                    window = []
            if self.out is not None and c.checkpoint_every and self.step % c.checkpoint_every == 0:
                self.save()
            if self._stop_signal is not None:
                raise self._interrupted(bar)
            if reached:
                break
        if bar is not None:
            if reached:  # a full bar that says why it stopped early, not a part-filled one
                bar.total = self.step
                bar.set_description(f"train {self.task.name} (target reached)")
            bar.close()
        if eval_step != self.step:
            last_eval = self.evaluate()
        summary = {
            "step": self.step,
            "reached_target": reached,
            "train_seconds": time.perf_counter() - started,
            **{f"val_{k}": v for k, v in last_eval.items()},
        }
        if self.out is not None:
            self.save()
            self.write_summary(summary)
            plot_metrics(self.log.rows, self.out / "metrics.png")
        return summary

    # ---- saving and resuming -------------------------------------------------------------------
    def checkpoint_meta(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model_config": self.model_config.to_dict(),
            "train_config": asdict(self.config),
            "task": {"name": self.task.name, "kwargs": dict(self.task.config)},
            "schedule": self.schedule.state_dict(),
            "rng": minigrad.backend.get_backend(self.device).get_rng_state(),
        }

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write ``checkpoint.safetensors`` in the run folder (or to ``path``)."""
        if path is None:
            if self.out is None:
                raise ValueError("Trainer.save: no path given and the run has no output folder")
            path = self.out / "checkpoint.safetensors"
        return save_checkpoint(path, self.model, self.optimizer, self.checkpoint_meta())

    def write_summary(self, summary: dict[str, Any]) -> None:
        assert self.out is not None
        data = {"summary": summary, "model_config": self.model_config.to_dict(), "train_config": asdict(self.config)}
        write_atomic(self.out / "summary.json", json.dumps(data, indent=2, sort_keys=True))

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **overrides: Any) -> Trainer:
        """Rebuild the run saved at ``path`` (model, optimizer, schedule, step, rng) to evaluate or resume.

        ``overrides`` change fields of the saved TrainConfig (e.g. ``steps=`` to train longer,
        ``out=``, ``device=``, ``progress=``).
        """
        ckpt = load_checkpoint(path)
        meta = ckpt.meta
        try:
            tc = dict(meta["train_config"])
            tc.update(overrides)
            config = TrainConfig(**tc)
            model_config = ModelConfig.from_dict(meta["model_config"])
            task = get_task(meta["task"]["name"], **meta["task"]["kwargs"])
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}: checkpoint metadata is incomplete or from another version: {exc}") from None
        trainer = cls(config, model_config, task)
        restore_model(trainer.model, ckpt)
        trainer.model.to(trainer.device)
        trainer._restore_training_state(ckpt)
        return trainer

    def _restore_training_state(self, ckpt: Checkpoint) -> None:
        opt_state = ckpt.optimizer_state()
        if opt_state is not None:
            try:
                self.optimizer.load_state_dict(opt_state)
            except ValueError as exc:
                raise CheckpointError(f"the optimizer state does not fit: {exc}") from None
        if "schedule" in ckpt.meta:
            # only the position: the hyperparameters come from this run's config, so resuming
            # with more ``steps`` stretches the cosine over the new total (not lr 0 from the old end)
            self.schedule.load_state_dict({"last_step": ckpt.meta["schedule"]["last_step"]})
        if "rng" in ckpt.meta:
            minigrad.backend.get_backend(self.device).set_rng_state(ckpt.meta["rng"])
        self.step = ckpt.step
