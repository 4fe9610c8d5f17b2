"""encoder.training: the loop learns, is deterministic, resumes exactly, logs and evaluates.

Every run here is tiny (a 1-2 layer, d_model 32 model on short sequences of few digits)
so the whole module takes seconds on a laptop CPU.
"""

from __future__ import annotations

import json
import math
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import minigrad
from encoder.checkpoint import load_checkpoint
from encoder.tasks import Batch, get_task
from encoder.training import (
    NonFiniteLossError,
    TrainConfig,
    Trainer,
    TrainingInterrupted,
    batch_metrics,
    model_config_for,
)
from minigrad.optim import WarmupCosineSchedule

SMALL_SORT = dict(max_len=4, min_len=2, num_digits=5)


def make_trainer(
    task: str = "sort",
    task_kwargs: dict[str, Any] | None = None,
    *,
    d_model: int = 32,
    layers: int = 1,
    dropout: float = 0.0,
    **config: Any,
) -> Trainer:
    """A small model on a small task; ``config`` overrides TrainConfig fields."""
    kwargs = dict(SMALL_SORT if task_kwargs is None and task == "sort" else task_kwargs or {})
    t = get_task(task, **kwargs)
    mc = model_config_for(t, d_model=d_model, nhead=4, num_layers=layers, dim_feedforward=2 * d_model, dropout=dropout)
    settings: dict[str, Any] = dict(
        task=task, task_kwargs=kwargs, steps=20, batch_size=16, lr=3e-3, warmup=5, eval_every=10, progress=False
    )
    settings.update(config)
    return Trainer(TrainConfig(**settings), mc, t)


def losses(rows: list[dict[str, Any]]) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in rows}


# ---------------------------------------------------------------------------------------
# learning
# ---------------------------------------------------------------------------------------
def test_sort_reaches_its_target_accuracy():
    target = 0.9
    trainer = make_trainer(
        layers=2, steps=800, batch_size=24, lr=1e-2, warmup=20, eval_every=25, target_accuracy=target
    )
    before = trainer.evaluate()["seq_acc"]
    summary = trainer.train()
    assert summary["reached_target"] is True
    assert summary["val_seq_acc"] >= target
    assert summary["step"] < 800  # stopped early, at an evaluation step
    assert summary["step"] % 25 == 0
    assert trainer.evaluate()["seq_acc"] == pytest.approx(summary["val_seq_acc"])
    assert before < 0.5  # it was learned, not there from the start


def test_sequence_task_trains_above_chance():
    kwargs = dict(max_len=8, min_len=4, num_digits=3)
    trainer = make_trainer("majority", kwargs, steps=60, batch_size=16, lr=5e-3, warmup=10, eval_every=30)
    labels = [int(y) for b in trainer.valid_batches() for y in b.targets.tolist()]
    chance = max(Counter(labels).values()) / len(labels)  # always guessing the commonest label
    assert chance < 0.45
    summary = trainer.train()
    assert summary["reached_target"] is False  # no target was set
    assert summary["step"] == 60
    assert summary["val_seq_acc"] > chance + 0.3
    assert summary["val_seq_acc"] == summary["val_token_acc"]  # one label per sequence


def test_target_on_loss_stops_when_loss_is_low_enough():
    trainer = make_trainer(steps=200, eval_every=10, target_accuracy=10.0, target_metric="loss")
    summary = trainer.train()
    assert summary["reached_target"] and summary["step"] == 10  # any loss is <= 10


# ---------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_same_seed_same_loss_curve_bit_for_bit(dropout):
    a = make_trainer(dropout=dropout, seed=3)
    a.train()
    b = make_trainer(dropout=dropout, seed=3)
    b.train()
    la, lb = losses(a.log.rows), losses(b.log.rows)
    assert list(la) == list(range(1, 21))
    assert la == lb  # exact equality, no tolerance
    assert [r.get("val_loss") for r in a.log.rows] == [r.get("val_loss") for r in b.log.rows]
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        assert np.array_equal(p.detach().numpy(), q.detach().numpy()), name
    c = make_trainer(dropout=dropout, seed=4)
    c.train()
    lc = losses(c.log.rows)
    assert lc != la
    assert sum(lc[k] != la[k] for k in la) > 15  # different from the first step on


def test_dropout_changes_the_curve():
    a = make_trainer(dropout=0.0)
    a.train()
    b = make_trainer(dropout=0.3)
    b.train()
    assert losses(a.log.rows)[1] != losses(b.log.rows)[1]


