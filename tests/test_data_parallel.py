"""minigrad.data_parallel_backward: chunks of a batch backpropagated on threads.

The gradients must be those of one backward over the whole batch (float64, tight
tolerance), the same for any thread count, accumulated like ``backward()`` does, and
NumPy's BLAS must get its thread count back. Also: autograd state is per thread.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np
import pytest
from threads import num_threads

import minigrad
import minigrad.functional as F
from encoder.layers import TransformerEncoderLayer
from encoder.tasks import get_task
from encoder.training import TrainConfig, Trainer, model_config_for
from minigrad import nn

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration


class Classifier(nn.Module):
    """One encoder layer, mean pooling, a linear head: the benchmark's model in miniature."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = TransformerEncoderLayer(16, 2, 32, dropout=0.0)
        self.head = nn.Linear(16, 3)

    def forward(self, x, mask):
        h = self.layer(x, src_key_padding_mask=mask)
        return self.head(F.mean(h, 1))


def make_data(batch: int = 7, seq: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = minigrad.tensor(rng.standard_normal((batch, seq, 16)), dtype="float64")
    lengths = rng.integers(2, seq + 1, size=batch)
    mask = minigrad.tensor(np.arange(seq)[None, :] >= lengths[:, None])
    labels = minigrad.tensor(rng.integers(0, 3, size=batch))
    return x, mask, labels


def make_model(seed: int = 0) -> Classifier:
    minigrad.manual_seed(seed)
    return Classifier().to(dtype="float64")


def chunked(data, bounds):
    x, mask, labels = data
    return [(x[lo:hi], mask[lo:hi], labels[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]


def loss_of(model):
    return lambda chunk: F.cross_entropy(model(chunk[0], chunk[1]), chunk[2])


def full_batch_grads(model, data):
    model.zero_grad()
    loss = loss_of(model)(data)
    loss.backward()
    return loss.item(), [p.grad.numpy().copy() for p in model.parameters()]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("bounds", [[0, 4, 7], [0, 2, 3, 7], [0, 7]])
def test_chunked_gradients_equal_the_whole_batch(threads, bounds):
    model, data = make_model(), make_data()
    want_loss, want = full_batch_grads(model, data)
    chunks = chunked(data, bounds)
    weights = [(hi - lo) / 7 for lo, hi in zip(bounds[:-1], bounds[1:])]
    model.zero_grad()
    with num_threads(threads):
        loss = minigrad.data_parallel_backward(loss_of(model), chunks, model.parameters(), weights)
    assert not loss.requires_grad and loss.shape == ()
    assert loss.item() == pytest.approx(want_loss, rel=1e-12)
    for p, g in zip(model.parameters(), want):
        np.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-10, atol=1e-13)


def test_results_do_not_depend_on_the_thread_count():
    model, data = make_model(), make_data()
    chunks = chunked(data, [0, 2, 4, 7])
    grads = []
    for threads in (1, 2, 3):
        model.zero_grad()
        with num_threads(threads):
            minigrad.data_parallel_backward(loss_of(model), chunks, model.parameters(), [2 / 7, 2 / 7, 3 / 7])
        grads.append([p.grad.numpy().copy() for p in model.parameters()])
    for other in grads[1:]:
        for a, b in zip(grads[0], other):
            np.testing.assert_array_equal(a, b)  # the same sums in the same order


def test_chunks_run_on_several_threads(accel_mode):
    model, data = make_model(), make_data()
    seen = set()
    loss = loss_of(model)

    def recording(chunk):
        seen.add(threading.get_ident())
        return loss(chunk)

    with num_threads(2):
        minigrad.data_parallel_backward(recording, chunked(data, [0, 3, 7]), model.parameters(), [3 / 7, 4 / 7])
    assert len(seen) == (1 if accel_mode == "reference" else 2)  # threads only with the acceleration on


def test_gradients_accumulate_into_existing_grads():
    model, data = make_model(), make_data()
    _, once = full_batch_grads(model, data)  # leaves .grad set
    with num_threads(2):
        minigrad.data_parallel_backward(loss_of(model), chunked(data, [0, 3, 7]), model.parameters(), [3 / 7, 4 / 7])
    for p, g in zip(model.parameters(), once):
        np.testing.assert_allclose(p.grad.numpy(), 2 * g, rtol=1e-10, atol=1e-13)


def test_unused_and_frozen_parameters():
    a = minigrad.tensor([1.0, 2.0], requires_grad=True)
    unused = minigrad.tensor([3.0], requires_grad=True)
    frozen = minigrad.tensor([4.0, 5.0])
    chunks = [minigrad.tensor([1.0, -1.0]), minigrad.tensor([2.0, 0.5])]
    with num_threads(2):
        loss = minigrad.data_parallel_backward(lambda c: (a * c * frozen).sum(), chunks, [a, unused, frozen])
    # 0.5 * (c1 * frozen) + 0.5 * (c2 * frozen)
    np.testing.assert_allclose(a.grad.numpy(), [0.5 * (1 + 2) * 4, 0.5 * (-1 + 0.5) * 5])
    assert unused.grad is None and frozen.grad is None
    assert loss.item() == pytest.approx(0.5 * (4 - 10) + 0.5 * (8 + 5))


def test_one_array_is_never_shared_by_two_grads():
    # the engine hands the same gradient array to both inputs of an add
    a = minigrad.tensor([1.0, 2.0], requires_grad=True)
    b = minigrad.tensor([3.0, 4.0], requires_grad=True)
    minigrad.data_parallel_backward(lambda c: ((a + b) * c).sum(), [minigrad.tensor([1.0, 2.0])], [a, b], [1.0])
    assert a.grad.data is not b.grad.data
    a.grad.data += 1
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 2.0])


