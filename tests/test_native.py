"""The NumPy backend's C kernels (``minigrad/cpu_kernels.py``, built by ``minigrad.native``).

This module proves that

* each kernel hook of ``NumpyBackend`` (``layer_norm_forward``, ``layer_norm_backward``,
  ``softmax_rows``, ``softmax_backward``) gives the values of its plain NumPy reference
  (``tests/kernel_reference.py``) in float32 and float64: row lengths from 1 to 1000, every
  affine combination and every wanted-gradient combination, rows far from zero (the
  variance takes two passes), bool and float masks broadcast in several ways, fully masked
  rows (exactly 0), NaN rows, scores whose exp would overflow, non-contiguous upstream
  gradients; and the feed-forward ReLU's hooks (``bias_relu``, ``relu_backward``) give
  ``max(h + b, 0)`` and ``g * [y > 0]`` with its column sums;
* the fused Linear hooks (``linear_forward``, ``linear_backward``), which call the BLAS
  that NumPy loaded from C, give NumPy's bits for the products, the bias and the ReLU (and
  its column sums for the bias's gradient), and decline small, non-contiguous or empty
  arrays and arrays minigrad's threads would split; through ``F.linear`` and
  ``F.linear_relu`` they give the values and gradients of the array-call path;
* rows split over two threads give the one-thread results;
* the hooks decline what the kernels do not cover (other dtypes, mixed dtypes,
  non-contiguous arrays, mismatched shapes, empty rows) and everything with
  ``use_native = False``;
* through the ops (``F.layer_norm``, ``F.attention_weights``, ``F.linear_relu``) the C
  kernels really run and give the values and gradients of the array-call path, and pass a
  gradient check;
* the build: ``MINIGRAD_NATIVE=0``, a failing compiler or none at all leave no library, a
  status that says why, no files behind, and working ops; with a compiler one build makes
  exactly one file, later loads reuse it, a damaged file is rebuilt, a compiler that refuses
  ``-march=native`` is retried without it, and a failed self-check disables the library.

Kernel tests skip when no library can be built here; the build and fallback tests that
force a failure run everywhere.
"""

from __future__ import annotations

import shlex
import sys
import zlib
from pathlib import Path

import kernel_reference
import numpy as np
import pytest
from test_ops_gradcheck import ATTENTION_CASES
from threads import num_threads

import minigrad
import minigrad.functional as F
from minigrad import backend as backend_module
from minigrad import native, parallel
from minigrad.backend import NumpyBackend

needs_kernels = pytest.mark.skipif(
    native.library() is None,
    reason=f"needs a C compiler to build minigrad's CPU kernels: {native.status()}",
)

DTYPES = ["float32", "float64"]
# the NumPy backend's hooks that run C kernels
HOOK_NAMES = ["layer_norm_forward", "layer_norm_backward", "softmax_rows", "softmax_backward"]
HOOK_NAMES += ["bias_relu", "relu_backward"]


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _tol(dtype, n):
    """(rtol, atol) for a kernel against the reference: their sums over n elements round differently."""
    return (1e-5, 1e-6 * max(n, 10) ** 0.5) if dtype == "float32" else (1e-12, 1e-14 * max(n, 10) ** 0.5)


def _check_array(got, want, dtype, rtol, atol):
    assert type(got) is np.ndarray and got.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# ---- layer norm -------------------------------------------------------------------------------
LN_SIZES = [1, 3, 8, 64, 257, 1000]
AFFINE = ["both", "weight", "bias", "none"]


def _affine(rng, n, dtype, affine):
    weight = rng.standard_normal(n).astype(dtype) if affine in ("both", "weight") else None
    bias = rng.standard_normal(n).astype(dtype) if affine in ("both", "bias") else None
    return weight, bias


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", LN_SIZES)
@pytest.mark.parametrize("affine", AFFINE)
def test_layer_norm_forward_matches_the_reference(dtype, n, affine):
    rng = _rng(f"lnf{dtype}{n}{affine}")
    x = (2 + 3 * rng.standard_normal((13, n))).astype(dtype)  # a mean well away from 0
    weight, bias = _affine(rng, n, dtype, affine)
    got = NumpyBackend().layer_norm_forward(x, weight, bias, 1e-5)
    assert got is not None and len(got) == 3
    want = kernel_reference.layer_norm_forward(x, weight, bias, 1e-5)
    rtol, atol = _tol(dtype, n)
    for a, b in zip(got, want):  # y, then mean and rstd of shape (rows, 1)
        _check_array(a, b, dtype, rtol, atol)


@needs_kernels
def test_layer_norm_forward_of_rows_far_from_zero():
    """Rows 1e4 + N(0, 1): the variance must be taken around the mean (two passes). The
    truth is the layer norm of the same rows shifted by -1e4 (an exact subtraction), where
    rounding is harmless; a one-pass E[x^2] - E[x]^2 would be off by about 1e-8 here."""
    r = _rng("far").standard_normal((16, 1000))
    x = 1e4 + r
    shifted = x - 1e4
    y, mean, rstd = NumpyBackend().layer_norm_forward(x, None, None, 1e-5)
    want_y, want_mean, want_rstd = kernel_reference.layer_norm_forward(shifted, None, None, 1e-5)
    np.testing.assert_allclose(mean, want_mean + 1e4, rtol=1e-14, atol=0)
    np.testing.assert_allclose(rstd, want_rstd, rtol=1e-10, atol=0)
    np.testing.assert_allclose(y, want_y, rtol=0, atol=1e-10)


LN_WANTS = {  # (want_dx, want_dweight, want_dbias)
    "dx": (True, False, False),
    "dweight": (False, True, False),
    "dbias": (False, False, True),
    "all": (True, True, True),
}


