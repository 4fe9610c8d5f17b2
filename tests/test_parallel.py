"""minigrad's CPU threads (minigrad.parallel) give the results of a serial run.

Real test arrays are far below ``MIN_WORK_PER_THREAD``, so the threaded code paths would
never run. The ``forced`` fixture sets that threshold to 1 element and the thread count
to 3 (odd, so slices are uneven), and restores both afterwards. Under it this file proves:

* ``slices``/``run_rows``: contiguous, non-empty slices covering every row, as many as
  threads, rows and work allow; results in slice order; nested calls run serially without
  deadlock; a worker's exception reaches the caller; the thread count can be changed (the
  old workers stop) and bad counts are rejected; two callers at once both get their own
  results; a forked child starts its own workers; an interrupt (Ctrl-C) while a call waits
  leaves the workers usable;
* every op of tests/test_backend_independence.py (values and input gradients), plus
  larger shapes that certainly split (ReLU, Add, LayerNorm, attention weights, batched
  matmul, Linear; also under gradcheck), match a one-thread run to 1e-12;
* a whole TransformerEncoderLayer matches a serial run, and a threaded run repeats bit
  for bit; Adam and SGD steps are bit-identical to serial steps;
* on the "marked" backend, threaded kernels keep every array a MarkedArray;
* ``import minigrad`` sets OPENBLAS_THREAD_TIMEOUT only when NumPy is not loaded and never
  overrides the user's value; MINIGRAD_NUM_THREADS sets the count, and a bad value fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from marked_backend import MarkedArray
from test_backend_independence import CASES, Tracker, _make_inputs, _run, away, f
from threads import num_threads

import minigrad
import minigrad.backend as B
import minigrad.functional as F
from encoder.layers import TransformerEncoderLayer
from minigrad import nn, parallel
from minigrad.optim import SGD, Adam, AdamW

ROOT = Path(__file__).resolve().parents[1]
BIG = 10**12  # "work" large enough to split under any threshold


@pytest.fixture
def forced(monkeypatch):
    """Threads for every call with at least 1 element of work per thread; 3 threads."""
    monkeypatch.setattr(parallel, "MIN_WORK_PER_THREAD", 1)
    with num_threads(3):
        yield


@pytest.fixture
def splits(monkeypatch):
    """The number of slices of every ``parallel.run_rows`` call (what Backend.run_rows uses)."""
    calls: list[int] = []
    real = parallel.run_rows

    def spy(kernel, rows, work):
        calls.append(len(parallel.slices(rows, work)))
        return real(kernel, rows, work)

    monkeypatch.setattr(parallel, "run_rows", spy)
    return calls


def _assert_close(a, b, what=""):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, what
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=what)


def _compare_with_serial(fn, specs):
    """Run ``fn`` serially and with the current (forced) threads; values and grads agree."""
    with num_threads(1):
        _, _, serial_values, serial_grads = _run(fn, specs, "cpu")
    _, _, values, grads = _run(fn, specs, "cpu")
    assert len(values) == len(serial_values)
    for i, (v, s) in enumerate(zip(values, serial_values)):
        _assert_close(v, s, f"output {i}")
    for i, (g, s) in enumerate(zip(grads, serial_grads)):
        assert (g is None) == (s is None), f"grad of input {i}"
        if g is not None:
            _assert_close(g, s, f"grad of input {i}")
    return values, grads


# ---- slices and run_rows ----------------------------------------------------------------------
@pytest.mark.parametrize("threads", [1, 2, 3, 4, 7])
def test_slices_cover_rows_contiguously(threads, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_WORK_PER_THREAD", 10)
    with num_threads(threads):
        for rows in range(1, 13):
            for work in (0, 9, 10, 19, 25, 40, 1000):
                parts = parallel.slices(rows, work)
                assert len(parts) == min(threads, rows, max(1, work // 10)), (rows, work)
                assert parts[0][0] == 0 and parts[-1][1] == rows
                for (_, hi), (next_lo, _) in zip(parts, parts[1:]):
                    assert hi == next_lo  # contiguous
                sizes = [hi - lo for lo, hi in parts]
                assert min(sizes) >= 1  # no empty slice
                assert max(sizes) - min(sizes) <= 1  # balanced


def test_one_slice_without_threads_or_work(monkeypatch):
    with num_threads(1):
        assert parallel.slices(100, BIG) == [(0, 100)]
    with num_threads(3):
        assert parallel.slices(100, parallel.MIN_WORK_PER_THREAD * 2 - 1) == [(0, 100)]  # under 2 per thread
        assert len(parallel.slices(100, parallel.MIN_WORK_PER_THREAD * 2)) == 2
        assert parallel.slices(1, BIG) == [(0, 1)]
        calls = []
        assert parallel.run_rows(lambda lo, hi: calls.append((lo, hi)) or "r", 100, 10) == ["r"]
        assert calls == [(0, 100)]


def test_uneven_slices_with_three_threads(forced):
    assert parallel.slices(10, BIG) == [(0, 3), (3, 6), (6, 10)]
    assert parallel.slices(5, BIG) == [(0, 1), (1, 3), (3, 5)]
    assert parallel.slices(2, BIG) == [(0, 1), (1, 2)]


def test_results_come_back_in_slice_order(forced):
    def kernel(lo, hi):
        time.sleep(0.02 * (3 - lo // 4))  # later slices finish first
        return lo, hi, threading.current_thread().name

    out = parallel.run_rows(kernel, 12, BIG)
    assert [(lo, hi) for lo, hi, _ in out] == parallel.slices(12, BIG) == [(0, 4), (4, 8), (8, 12)]
    assert out[0][2] == threading.current_thread().name  # the caller runs the first slice
    assert all(name.startswith("minigrad") for _, _, name in out[1:])  # the others run on the pool


def test_nested_run_rows_is_serial_and_does_not_deadlock(forced):
    inner_calls, inner_slices, errors = [], [], []

    def inner(lo, hi):
        inner_calls.append((lo, hi))
        return hi - lo

    def outer(lo, hi):
        parts = parallel.slices(6, BIG)
        inner_slices.append(parts)
        if len(parts) > 1:
            return None  # run_rows would wait for pool threads that are busy running outer: a deadlock
        return parallel.run_rows(inner, 6, BIG)

    def main():
        try:
            assert parallel.run_rows(outer, 9, BIG) == [[6], [6], [6]]
        except BaseException as e:  # reported to the test thread below
            errors.append(e)

    t = threading.Thread(target=main, daemon=True)
    t.start()
    t.join(timeout=10)
    assert not t.is_alive(), "nested run_rows deadlocked"
    assert not errors, errors
    assert inner_slices == [[(0, 6)]] * 3
    assert inner_calls == [(0, 6)] * 3
    # outside a kernel, the caller's thread is not marked as inside any more
    assert len(parallel.slices(6, BIG)) == 3


@pytest.mark.parametrize("bad_slice", [1, 2])
def test_worker_exception_propagates(forced, bad_slice):
    parts = parallel.slices(9, BIG)

    def kernel(lo, hi):
        if (lo, hi) == parts[bad_slice]:
            raise KeyError(f"slice {lo}:{hi}")
        return lo

    with pytest.raises(KeyError, match=f"slice {parts[bad_slice][0]}:{parts[bad_slice][1]}"):
        parallel.run_rows(kernel, 9, BIG)
    assert parallel.run_rows(lambda lo, hi: lo, 9, BIG) == [0, 3, 6]  # the pool still works


def test_worker_exception_waits_for_every_slice(forced):
    finished = []

    def kernel(lo, hi):
        if lo == 3:
            raise RuntimeError("boom")
        if lo == 6:
            time.sleep(0.2)
            finished.append(lo)
        return lo

    with pytest.raises(RuntimeError, match="boom"):
        parallel.run_rows(kernel, 9, BIG)
    assert finished == [6], "run_rows returned while a slice was still writing its rows"


def _helper_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("minigrad-")]


def test_changing_the_count_stops_the_old_workers(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_WORK_PER_THREAD", 1)
    with num_threads(4):
        parallel.run_rows(lambda lo, hi: lo, 8, BIG)
        assert len(_helper_threads()) == 3
        minigrad.set_num_threads(2)
        assert _helper_threads() == []  # stopped and gone, not left waiting forever
        parallel.run_rows(lambda lo, hi: lo, 8, BIG)
        assert len(_helper_threads()) == 1


def test_two_callers_at_once_get_their_own_results(forced):
    """While one thread's call uses the workers, another's runs its slices itself."""
    errors = []

    def caller(tag: int) -> None:
        try:
            for _ in range(200):
                out = parallel.run_rows(lambda lo, hi: (tag, lo, hi), 9, BIG)
                assert out == [(tag, 0, 3), (tag, 3, 6), (tag, 6, 9)]
        except BaseException as e:  # reported to the test thread below
            errors.append(e)

    threads = [threading.Thread(target=caller, args=(tag,)) for tag in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "concurrent run_rows calls deadlocked"
    assert not errors, errors


INTERRUPTED_CALL = """
import signal, time
import minigrad
from minigrad import parallel