def test_errors_name_the_function():
    a = minigrad.tensor([1.0, 2.0], requires_grad=True)
    fn = lambda c: (a * c).sum()  # noqa: E731
    chunk = minigrad.tensor([1.0, 1.0])
    with pytest.raises(ValueError, match="data_parallel_backward: no chunks"):
        minigrad.data_parallel_backward(fn, [], [a])
    with pytest.raises(ValueError, match="2 chunks but 1 weights"):
        minigrad.data_parallel_backward(fn, [chunk, chunk], [a], [1.0])
    with pytest.raises(ValueError, match="no parameter requires grad"):
        minigrad.data_parallel_backward(fn, [chunk], [minigrad.tensor([1.0])])
    with pytest.raises(TypeError, match="params must be Tensors"):
        minigrad.data_parallel_backward(fn, [chunk], [np.zeros(2)])
    with pytest.raises(ValueError, match=r"scalar Tensor, got \(2,\) for chunk 0"):
        minigrad.data_parallel_backward(lambda c: a * c, [chunk], [a])
    with pytest.raises(RuntimeError, match="loss of chunk 0 does not depend"):
        minigrad.data_parallel_backward(lambda c: c.sum(), [chunk], [a])


def blas_threads() -> int:
    """NumPy's BLAS threads, as threadpoolctl reads them (the test skips where it cannot)."""
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="reading the BLAS's threads needs threadpoolctl")
    infos = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    if not infos:
        pytest.skip("threadpoolctl finds no BLAS in this process")
    return infos[0]["num_threads"]


def test_blas_threads_are_one_during_the_chunks_and_restored_after(accel_mode):
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="limiting the BLAS's threads needs threadpoolctl")
    a = minigrad.tensor([1.0, 2.0], requires_grad=True)
    during = []

    def fn(c):
        during.append((blas_threads(), threading.get_ident()))
        return (a * c).sum()

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"), num_threads(2):
        before = blas_threads()
        minigrad.data_parallel_backward(fn, [minigrad.tensor([1.0, 1.0])] * 2, [a])
        if accel_mode == "reference":  # one after the other, on this thread, BLAS untouched
            assert [d[0] for d in during] == [before, before]
            assert {d[1] for d in during} == {threading.get_ident()}
        else:
            assert [d[0] for d in during] == [1, 1]
            assert len({d[1] for d in during}) == 2
        assert blas_threads() == before

        def failing(c):
            raise KeyError("boom")

        with pytest.raises(KeyError, match="boom"):  # an error in a chunk reaches the caller
            minigrad.data_parallel_backward(failing, [minigrad.tensor([1.0])] * 2, [a])
        assert blas_threads() == before


