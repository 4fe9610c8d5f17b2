"""minigrad.accel: every accelerated op against its reference op, and the switch itself.

Each accelerated op (``minigrad.accel.ops.OPS``, pinned below) is run with the
acceleration on and off on the same inputs: the value and the gradient of every input
under a random upstream gradient must agree (float64 to 1e-12, float32 to rounding), at
1 and 2 numba threads, and the node must really be the accelerated class (so a kernel
that silently declined would fail here). Second order with the acceleration on runs the
reference's Tensor-op backward, so it must agree too. Whole training steps give the same
losses in both modes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad
import minigrad.functional as F
from minigrad import registry

numba = pytest.importorskip("numba", reason="the acceleration's CPU kernels need numba (the fast extra)")
from minigrad.accel import cpu, ops  # noqa: E402  (needs numba)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def accel_off_after():
    yield
    minigrad.accel.disable()


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def tensors(arrays, dtype, requires_grad=True):
    return [minigrad.tensor(a, dtype=dtype, requires_grad=requires_grad) for a in arrays]


def run(fn, arrays, dtype, seed=0, create_graph=False):
    """fn's value, the node's class, and every input's gradient under a random upstream gradient."""
    xs = tensors(arrays, dtype)
    y = fn(*xs)
    u = minigrad.tensor(rng(seed + 99).standard_normal(y.shape), dtype=dtype)
    grads = minigrad.grad(y, xs, grad_outputs=u, create_graph=create_graph, allow_unused=True)
    out = [y.detach().numpy()] + [None if g is None else g.detach().numpy() for g in grads]
    total = sum((g * g).sum() for g in grads if g is not None) if create_graph else None
    if total is not None and total.requires_grad:  # differentiate again: the sum of the gradients' squares
        out += [None if g is None else g.numpy() for g in minigrad.grad(total, xs, allow_unused=True)]
    return out, type(y.grad_fn)


def both_modes(fn, arrays, dtype, threads=1, create_graph=False):
    minigrad.accel.disable()
    expected, ref_cls = run(fn, arrays, dtype, create_graph=create_graph)
    status = minigrad.accel.enable(malloc=False)
    assert "cpu: on" in status, status
    previous = minigrad.get_num_threads()
    minigrad.set_num_threads(threads)
    minigrad.accel.set_kernel_threads(threads)
    try:
        got, fast_cls = run(fn, arrays, dtype, create_graph=create_graph)
    finally:
        minigrad.set_num_threads(previous)
        minigrad.accel.set_kernel_threads(1)
        minigrad.accel.disable()
    return expected, got, ref_cls, fast_cls


def assert_agree(expected, got, dtype):
    """Equal to rounding. In float32 the absolute tolerance grows with the array's largest entry:
    a sum of many terms summed in another order (a product's tiles against BLAS) differs by
    rounding errors of the size of its terms, which an entry near 0 does not show."""
    rtol, atol = (1e-12, 1e-13) if dtype == "float64" else (2e-5, 2e-6)
    assert len(expected) == len(got)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert (e is None) == (g is None), i
        if e is not None:
            finite = np.abs(np.asarray(e)[np.isfinite(e)])
            scale = max(1.0, float(finite.max())) if dtype == "float32" and finite.size else 1.0
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol * scale, err_msg=f"output {i}")


def _mask(kind, shape, seed=3):
    b, _, sq, sk = shape
    r = rng(seed)
    if kind == "key_padding":
        m = r.random((b, 1, 1, sk)) < 0.3
        m[..., 0] = False
        m[0, ..., :] = True  # a batch row with every key masked: weights exactly 0
        return minigrad.tensor(m)
    if kind == "causal":
        return minigrad.tensor(np.triu(np.ones((sq, sk), dtype=bool), 1))
    return None


