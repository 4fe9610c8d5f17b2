"""The Tensor API: creation, dtypes, devices, conversion, operators, printing and errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad
import minigrad.functional as F
from minigrad import nn

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def float64_default():
    previous = minigrad.get_default_dtype()
    minigrad.set_default_dtype("float64")
    try:
        yield
    finally:
        minigrad.set_default_dtype(previous)


# ---- creation ---------------------------------------------------------------------------------
def test_tensor_from_python_data_dtypes():
    assert minigrad.tensor([1.0, 2.0]).dtype == minigrad.float32
    assert minigrad.tensor(1.5).dtype == minigrad.float32 and minigrad.tensor(1.5).shape == ()
    assert minigrad.tensor([1, 2]).dtype == minigrad.int64
    assert minigrad.tensor(3).dtype == minigrad.int64
    assert minigrad.tensor([True, False]).dtype == minigrad.bool_
    assert minigrad.tensor([1, 2], dtype="float64").dtype == minigrad.float64
    assert minigrad.tensor([1.0], dtype=minigrad.float64).dtype == minigrad.float64
    # NumPy arrays keep their dtype
    assert minigrad.tensor(np.zeros(2, dtype=np.float64)).dtype == minigrad.float64
    assert minigrad.tensor(np.zeros(2, dtype=np.int32)).dtype == minigrad.int32
    with pytest.raises(TypeError, match="unknown dtype"):
        minigrad.tensor([1.0], dtype="float128")
    with pytest.raises(TypeError):
        minigrad.tensor(object())


def test_tensor_copies_its_input():
    a = np.array([1.0, 2.0])
    t = minigrad.tensor(a)
    a[0] = 100.0
    assert t.tolist() == [1.0, 2.0]
    t2 = minigrad.tensor(t)
    t2.data[0] = -5.0
    assert t.tolist() == [1.0, 2.0]
    assert minigrad.tensor(t, dtype="float64").dtype == minigrad.float64


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: minigrad.zeros(2, 3, **kw),
        lambda **kw: minigrad.zeros((2, 3), **kw),
        lambda **kw: minigrad.ones(2, 3, **kw),
        lambda **kw: minigrad.randn(2, 3, **kw),
        lambda **kw: minigrad.rand(2, 3, **kw),
        lambda **kw: minigrad.full((2, 3), 0.5, **kw),
    ],
    ids=["zeros", "zeros_tuple", "ones", "randn", "rand", "full"],
)
def test_float_creation_functions(make):
    t = make()
    assert t.shape == (2, 3) and t.dtype == minigrad.float32 and t.device == "cpu"
    assert not t.requires_grad
    t64 = make(dtype="float64", device="cpu", requires_grad=True)
    assert t64.dtype == minigrad.float64 and t64.requires_grad and t64.is_leaf


def test_creation_values():
    np.testing.assert_array_equal(minigrad.zeros(2).numpy(), [0, 0])
    np.testing.assert_array_equal(minigrad.ones(2).numpy(), [1, 1])
    np.testing.assert_array_equal(minigrad.full((2,), 7).numpy(), [7, 7])
    assert minigrad.full((2,), 7).dtype == minigrad.int64
    assert minigrad.full((2,), True).dtype == minigrad.bool_
    assert minigrad.full(3, 1.5).shape == (3,)
    r = minigrad.rand(1000).numpy()
    assert r.min() >= 0 and r.max() < 1 and 0.4 < r.mean() < 0.6
    n = minigrad.randn(2000, dtype="float64").numpy()
    assert abs(n.mean()) < 0.1 and 0.9 < n.std() < 1.1
    i = minigrad.randint(2, 5, (100,))
    assert i.dtype == minigrad.int64 and set(i.tolist()) == {2, 3, 4}


def test_arange():
    a = minigrad.arange(5)
    assert a.dtype == minigrad.int64 and a.tolist() == [0, 1, 2, 3, 4]
    assert minigrad.arange(2, 8, 3).tolist() == [2, 5]
    b = minigrad.arange(0, 1, 0.25)
    assert b.dtype == minigrad.float32 and b.tolist() == [0, 0.25, 0.5, 0.75]
    assert minigrad.arange(3, dtype="float64").dtype == minigrad.float64


def test_like_functions_keep_dtype_and_device():
    base = minigrad.randn(2, 3, dtype="float64")
    for fn in (minigrad.zeros_like, minigrad.ones_like, minigrad.randn_like, minigrad.rand_like):
        t = fn(base)
        assert t.shape == (2, 3) and t.dtype == minigrad.float64 and t.device == "cpu"
        assert fn(base, dtype="float32").dtype == minigrad.float32
    f = minigrad.full_like(base, 2.0)
    assert f.dtype == minigrad.float64 and f.tolist() == [[2.0] * 3] * 2
    assert minigrad.zeros_like(base, requires_grad=True).requires_grad
    assert minigrad.zeros_like(minigrad.arange(3)).dtype == minigrad.int64


def test_set_default_dtype(float64_default):
    assert minigrad.get_default_dtype() == minigrad.float64
    assert minigrad.tensor([1.0]).dtype == minigrad.float64
    assert minigrad.zeros(2).dtype == minigrad.float64
    assert minigrad.randn(2).dtype == minigrad.float64
    assert minigrad.arange(0, 1, 0.5).dtype == minigrad.float64
    assert minigrad.tensor([1]).dtype == minigrad.int64  # ints stay int64
    assert nn.Linear(2, 3).weight.dtype == minigrad.float64
    assert repr(minigrad.tensor([1.0])) == "tensor([1.])"  # the default dtype is not printed


def test_set_default_dtype_refuses_non_float():
    previous = minigrad.get_default_dtype()
    with pytest.raises(TypeError, match="floating"):
        minigrad.set_default_dtype("int64")
    assert minigrad.get_default_dtype() == previous


def test_manual_seed_reproducibility():
    def draw():
        layer = nn.Linear(3, 2)
        x = F.dropout(minigrad.ones(10), 0.5)
        return [minigrad.randn(4).tolist(), minigrad.rand(3).tolist(), minigrad.randint(0, 100, (5,)).tolist(),
                layer.weight.tolist(), x.tolist()]  # fmt: skip

    minigrad.manual_seed(42)
    first = draw()
    minigrad.manual_seed(42)
    assert draw() == first
    minigrad.manual_seed(43)
    assert draw()[0] != first[0]


# ---- conversion --------------------------------------------------------------------------------
def test_item_numpy_tolist_detach():
    x = minigrad.tensor([[1.0, 2.0]], requires_grad=True)
    assert x[0, 1].item() == 2.0 and isinstance(x[0, 1].item(), float)
    assert minigrad.tensor([7]).item() == 7 and isinstance(minigrad.tensor([7]).item(), int)
    assert float(minigrad.tensor(2.5)) == 2.5 and int(minigrad.tensor(3)) == 3
    with pytest.raises(ValueError, match="one-element"):
        x.item()
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    d = x.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.data, x.data)  # detach shares data
    arr = d.numpy()
    assert isinstance(arr, np.ndarray) and arr.tolist() == [[1.0, 2.0]]
    assert x.tolist() == [[1.0, 2.0]]
    y = x * 2.0
    assert y.detach().grad_fn is None and y.grad_fn is not None


def test_metadata_and_small_methods():
    x = minigrad.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.ndim == 3 and x.numel() == 24 and len(x) == 2
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4 and x.dim() == 3
    assert [t.shape for t in x] == [(3, 4), (3, 4)]
    with pytest.raises(TypeError):
        len(minigrad.tensor(1.0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(minigrad.tensor([1.0, 2.0]))
    assert bool(minigrad.tensor([1.0])) is True
    assert x.double().dtype == minigrad.float64 and x.double().float().dtype == minigrad.float32
    assert x.long().dtype == minigrad.int64
    y = minigrad.ones(3)
    assert y.zero_() is y and y.tolist() == [0, 0, 0]


def test_repr():
    assert repr(minigrad.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(minigrad.tensor(3.5)) == "tensor(3.5)"
    assert repr(minigrad.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(minigrad.tensor([1.0], dtype="float64")) == "tensor([1.], dtype=float64)"
    assert repr(minigrad.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    y = minigrad.tensor([1.0], requires_grad=True) * 2.0
    assert repr(y) == "tensor([2.], grad_fn=<mul>)"
    assert repr(nn.Parameter(minigrad.zeros(1))).startswith("Parameter containing:\ntensor([0.]")


# ---- operators ---------------------------------------------------------------------------------
def test_operators_with_python_scalars_and_reflected():
    x = minigrad.tensor([1.0, 2.0, 4.0], dtype="float64", requires_grad=True)
    v = np.array([1.0, 2.0, 4.0])
    cases = {
        "x + 2": (x + 2, v + 2),
        "2 + x": (2 + x, 2 + v),
        "x - 2": (x - 2, v - 2),
        "2 - x": (2 - x, 2 - v),
        "x * 3": (x * 3, v * 3),
        "3 * x": (3 * x, 3 * v),
        "x / 2": (x / 2, v / 2),
        "2 / x": (2 / x, 2 / v),
        "x ** 2": (x**2, v**2),
        "2 ** x": (2**x, 2**v),
        "x ** x": (x**x, v**v),
        "-x": (-x, -v),
        "+x": (+x, v),
        "abs(-x)": (abs(-x), v),
        "np scalar - x": (np.float64(2.0) - x, 2.0 - v),
        "x @ x": (x @ x, v @ v),
    }
    for name, (ours, expected) in cases.items():
        assert isinstance(ours, minigrad.Tensor), name
        assert ours.dtype == minigrad.float64, name
        np.testing.assert_allclose(ours.detach().numpy(), expected, err_msg=name)
    y = (2 - x) + (2 / x) + 2**x + x**2
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -1 - 2 / v**2 + 2**v * np.log(2) + 2 * v)


def test_scalar_keeps_tensor_dtype():
    x = minigrad.tensor([1.0, 2.0])
    assert (x + 1).dtype == minigrad.float32
    assert (2.5 * x).dtype == minigrad.float32
    i = minigrad.tensor([1, 2])
    assert (i + 1).dtype == minigrad.int64
    assert (i * 0.5).dtype == minigrad.float32  # an int tensor meets a float: computed as float
    assert (i + minigrad.tensor([0.5, 0.5], dtype="float64")).dtype == minigrad.float64


def test_comparisons_give_bool_tensors():
    x = minigrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = minigrad.tensor([3.0, 2.0, 1.0])
    results = {
        "<": (x < y, [True, False, False]),
        "<=": (x <= y, [True, True, False]),
        ">": (x > 2, [False, False, True]),
        ">=": (x >= 2, [False, True, True]),
        "==": (x == y, [False, True, False]),
        "!=": (x != y, [True, False, True]),
        "~": (~(x < y), [False, True, True]),
        "&": ((x > 1) & (y > 1), [False, True, False]),
        "|": ((x > 2) | (y > 2), [True, False, True]),
    }
    for name, (t, expected) in results.items():
        assert t.dtype == minigrad.bool_, name
        assert not t.requires_grad, name
        assert t.tolist() == expected, name
    assert (minigrad.zeros(2, 1) == minigrad.zeros(3)).shape == (2, 3)
    assert hash(x) != hash(y)  # tensors stay usable as dict keys


# ---- errors ------------------------------------------------------------------------------------
def test_mixing_float_dtypes_raises():
    a = minigrad.ones(2, dtype="float32")
    b = minigrad.ones(2, dtype="float64")
    for op in (lambda: a + b, lambda: b * a, lambda: F.matmul(a, b), lambda: F.where(a > 0, a, b)):
        with pytest.raises(TypeError) as info:
            op()
        assert "float32" in str(info.value) and "float64" in str(info.value)


def test_matmul_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError) as info:
        minigrad.ones(2, 3) @ minigrad.ones(4, 5)
    msg = str(info.value)
    assert "matmul" in msg and "(2, 3)" in msg and "(4, 5)" in msg
    with pytest.raises(ValueError) as info:
        minigrad.ones(2, 2, 3) @ minigrad.ones(3, 3, 1)
    assert "matmul" in str(info.value) and "(2, 2, 3)" in str(info.value) and "(3, 3, 1)" in str(info.value)
    with pytest.raises(ValueError, match="matmul"):
        minigrad.ones(3) @ minigrad.tensor(1.0)


def test_broadcasting_error_names_op_and_shapes():
    for name, op in [("add", lambda a, b: a + b), ("mul", lambda a, b: a * b), ("maximum", F.maximum)]:
        with pytest.raises(ValueError) as info:
            op(minigrad.ones(2, 3), minigrad.ones(4))
        msg = str(info.value)
        assert name in msg and "(2, 3)" in msg and "(4,)" in msg


def test_device_mismatch_names_both_devices(marked):
    a = minigrad.ones(2)
    b = minigrad.ones(2, device="marked")
    with pytest.raises(RuntimeError) as info:
        a + b
    assert "cpu" in str(info.value) and "marked" in str(info.value) and "add" in str(info.value)


def test_masked_fill_refuses_mask_that_enlarges_input():
    x = minigrad.ones(3)
    with pytest.raises(ValueError, match="masked_fill"):
        x.masked_fill(minigrad.tensor([[True, False, True], [False, False, True]]), 0.0)
    with pytest.raises(TypeError, match="boolean"):
        x.masked_fill(minigrad.tensor([1, 0, 1]), 0.0)
    out = minigrad.ones(2, 3).masked_fill(minigrad.tensor([True, False, True]), -1.0)
    assert out.tolist() == [[-1, 1, -1], [-1, 1, -1]]


def test_cross_entropy_refuses_out_of_range_targets():
    logits = minigrad.randn(3, 5)
    for bad in ([0, 5, 1], [0, -1, 1]):
        with pytest.raises(IndexError, match=r"\[0, 5\)"):
            F.cross_entropy(logits, minigrad.tensor(bad))
    with pytest.raises(ValueError, match="targets of shape"):
        F.cross_entropy(logits, minigrad.tensor([0, 1]))
    with pytest.raises(ValueError, match="integer class indices"):  # floats are class probabilities
        F.cross_entropy(logits, minigrad.tensor([0.0, 1.0, 2.0]))
    assert np.isfinite(F.cross_entropy(logits, minigrad.tensor([0, -100, 4])).item())


def test_embedding_refuses_out_of_range_indices():
    w = minigrad.randn(5, 2)
    for bad in ([0, 5], [-1, 2]):
        with pytest.raises(IndexError, match=r"\[0, 5\)"):
            F.embedding(minigrad.tensor(bad), w)
    with pytest.raises(TypeError, match="integer"):
        F.embedding(minigrad.tensor([0.0]), w)


def test_getitem_errors():
    x = minigrad.ones(2, 3)
    with pytest.raises(IndexError, match="getitem"):
        x[5]
    with pytest.raises(IndexError, match="getitem"):
        x[minigrad.tensor([0.5])]


_GPU = minigrad.is_available("cuda")


@pytest.mark.skipif(_GPU, reason="CuPy and a GPU are present: the missing-CuPy error cannot be shown")
def test_cuda_without_cupy_raises_backend_error():
    with pytest.raises(minigrad.BackendError) as info:
        minigrad.set_default_device("cuda")
    msg = str(info.value)
    assert "cuda" in msg and ("CuPy" in msg or "GPU" in msg)
    assert minigrad.get_default_device() == "cpu"
    x = minigrad.ones(2, requires_grad=True)
    with pytest.raises(minigrad.BackendError, match="cuda"):
        x.to("cuda")
    with pytest.raises(minigrad.BackendError, match="cuda"):
        minigrad.zeros(2, device="cuda")
    assert not minigrad.is_available("cuda")


def test_unknown_device_raises_backend_error():
    with pytest.raises(minigrad.BackendError, match="unknown device 'tpu'"):
        minigrad.zeros(2, device="tpu")
    assert not minigrad.is_available("tpu")


def _python(code, **env):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, cwd=ROOT,
                          timeout=60)  # fmt: skip


def test_minigrad_device_environment_variable():
    code = "import minigrad; print(minigrad.get_default_device(), minigrad.zeros(1).device)"
    result = _python(code, MINIGRAD_DEVICE="cpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["cpu", "cpu"]

    bad = _python(code, MINIGRAD_DEVICE="tpu")
    assert bad.returncode != 0
    assert "BackendError" in bad.stderr and "tpu" in bad.stderr


def test_batched_int_at_float_matmul():
    a = np.arange(2 * 2 * 3 * 4).reshape(2, 2, 3, 4)
    b = np.random.default_rng(0).standard_normal((2, 2, 4, 5))
    c = minigrad.tensor(a) @ minigrad.tensor(b, dtype="float64")
    assert c.dtype == minigrad.float64
    np.testing.assert_allclose(c.numpy(), a @ b, rtol=1e-12)


def test_layer_norm_of_integers_computes_in_float64():
    x = minigrad.tensor(np.arange(12).reshape(3, 4))
    y = minigrad.functional.layer_norm(x, 4)
    assert y.dtype == np.float64
    row = np.arange(4.0)
    np.testing.assert_allclose(y.numpy()[0], (row - row.mean()) / np.sqrt(row.var() + 1e-5))


def test_masked_fill_refuses_a_fill_value_that_requires_grad():
    x = minigrad.tensor([1.0, 2.0], requires_grad=True)
    value = minigrad.tensor(3.0, requires_grad=True)
    with pytest.raises(ValueError, match="masked_fill: value requires grad"):
        minigrad.functional.masked_fill(x, minigrad.tensor([True, False]), value)
    out = minigrad.functional.masked_fill(x, minigrad.tensor([True, False]), value.detach())
    assert out.tolist() == [3.0, 2.0]