def test_with_one_thread_the_chunks_run_here_and_blas_keeps_its_threads():
    a = minigrad.tensor([1.0], requires_grad=True)
    during = []

    def fn(c):
        during.append((blas_threads(), threading.get_ident()))
        return (a * c).sum()

    before = blas_threads()
    with num_threads(1):
        minigrad.data_parallel_backward(fn, [minigrad.tensor([1.0])] * 3, [a])
    assert [d[0] for d in during] == [before] * 3
    assert {d[1] for d in during} == {threading.get_ident()}  # one after the other, here


def test_other_backends_run_the_chunks_one_after_the_other(marked):
    a = minigrad.tensor([1.0, 2.0], requires_grad=True, device="marked")
    ident = []

    def fn(c):
        ident.append(threading.get_ident())
        return (a * c).sum()

    chunks = [minigrad.tensor([1.0, 3.0], device="marked"), minigrad.tensor([2.0, 1.0], device="marked")]
    with num_threads(2):
        loss = minigrad.data_parallel_backward(fn, chunks, [a])
    assert set(ident) == {threading.get_ident()}
    assert loss.device == "marked" and a.grad.device == "marked"
    np.testing.assert_allclose(a.grad.numpy(), [1.5, 2.0])


# ---- autograd state is per thread -------------------------------------------------------
@contextmanager
def held_by_another_thread(make_context, seen=None):
    """Another thread enters ``make_context()`` and stays inside until the block ends.

    ``seen`` (a dict) gets that thread's ``is_grad_enabled()`` from inside the context.
    """
    inside, release = threading.Event(), threading.Event()

    def other():
        with make_context():
            if seen is not None:
                seen["other"] = minigrad.is_grad_enabled()
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    t.start()
    assert inside.wait(10)
    try:
        yield
    finally:
        release.set()
        t.join()


def test_no_grad_in_one_thread_does_not_stop_recording_in_another():
    seen = {}
    with held_by_another_thread(minigrad.no_grad, seen):
        assert minigrad.is_grad_enabled()
        x = minigrad.tensor([1.0], requires_grad=True)
        assert (x * 2).requires_grad
    assert seen["other"] is False


def test_scopes_are_per_thread():
    with held_by_another_thread(lambda: minigrad.scope("elsewhere")):
        x = minigrad.tensor([1.0], requires_grad=True)
        with minigrad.scope("here"):
            y = x * 2
        assert y._ctx.scope == ("here",)


# ---- the trainer's option ---------------------------------------------------------------
@pytest.mark.parametrize("task", ["sort", "parity"])
def test_trainer_data_parallel_matches_one_graph(task, monkeypatch):
    calls = []
    real = minigrad.data_parallel_backward

    def spy(loss_fn, chunks, params, weights=None):
        chunks = list(chunks)
        calls.append(len(chunks))
        return real(loss_fn, chunks, params, weights)

    monkeypatch.setattr(minigrad, "data_parallel_backward", spy)
    t = get_task(task, **({"max_len": 4, "min_len": 2, "num_digits": 5} if task == "sort" else {}))
    rows = []
    for parts in (1, 3):
        mc = model_config_for(t, d_model=16, nhead=2, num_layers=1, dim_feedforward=32, dropout=0.0)
        config = TrainConfig(task=task, task_kwargs=t.config, steps=4, batch_size=10, lr=3e-3, warmup=1, progress=False)
        config.data_parallel = parts
        trainer = Trainer(config, mc, t)
        trainer.model.to(dtype="float64")
        trainer.optimizer = trainer._make_optimizer()
        trainer.schedule = trainer._make_schedule()
        with num_threads(2):
            rows.append([trainer.train_step(trainer.train_batch(s)) for s in range(4)])
    assert calls == [3, 3, 3, 3]  # only the run with data_parallel=3 used it
    for (loss1, counts1, norm1), (loss3, counts3, norm3) in zip(*rows):
        assert loss3 == pytest.approx(loss1, rel=1e-10)
        assert norm3 == pytest.approx(norm1, rel=1e-9)
        assert counts3 == counts1


def test_train_config_checks_data_parallel():
    with pytest.raises(ValueError, match="data_parallel must be between 1 and batch_size"):
        TrainConfig(batch_size=4, data_parallel=5)
    with pytest.raises(ValueError, match="data_parallel"):
        TrainConfig(data_parallel=0)