def test_batches_are_a_function_of_seed_and_step():
    a, b = make_trainer(seed=1), make_trainer(seed=1)
    assert a.train_batch(7).tokens.tolist() == b.train_batch(7).tokens.tolist()
    assert a.train_batch(7).tokens.tolist() != a.train_batch(8).tokens.tolist()
    assert a.train_batch(7).tokens.tolist() != make_trainer(seed=2).train_batch(7).tokens.tolist()


# ---------------------------------------------------------------------------------------
# checkpoints and resuming
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("dropout", "schedule"), [(0.0, "constant"), (0.3, "constant"), (0.3, "noam")])
def test_resume_continues_the_uninterrupted_curve_exactly(tmp_path, dropout, schedule):
    n = 10
    full = make_trainer(dropout=dropout, schedule=schedule, steps=2 * n, eval_every=5)
    full.train()
    first = make_trainer(dropout=dropout, schedule=schedule, steps=n, eval_every=5, out=str(tmp_path / "run"))
    first.train()
    path = tmp_path / "run" / "checkpoint.safetensors"
    assert load_checkpoint(path).step == n
    assert losses(first.log.rows) == {k: v for k, v in losses(full.log.rows).items() if k <= n}

    minigrad.manual_seed(12345)  # whatever happened in between must not matter
    minigrad.randn(100)
    resumed = Trainer.from_checkpoint(path, steps=2 * n, out=None)
    assert resumed.step == n
    assert resumed.config.steps == 2 * n and resumed.config.schedule == schedule
    summary = resumed.train()
    assert summary["step"] == 2 * n
    assert list(losses(resumed.log.rows)) == list(range(n + 1, 2 * n + 1))
    assert losses(resumed.log.rows) == {k: v for k, v in losses(full.log.rows).items() if k > n}
    for (name, p), q in zip(full.model.named_parameters(), resumed.model.parameters()):
        assert np.array_equal(p.detach().numpy(), q.detach().numpy()), name


def test_interrupted_cosine_run_resumes_exactly(tmp_path):
    """A checkpoint written mid-run (the same ``steps``) continues the cosine schedule exactly."""
    full = make_trainer(dropout=0.2, schedule="cosine", steps=16, warmup=4)
    full.train()
    mid = tmp_path / "mid.safetensors"
    run = make_trainer(dropout=0.2, schedule="cosine", steps=16, warmup=4)

    def save_at_8(row: dict[str, Any]) -> None:
        if row["step"] == 8:
            run.save(mid)

    run.train(callback=save_at_8)
    resumed = Trainer.from_checkpoint(mid)
    assert resumed.step == 8
    resumed.train()
    expected = {k: v for k, v in losses(full.log.rows).items() if k > 8}
    assert losses(resumed.log.rows) == expected
    assert [r["lr"] for r in resumed.log.rows] == [r["lr"] for r in full.log.rows if r["step"] > 8]


def test_resume_with_more_steps_keeps_learning(tmp_path):
    """Extending a finished cosine run: the new steps follow the cosine over the new total, not lr 0."""
    first = make_trainer(schedule="cosine", steps=10, warmup=2, out=str(tmp_path))
    first.train()
    assert first.log.rows[-1]["lr"] == 0.0  # the cosine's last step runs at min_lr
    resumed = Trainer.from_checkpoint(tmp_path, steps=30)
    resumed.train()
    assert [r["step"] for r in resumed.log.rows] == list(range(1, 31))  # the log continues the first run's
    lrs = [r["lr"] for r in resumed.log.rows if r["step"] > 10]
    assert len(lrs) == 20 and all(lr > 0 for lr in lrs[:-1])
    reference = WarmupCosineSchedule(resumed.optimizer, warmup_steps=2, total_steps=30, base_lr=3e-3)
    assert lrs == pytest.approx([reference.lr_at(k) for k in range(11, 31)])


def test_a_fresh_run_replaces_an_old_metrics_log(tmp_path):
    make_trainer(steps=6, eval_every=3, out=str(tmp_path)).train()
    make_trainer(steps=4, eval_every=2, out=str(tmp_path)).train()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]