# ---- the pinned cases: op -> functions that must reach it ----------------------------------------------
CASES = {
    "FastLayerNorm": [
        ("2d", lambda x, w, b: F.layer_norm(x, 8, w, b), [(5, 8), (8,), (8,)]),
        ("3d", lambda x, w, b: F.layer_norm(x, 8, w, b), [(2, 3, 8), (8,), (8,)]),
        ("no_affine", lambda x: F.layer_norm(x, 8), [(4, 8)]),
        ("two_axes", lambda x, w, b: F.layer_norm(x, (2, 4), w, b), [(3, 2, 4), (2, 4), (2, 4)]),
    ],
    "FastAttentionWeights": [
        ("plain", lambda q, k: F.attention_weights(q, k), [(2, 2, 4, 8), (2, 2, 5, 8)]),
        ("scaled", lambda q, k: F.attention_weights(q, k, scale=0.37), [(2, 3, 6, 4), (2, 3, 6, 4)]),
        (
            "key_padding",
            lambda q, k: F.attention_weights(q, k, mask=_mask("key_padding", (2, 2, 5, 6))),
            [(2, 2, 5, 4), (2, 2, 6, 4)],
        ),
        ("causal", lambda q, k: F.attention_weights(q, k, mask=_mask("causal", (1, 2, 5, 5))), [(1, 2, 5, 4)] * 2),
        ("broadcast_k", lambda q, k: F.attention_weights(q, k), [(2, 3, 4, 8), (1, 4, 8)]),
        # heads that fit numba_tiles' register tiles (they run where the products are split over threads)
        (
            "tiles_key_padding",
            lambda q, k: F.attention_weights(q, k, scale=0.3, mask=_mask("key_padding", (2, 2, 8, 16))),
            [(2, 2, 8, 16), (2, 2, 16, 16)],
        ),
        (
            "tiles_causal",
            lambda q, k: F.attention_weights(q, k, mask=_mask("causal", (1, 2, 16, 16))),
            [(1, 2, 16, 32)] * 2,
        ),
        ("tiles_3d", lambda q, k: F.attention_weights(q, k, scale=0.5), [(3, 8, 16), (3, 16, 16)]),
    ],
    "FastSoftmax": [
        ("last", lambda x: F.softmax(x, -1), [(4, 7)]),
        ("3d", lambda x: F.softmax(x, -1), [(2, 3, 5)]),
        ("not_last", lambda x: F.softmax(x, 0), [(4, 7)]),  # the reference's code, through the subclass
    ],
    "FastLinear": [
        ("2d", lambda x, w, b: F.linear(x, w, b), [(6, 5), (7, 5), (7,)]),
        ("3d", lambda x, w, b: F.linear(x, w, b), [(2, 3, 5), (4, 5), (4,)]),
        ("no_bias", lambda x, w: F.linear(x, w), [(6, 5), (3, 5)]),
    ],
    "FastLinearReLU": [
        ("2d", lambda x, w, b: F.linear_relu(x, w, b), [(6, 5), (7, 5), (7,)]),
        ("3d", lambda x, w, b: F.linear_relu(x, w, b), [(2, 3, 5), (4, 5), (4,)]),
        ("no_bias", lambda x, w: F.linear_relu(x, w), [(6, 5), (3, 5)]),
    ],
    "FastMatMul": [  # a stack big enough to be split over the threads, and a small one
        ("big_stack", lambda a, b: a @ b, [(8, 4, 64, 32), (8, 4, 32, 128)]),
        ("small_stack", lambda a, b: a @ b, [(2, 3, 4, 5), (2, 3, 5, 6)]),
        ("broadcast", lambda a, b: a @ b, [(2, 3, 4, 5), (5, 6)]),  # backward: the reference's
        ("2d", lambda a, b: a @ b, [(4, 5), (5, 3)]),
    ],
    "FastFlashAttention": [  # blocks that do not divide the sequences; a dead row (batch 0 pads every key)
        ("plain", lambda q, k, v: F.flash_attention(q, k, v, block_size=3), [(2, 2, 7, 4), (2, 2, 5, 4), (2, 2, 5, 3)]),
        (
            "causal_padding",
            lambda q, k, v: F.flash_attention(q, k, v, _mask("key_padding", (2, 2, 5, 6)), causal=True, block_size=2),
            [(2, 2, 5, 4), (2, 2, 6, 4), (2, 2, 6, 4)],
        ),
        (
            "float_mask",
            lambda q, k, v: F.flash_attention(
                q, k, v, minigrad.tensor(rng(4).standard_normal((5, 6)), dtype=q.dtype), block_size=4
            ),
            [(1, 3, 5, 4), (1, 3, 6, 4), (1, 3, 6, 2)],
        ),
    ],
    "FastAdd": [  # one shape with at least cpu.SMALL elements: the kernel; the others: the reference's add
        ("large", lambda a, b: a + b, [(256, 160), (256, 160)]),
        ("small", lambda a, b: a + b, [(6, 5), (6, 5)]),
        ("broadcast", lambda a, b: a + b, [(6, 5), (5,)]),
    ],
    "FastIndexAddZeros": [  # the backward of an embedding lookup and of integer indexing
        ("embedding", lambda w: F.embedding(minigrad.tensor([[1, 3, 1], [0, 3, 3]]), w), [(5, 4)]),
        ("getitem", lambda x: x[minigrad.tensor([2, 0, 2, 1])], [(4, 3)]),
    ],
}


def test_every_accelerated_op_has_cases():
    assert sorted(CASES) == sorted(op.__name__ for op in ops.OPS)


CASE_IDS = [(op, name) for op, cases in CASES.items() for name, _, _ in cases]


def _case(op_name, case_name):
    for name, fn, shapes in CASES[op_name]:
        if name == case_name:
            return fn, [rng(i).standard_normal(s) for i, s in enumerate(shapes)]
    raise KeyError(case_name)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("op_name,case_name", CASE_IDS)