def _layer_norm_backward_inputs(dtype, n, has_weight, rows=37):
    rng = _rng(f"lnb{dtype}{n}{has_weight}")
    x = (2 + 3 * rng.standard_normal((rows, n))).astype(dtype)
    weight = rng.standard_normal(n).astype(dtype) if has_weight else None
    _, mean, rstd = kernel_reference.layer_norm_forward(x, None, None, 1e-5)
    g = rng.standard_normal((rows, n)).astype(dtype)
    return g, x, mean.astype(dtype), rstd.astype(dtype), weight


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 8, 257])
@pytest.mark.parametrize("has_weight", [True, False])
@pytest.mark.parametrize("wants", list(LN_WANTS))
def test_layer_norm_backward_matches_the_reference(dtype, n, has_weight, wants):
    g, x, mean, rstd, weight = _layer_norm_backward_inputs(dtype, n, has_weight)
    flags = LN_WANTS[wants]
    got = NumpyBackend().layer_norm_backward(g, x, mean, rstd, weight, *flags)
    want = kernel_reference.layer_norm_backward(g, x, mean, rstd, weight, *flags)
    assert got is not None and len(got) == 3
    rtol, atol = _tol(dtype, n)
    for name, a, b in zip(("dx", "dweight", "dbias"), got, want):
        assert (a is None) == (b is None), name
        if a is not None:  # dweight and dbias are sums over the 37 rows: shape (n,)
            _check_array(a, b, dtype, rtol, atol * 40)


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("has_weight", [True, False])
def test_layer_norm_backward_of_a_non_contiguous_gradient(dtype, has_weight):
    """An upstream gradient may be a transposed or broadcast view (the gradient of a sum):
    the hook makes it contiguous and gives the results of its contiguous copy."""
    g, x, mean, rstd, weight = _layer_norm_backward_inputs(dtype, 9, has_weight, rows=9)
    backend = NumpyBackend()
    views = {
        "transposed": np.ascontiguousarray(g.T).T,
        "broadcast": np.broadcast_to(g[3], g.shape),
        "strided": np.repeat(g, 2, axis=1)[:, ::2],
    }
    for name, view in views.items():
        assert not view.flags.c_contiguous, name
        got = backend.layer_norm_backward(view, x, mean, rstd, weight, True, True, True)
        want = backend.layer_norm_backward(np.ascontiguousarray(view), x, mean, rstd, weight, True, True, True)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b, err_msg=name)
        ref = kernel_reference.layer_norm_backward(view, x, mean, rstd, weight, True, True, True)
        rtol, atol = _tol(dtype, 9)
        for a, b in zip(got, ref):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * 10, err_msg=name)


# ---- softmax ----------------------------------------------------------------------------------
SOFTMAX_SHAPES = [(3, 5), (2, 3, 4, 7), (6, 1), (2, 3, 300)]


def _mask(kind, shape, dtype, rng):
    """The mask keyword for ``softmax_rows``; bool masks mask every key of some rows."""
    if kind is None:
        return {}
    if kind.startswith("bool"):
        mshape = {
            "bool_batch": shape[:1] + (1,) * (len(shape) - 2) + shape[-1:],  # (B, 1, 1, S)
            "bool_keys": shape[-1:],  # (S,)
            "bool_full": shape,
            "bool_column": shape[:-1] + (1,),  # one flag for a whole row: last stride 0
        }[kind]
        m = rng.random(mshape) < 0.3
        if kind != "bool_keys":  # the first row (for "bool_batch": batch entry) fully masked
            m[(0,) * (len(mshape) - 1)] = True
        return {"bool_mask": m}
    mshape = shape[:-1] + (1,) if kind == "float_column" else (1,) + shape[1:]  # broadcast over keys or batch
    m = rng.standard_normal(mshape).astype("float64" if kind == "float64_mask" else dtype)
    m[(0,) * (m.ndim - 1)] = -np.inf  # a row whose every score is forbidden
    return {"float_mask": m}


MASK_KINDS = [None, "bool_batch", "bool_keys", "bool_full", "bool_column", "float", "float64_mask", "float_column"]


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SOFTMAX_SHAPES)
@pytest.mark.parametrize("scale", [1.0, 0.7])
@pytest.mark.parametrize("mask", MASK_KINDS)
def test_softmax_rows_matches_the_reference(dtype, shape, scale, mask):
    rng = _rng(f"sm{dtype}{shape}{scale}{mask}")
    w = (3 * rng.standard_normal(shape)).astype(dtype)
    kwargs = _mask(mask, shape, dtype, rng)
    want = w.copy()
    kernel_reference.softmax_rows(want, scale, **kwargs)
    got = w.copy()
    address = got.ctypes.data
    assert NumpyBackend().softmax_rows(got, scale, **kwargs) is True
    assert got.ctypes.data == address and got.dtype == dtype and got.shape == shape  # in place
    rtol, atol = _tol(dtype, shape[-1])
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    if kwargs:  # rows with every key masked are exactly 0
        (m,) = kwargs.values()
        forbidden = np.broadcast_to(m == -np.inf if m.dtype != bool else m, shape)
        dead = forbidden.all(axis=-1)
        assert mask == "bool_keys" or dead.any()
        assert np.all(got[dead] == 0)
        assert np.all(got[forbidden] == 0)
    live = ~np.isclose(want.sum(-1), 0)
    np.testing.assert_allclose(got.sum(-1)[live], 1.0, rtol=rtol * 10)


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_rows_with_nans_behaves_like_the_reference(dtype):
    """A NaN score spreads over its row unless the mask removes it; rows of NaNs and masked
    rows with a NaN come out as in the reference."""
    rng = _rng("nan" + dtype)
    w = rng.standard_normal((6, 5)).astype(dtype)
    w[0, 2] = np.nan  # one NaN among finite scores
    w[1] = np.nan  # every score NaN
    w[2, 0] = np.nan  # a NaN that the mask removes
    w[3, 1] = np.nan  # a NaN in a row whose other keys are all masked
    w[4, 4] = np.nan  # a NaN in the last column
    mask = np.zeros((6, 5), dtype=bool)
    mask[2, 0] = True
    mask[3, [0, 2, 3, 4]] = True
    for kwargs in ({}, {"bool_mask": mask}):
        want = w.copy()
        with np.errstate(invalid="ignore"):
            kernel_reference.softmax_rows(want, 0.7, **kwargs)
        got = w.copy()
        assert NumpyBackend().softmax_rows(got, 0.7, **kwargs) is True
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=_tol(dtype, 5)[0], atol=1e-7)  # NaNs compare equal
        assert np.isnan(got[[0, 1, 4]]).all()  # what the reference does, so the comparison is not vacuous
        assert np.isnan(got[2]).all() != bool(kwargs)  # the masked NaN is gone


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_softmax_rows_of_scores_whose_exp_overflows(dtype, scale):
    """exp(1000) overflows float64 and exp(100) float32: the kernel shifts each row by its
    max, so rows big + (0, -1, -2, ...) give the weights of (0, -1, -2, ...)."""
    big = (1000.0 if dtype == "float64" else 100.0) / scale
    offsets = -np.arange(5.0)
    w = np.stack([big + offsets, -big + offsets, big * np.array([1, -1, 0, 1, -1])]).astype(dtype)
    got = w.copy()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert NumpyBackend().softmax_rows(got, scale) is True
    s = np.asarray(w, dtype=np.float64) * scale
    e = np.exp(s - s.max(-1, keepdims=True))
    want = e / e.sum(-1, keepdims=True)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-30)
    np.testing.assert_allclose(got[0], got[1], rtol=1e-5 if dtype == "float32" else 1e-12)