def test_checkpoint_every_and_checkpoint_metadata(tmp_path):
    trainer = make_trainer(steps=12, eval_every=6, checkpoint_every=5, out=str(tmp_path))
    seen: list[int] = []

    def check(row: dict[str, Any]) -> None:
        if row["step"] == 6:  # the checkpoint of step 5 is on disk
            seen.append(load_checkpoint(tmp_path).step)

    trainer.train(callback=check)
    assert seen == [5]
    ckpt = load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert ckpt.step == 12
    assert ckpt.meta["task"] == {"name": "sort", "kwargs": trainer.task.config}
    assert ckpt.meta["train_config"]["steps"] == 12
    assert ckpt.meta["model_config"]["d_model"] == 32
    assert ckpt.meta["schedule"]["last_step"] == 12


def test_save_without_output_folder_needs_a_path(tmp_path):
    trainer = make_trainer(steps=1)
    with pytest.raises(ValueError, match="no path"):
        trainer.save()
    assert trainer.save(tmp_path / "x.safetensors").exists()


# ---------------------------------------------------------------------------------------
# metrics and plots
# ---------------------------------------------------------------------------------------
def test_metrics_jsonl_summary_and_plot(tmp_path):
    trainer = make_trainer(steps=20, eval_every=10, out=str(tmp_path / "run"))
    summary = trainer.train()
    run = tmp_path / "run"
    lines = (run / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert rows == trainer.log.rows
    assert [r["step"] for r in rows] == list(range(1, 21))
    for r in rows:
        assert {"step", "loss", "lr", "grad_norm", "time"} <= set(r)
        assert math.isfinite(r["loss"]) and r["loss"] > 0 and r["lr"] >= 0
    assert all(r["lr"] > 0 for r in rows[:-1]) and rows[-1]["lr"] == 0.0  # cosine to min_lr 0
    evals = [r for r in rows if "val_loss" in r]
    assert [r["step"] for r in evals] == [10, 20]
    for r in evals:
        assert 0.0 <= r["val_token_acc"] <= 1.0 and 0.0 <= r["val_seq_acc"] <= 1.0 and 0.0 <= r["train_acc"] <= 1.0
    data = json.loads((run / "summary.json").read_text())
    assert data["summary"]["step"] == summary["step"] == 20
    assert data["summary"]["val_loss"] == pytest.approx(evals[-1]["val_loss"])
    assert data["train_config"]["steps"] == 20 and data["model_config"]["d_model"] == 32
    assert (run / "checkpoint.safetensors").exists()
    assert not [p.name for p in run.iterdir() if "tmp" in p.name]
    pytest.importorskip("matplotlib")
    png = run / "metrics.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_warmup_lr_in_metrics_rows():
    trainer = make_trainer(steps=6, warmup=4, lr=1e-3, schedule="cosine")
    trainer.train()
    lrs = [r["lr"] for r in trainer.log.rows]
    assert lrs[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])  # row k: the lr step k used
    assert lrs[4] < 1e-3


def test_run_shorter_than_its_warmup_only_warms_up():
    trainer = make_trainer(steps=3, warmup=6, lr=1e-3, schedule="cosine")
    trainer.train()
    assert [r["lr"] for r in trainer.log.rows] == pytest.approx([1e-3 / 6, 2e-3 / 6, 3e-3 / 6])


# ---------------------------------------------------------------------------------------
# evaluation and batch metrics
# ---------------------------------------------------------------------------------------
def test_evaluate_returns_bounded_metrics_and_leaves_train_mode():
    trainer = make_trainer(dropout=0.3, eval_batches=3)
    result = trainer.evaluate()
    assert set(result) == {"loss", "token_acc", "seq_acc"}
    assert 0.0 <= result["token_acc"] <= 1.0 and 0.0 <= result["seq_acc"] <= 1.0
    assert result["seq_acc"] <= result["token_acc"]
    assert result["loss"] > 0 and math.isfinite(result["loss"])
    assert trainer.model.training
    assert trainer.evaluate() == result  # no dropout at evaluation
    assert len(trainer.valid_batches()) == 3


def test_evaluate_matches_batch_metrics_by_hand():
    trainer = make_trainer(eval_batches=2, batch_size=8)
    batches = trainer.valid_batches()
    result = trainer.evaluate(batches)
    trainer.model.eval()
    tok = [0.0, 0.0]
    seq = [0.0, 0.0]
    with minigrad.no_grad():
        for b in batches:
            m = batch_metrics(trainer.model(b.tokens, b.padding_mask), b, -100)
            tok = [tok[0] + m["tok_correct"], tok[1] + m["tok_total"]]
            seq = [seq[0] + m["seq_correct"], seq[1] + m["seq_total"]]
    assert result["token_acc"] == pytest.approx(tok[0] / tok[1])
    assert result["seq_acc"] == pytest.approx(seq[0] / seq[1])
    assert seq[1] == 16