def test_accelerated_op_matches_the_reference(op_name, case_name, dtype, threads):
    fn, arrays = _case(op_name, case_name)
    expected, got, ref_cls, fast_cls = both_modes(fn, arrays, dtype, threads)
    if op_name != "FastIndexAddZeros":  # that one is the backward's node, checked below
        assert fast_cls.__name__ == op_name and issubclass(fast_cls, ref_cls)
    assert_agree(expected, got, dtype)


@pytest.mark.parametrize("op_name,case_name", CASE_IDS)
def test_second_order_with_the_acceleration_on_is_the_reference(op_name, case_name):
    fn, arrays = _case(op_name, case_name)
    expected, got, _, _ = both_modes(fn, arrays, "float64", create_graph=True)
    assert_agree(expected, got, "float64")


def test_the_embedding_gradient_runs_the_accelerated_scatter_add(monkeypatch):
    calls = []
    real = cpu.scatter_add
    monkeypatch.setattr(cpu, "scatter_add", lambda *a: calls.append(a[1].shape) or real(*a))
    minigrad.accel.enable(malloc=False)
    w = minigrad.randn(5, 4, requires_grad=True)
    F.embedding(minigrad.tensor([[1, 3, 1]]), w).sum().backward()
    assert calls == [(1, 3)]
    np.testing.assert_array_equal(w.grad.numpy()[:, 0], [0, 2, 0, 1, 0])


def test_the_large_add_runs_on_the_kernel_threads_with_numpys_bits(monkeypatch):
    from minigrad.accel import numba_add

    calls = []
    real = numba_add.add
    monkeypatch.setattr(numba_add, "add", lambda a, b, out, parts: calls.append(parts) or real(a, b, out, parts))
    r = rng(5)
    a, b = r.standard_normal((300, 128)), r.standard_normal((300, 128))
    a[0, :4], b[0, :4] = [np.nan, np.inf, -0.0, np.inf], [1.0, -np.inf, -0.0, 1.0]  # NaN, inf - inf, -0 + -0
    minigrad.accel.enable(malloc=False)
    minigrad.accel.set_kernel_threads(2)
    try:
        for dtype in ("float64", "float32"):
            x, y = (minigrad.tensor(v, dtype=dtype) for v in (a, b))
            got = (x + y).numpy()
            with np.errstate(invalid="ignore"):  # inf - inf: NumPy warns; the kernel gives the same NaN silently
                want = x.numpy() + y.numpy()
            assert got.dtype == dtype
            np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{got.itemsize}"))
        assert calls == [2, 2]
        c, d = r.standard_normal((300, 128)), r.standard_normal((300, 128))
        for x, y in [(c[:, :64], d[:, :64]), (c[:2], d[:2]), (c, d[0]), (c.astype(int), d.astype(int))]:
            (minigrad.tensor(x) + minigrad.tensor(y)).numpy()  # a view, small, broadcast, integers: NumPy's add
        minigrad.accel.set_kernel_threads(1)
        (minigrad.tensor(c) + minigrad.tensor(d)).numpy()  # one kernel thread: NumPy's add as well
        assert calls == [2, 2]
    finally:
        minigrad.accel.set_kernel_threads(1)


def test_a_layout_the_kernels_do_not_take_runs_the_reference_code():
    x = minigrad.tensor(rng(1).standard_normal((8, 5)).T, dtype="float64", requires_grad=True)  # not C-contiguous
    h = minigrad.tensor(rng(2).standard_normal((5, 8)), dtype="float16")  # a dtype the kernels do not take
    minigrad.accel.enable(malloc=False)
    for t in (x, h):
        y = F.layer_norm(t, 8)
        assert isinstance(y.grad_fn, ops.FastLayerNorm) or not t.requires_grad
    minigrad.accel.disable()
    ref = F.layer_norm(h, 8).numpy()
    minigrad.accel.enable(malloc=False)
    np.testing.assert_array_equal(F.layer_norm(h, 8).numpy(), ref)


def test_a_broken_kernel_is_caught_by_the_comparison(monkeypatch):
    real = cpu.layer_norm_forward

    def off_by_a_little(*args):
        out, mu, rstd = real(*args)
        return out * 1.001, mu, rstd

    monkeypatch.setattr(cpu, "layer_norm_forward", off_by_a_little)
    fn, arrays = _case("FastLayerNorm", "2d")
    expected, got, _, _ = both_modes(fn, arrays, "float64")
    with pytest.raises(AssertionError):
        assert_agree(expected, got, "float64")