@needs_kernels
def test_softmax_rows_writes_only_its_own_rows():
    """On a contiguous slice of a larger array the hook writes the slice's rows, in place."""
    base = _rng("slice").standard_normal((5, 4, 6))
    before = base.copy()
    view = base[1:3]
    assert NumpyBackend().softmax_rows(view, 0.7) is True
    want = before[1:3].copy()
    kernel_reference.softmax_rows(want, 0.7)
    np.testing.assert_allclose(base[1:3], want, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(base[[0, 3, 4]], before[[0, 3, 4]])


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4, 7), (6, 1), (2, 300)])
@pytest.mark.parametrize("scale", [1.0, 0.7])
def test_softmax_backward_matches_the_reference(dtype, shape, scale):
    rng = _rng(f"smb{dtype}{shape}{scale}")
    w = rng.standard_normal(shape).astype(dtype)
    kernel_reference.softmax_rows(w)  # real softmax weights
    g = rng.standard_normal(shape).astype(dtype)
    backend = NumpyBackend()
    rtol, atol = _tol(dtype, shape[-1])
    want = kernel_reference.softmax_backward(g, w, scale)
    got = backend.softmax_backward(g, w, scale)
    assert got.flags.c_contiguous
    _check_array(got, want, dtype, rtol, atol)
    for view in (np.ascontiguousarray(g.swapaxes(0, -1)).swapaxes(0, -1), np.broadcast_to(g[:1], shape)):
        if view.flags.c_contiguous:  # a size-1 axis: swapping changes nothing
            continue
        got = backend.softmax_backward(view, w, scale)
        _check_array(got, kernel_reference.softmax_backward(view, w, scale), dtype, rtol, atol)
        np.testing.assert_array_equal(got, backend.softmax_backward(np.ascontiguousarray(view), w, scale))


# ---- the feed-forward ReLU (no reference in kernel_reference.py: the formulas are one line) ----
def _relu_reference(h, bias):
    return np.maximum(h + bias if bias is not None else h, 0)


def _relu_backward_reference(g, y, want_dbias):
    dx = g * (y > 0)
    return dx, (dx.sum(axis=0) if want_dbias else None)


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 300])
@pytest.mark.parametrize("has_bias", [True, False])
def test_relu_hooks_match_numpy(dtype, n, has_bias):
    """``bias_relu``: max(h + b, 0) in place (a NaN stays NaN); ``relu_backward``: g where
    y > 0, else 0, and its sum over rows, also for a non-contiguous g."""
    rng = _rng(f"relu{dtype}{n}{has_bias}")
    h = rng.standard_normal((37, n)).astype(dtype)
    h[3, 0] = np.nan
    bias = rng.standard_normal(n).astype(dtype) if has_bias else None
    backend = NumpyBackend()
    got = h.copy()
    address = got.ctypes.data
    assert backend.bias_relu(got, bias) is True
    assert got.ctypes.data == address and got.dtype == dtype
    np.testing.assert_array_equal(got, _relu_reference(h, bias))  # one add and a comparison: exact
    y = got
    g = rng.standard_normal((37, n)).astype(dtype)
    rtol, atol = _tol(dtype, n)
    for g_in in (g, np.ascontiguousarray(g.T).T):
        for want_dbias in (True, False):
            dx, db = backend.relu_backward(g_in, y, want_dbias)
            want_dx, want_db = _relu_backward_reference(g, y, want_dbias)
            assert type(dx) is np.ndarray and dx.dtype == dtype
            np.testing.assert_array_equal(dx, want_dx)  # NaN in y: y > 0 is False, so g * 0
            assert (db is None) == (not want_dbias)
            if want_dbias:
                _check_array(db, want_db, dtype, rtol, atol * 40)


@needs_kernels
def test_relu_backward_of_stacked_rows_is_a_new_array_shaped_like_g():
    """N-D g and y: rows along the last axis, the bias sum over every other axis, and dx a
    new array (not a view: the engine copies views before storing them as a leaf's .grad)."""
    rng = _rng("relu3d")
    y = np.maximum(rng.standard_normal((3, 5, 8)), 0.0)
    g = rng.standard_normal((3, 5, 8))
    dx, db = NumpyBackend().relu_backward(g, y, True)
    assert dx.shape == g.shape and dx.base is None
    np.testing.assert_array_equal(dx, g * (y > 0))
    np.testing.assert_allclose(db, (g * (y > 0)).sum(axis=(0, 1)), rtol=1e-12)


# ---- the fused Linear kernels -------------------------------------------------------------------
needs_cblas = pytest.mark.skipif(
    backend_module.cblas_gemm("s") is None,
    reason="needs NumPy's BLAS to be an OpenBLAS with 64-bit-integer cblas names (NumPy's wheels)",
)


def _linear_arrays(dtype, rows=256, n_in=96, n_out=80, name="lin"):
    rng = _rng(name + dtype)
    x = rng.standard_normal((rows, n_in)).astype(dtype)
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    g = rng.standard_normal((rows, n_out)).astype(dtype)
    assert rows * (n_in + n_out) >= backend_module.LINEAR_KERNEL_MIN_SIZE  # big enough to be taken
    return x, w, b, g