def _logits_for(pred: list[list[int]], classes: int) -> minigrad.Tensor:
    """Logits whose argmax over the last axis is ``pred``."""
    arr = np.zeros((*np.shape(pred), classes))
    idx = np.asarray(pred)
    np.put_along_axis(arr, idx[..., None], 5.0, axis=-1)
    return minigrad.tensor(arr)


def test_batch_metrics_token_targets():
    ig = -100
    targets = [
        [1, 2, 3, ig],  # all labelled right (the ignored position's prediction does not count)
        [0, 4, ig, ig],  # one of two right
        [ig, 2, ig, 1],  # mlm-like: both labelled positions right
    ]
    pred = [
        [1, 2, 3, 4],
        [0, 3, 0, 0],
        [0, 2, 0, 1],
    ]
    batch = Batch(
        tokens=minigrad.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype="int64"),
        targets=minigrad.tensor(targets, dtype="int64"),
        padding_mask=minigrad.tensor([[0, 0, 0, 1], [0, 0, 1, 1], [0, 0, 0, 0]], dtype="bool"),
        lengths=[3, 2, 4],
    )
    m = batch_metrics(_logits_for(pred, 5), batch, ig)
    assert m == {"tok_correct": 6.0, "tok_total": 7.0, "seq_correct": 2.0, "seq_total": 3.0}
    pred[2][3] = 0  # one labelled position wrong: that sequence is no longer right
    m = batch_metrics(_logits_for(pred, 5), batch, ig)
    assert m == {"tok_correct": 5.0, "tok_total": 7.0, "seq_correct": 1.0, "seq_total": 3.0}


def test_batch_metrics_sequence_targets():
    batch = Batch(
        tokens=minigrad.tensor([[2, 3], [3, 3], [2, 2], [3, 2]], dtype="int64"),
        targets=minigrad.tensor([1, 0, 0, 1], dtype="int64"),
        padding_mask=minigrad.tensor(np.zeros((4, 2), dtype=bool)),
        lengths=[2, 2, 2, 2],
    )
    m = batch_metrics(_logits_for([1, 1, 0, 1], 2), batch, -100)
    assert m == {"tok_correct": 3.0, "tok_total": 4.0, "seq_correct": 3.0, "seq_total": 4.0}


# ---------------------------------------------------------------------------------------
# config and mlm
# ---------------------------------------------------------------------------------------
def test_model_config_for_fits_the_task():
    sort = get_task("sort")
    mc = model_config_for(sort, d_model=16, nhead=2, dropout=None)
    assert (mc.vocab_size, mc.num_classes, mc.head, mc.max_len) == (sort.vocab_size, 10, "token", sort.max_len)
    assert mc.d_model == 16 and mc.dropout == 0.1  # None leaves the default
    parity = get_task("parity", use_cls=True)
    mc = model_config_for(parity)
    assert mc.head == "sequence" and mc.pooling == "cls" and mc.num_classes == 2
    assert model_config_for(get_task("parity")).pooling == "mean"
    mlm = get_task("mlm", max_len=16)
    mc = model_config_for(mlm)
    assert mc.head == "mlm" and mc.vocab_size == mc.num_classes == mlm.vocab_size


@pytest.mark.parametrize(
    "bad",
    [
        dict(optimizer="rmsprop"),
        dict(schedule="step"),
        dict(steps=-1),
        dict(batch_size=0),
        dict(target_metric="f1"),
        dict(lr=float("nan")),
        dict(lr=0.0),
        dict(warmup=-1),
        dict(eval_every=0),
        dict(checkpoint_every=0),
        dict(weight_decay=-1.0),
        dict(label_smoothing=1.0),
        dict(target_accuracy=2.0),
        dict(data_parallel=100),
        dict(seed=-1),
    ],
)
def test_train_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="TrainConfig"):
        TrainConfig(**bad)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_other_optimizers_train(optimizer):
    trainer = make_trainer(optimizer=optimizer, steps=5, lr=1e-2)
    first = trainer.evaluate()["loss"]
    trainer.train()
    assert type(trainer.optimizer).__name__.lower() == optimizer
    assert trainer.evaluate()["loss"] != first