# ---- optimizer and whole training steps -------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_with_the_acceleration_gives_the_reference_bits(dtype):
    def train(accel):
        (minigrad.accel.enable(malloc=False) if accel else minigrad.accel.disable())
        ps = tensors([rng(i).standard_normal(s) for i, s in enumerate([(3, 4), (7,), (2, 2, 2)])], dtype)
        opt = minigrad.optim.AdamW(ps, lr=0.01, weight_decay=0.1)
        for step in range(5):
            for i, p in enumerate(ps):
                p.grad = minigrad.tensor(rng(10 * step + i).standard_normal(p.shape), dtype=dtype)
            opt.step()
        return [p.detach().numpy() for p in ps]

    for a, b in zip(train(False), train(True)):
        np.testing.assert_array_equal(a, b)


def _training_losses(accel: bool, steps: int = 6) -> list[float]:
    """Losses of a few float64 training steps of a small encoder (dropout on)."""
    from encoder.tasks import get_task
    from encoder.training import TrainConfig, Trainer, model_config_for

    (minigrad.accel.enable(malloc=False) if accel else minigrad.accel.disable())
    task = get_task("sort")
    model_config = model_config_for(task, d_model=16, nhead=2, num_layers=2, dropout=0.1)
    trainer = Trainer(TrainConfig(task="sort", steps=steps, batch_size=8, progress=False), model_config, task)
    trainer.model.to(dtype="float64")
    trainer.optimizer = trainer._make_optimizer()
    return [trainer.train_step(trainer.train_batch(i))[0] for i in range(steps)]


def test_training_steps_give_the_same_losses_in_both_modes():
    reference = _training_losses(False)
    accelerated = _training_losses(True)
    np.testing.assert_allclose(accelerated, reference, rtol=1e-9)
    assert _training_losses(True) == accelerated  # same seed, same bits within a mode


# ---- the switch -------------------------------------------------------------------------------------
def test_enable_registers_every_op_and_disable_clears_them():
    minigrad.accel.enable(malloc=False)
    assert minigrad.accel.is_enabled()
    for op in ops.OPS:
        assert registry.lookup(op.__mro__[1], "cpu") is op
        assert registry.lookup(op.__mro__[1], "marked") is op.__mro__[1]  # other devices keep the reference
    text = minigrad.accel.status()
    assert text.startswith("acceleration: on") and "cpu: on (numba" in text
    assert minigrad.accel.summary().startswith("acceleration on: cpu on")
    minigrad.accel.disable()
    assert not registry.implementations and not minigrad.accel.is_enabled()
    assert minigrad.accel.status().startswith("acceleration: off")


def test_a_kernel_failing_its_self_check_turns_the_cpu_part_off(monkeypatch):
    monkeypatch.setattr(cpu, "_checked", [["layer_norm_forward float32 rows=3: max error 0.5"]])
    text = minigrad.accel.enable(malloc=False)
    assert "cpu: off (a kernel failed its self-check: layer_norm_forward float32 rows=3" in text
    assert registry.lookup(ops.FastLayerNorm.__mro__[1], "cpu") is ops.FastLayerNorm.__mro__[1]


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MINIGRAD_")}
    full.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=600)


def test_minigrad_accel_in_the_environment_enables_it_at_import():
    done = _python("import minigrad; print(minigrad.accel.status())", MINIGRAD_ACCEL="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("acceleration: on") and "cpu: on" in done.stdout
    plain = _python("import minigrad; print(minigrad.accel.status())")
    assert plain.stdout.startswith("acceleration: off")


def test_without_numba_enable_says_so_and_the_reference_runs():
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import minigrad, minigrad.functional as F\n"
        "print(minigrad.accel.enable(malloc=False))\n"
        "x = minigrad.randn(3, 4, requires_grad=True); F.layer_norm(x, 4).sum().backward()\n"
        "print(type(x.grad).__name__)\n"
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert "cpu: off (numba is not installed: pip install -e '.[fast]'" in done.stdout
    assert done.stdout.strip().endswith("Tensor")


def test_data_parallel_chunks_run_the_kernels_with_the_kernel_thread_count():
    """numba's thread count is per calling thread: each chunk's thread gets the one asked for
    (a worker left at numba's default would spin OpenMP threads beside the other framework's)."""
    minigrad.accel.enable(malloc=False)
    minigrad.accel.set_kernel_threads(1)
    previous = minigrad.get_num_threads()
    minigrad.set_num_threads(2)
    seen = []
    a = minigrad.tensor(rng(0).standard_normal((4, 8)), requires_grad=True)

    def loss(chunk):
        seen.append(numba.get_num_threads())
        return F.layer_norm(a * chunk, 8).sum()

    try:
        chunks = [minigrad.tensor(rng(i).standard_normal((4, 8))) for i in (1, 2)]
        minigrad.data_parallel_backward(loss, chunks, [a])
    finally:
        minigrad.set_num_threads(previous)
    assert seen == [1, 1]