@needs_kernels
@needs_cblas
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("has_bias", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_linear_hooks_give_numpys_bits(dtype, has_bias, relu):
    """The products are the BLAS calls NumPy makes for x @ w.T, g @ w and g.T @ x, the bias
    and the clamp the same float operations: equal bits. The bias's gradient sums rows in
    another order than NumPy: equal to rounding."""
    x, w, b, g = _linear_arrays(dtype)
    bias = b if has_bias else None
    backend = NumpyBackend()
    out = backend.linear_forward(x, w, bias, relu)
    want = x @ w.T
    if has_bias:
        want += b
    if relu:
        want = np.maximum(want, 0)
        assert (want == 0).any() and (want > 0).any()
    assert type(out) is np.ndarray and out.dtype == dtype and out.flags.c_contiguous
    np.testing.assert_array_equal(out, want)
    y = out if relu else None
    gy = g * (out > 0) if relu else g
    rtol, atol = _tol(dtype, x.shape[0])
    for wants in [(True, True, True), (True, False, False), (False, True, False), (False, False, True)]:
        dx, dw, db = backend.linear_backward(g, y, x, w, *wants)
        assert [a is not None for a in (dx, dw, db)] == list(wants)
        if dx is not None:
            np.testing.assert_array_equal(dx, gy @ w)
        if dw is not None:
            np.testing.assert_array_equal(dw, gy.T @ x)
        if db is not None:
            _check_array(db, gy.sum(axis=0), dtype, rtol, atol)


@needs_kernels
@needs_cblas
def test_linear_hooks_decline_what_they_do_not_cover():
    x, w, b, g = _linear_arrays("float32")
    backend = NumpyBackend()
    small_x, small_g = x[:8], g[:8]  # 8 * (96 + 80) elements: NumPy's two calls cost less Python
    assert backend.linear_forward(small_x, w, b, False) is None
    assert backend.linear_backward(small_g, None, small_x, w, True, True, True) is None
    wide = np.ascontiguousarray(np.concatenate([x, x], axis=1))[:, ::2]  # x's values, not contiguous
    assert backend.linear_forward(wide, w, b, False) is None
    assert backend.linear_backward(g, None, wide, w, True, True, True) is None
    assert backend.linear_forward(x, w.astype("float64"), b, False) is None  # mixed dtypes
    assert backend.linear_forward(x.astype("float16"), w.astype("float16"), None, False) is None
    assert backend.linear_forward(x, w[:, :50], b, False) is None  # mismatched shapes
    assert backend.linear_forward(x, w, b[:50], False) is None
    assert backend.linear_backward(g[:, :50], None, x, w, True, True, True) is None
    assert backend.linear_backward(g[:100], None, x, w, True, True, True) is None
    assert backend.linear_backward(g, g[:, :50].copy(), x, w, True, True, True) is None
    assert backend.linear_backward(g, None, x, w[:, :50].copy(), True, True, True) is None
    empty = np.empty((1024, 0), "float32")  # no inputs: NumPy's path gives the bias
    assert backend.linear_forward(empty, np.empty((80, 0), "float32"), b, False) is None
    off = NumpyBackend()
    off.use_native = False
    assert off.linear_forward(x, w, b, False) is None
    assert off.linear_backward(g, None, x, w, True, True, True) is None


@needs_kernels
@needs_cblas
def test_linear_hooks_leave_large_arrays_to_minigrads_threads():
    """Where run_rows would split the bias pass (or the ReLU's backward) over threads, the
    one-thread C call is not taken; with one thread it is."""
    x, w, b, g = _linear_arrays("float32", rows=4096, n_in=64, n_out=160, name="big")
    assert 2 * g.size >= 2 * parallel.MIN_WORK_PER_THREAD
    backend = NumpyBackend()
    with num_threads(2):
        assert backend.linear_forward(x, w, b, False) is None
        assert backend.linear_backward(g, None, x, w, True, True, True) is None
    with num_threads(1):
        out = backend.linear_forward(x, w, b, False)
        assert out is not None and backend.linear_backward(g, None, x, w, True, True, True) is not None
    want = x @ w.T
    want += b
    np.testing.assert_array_equal(out, want)


@needs_kernels
@needs_cblas
@pytest.mark.parametrize("op", ["linear", "linear_relu"])
@pytest.mark.parametrize("has_bias", [True, False])
def test_linear_ops_with_and_without_the_fused_kernels(op, has_bias, monkeypatch):
    x, weight = _tensor("flx" + op, (4, 64, 96)), _tensor("flw" + op, (80, 96))
    xs = [x, weight] + ([_tensor("flb" + op, (80,))] if has_bias else [])
    fn = getattr(F, op)
    used = _spy_on_hooks(monkeypatch, ["linear_forward", "linear_backward"])
    on, off = _on_and_off(fn, xs, monkeypatch, used)
    assert used == [("linear_forward", True), ("linear_backward", True)]
    if op == "linear_relu":
        assert (on[0] == 0).any() and (on[0] > 0).any()
    _assert_same(on, off)


@needs_kernels
@needs_cblas
@pytest.mark.parametrize("op", ["linear", "linear_relu"])
def test_gradcheck_passes_through_the_fused_linear_kernels(op, monkeypatch):
    monkeypatch.setattr(backend_module, "LINEAR_KERNEL_MIN_SIZE", 0)  # small arrays take them too
    x, w, b = _tensor("gcx" + op, (2, 3, 5)), _tensor("gcw" + op, (4, 5)), _tensor("gcb" + op, (4,))
    fn = getattr(F, op)
    assert NumpyBackend().linear_forward(x.data[0], w.data, b.data, op == "linear_relu") is not None
    assert minigrad.gradcheck(fn, (x, w, b))


# ---- threads ----------------------------------------------------------------------------------
@needs_kernels
def test_two_threads_give_the_one_thread_results(monkeypatch):
    """Arrays big enough for ``run_rows`` to split them: every hook runs as two slices and
    gives the one-thread values (the weight and bias gradients add two partial sums, so
    they agree to rounding). The softmax mask's row offsets start mid-array in slice 2."""
    rows, n = 4096, 256
    assert 2 * rows * n >= 2 * parallel.MIN_WORK_PER_THREAD  # the least work a hook declares: 2 per element
    rng = _rng("threads")
    x = 2 + 3 * rng.standard_normal((rows, n))
    weight, bias = rng.standard_normal(n), rng.standard_normal(n)
    g = rng.standard_normal((rows, n))
    scores = 3 * rng.standard_normal((4, 4, rows // 16, n))
    mask = rng.random((4, 1, 1, n)) < 0.3
    mask[3] = True  # the last batch entry (in the second slice) fully masked
    h = rng.standard_normal((rows, n))

    slices = []
    real_run_rows = NumpyBackend.run_rows

    def spy(self, kernel, rows, work):
        out = real_run_rows(self, kernel, rows, work)
        slices.append(len(out))
        return out

    monkeypatch.setattr(NumpyBackend, "run_rows", spy)

    def run():
        backend = NumpyBackend()
        y, mean, rstd = backend.layer_norm_forward(x, weight, bias, 1e-5)
        dx, dw, db = backend.layer_norm_backward(g, x, mean, rstd, weight, True, True, True)
        w = scores.copy()
        assert backend.softmax_rows(w, 0.7, bool_mask=mask) is True
        ds = backend.softmax_backward(g.reshape(w.shape), w, 0.7)
        r = h.copy()
        assert backend.bias_relu(r, bias) is True
        dr, dbr = backend.relu_backward(g, r, True)
        arrays = {"y": y, "mean": mean, "rstd": rstd, "dx": dx, "w": w, "ds": ds, "relu": r, "relu dx": dr}
        return arrays, (dw, db, dbr)

    with num_threads(1):
        serial, serial_sums = run()
    assert slices == [1] * 6
    slices.clear()
    with num_threads(2):
        threaded, threaded_sums = run()
    assert slices == [2] * 6
    for name, a in threaded.items():  # each row is computed by one thread, as in a serial run
        np.testing.assert_array_equal(a, serial[name], err_msg=name)
    for a, b in zip(threaded_sums, serial_sums):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-10)
    assert np.all(threaded["w"][3] == 0)
    want = kernel_reference.layer_norm_backward(g, x, serial["mean"], serial["rstd"], weight, True, True, True)
    for a, b in zip((threaded["dx"], *threaded_sums[:2]), want):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(threaded_sums[2], (g * (threaded["relu"] > 0)).sum(0), rtol=1e-11, atol=1e-10)
    want_w = scores.copy()
    kernel_reference.softmax_rows(want_w, 0.7, bool_mask=mask)
    np.testing.assert_allclose(threaded["w"], want_w, rtol=1e-12, atol=1e-15)


# ---- what the hooks decline -------------------------------------------------------------------
@needs_kernels
def test_hooks_decline_what_the_kernels_do_not_cover():
    backend = NumpyBackend()
    x = _rng("decline").standard_normal((4, 8))
    x32 = x.astype("float32")
    col = x[:, :1].copy()
    ones = np.ones(8)
    assert backend.layer_norm_forward(x, ones, ones, 1e-5) is not None  # the cases below are the exceptions

    class Sub(np.ndarray):
        pass

    forward = {
        "float16": (x.astype("float16"), None, None),
        "int": (np.arange(32).reshape(4, 8), None, None),
        "mixed weight": (x32, ones, None),
        "mixed bias": (x32, None, ones),
        "non-contiguous x": (np.repeat(x, 2, axis=1)[:, ::2], None, None),
        "transposed x": (np.ascontiguousarray(x.T).T, None, None),
        "weight of 7": (x, np.ones(7), None),
        "bias of 9": (x, None, np.ones(9)),
        "weight (1, 8)": (x, np.ones((1, 8)), None),
        "3-d x": (x.reshape(2, 2, 8), None, None),
        "empty rows": (np.ones((4, 0)), None, None),
        "ndarray subclass": (x.view(Sub), None, None),
    }
    for name, (a, w, b) in forward.items():
        assert backend.layer_norm_forward(a, w, b, 1e-5) is None, name

    backward = {
        "float16": (x.astype("float16"), x.astype("float16"), col.astype("float16"), col.astype("float16"), None),
        "int": (np.ones((4, 8), int), np.ones((4, 8), int), np.ones((4, 1), int), np.ones((4, 1), int), None),
        "mixed g": (x32, x, col, col, None),
        "mixed stats": (x, x, col.astype("float32"), col, None),
        "mixed weight": (x, x, col, col, ones.astype("float32")),
        "non-contiguous x": (x, np.ascontiguousarray(x.T).T, col, col, None),
        "g of another shape": (x[:, :7].copy(), x, col, col, None),
        "stats of 3 rows": (x, x, col[:3].copy(), col[:3].copy(), None),
        "weight of 7": (x, x, col, col, np.ones(7)),
        "empty rows": (np.ones((4, 0)), np.ones((4, 0)), col, col, None),
    }
    for name, args in backward.items():
        assert backend.layer_norm_backward(*args, True, True, True) is None, name

    w = x.copy()
    softmax = {
        "float16": x.astype("float16"),
        "int": np.arange(32).reshape(4, 8),
        "non-contiguous": np.repeat(x, 2, axis=1)[:, ::2],
        "transposed": np.ascontiguousarray(x.T).T,
        "empty rows": np.ones((4, 0)),
        "0-d": np.array(1.5),
    }
    for name, a in softmax.items():
        before = a.copy()
        assert backend.softmax_rows(a, 0.7) is False, name
        np.testing.assert_array_equal(a, before, err_msg=name)  # untouched

    softmax_backward = {
        "float16": (w.astype("float16"), w.astype("float16")),
        "int": (np.ones((4, 8), int), np.ones((4, 8), int)),
        "mixed": (x32, w),
        "mixed the other way": (x, w.astype("float32")),
        "shapes differ": (x[:, :7].copy(), w),
        "non-contiguous w": (x, np.ascontiguousarray(w.T).T),
        "empty rows": (np.ones((4, 0)), np.ones((4, 0))),
    }
    for name, (gg, ww) in softmax_backward.items():
        assert backend.softmax_backward(gg, ww, 0.7) is None, name

    bias_relu = {
        "float16": (x.astype("float16"), None),
        "int": (np.arange(32).reshape(4, 8), None),
        "mixed": (x32, ones),
        "non-contiguous": (np.ascontiguousarray(x.T).T, None),
        "3-d": (x.reshape(2, 2, 8), None),
        "bias of 7": (x, np.ones(7)),
        "empty rows": (np.ones((4, 0)), None),
    }
    for name, (out, b) in bias_relu.items():
        before = out.copy()
        assert backend.bias_relu(out, b) is False, name
        np.testing.assert_array_equal(out, before, err_msg=name)

    relu_backward = {
        "float16": (x.astype("float16"), x.astype("float16")),
        "int": (np.ones((4, 8), int), np.ones((4, 8), int)),
        "mixed": (x32, x),
        "shapes differ": (x[:, :7].copy(), x),
        "non-contiguous y": (x, np.ascontiguousarray(x.T).T),
        "empty rows": (np.ones((4, 0)), np.ones((4, 0))),
    }
    for name, (gg, yy) in relu_backward.items():
        assert backend.relu_backward(gg, yy, True) is None, name


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
def test_use_native_false_declines_everything(dtype):
    """``use_native = False`` on an instance: every hook declines, even on arrays the C
    kernels would take; other instances still use them."""
    x = _rng("off").standard_normal((4, 8)).astype(dtype)
    w = np.ones(8, dtype)
    col = np.ones((4, 1), dtype)

    def calls(backend):
        return [
            backend.layer_norm_forward(x, w, w, 1e-5),
            backend.layer_norm_backward(x, x, col, col, w, True, True, True),
            backend.softmax_rows(x.copy(), 0.7) or None,
            backend.softmax_backward(x, x, 0.7),
            backend.bias_relu(x.copy(), w) or None,
            backend.relu_backward(x, x, True),
        ]

    off = NumpyBackend()
    off.use_native = False
    assert off.native() is None
    assert calls(off) == [None] * 6
    on = NumpyBackend()
    assert on.use_native is True and on.native() is native.library()
    assert all(result is not None for result in calls(on))


# ---- the embedding's gradient --------------------------------------------------------------------
@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_add_takes_the_row_kernel_for_an_embeddings_gradient(dtype, monkeypatch):
    """Rows of token gradients added into a table: the C loop runs (not np.add.at) and adds
    in the same order, so the bits are np.add.at's; a non-contiguous ``values`` is left to
    the NumPy path."""
    taken = []
    real = NumpyBackend._native_kernel

    def recording(self, name, *arrays):
        kernel = real(self, name, *arrays)
        taken.append((name, kernel is not None))
        return kernel

    monkeypatch.setattr(NumpyBackend, "_native_kernel", recording)
    rng = _rng(f"scatter{dtype}")
    index = rng.integers(0, 7, size=(4, 9))
    values = rng.standard_normal((4, 9, 16)).astype(dtype)
    for vals in (values, np.asfortranarray(values)):
        taken.clear()
        target = np.zeros((7, 16), dtype=dtype)
        NumpyBackend().scatter_add(target, index, vals)
        want = np.zeros((7, 16), dtype=dtype)
        np.add.at(want, index, values)
        np.testing.assert_array_equal(target, want)
        assert taken == [("scatter_add_rows", vals.flags.c_contiguous)]


# ---- Adam ---------------------------------------------------------------------------------------
ADAM = {"beta1": 0.9, "beta2": 0.999, "step_size": 1e-3 / (1 - 0.9**3), "bias_correction2_sqrt": (1 - 0.999**3) ** 0.5}


def _adam_arrays(dtype, shape, name):
    rng = _rng(name)
    p, g, m = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    v = np.abs(rng.standard_normal(shape)).astype(dtype)
    return p, g, m, v


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7,), (33, 65)])
def test_adam_kernel_gives_the_numpy_expressions_bits(dtype, shape, monkeypatch):
    """The C update (one pass) and ``Backend.adam_update``'s NumPy expressions (twelve)
    round every operation alike: the same bits for p, m and v."""
    from minigrad.backend import Backend

    calls = []
    real = Backend.adam_update
    monkeypatch.setattr(Backend, "adam_update", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    native_arrays = _adam_arrays(dtype, shape, f"adam{dtype}{shape}")
    numpy_arrays = [a.copy() for a in native_arrays]
    NumpyBackend().adam_update(*native_arrays, eps=1e-8, **ADAM)
    assert calls == []  # the C kernel did it, not the fallback
    real(NumpyBackend(), *numpy_arrays, eps=1e-8, **ADAM)
    for got, want, name in zip(native_arrays, numpy_arrays, "pgmv"):
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert not np.array_equal(native_arrays[0], _adam_arrays(dtype, shape, f"adam{dtype}{shape}")[0])


@needs_kernels
def test_adam_kernel_declines_what_it_does_not_cover(monkeypatch):
    """A non-contiguous gradient, mixed dtypes and float16 take the NumPy expressions
    (with the same results as on contiguous copies)."""
    from minigrad.backend import Backend

    calls = []
    real = Backend.adam_update
    monkeypatch.setattr(Backend, "adam_update", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    p, g, m, v = _adam_arrays("float64", (6, 5), "adam_declines")
    cases = {
        "transposed grad": (p.T.copy(), g.T, m.T.copy(), v.T.copy()),
        "mixed dtypes": (p, g.astype("float32"), m, v),
        "float16": tuple(a.astype("float16") for a in (p, g, m, v)),
    }
    for name, arrays in cases.items():
        calls.clear()
        arrays = [a if i == 1 else a.copy() for i, a in enumerate(arrays)]
        expected = [a.copy() for a in arrays]
        NumpyBackend().adam_update(*arrays, eps=1e-8, **ADAM)
        assert calls == [1], name
        real(NumpyBackend(), *expected, eps=1e-8, **ADAM)
        np.testing.assert_array_equal(arrays[0], expected[0], err_msg=name)


@needs_kernels
def test_adam_optimizer_steps_through_the_kernel(monkeypatch):
    """``optim.Adam.step`` on float32 parameters runs the C kernel and gives the bits of the
    NumPy path (the kernels off)."""

    from minigrad.backend import Backend

    fallbacks = []
    real = Backend.adam_update
    monkeypatch.setattr(Backend, "adam_update", lambda self, *a, **k: fallbacks.append(1) or real(self, *a, **k))

    def train(use_native):
        monkeypatch.setattr(NumpyBackend, "use_native", use_native)
        rng = _rng("adam_opt")
        w = minigrad.tensor(rng.standard_normal((4, 3)).astype("float32"), requires_grad=True)
        opt = minigrad.optim.Adam([w], lr=0.01, weight_decay=0.1)
        for _ in range(3):
            opt.zero_grad()
            ((w * w).sum() + w.sum()).backward()
            opt.step()
        return w.detach().numpy()

    with_kernel = train(True)
    assert fallbacks == []
    np.testing.assert_array_equal(with_kernel, train(False))
    assert len(fallbacks) == 3


@needs_kernels
@pytest.mark.parametrize("threads", [1, 3])
def test_adam_update_many_gives_each_parameters_numpy_bits(threads, monkeypatch):
    """One C call for a list of parameters (each with its own step size and bias
    correction) gives every parameter the bits of its own NumPy update; the float32 and
    float64 parameters go to their own kernels, and a parameter the kernel cannot take (a
    transposed gradient) takes the per-parameter path. With threads forced, the list is
    split across them with the same bits."""
    from minigrad.backend import Backend

    fallbacks, kernel_calls = [], []
    real, real_many = Backend.adam_update, NumpyBackend._adam_many

    def counted_update(self, *args, **kwargs):
        fallbacks.append(args[0].shape)
        return real(self, *args, **kwargs)

    def counted_many(self, updates, *args):
        kernel_calls.append(len(updates))
        return real_many(self, updates, *args)

    monkeypatch.setattr(Backend, "adam_update", counted_update)
    monkeypatch.setattr(NumpyBackend, "_adam_many", counted_many)
    monkeypatch.setattr(parallel, "MIN_WORK_PER_THREAD", 1)
    shapes = [(3, 5), (7,), (2, 3, 4), (1,), (6, 2)]
    dtypes = ["float32", "float64", "float32", "float64", "float64"]
    updates = []
    for i, (shape, dtype) in enumerate(zip(shapes, dtypes)):
        p, g, m, v = _adam_arrays(dtype, shape, f"many{i}")
        if i == 4:
            g = np.ascontiguousarray(g.T).T  # a transposed view: not C-contiguous
        updates.append((p, g, m, v, 1e-3 * (i + 1), (1 - 0.999 ** (i + 1)) ** 0.5))
    expected = [tuple(a.copy() for a in u[:4]) + u[4:] for u in updates]
    with num_threads(threads):
        NumpyBackend().adam_update_many(updates, beta1=0.9, beta2=0.999, eps=1e-8)
    assert fallbacks == [(6, 2)]
    assert sorted(kernel_calls) == [2, 2]  # float32 and float64, two parameters each
    for i, (got, want) in enumerate(zip(updates, expected)):
        real(NumpyBackend(), *want[:4], beta1=0.9, beta2=0.999, step_size=want[4], bias_correction2_sqrt=want[5],
             eps=1e-8)  # fmt: skip
        for a, b, name in zip(got[:4], want[:4], "pgmv"):
            np.testing.assert_array_equal(a, b, err_msg=f"parameter {i}: {name}")


@needs_kernels
def test_adam_weighs_the_kernels_one_pass_when_it_splits_the_parameters(monkeypatch):
    """The work ``optim.Adam`` reports to ``run_rows`` (which decides whether threads pay
    off) is two passes per element with the C kernel (it reads and writes four arrays
    once) and twelve with the NumPy expressions."""
    from minigrad.backend import Backend

    works = []
    real = Backend.run_rows
    monkeypatch.setattr(Backend, "run_rows", lambda self, k, n, work: works.append(work) or real(self, k, n, work))
    w = minigrad.tensor(np.ones((10, 100), dtype="float32"), requires_grad=True)
    b = minigrad.tensor(np.ones(24, dtype="float32"), requires_grad=True)
    opt = minigrad.optim.Adam([w, b], lr=0.1)
    for use_native in (True, False):
        monkeypatch.setattr(NumpyBackend, "use_native", use_native)
        w.grad, b.grad = minigrad.ones_like(w), minigrad.ones_like(b)
        opt.step()
    assert works == [2 * 1024, 12 * 1024]
    assert NumpyBackend().adam_passes() == 12  # use_native is False here


# ---- through the ops --------------------------------------------------------------------------
@pytest.fixture
def hook_log(monkeypatch):
    """Wrap the NumPy backend's kernel hooks; the log lists (hook, whether it computed) per call."""
    return _spy_on_hooks(monkeypatch, HOOK_NAMES)


def _spy_on_hooks(monkeypatch, names):
    """Wrap these hooks of the NumPy backend; the returned log lists (hook, whether it computed) per call."""
    log: list[tuple[str, bool]] = []
    for name in names:
        real = getattr(NumpyBackend, name)

        def spy(self, *args, _real=real, _name=name, **kwargs):
            out = _real(self, *args, **kwargs)
            log.append((_name, out is not None and out is not False))
            return out

        monkeypatch.setattr(NumpyBackend, name, spy)
    return log


def _tensor(name, shape, loc=0.0, spread=1.0):
    values = loc + spread * _rng(name).standard_normal(shape)
    return minigrad.tensor(values, dtype="float64", requires_grad=True)


def _value_and_grads(fn, xs, seed):
    """fn's value and the gradients of a random upstream gradient (not ones: it must weigh rows differently)."""
    out = fn(*xs)
    u = minigrad.tensor(np.random.default_rng(seed).standard_normal(out.shape), dtype="float64")
    grads = minigrad.grad(out, xs, u)
    return [out.detach().numpy()] + [g.numpy() for g in grads]


def _on_and_off(fn, xs, monkeypatch, log):
    """(C kernels on, off) values and gradients; checks that the hooks computed only when on."""
    with monkeypatch.context() as m:
        m.setattr(NumpyBackend, "use_native", False)
        off = _value_and_grads(fn, xs, 5)
    assert log and not any(used for _, used in log), log
    log.clear()
    on = _value_and_grads(fn, xs, 5)
    return on, off


def _assert_same(on, off):
    assert len(on) == len(off)
    for a, b in zip(on, off):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@needs_kernels
@pytest.mark.parametrize("affine", ["both", "none"])
def test_layer_norm_op_with_and_without_the_c_kernels(affine, monkeypatch, hook_log):
    x = _tensor("opx", (3, 4, 16), loc=2.0)
    params = [_tensor("opw", (16,)), _tensor("opb", (16,))] if affine == "both" else []
    xs = [x, *params]

    def fn(x, *wb):
        return F.layer_norm(x, 16, *wb, eps=1e-5)

    on, off = _on_and_off(fn, xs, monkeypatch, hook_log)
    assert hook_log == [("layer_norm_forward", True), ("layer_norm_backward", True)]
    _assert_same(on, off)


def _attention_inputs(case):
    qs, ks, kind = ATTENTION_CASES[case]
    kshape, ktrans = ks if isinstance(ks[0], tuple) else (ks, False)
    q, k = _tensor("q" + case, qs), _tensor("k" + case, kshape)
    mask = None
    if kind == "bool":  # row 1 keeps one key, row 2 none
        mask = minigrad.tensor(np.arange(5)[None, :] > np.array([[1], [0], [-1]]))
    elif kind == "float":
        mask = minigrad.tensor(_rng("fmask").standard_normal((3, 5)), dtype="float64")
    return q, k, ktrans, mask, kind


@needs_kernels
@pytest.mark.parametrize("case", list(ATTENTION_CASES))
def test_attention_weights_op_with_and_without_the_c_kernels(case, monkeypatch, hook_log):
    q, k, ktrans, mask, kind = _attention_inputs(case)

    def fn(q, k):
        return F.attention_weights(q, k.T if ktrans else k, mask=mask, scale=0.7)

    on, off = _on_and_off(fn, [q, k], monkeypatch, hook_log)
    assert hook_log and all(used for _, used in hook_log), hook_log
    assert {name for name, _ in hook_log} == {"softmax_rows", "softmax_backward"}
    _assert_same(on, off)
    if kind == "bool":
        assert np.all(on[0][..., 2, :] == 0)


@needs_kernels
@pytest.mark.parametrize("has_bias", [True, False])
def test_linear_relu_op_with_and_without_the_c_kernels(has_bias, monkeypatch, hook_log):
    x, weight = _tensor("lrx", (3, 4, 6)), _tensor("lrw", (5, 6))
    xs = [x, weight] + ([_tensor("lrb", (5,))] if has_bias else [])

    def fn(x, weight, *bias):
        return F.linear_relu(x, weight, *bias)

    on, off = _on_and_off(fn, xs, monkeypatch, hook_log)
    assert hook_log == [("bias_relu", True), ("relu_backward", True)]
    assert (on[0] == 0).any() and (on[0] > 0).any()  # both sides of the ReLU
    _assert_same(on, off)


@needs_kernels
def test_gradcheck_passes_through_the_c_kernels(hook_log):
    x, w, b = _tensor("gx", (3, 5), spread=3.0), _tensor("gw", (5,)), _tensor("gb", (5,))
    assert minigrad.gradcheck(lambda x, w, b: F.layer_norm(x, 5, w, b), (x, w, b))
    q, k = _tensor("gq", (2, 3, 4)), _tensor("gk", (2, 5, 4))
    bool_mask = minigrad.tensor(np.array([False, False, True, False, True]))
    float_mask = minigrad.tensor(_rng("gfm").standard_normal((3, 5)), dtype="float64")
    for mask in (bool_mask, float_mask):
        assert minigrad.gradcheck(lambda q, k, m=mask: F.attention_weights(q, k, mask=m, scale=0.5), (q, k))
    x, weight, bias = _tensor("glx", (3, 6)), _tensor("glw", (5, 6)), _tensor("glb", (5,))
    assert minigrad.gradcheck(F.linear_relu, (x, weight, bias))
    assert {name for name, _ in hook_log} == set(HOOK_NAMES)
    assert all(used for _, used in hook_log)


# ---- building and falling back ----------------------------------------------------------------
@pytest.fixture
def fresh_native(monkeypatch, tmp_path):
    """``minigrad.native`` with nothing loaded and its cache in ``tmp_path / "cache"``; after
    the test it forgets what it loaded, so later tests load the real library again."""
    monkeypatch.setenv(native.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.delenv(native.ENV_SWITCH, raising=False)
    native.reset()
    yield tmp_path / "cache"
    native.reset()


def _files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


def _ops_work_without_the_kernels():
    """F.layer_norm and F.attention_weights give the references' values (NumPy path)."""
    x = _rng("fallback").standard_normal((2, 3, 8)) + 2
    w, b = _rng("fw").standard_normal(8), _rng("fb").standard_normal(8)
    got = F.layer_norm(minigrad.tensor(x), 8, minigrad.tensor(w), minigrad.tensor(b)).numpy()
    np.testing.assert_allclose(got, kernel_reference.layer_norm_forward(x, w, b, 1e-5)[0], rtol=1e-12, atol=1e-14)
    q, k = _rng("fq").standard_normal((2, 3, 4)), _rng("fk").standard_normal((2, 5, 4))
    mask = np.array([False, True, False, False, True])
    got = F.attention_weights(minigrad.tensor(q), minigrad.tensor(k), mask=minigrad.tensor(mask), scale=0.5).numpy()
    want = q @ k.swapaxes(-1, -2)
    kernel_reference.softmax_rows(want, 0.5, bool_mask=mask)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert NumpyBackend().layer_norm_forward(x.reshape(6, 8), w, b, 1e-5) is None


@pytest.mark.parametrize("value", ["0", "off"])
def test_minigrad_native_switch_turns_the_kernels_off(value, fresh_native, monkeypatch):
    monkeypatch.setenv("MINIGRAD_NATIVE", value)
    assert native.library() is None
    assert "MINIGRAD_NATIVE" in native.status() and native.status().startswith("off")
    assert _files(fresh_native) == []  # nothing built
    _ops_work_without_the_kernels()


def test_a_failing_compiler_leaves_no_library_and_no_files(fresh_native, monkeypatch, tmp_path):
    """The "compiler" prints an error and fails: both flag sets are tried once each (not
    again on the next call), the status names the compiler and its message, and neither
    the temporary output nor the source file is left in the cache folder."""
    log = tmp_path / "calls.txt"
    script = f"import sys; open({str(log)!r}, 'a').write('x'); sys.exit('fakecc: cannot compile'.upper())"
    monkeypatch.setenv("CC", f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}")
    assert native.find_compiler() == [sys.executable, "-c", script]
    assert native.library() is None
    assert native.library() is None
    status = native.status()
    assert status.startswith("unavailable") and sys.executable in status
    assert "FAKECC: CANNOT COMPILE" in status  # its stderr (upper case: not just the command line)
    assert log.read_text() == "xx"  # with and without -march=native
    assert _files(fresh_native) == []
    _ops_work_without_the_kernels()


def test_a_missing_compiler_leaves_no_library(fresh_native, monkeypatch):
    """With CC set only CC is tried, so a CC that does not exist means no compiler."""
    monkeypatch.setenv("CC", "minigrad-no-such-compiler-4711 -O2")
    assert native.find_compiler() is None
    assert native.library() is None
    assert "no C compiler" in native.status() and native.status().startswith("unavailable")
    assert _files(fresh_native) == []
    _ops_work_without_the_kernels()


def _kernels_work(lib):
    assert native.self_check(lib) is None
    x = _rng("works").standard_normal((5, 7))
    y = NumpyBackend().layer_norm_forward(x, None, None, 1e-5)[0]
    np.testing.assert_allclose(y, kernel_reference.layer_norm_forward(x, None, None, 1e-5)[0], rtol=1e-12)


@needs_kernels
def test_a_cache_folder_that_cannot_be_made_falls_back_to_the_temporary_directory(fresh_native, monkeypatch, tmp_path):
    """A cache path under a regular file cannot be created: the library is built in a
    folder of the temporary directory instead, and works."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(native.ENV_CACHE, str(blocker / "cache"))
    monkeypatch.setattr(native.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    lib = native.library()
    assert lib is not None and lib.path.parent.parent == tmp_path / "tmp"
    assert str(tmp_path / "tmp") in native.status()
    assert native.self_check(lib) is None


def test_an_unusable_cache_and_temporary_directory_leave_no_library(fresh_native, monkeypatch, tmp_path):
    """When no folder can be made at all, the kernels are unavailable (no exception) and
    the ops run their NumPy code."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(native.ENV_CACHE, str(blocker / "cache"))
    monkeypatch.setattr(native.tempfile, "gettempdir", lambda: str(blocker / "tmp"))
    monkeypatch.setattr(native, "find_compiler", lambda: ["cc"])
    assert native.library() is None
    assert native.status().startswith("unavailable: no folder to build in")
    _ops_work_without_the_kernels()


def test_build_reuse_and_rebuild_of_a_damaged_file(fresh_native, monkeypatch, tmp_path):
    """One build makes exactly one ``.so`` (no temporary or source file left); a later load
    reuses it without building; a damaged file under that name is rebuilt; a failing
    self-check disables the library."""
    if native.find_compiler() is None:
        pytest.skip("needs a C compiler ($CC, or cc, gcc or clang on PATH)")
    lib = native.library()
    assert lib is not None, native.status()
    assert native.status().startswith("on") and str(lib.path) in native.status()
    assert _files(fresh_native) == [lib.path] and lib.path.suffix == ".so"
    built_at = lib.path.stat().st_mtime_ns
    _kernels_work(lib)

    native.reset()
    again = native.library()
    assert again is not None and again.path == lib.path
    assert lib.path.stat().st_mtime_ns == built_at  # loaded, not rebuilt
    assert _files(fresh_native) == [lib.path]

    with monkeypatch.context() as m:  # a library that fails its self-check is not used
        m.setattr(native, "self_check", lambda lib: "wrong numbers")
        native.reset()
        assert native.library() is None
        assert "self-check" in native.status() and "wrong numbers" in native.status()
        assert NumpyBackend().softmax_backward(np.ones((2, 3)), np.ones((2, 3))) is None

    # A damaged file: in another folder, because this process has the first file loaded
    # (the dynamic loader would hand back the loaded copy for the same path).
    other = tmp_path / "other"
    other.mkdir()
    damaged = other / lib.path.name
    junk = b"this is not a shared library\n" * 64
    damaged.write_bytes(junk)
    monkeypatch.setenv(native.ENV_CACHE, str(other))
    native.reset()
    rebuilt = native.library()
    assert rebuilt is not None, native.status()
    assert rebuilt.path == damaged and damaged.read_bytes() != junk
    assert _files(other) == [damaged]
    _kernels_work(rebuilt)


def test_a_compiler_that_refuses_march_native_is_retried_without_it(fresh_native, monkeypatch, tmp_path):
    real = native.find_compiler()
    if real is None:
        pytest.skip("needs a C compiler ($CC, or cc, gcc or clang on PATH)")
    wrapper = tmp_path / "picky_cc.py"
    wrapper.write_text(
        "import os, sys\n"
        "if '-march=native' in sys.argv:\n"
        "    sys.exit('picky: -march=native is not supported')\n"
        f"os.execvp({real[0]!r}, {real!r} + sys.argv[1:])\n"
    )
    monkeypatch.setenv("CC", f"{shlex.quote(sys.executable)} {shlex.quote(str(wrapper))}")
    lib = native.library()
    assert lib is not None, native.status()
    assert native.status().startswith("on") and "-march=native" not in native.status()
    assert _files(fresh_native) == [lib.path]
    _kernels_work(lib)


# ---- the self-check ---------------------------------------------------------------------------
@needs_kernels
def test_self_check_passes_on_the_real_library():
    assert native.self_check(native.library()) is None


class _Tampered:
    """The real kernels, except ``broken``, which does nothing (its outputs keep their zeros)."""

    def __init__(self, lib, broken):
        self.lib, self.broken = lib, broken

    def function(self, name, suffix):
        return (lambda *args: None) if name == self.broken else self.lib.function(name, suffix)


@needs_kernels
@pytest.mark.parametrize("broken", ["layer_norm_forward", "softmax_backward"])
def test_self_check_catches_a_wrong_kernel(broken):
    problem = native.self_check(_Tampered(native.library(), broken))
    assert problem is not None and broken in problem
