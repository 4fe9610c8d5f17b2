"""The acceleration's products on numba's threads (``minigrad.accel.numba_gemm``).

With two or more kernel threads, the accelerated ops' matrix products run as slices on
numba's threads, one BLAS call each, and NumPy's own BLAS is held to one thread. Here the
size thresholds are set to 0, so that every product and every kernel of the small test
cases really runs split over two threads, and everything is checked against the reference
ops: values and every gradient, whole training runs, and the switch that gives NumPy's
BLAS its thread count back.
"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad
from encoder.attention import MultiHeadAttention

pytest.importorskip("numba", reason="the acceleration's CPU kernels need numba (the fast extra)")
from test_accel import CASE_IDS, _case, _training_losses, assert_agree, run  # noqa: E402

from minigrad.accel import cpu, numba_gemm  # noqa: E402  (needs numba)

if numba_gemm.load() is not None:  # pragma: no cover - NumPy without OpenBLAS
    pytest.skip(f"the products on numba's threads are off here: {numba_gemm.load()}", allow_module_level=True)


@pytest.fixture
def split_everything(monkeypatch):
    """The acceleration on with 2 kernel threads, every product and kernel split over them."""
    monkeypatch.setattr(numba_gemm, "MIN_WORK", 0)
    monkeypatch.setattr(cpu, "SMALL", 0)
    calls = []
    for name in ("matmul", "matmul_pair", "matmul_stack"):
        real = getattr(numba_gemm, name)
        def counted(*a, _real=real, _name=name, **kw):
            calls.append(_name)
            return _real(*a, **kw)

        monkeypatch.setattr(numba_gemm, name, counted)
    previous = minigrad.get_num_threads()
    yield calls
    minigrad.set_num_threads(previous)
    minigrad.accel.set_kernel_threads(1)
    minigrad.accel.disable()


def _on(threads=2):
    minigrad.accel.enable(malloc=False)
    minigrad.set_num_threads(threads)
    minigrad.accel.set_kernel_threads(threads)
    return minigrad.accel.status()


PRODUCT_OPS = {"FastLinear", "FastLinearReLU", "FastMatMul", "FastAttentionWeights"}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("op_name,case_name", CASE_IDS)
def test_accelerated_op_with_split_products_matches_the_reference(split_everything, op_name, case_name, dtype):
    fn, arrays = _case(op_name, case_name)
    minigrad.accel.disable()
    expected, _ = run(fn, arrays, dtype)
    assert "products: on" in _on()
    got, _ = run(fn, arrays, dtype)
    assert_agree(expected, got, dtype)
    if op_name in PRODUCT_OPS and case_name not in ("broadcast", "broadcast_k"):
        assert split_everything, "the products did not run on numba's threads"


def test_training_steps_with_split_products_give_the_reference_losses(split_everything):
    reference = _training_losses(False)
    _on()
    accelerated = _training_losses(True)
    assert split_everything
    np.testing.assert_allclose(accelerated, reference, rtol=1e-9)
    _on()
    assert _training_losses(True) == accelerated  # same seed, same bits within a mode


def _layouts(a):
    """a as C order, F order, a transposed copy's transpose and a slice of a wider array."""
    wide = np.zeros((a.shape[0], a.shape[1] + 3), dtype=a.dtype)
    wide[:, 1 : 1 + a.shape[1]] = a
    return [a, np.asfortranarray(a), a.T.copy().T, wide[:, 1 : 1 + a.shape[1]]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_the_split_product_equals_numpys_for_every_layout(dtype, parts):
    r = np.random.default_rng(0)
    a, b = r.standard_normal((37, 19)).astype(dtype), r.standard_normal((19, 23)).astype(dtype)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for x in _layouts(a):
        for y in _layouts(b):
            got = numba_gemm.matmul(x, y, parts)
            assert got.dtype == dtype and got.flags.c_contiguous
            np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
            np.testing.assert_array_equal(numba_gemm.matmul(x, y, parts), got)  # the same bits again
    wide = numba_gemm.matmul(b.T, a.T, parts)  # more columns than rows: split by columns
    np.testing.assert_allclose(wide, expected.T, rtol=tol, atol=tol)


@pytest.mark.parametrize("parts", [1, 2, 5])
def test_the_split_stack_product_equals_numpys_on_head_views(parts):
    r = np.random.default_rng(1)
    q = r.standard_normal((3, 6, 4, 5)).transpose(0, 2, 1, 3)  # (batch, heads, seq, d): views of the heads
    k = r.standard_normal((3, 7, 4, 5)).transpose(0, 2, 1, 3)
    scores = numba_gemm.matmul_stack(q, k.swapaxes(-1, -2), parts)
    np.testing.assert_allclose(scores, q @ k.swapaxes(-1, -2), rtol=1e-12, atol=1e-12)
    flat = r.standard_normal((9, 4, 6))
    np.testing.assert_allclose(numba_gemm.matmul_stack(flat, flat.swapaxes(1, 2), parts), flat @ flat.swapaxes(1, 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("parts", [2, 4])
def test_the_pair_of_products_equals_each_product_on_half_the_threads(dtype, parts):
    """matmul_pair: both products at once, each sliced over half of the threads, with the same
    bits as that product alone on those threads; for every layout of the operands."""
    r = np.random.default_rng(3)
    g = r.standard_normal((37, 19)).astype(dtype)  # a Linear's dL/dout, its weight and its input
    w, x = r.standard_normal((19, 23)).astype(dtype), r.standard_normal((37, 23)).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for a in _layouts(g):
        for b in _layouts(w):
            gx, gw = numba_gemm.matmul_pair(a, b, a.T, x, parts)
            assert gx.flags.c_contiguous and gw.flags.c_contiguous and gx.dtype == gw.dtype == dtype
            np.testing.assert_allclose(gx, g.astype(np.float64) @ w, rtol=tol, atol=tol)
            np.testing.assert_allclose(gw, g.T.astype(np.float64) @ x, rtol=tol, atol=tol)
            np.testing.assert_array_equal(gx, numba_gemm.matmul(a, b, parts // 2))
            np.testing.assert_array_equal(gw, numba_gemm.matmul(a.T, x, parts // 2))


def test_a_pair_the_threads_cannot_share_evenly_is_declined():
    r = np.random.default_rng(4)
    a, b = r.standard_normal((6, 4)), r.standard_normal((4, 5))
    assert numba_gemm.matmul_pair(a, b, a, b, 2) is not None
    for parts in (0, 1, 3):  # one thread, or an odd count: the two products run one after the other
        assert numba_gemm.matmul_pair(a, b, a, b, parts) is None
    assert numba_gemm.matmul_pair(a, b, a.astype(np.float32), b.astype(np.float32), 2) is None  # two dtypes
    assert numba_gemm.matmul_pair(a, b, r.standard_normal((6, 8))[:, ::2], b, 2) is None  # no BLAS layout
    assert numba_gemm.matmul_pair(a, b, a, a, 2) is None  # shapes that do not multiply


@pytest.mark.parametrize("relu", [False, True])
def test_a_linear_layers_two_gradient_products_run_as_a_pair(split_everything, relu):
    r = np.random.default_rng(6)
    x0, w0, b0 = r.standard_normal((5, 7, 6)), r.standard_normal((4, 6)), r.standard_normal(4)
    g = r.standard_normal((5, 7, 4))

    def grads():
        x, w, b = (minigrad.tensor(v, requires_grad=True) for v in (x0, w0, b0))
        fn = minigrad.functional.linear_relu if relu else minigrad.functional.linear  # FastLinearReLU, FastLinear
        fn(x, w, b).backward(minigrad.tensor(g))
        return [t.grad.numpy() for t in (x, w, b)]

    minigrad.accel.disable()
    expected = grads()
    _on()
    split_everything.clear()
    got = grads()
    assert "matmul_pair" in split_everything
    for e, a in zip(expected, got):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


def test_arrays_the_split_product_cannot_take_are_declined():
    r = np.random.default_rng(2)
    a = r.standard_normal((6, 4))
    assert numba_gemm.matmul(a.astype(np.int64), a.T.astype(np.int64), 2) is None
    assert numba_gemm.matmul(a, a.T.astype(np.float32), 2) is None
    assert numba_gemm.matmul(r.standard_normal((6, 8))[:, ::2], a.T, 2) is None  # no BLAS layout
    assert numba_gemm.matmul_stack(r.standard_normal((2, 6, 4)), r.standard_normal((3, 4, 5)), 2) is None


def test_small_products_stay_numpys(monkeypatch):
    calls = []
    monkeypatch.setattr(numba_gemm, "matmul", lambda *a: calls.append(1))
    _on()
    try:
        x = minigrad.randn(4, 5, requires_grad=True)
        w = minigrad.randn(3, 5, requires_grad=True)
        minigrad.functional.linear(x, w).sum().backward()
    finally:
        minigrad.accel.set_kernel_threads(1)
        minigrad.accel.disable()
    assert calls == [] and x.grad.shape == (4, 5)


def test_numpys_blas_gets_its_thread_count_back():
    minigrad.accel.disable()
    before = numba_gemm.blas_threads()
    previous = minigrad.get_num_threads()
    try:
        text = _on(2)
        assert "products: on (large matrix products as 2 slices on numba's 2 threads" in text
        assert numba_gemm.blas_threads() == 1
        minigrad.accel.set_kernel_threads(1)
        assert "products: off (one kernel thread" in minigrad.accel.status()
        assert numba_gemm.blas_threads() == before
        minigrad.accel.set_kernel_threads(2)
        assert numba_gemm.blas_threads() == 1
        minigrad.accel.disable()
        assert numba_gemm.blas_threads() == before
    finally:
        minigrad.set_num_threads(previous)
        minigrad.accel.set_kernel_threads(1)
        minigrad.accel.disable()


def test_data_parallel_chunks_run_one_thread_each_and_give_the_count_back(split_everything):
    numba = pytest.importorskip("numba")
    _on(2)
    seen = []
    a = minigrad.tensor(np.random.default_rng(0).standard_normal((4, 8)), requires_grad=True)

    def loss(chunk):
        seen.append(numba.get_num_threads())
        return minigrad.functional.layer_norm(a * chunk, 8).sum()

    chunks = [minigrad.tensor(np.random.default_rng(i).standard_normal((4, 8))) for i in (1, 2)]
    minigrad.data_parallel_backward(loss, chunks, [a])
    assert seen == [1, 1]
    assert cpu.get_threads() == 2  # the calling thread, which ran a chunk, has its count back


def test_without_the_products_the_default_is_one_kernel_thread(monkeypatch):
    """Where the products cannot run on numba's threads (NumPy's BLAS is not OpenBLAS), the
    kernels stay on one thread by default: split beside another BLAS's threads they stall."""
    monkeypatch.setattr(cpu, "use_thread_products", lambda on: "NumPy's BLAS is not OpenBLAS" if on else None)
    previous = minigrad.get_num_threads()
    minigrad.accel.set_kernel_threads(None)
    try:
        minigrad.set_num_threads(2)
        text = minigrad.accel.enable(malloc=False)
        assert "products: off (NumPy's BLAS is not OpenBLAS" in text
        assert "cpu: on (numba" in text and "1 kernel threads" in text and cpu.get_threads() == 1
        minigrad.accel.set_kernel_threads(2)  # asked for: given
        assert cpu.get_threads() == 2 and "2 kernel threads" in minigrad.accel.status()
    finally:
        minigrad.set_num_threads(previous)
        minigrad.accel.set_kernel_threads(1)
        minigrad.accel.disable()


def test_attention_outputs_and_gradients_come_in_the_layout_where_merging_heads_is_a_view(split_everything):
    """The attention output and the gradients of q, k and v are views of (batch, seq, heads, d)
    arrays, so merge_heads (forward) and split_heads's backward do not copy them."""
    r = np.random.default_rng(5)
    q = r.standard_normal((2, 6, 4, 8)).transpose(0, 2, 1, 3)  # (batch, heads, seq, d) views, as split_heads gives
    scores = r.standard_normal((2, 4, 6, 6))
    out = numba_gemm.matmul_stack(scores, q, 2, heads_layout=True)
    np.testing.assert_allclose(out, scores @ q, rtol=1e-12, atol=1e-12)
    merged = out.transpose(0, 2, 1, 3).reshape(2, 6, 32)
    assert np.shares_memory(merged, out)  # a view: no copy
    _on()
    x = minigrad.randn(2, 5, 16, requires_grad=True)
    mha = MultiHeadAttention(16, 4)
    y = mha(x)[0]
    u = minigrad.tensor(r.standard_normal(y.shape), dtype=y.dtype)
    (y * u).sum().backward()
    got = x.grad.numpy()
    minigrad.accel.disable()
    x.grad = None
    (mha(x)[0] * u).sum().backward()
    np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-5, atol=1e-6)