def test_mlm_trainer_reports_a_loss_and_unigram_baseline(tmp_path):
    trainer = make_trainer(
        "mlm", dict(max_len=16), steps=50, eval_every=25, eval_batches=4, batch_size=16, lr=1e-2, warmup=10
    )
    assert trainer.model_config.head == "mlm"
    initial = trainer.evaluate()["loss"]
    summary = trainer.train()
    base = trainer.task.unigram_baseline(seed=0, n=64)
    assert base["positions"] > 0
    assert 0.0 < base["accuracy"] < 0.5  # the commonest character (the space) is right sometimes
    assert 0.0 < base["cross_entropy"] < math.log(trainer.task.num_classes)
    assert math.isfinite(summary["val_loss"]) and 0 < summary["val_loss"] < initial - 1.0
    assert summary["val_loss"] < 1.5 * base["cross_entropy"]  # near the unigram level already
    assert 0.0 <= summary["val_token_acc"] <= 1.0
    path = trainer.save(tmp_path / "mlm.safetensors")  # tied weights survive a round trip
    again = Trainer.from_checkpoint(path)
    assert again.model.head.weight is again.model.embed.embedding.weight
    assert again.evaluate() == pytest.approx(trainer.evaluate())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_diverging_training_fails_loudly():
    trainer = make_trainer(steps=3, lr=1e30, clip_norm=None, optimizer="sgd", schedule="constant")
    with pytest.raises(FloatingPointError, match="diverged"):
        trainer.train()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_first_non_finite_loss_stops_before_its_update_and_points_to_anomaly_mode():
    trainer = make_trainer(steps=10, eval_every=100)
    rows: list[dict[str, Any]] = []

    def poison(row: dict[str, Any]) -> None:
        rows.append(row)
        if row["step"] == 3:  # a NaN weight after step 3: the loss of step 4 is NaN
            trainer.model.encoder.layers[0].ff.linear1.weight.data[0, 0] = float("nan")

    with pytest.raises(NonFiniteLossError) as info:
        trainer.train(callback=poison)
    assert info.value.step == 4 and trainer.step == 3 and len(rows) == 3
    assert "step 4" in str(info.value) and "minigrad.detect_anomaly()" in str(info.value)
    # the update of step 4 was not applied: every other weight is still finite
    finite = [bool(np.isfinite(p.detach().numpy()).all()) for p in trainer.model.parameters()]
    assert finite.count(False) == 1
    with minigrad.detect_anomaly(), pytest.raises(minigrad.AnomalyError, match="linear1"):
        trainer.train_step(trainer.train_batch(3))  # anomaly mode names the op and the module


def test_a_signal_stops_training_with_a_checkpoint_of_the_step(tmp_path):
    trainer = make_trainer(steps=50, eval_every=100, out=str(tmp_path))
    before = signal.getsignal(signal.SIGINT)

    def interrupt(row: dict[str, Any]) -> None:
        if row["step"] == 7:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: handled after the step, not mid-step

    with pytest.raises(TrainingInterrupted) as info:
        trainer.train(callback=interrupt)
    assert info.value.signal == "SIGINT" and info.value.step == 7
    assert info.value.checkpoint == tmp_path / "checkpoint.safetensors"
    assert load_checkpoint(tmp_path).step == 7 and trainer.step == 7
    assert signal.getsignal(signal.SIGINT) is before  # the handlers are put back
    again = Trainer.from_checkpoint(tmp_path, steps=9)
    assert again.train()["step"] == 9


def test_a_run_stopped_at_its_target_shows_a_full_bar_that_says_so(capsys):
    trainer = make_trainer(steps=200, eval_every=5, target_metric="loss", target_accuracy=100.0, progress=True)
    summary = trainer.train()
    assert summary["reached_target"] and summary["step"] == 5
    err = capsys.readouterr().err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "target reached" in last and "5/5" in last and "100%" in last, last


def test_device_is_checked_at_construction():
    if minigrad.backend.is_available("cuda"):
        pytest.skip("a GPU is available")
    with pytest.raises(minigrad.BackendError):
        make_trainer(device="cuda")


def test_from_checkpoint_of_a_directory(tmp_path: Path):
    make_trainer(steps=3, out=str(tmp_path)).train()
    trainer = Trainer.from_checkpoint(tmp_path)
    assert trainer.step == 3 and trainer.task.config == get_task("sort", **SMALL_SORT).config