parallel.MIN_WORK_PER_THREAD = 1
minigrad.set_num_threads(3)


def slow(lo, hi):
    if lo:
        time.sleep(0.3)  # the workers' slices are still running when the interrupt comes
    return lo


def interrupt(signum, frame):
    raise KeyboardInterrupt


signal.signal(signal.SIGALRM, interrupt)
signal.setitimer(signal.ITIMER_REAL, 0.05)
try:
    parallel.run_rows(slow, 9, 10**12)
except KeyboardInterrupt:
    pass
else:
    raise AssertionError("the interrupt did not reach the caller")
for i in range(30):  # the first calls meet workers still busy with the interrupted call
    out = parallel.run_rows(lambda lo, hi, i=i: (i, lo, hi), 9, 10**12)
    assert out == [(i, 0, 3), (i, 3, 6), (i, 6, 9)], out
minigrad.set_num_threads(2)  # stopping the workers works after an interrupt too
assert parallel.run_rows(lambda lo, hi: lo, 9, 10**12) == [0, 4]
print("ok")
"""


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="signal.setitimer is not available on this platform")
def test_an_interrupted_call_leaves_the_workers_usable():
    """Ctrl-C while run_rows waits for a worker: later calls still get their own results.
    (In a subprocess, so that a deadlock fails the test after a timeout instead of hanging it.)"""
    assert _python(INTERRUPTED_CALL) == "ok"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available on this platform")
def test_a_forked_child_starts_its_own_workers(forced):
    parallel.run_rows(lambda lo, hi: lo, 9, BIG)  # the parent's workers exist
    with warnings.catch_warnings():  # Python 3.12+ warns that forking a threaded process is risky
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its copy of the parent's workers has no threads behind it
        import signal

        signal.alarm(20)  # a deadlock kills the child instead of hanging the test
        ok = parallel.run_rows(lambda lo, hi: lo, 9, BIG) == [0, 3, 6]
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3", None])
def test_set_num_threads_rejects_bad_counts(bad):
    prev = minigrad.get_num_threads()
    with pytest.raises(ValueError, match="positive integer"):
        minigrad.set_num_threads(bad)
    assert minigrad.get_num_threads() == prev


def test_changing_the_thread_count(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_WORK_PER_THREAD", 1)
    for n in (2, 5, 3, 1):
        with num_threads(n):
            assert minigrad.get_num_threads() == n
            assert len(parallel.slices(100, BIG)) == n
            # n slices meet at a barrier: they must really run at once, on n different threads
            barrier = threading.Barrier(n, timeout=5)

            def kernel(lo, hi, barrier=barrier):
                barrier.wait()
                return threading.current_thread().name

            names = parallel.run_rows(kernel, 100, BIG)
            assert len(set(names)) == n


def test_backends_choose_threads():
    assert B.Backend.threaded is False
    assert B.NumpyBackend.threaded is True
    assert type(B._BACKENDS["cpu"]).threaded is True


def test_unthreaded_backend_runs_one_slice(forced):
    calls = []
    assert B.Backend().run_rows(lambda lo, hi: calls.append((lo, hi)) or 1, 10, BIG) == [1]
    assert calls == [(0, 10)]
    assert len(B._BACKENDS["cpu"].run_rows(lambda lo, hi: 1, 10, BIG)) == 3


def test_unthreaded_backend_hands_whole_arrays_to_elementwise_and_batch_kernels(marked, forced):
    """On a GPU (an unthreaded backend) slicing every array of a kernel call costs CPU time:
    the op helpers call the kernel once with the arrays themselves."""
    from minigrad.autograd import Function

    fn = Function.__new__(Function)
    fn.device, fn.xp = "marked", marked.xp
    a = marked.from_host(np.arange(12.0).reshape(4, 3))
    b = marked.from_host(np.ones((4, 3)))
    seen = []

    def add(out, x, y):
        seen.append((x is a, y is b, out.shape))
        marked.xp.add(x, y, out=out)

    out = fn.elementwise(add, a, b)
    assert seen == [(True, True, (4, 3))] and np.array_equal(out, np.arange(12.0).reshape(4, 3) + 1)
    batch = marked.from_host(np.ones((5, 2, 3)))
    seen.clear()
    fn.run_batch(lambda x: seen.append(x is batch), (batch,), batch.shape)
    assert seen == [True]


# ---- ops: threads give the serial results -----------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_op_matches_serial(name, forced):
    fn, specs = CASES[name]
    _compare_with_serial(fn, specs)


_BOOL_MASK = minigrad.tensor(np.arange(6)[None, :] >= np.array([6, 3, 1, 5, 0])[:, None]).reshape(5, 1, 1, 6)
_FLOAT_MASK = minigrad.tensor(np.random.default_rng(5).standard_normal((4, 6)), dtype="float64")

# name: (fn, input specs, at least this many run_rows calls split into several slices)
THREADED: dict = {
    "relu": (F.relu, [away(7, 5, 3)], 2),
    "add": (lambda a, b: a + b, [f(6, 4), f(6, 4)], 1),
    "layer_norm_1axis": (lambda x, w, b: F.layer_norm(x, 4, w, b), [f(7, 3, 4), f(4), f(4)], 2),
    "layer_norm_1axis_weight_only": (lambda x, w: F.layer_norm(x, 4, w), [f(7, 3, 4), f(4)], 2),
    "layer_norm_1axis_bias_only": (lambda x, b: F.layer_norm(x, 4, None, b), [f(7, 3, 4), f(4)], 2),
    "layer_norm_1axis_no_affine": (lambda x: F.layer_norm(x, 4), [f(7, 3, 4)], 2),
    "layer_norm_2axes": (lambda x, w, b: F.layer_norm(x, (3, 4), w, b), [f(5, 3, 4), f(3, 4), f(3, 4)], 2),
    "layer_norm_2axes_no_affine": (lambda x: F.layer_norm(x, (3, 4)), [f(5, 3, 4)], 2),
    "attention_weights": (lambda q, k: F.attention_weights(q, k), [f(5, 2, 4, 3), f(5, 2, 6, 3)], 2),
    "attention_weights_bool_mask": (
        lambda q, k: F.attention_weights(q, k, mask=_BOOL_MASK, scale=0.4),
        [f(5, 2, 4, 3), f(5, 2, 6, 3)],
        2,
    ),
    "attention_weights_float_mask": (
        lambda q, k: F.attention_weights(q, k, mask=_FLOAT_MASK),
        [f(5, 2, 4, 3), f(5, 2, 6, 3)],
        2,
    ),
    "attention_weights_k_broadcast": (lambda q, k: F.attention_weights(q, k), [f(5, 2, 4, 3), f(1, 2, 6, 3)], 2),
    "matmul_batched": (lambda a, b: a @ b, [f(5, 2, 4, 3), f(5, 2, 3, 6)], 2),
    "linear": (F.linear, [f(7, 3, 4), f(5, 4), f(5)], 1),  # the bias add (its gradient is a BLAS product)
    "linear_relu": (F.linear_relu, [f(7, 3, 4), f(5, 4), f(5)], 2),  # bias + clamp, and the mask in backward
}


@pytest.mark.parametrize("name", list(THREADED))
def test_threaded_op_matches_serial(name, forced, splits):
    fn, specs, min_splits = THREADED[name]
    _compare_with_serial(fn, specs)
    # the threaded run (the serial one made one-slice calls) really split forward and backward
    assert sum(n > 1 for n in splits) >= min_splits, splits


@pytest.mark.parametrize("name", list(THREADED))
def test_threaded_op_gradcheck(name, forced, splits):
    fn, specs, _ = THREADED[name]
    inputs = _make_inputs(specs, "cpu", seed=3)
    assert minigrad.gradcheck(fn, inputs)
    assert any(n > 1 for n in splits)


def test_attention_dead_rows_in_one_slice(forced):
    """Batch row 4 has every key masked; it lies in the last of the slices (0,1), (1,3), (3,5)."""
    q, k = _make_inputs([f(5, 2, 4, 3), f(5, 2, 6, 3)], "cpu", seed=0)
    w = F.attention_weights(q, k, mask=_BOOL_MASK)
    w.backward(minigrad.randn(*w.shape, dtype="float64"))
    w = w.detach().numpy()
    assert np.all(w[4] == 0.0)
    np.testing.assert_allclose(w[:4].sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(w[:4][np.broadcast_to(_BOOL_MASK.numpy()[:4], w[:4].shape)] == 0.0)
    assert np.all(q.grad.numpy()[4] == 0.0) and np.all(k.grad.numpy()[4] == 0.0)
    assert np.all(np.isfinite(q.grad.numpy())) and np.all(np.isfinite(k.grad.numpy()))


def test_batched_int_at_float_matmul():
    a = np.arange(2 * 2 * 3 * 4).reshape(2, 2, 3, 4)
    b = np.random.default_rng(0).standard_normal((2, 2, 4, 5))
    c = minigrad.tensor(a) @ minigrad.tensor(b, dtype="float64")
    assert c.dtype == minigrad.float64
    np.testing.assert_allclose(c.numpy(), a @ b, rtol=1e-12)


# ---- a whole encoder layer --------------------------------------------------------------------
def _encoder_run(layer, x, kpm, u):
    layer.zero_grad()
    x.grad = None
    y = layer(x, src_key_padding_mask=kpm)
    (y * u).sum().backward()
    grads = {name: p.grad.numpy().copy() for name, p in layer.named_parameters()}
    grads["<input>"] = x.grad.numpy().copy()
    return y.detach().numpy(), grads


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_serial(forced, splits, norm_first):
    minigrad.manual_seed(0)
    layer = TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=norm_first).double()
    rng = np.random.default_rng(1)
    x = minigrad.tensor(rng.standard_normal((5, 6, 8)), dtype="float64", requires_grad=True)
    u = minigrad.tensor(rng.standard_normal((5, 6, 8)), dtype="float64")
    kpm = minigrad.tensor(np.arange(6)[None, :] >= np.array([6, 4, 1, 0, 5])[:, None])  # batch row 3 all padding

    with num_threads(1):
        serial_y, serial_grads = _encoder_run(layer, x, kpm, u)
    assert not any(n > 1 for n in splits)
    y, grads = _encoder_run(layer, x, kpm, u)
    assert sum(n > 1 for n in splits) >= 10  # linears, attention, matmuls, norms, relu, residual adds
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, serial_y, rtol=1e-12, atol=1e-12)
    assert grads.keys() == serial_grads.keys()
    for name in grads:
        np.testing.assert_allclose(grads[name], serial_grads[name], rtol=1e-12, atol=1e-12, err_msg=name)
    # for a given thread count, a run is reproducible bit for bit
    y2, grads2 = _encoder_run(layer, x, kpm, u)
    assert np.array_equal(y2, y)
    for name in grads:
        assert np.array_equal(grads2[name], grads[name]), name


# ---- optimizers -------------------------------------------------------------------------------
def _model(sizes):
    minigrad.manual_seed(4)
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out, dtype="float64"), nn.Tanh()]
    return nn.Sequential(*layers)


def _train(sizes, make_opt, threads, steps=4):
    """``steps`` optimizer steps; gradients are computed serially, the step runs with ``threads``."""
    model = _model(sizes)
    params = list(model.parameters())
    opt = make_opt(params)
    rng = np.random.default_rng(0)
    x = minigrad.tensor(rng.standard_normal((6, sizes[0])), dtype="float64")
    for step in range(steps):
        opt.zero_grad()
        with num_threads(1):
            (model(x) ** 2).mean().backward()
        if step == 1:
            params[0].grad = None  # a parameter without a gradient is skipped
        with num_threads(threads):
            opt.step()
    return [p.detach().numpy() for p in params], opt


OPTIMIZERS = {
    "adam": lambda ps: Adam(ps, lr=0.05, weight_decay=0.01),
    "adamw": lambda ps: AdamW(ps, lr=0.05, weight_decay=0.1),
    "sgd_momentum": lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    "sgd_nesterov": lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, dampening=0.0),
    "sgd_dampening": lambda ps: SGD(ps, lr=0.1, momentum=0.5, dampening=0.3),
}


@pytest.mark.parametrize("sizes", [(4, 3), (4, 8, 5, 3)], ids=["2_params", "6_params"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_step_bit_identical(forced, splits, name, sizes):
    serial, _ = _train(sizes, OPTIMIZERS[name], threads=1)
    assert not any(n > 1 for n in splits)
    threaded, opt = _train(sizes, OPTIMIZERS[name], threads=3)
    assert max(splits) == min(3, 2 * (len(sizes) - 1))  # the steps split the parameter list
    before = _model(sizes)
    for i, (a, b, p0) in enumerate(zip(threaded, serial, before.parameters())):
        assert np.array_equal(a, b), f"parameter {i}"
        assert not np.array_equal(a, p0.detach().numpy()), f"parameter {i} was not updated"
    assert len(opt.state) == 2 * (len(sizes) - 1)  # every parameter got its state


# ---- the marked backend -----------------------------------------------------------------------
MARKED_CASES = {
    "relu": (F.relu, [away(7, 5, 3)]),
    "add": (lambda a, b: a + b, [f(6, 4), f(6, 4)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 4, w, b), [f(7, 3, 4), f(4), f(4)]),
    "layer_norm_2axes_no_affine": (lambda x: F.layer_norm(x, (3, 4)), [f(5, 3, 4)]),
    "attention_weights_bool_mask": (
        lambda q, k: F.attention_weights(q, k, mask=_BOOL_MASK.to(q.device), scale=0.4),
        [f(5, 2, 4, 3), f(5, 2, 6, 3)],
    ),
    "attention_weights_k_broadcast": (lambda q, k: F.attention_weights(q, k), [f(5, 2, 4, 3), f(1, 2, 6, 3)]),
    "matmul_batched": (lambda a, b: a @ b, [f(5, 2, 4, 3), f(5, 2, 3, 6)]),
    "linear": (F.linear, [f(7, 3, 4), f(5, 4), f(5)]),
    "linear_relu": (F.linear_relu, [f(7, 3, 4), f(5, 4), f(5)]),
}


@pytest.mark.parametrize("name", list(MARKED_CASES))
def test_threaded_op_stays_marked(name, marked, monkeypatch, forced, splits):
    fn, specs = MARKED_CASES[name]
    _, _, cpu_values, cpu_grads = _run(fn, specs, "cpu")
    splits.clear()

    monkeypatch.setattr(marked, "threaded", True)
    tracker = Tracker(monkeypatch)
    inputs, outs, values, grads = _run(fn, specs, "marked")
    tracker.check()
    assert sum(n > 1 for n in splits) >= 1, "no threaded path ran on the marked backend"
    for t in inputs + outs:
        assert type(t.data) is MarkedArray
    for t in inputs:
        if t.requires_grad:
            assert type(t.grad.data) is MarkedArray
    for v, c in zip(values, cpu_values):
        _assert_close(v, c)
    for g, c in zip(grads, cpu_grads):
        _assert_close(g, c)


def test_threaded_optimizer_stays_marked(marked, monkeypatch, forced, splits):
    monkeypatch.setattr(marked, "threaded", True)
    params = [nn.Parameter(minigrad.randn(3, 2, dtype="float64", device="marked")) for _ in range(5)]
    opt = Adam(params, lr=0.1)
    for p in params:
        p.grad = minigrad.randn(3, 2, dtype="float64", device="marked")
    opt.step()
    assert max(splits) == 3
    for p in params:
        assert type(p.data) is MarkedArray
        assert all(type(v) is MarkedArray for k, v in opt.state[p].items() if k != "step")


# ---- environment variables at import ----------------------------------------------------------
def _python(code: str, **env_vars: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "MINIGRAD_NUM_THREADS")}
    env.update(env_vars)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


SHOW_TIMEOUT = "import os; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"


def test_import_minigrad_first_sets_openblas_timeout():
    code = "import sys, minigrad; assert 'numpy' in sys.modules; " + SHOW_TIMEOUT
    assert _python(code) == "16"


def test_import_numpy_first_leaves_openblas_timeout_unset():
    assert _python("import numpy, minigrad; " + SHOW_TIMEOUT) == "None"


def test_user_openblas_timeout_is_kept():
    assert _python("import minigrad; " + SHOW_TIMEOUT, OPENBLAS_THREAD_TIMEOUT="4") == "4"


def test_minigrad_num_threads_env_sets_default():
    assert _python("import minigrad; print(minigrad.get_num_threads())", MINIGRAD_NUM_THREADS="3") == "3"


@pytest.mark.parametrize("value", ["abc", "0", "-2"])
def test_bad_minigrad_num_threads_env_fails_import(value):
    code = "try:\n    import minigrad\nexcept ValueError as e:\n    print('ValueError:', e)"
    out = _python(code, MINIGRAD_NUM_THREADS=value)
    assert out.startswith("ValueError:") and "MINIGRAD_NUM_THREADS" in out and repr(value) in out


def test_set_num_threads_inside_a_kernel_is_refused(forced):
    errors = parallel.run_rows(lambda lo, hi: _try_set_threads(), 6, 1 << 30)
    assert errors == ["RuntimeError"] * 3
    assert minigrad.get_num_threads() == 3


def _try_set_threads():
    try:
        minigrad.set_num_threads(2)
    except RuntimeError:
        return "RuntimeError"
    return "accepted"


def test_layer_norm_of_integers_computes_in_float64():
    x = minigrad.tensor(np.arange(12).reshape(3, 4))
    y = minigrad.functional.layer_norm(x, 4)
    assert y.dtype == np.float64
    row = np.arange(4.0)
    np.testing.assert_allclose(y.numpy()[0], (row - row.mean()) / np.sqrt(row.var() + 1e-5))
