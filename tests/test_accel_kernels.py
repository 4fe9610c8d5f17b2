"""The numba kernels (``minigrad.accel.numba_kernels``) against NumPy formulas written here.

This module proves that every kernel gives the values of its NumPy formula in float32 and
float64, on one row and odd sizes, with 1 and 2 numba threads:

* layer norm forward and backward (every affine and wanted-gradient combination, rows far
  from zero, non-contiguous inputs);
* the attention softmax with bool and float masks of each broadcast kind, rows with every
  key masked (exactly 0), NaN scores, scores whose exp overflows, in place on a slice;
  softmax forward and backward;
* bias + ReLU and its backward with NumPy's bits (NaN, -0, inf), Adam's update with the
  bits of the NumPy expressions (one parameter, a list of mixed dtypes, a parameter large
  enough to be split over threads) and scatter-add with ``np.add.at``'s bits.

What the kernels refuse, thread counts, the threading layer, the same bits on 1 and 2
threads and ``self_check`` are in ``tests/test_accel_runtime.py``.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

numba = pytest.importorskip("numba", reason="the numba kernels need numba: pip install -e '.[fast]'")

from minigrad.accel import numba_kernels as K  # noqa: E402 - only once numba is known to be there

DTYPES = ["float32", "float64"]
ROWS_N = [(1, 1), (3, 7), (17, 256), (64, 33)]
WANTS = [(True, True, True), (True, False, False), (False, True, False), (False, False, True)]  # dx, dw, db


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    """numba's thread count for this test (capped at the CPUs numba may use), restored after."""
    K.configure_threading()
    before = numba.get_num_threads()
    numba.set_num_threads(min(request.param, numba.config.NUMBA_NUM_THREADS))
    yield request.param
    numba.set_num_threads(before)


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _tol(dtype, n):
    """(rtol, atol): the kernels add the n entries of a row in another order than NumPy."""
    return (1e-5, 1e-6 * max(n, 10) ** 0.5) if dtype == "float32" else (1e-12, 1e-14 * max(n, 10) ** 0.5)


def _close(got, want, dtype, n, scale=1.0):
    assert type(got) is np.ndarray and got.dtype == dtype and got.shape == want.shape
    rtol, atol = _tol(dtype, n)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale)


def _same_bits(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    bits = np.uint32 if got.dtype == np.float32 else np.uint64
    np.testing.assert_array_equal(got.view(bits), want.view(bits))


# ---- the NumPy formulas ---------------------------------------------------------------------
def ref_layer_norm(x, w, b, eps):
    mean = x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + eps)
    y = (x - mean) * rstd
    y = y * w if w is not None else y
    return (y + b if b is not None else y), mean, rstd


def ref_layer_norm_backward(g, x, mean, rstd, w):
    xhat = (x - mean) * rstd
    d = g * w if w is not None else g
    dx = rstd * (d - d.mean(axis=-1, keepdims=True) - xhat * (d * xhat).mean(axis=-1, keepdims=True))
    return dx, (g * xhat).sum(axis=0), g.sum(axis=0)


def ref_attention_softmax(w, scale, bool_mask=None, float_mask=None):
    s = w * scale
    if bool_mask is not None:
        s = np.where(bool_mask, -np.inf, s).astype(w.dtype)
    elif float_mask is not None:
        s = s + float_mask.astype(w.dtype)
    top = np.fmax.reduce(s, axis=-1, keepdims=True)
    dead = top == -np.inf
    with np.errstate(invalid="ignore"):
        e = np.exp(s - np.where(dead, 0, top).astype(w.dtype))
        return e / np.where(dead, 1, e.sum(axis=-1, keepdims=True)).astype(w.dtype)


def ref_softmax(x):
    with np.errstate(invalid="ignore"):
        e = np.exp(x - np.fmax.reduce(x, axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


def ref_adam(p, g, m, v, step_size, bc2_sqrt, beta1=0.9, beta2=0.999, eps=1e-8):
    """``Backend.adam_update``'s NumPy expressions, in place."""
    s = g * (1.0 - beta1)
    m *= beta1
    m += s
    np.multiply(g, g, out=s)
    s *= 1.0 - beta2
    v *= beta2
    v += s
    d = np.sqrt(v, out=s)
    d /= bc2_sqrt
    d += eps
    u = np.divide(m, d, out=s)
    u *= -step_size
    p += u


# ---- layer norm -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,n", ROWS_N)
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
def test_layer_norm_forward(dtype, rows, n, affine, threads):
    rng = _rng("lnf", dtype, rows, n, affine)
    x = (2 + 3 * rng.standard_normal((rows, n))).astype(dtype)
    w = rng.standard_normal(n).astype(dtype) if affine in ("both", "weight") else None
    b = rng.standard_normal(n).astype(dtype) if affine in ("both", "bias") else None
    got = K.layer_norm_forward(x, w, b, 1e-5)
    for a, want in zip(got, ref_layer_norm(x, w, b, 1e-5)):  # y (rows, n); mean, rstd (rows, 1)
        _close(a, want, dtype, n)


def test_layer_norm_forward_of_rows_far_from_zero():
    """1e4 + N(0, 1): the variance is taken around the mean (two passes); the truth is the
    layer norm of the same rows shifted back by 1e4 (an exact subtraction)."""
    r = _rng("far").standard_normal((16, 1000))
    y, mean, rstd = K.layer_norm_forward(1e4 + r, None, None, 1e-5)
    want_y, want_mean, want_rstd = ref_layer_norm((1e4 + r) - 1e4, None, None, 1e-5)
    np.testing.assert_allclose(mean, want_mean + 1e4, rtol=1e-14)
    np.testing.assert_allclose(rstd, want_rstd, rtol=1e-10)
    np.testing.assert_allclose(y, want_y, rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,n", ROWS_N)
@pytest.mark.parametrize("has_weight", [True, False])
@pytest.mark.parametrize("wants", WANTS)
def test_layer_norm_backward(dtype, rows, n, has_weight, wants, threads):
    rng = _rng("lnb", dtype, rows, n, has_weight)
    x = (2 + 3 * rng.standard_normal((rows, n))).astype(dtype)
    w = rng.standard_normal(n).astype(dtype) if has_weight else None
    g = rng.standard_normal((rows, n)).astype(dtype)
    _, mean, rstd = ref_layer_norm(x, None, None, 1e-5)
    got = K.layer_norm_backward(g, x, mean, rstd, w, *wants)
    for a, want, wanted in zip(got, ref_layer_norm_backward(g, x, mean, rstd, w), wants):
        assert (a is None) == (not wanted)
        if wanted:  # dw and db: sums over the rows
            _close(a, want, dtype, n, scale=rows)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_of_non_contiguous_inputs(dtype):
    """Read-only inputs may be views of any layout: the results of their contiguous copies."""
    rng = _rng("lnview", dtype)
    x = np.asfortranarray((1 + rng.standard_normal((9, 12))).astype(dtype))
    w = rng.standard_normal(24).astype(dtype)[::2]
    g = np.broadcast_to(rng.standard_normal(12).astype(dtype), (9, 12))
    got = K.layer_norm_forward(x, w, None, 1e-5)
    for a, b in zip(got, K.layer_norm_forward(x.copy(), w.copy(), None, 1e-5)):
        _same_bits(a, b)
    _, mean, rstd = got
    for a, b in zip(K.layer_norm_backward(g, x, mean[:, 0], rstd, w, True, True, True),
                    K.layer_norm_backward(g.copy(), x.copy(), mean, rstd, w.copy(), True, True, True)):  # fmt: skip
        _same_bits(a, b)


# ---- softmax --------------------------------------------------------------------------------
def _mask(kind, shape, dtype, rng):
    """The mask keyword of each broadcast kind; most mask every key of some rows."""
    b, sq, sk = shape[0], shape[-2], shape[-1]
    if kind == "none":
        return {}
    if kind.startswith("bool"):
        mshape = {
            "bool_key_padding": (b,) + (1,) * (len(shape) - 2) + (sk,),  # (B, 1, 1, Sk) or (B, 1, Sk)
            "bool_causal": (sq, sk),
            "bool_keys": (sk,),
            "bool_full": shape,
            "bool_column": shape[:-1] + (1,),  # one flag for a whole row
        }[kind]
        m = rng.random(mshape) < 0.3
        if kind == "bool_causal":
            m = np.triu(np.ones(mshape, dtype=bool), 1)
            m[0] = True  # query 0 sees no key
        elif kind != "bool_keys":
            m[(0,) * (m.ndim - 1)] = True  # the first row (batch entry, for key padding) fully masked
        return {"bool_mask": m}
    mshape = {"float_heads": (1,) + shape[1:], "float64_mask": shape, "float_causal": (sq, sk)}[kind]
    m = rng.standard_normal(mshape).astype("float64" if kind == "float64_mask" else dtype)
    m[(0,) * (m.ndim - 1)] = -np.inf  # a row whose every score is forbidden
    return {"float_mask": m}


MASKS = ["none", "bool_key_padding", "bool_causal", "bool_keys", "bool_full", "bool_column"]
MASKS += ["float_heads", "float64_mask", "float_causal"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (3, 1, 64), (1, 1, 1, 1), (2, 4, 17, 64)])
@pytest.mark.parametrize("mask", MASKS)
def test_attention_softmax(dtype, shape, mask, threads):
    rng = _rng("att", dtype, shape, mask)
    w = (3 * rng.standard_normal(shape)).astype(dtype)
    kwargs = _mask(mask, shape, dtype, rng)
    want = ref_attention_softmax(w, 0.7, **kwargs)
    got = w.copy()
    assert K.attention_softmax(got, 0.7, **kwargs) is got  # in place
    _close(got, want, dtype, shape[-1])
    if kwargs:  # rows with every key masked are exactly 0, and so is every masked key
        (m,) = kwargs.values()
        forbidden = np.broadcast_to(m if m.dtype == bool else m == -np.inf, shape)
        dead = forbidden.all(axis=-1)
        assert mask == "bool_keys" or shape[-1] == 1 or dead.any()
        assert np.all(got[dead] == 0) and np.all(got[forbidden] == 0)
    live = ~np.isclose(want.sum(-1), 0)
    np.testing.assert_allclose(got.sum(-1)[live], 1.0, rtol=_tol(dtype, shape[-1])[0] * 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_softmax_of_nans_and_a_one_dimensional_row(dtype):
    """A NaN score spreads over its row unless the mask removes it; a row of NaNs stays NaN;
    a masked row with a NaN keeps it (as the NumPy formula does); a 1-D w is one row."""
    w = _rng("nan", dtype).standard_normal((6, 5)).astype(dtype)
    w[0, 2], w[1], w[2, 0], w[3, 1], w[4, 4] = np.nan, np.nan, np.nan, np.nan, np.nan
    mask = np.zeros((6, 5), dtype=bool)
    mask[2, 0] = True
    mask[3, [0, 2, 3, 4]] = True
    for kwargs in ({}, {"bool_mask": mask}):
        want = ref_attention_softmax(w, 0.7, **kwargs)
        got = K.attention_softmax(w.copy(), 0.7, **kwargs)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        assert np.isnan(got[[0, 1, 4]]).all() and np.isnan(got[2]).all() != bool(kwargs)
    row = w[5].copy()
    _close(K.attention_softmax(row, 2.0), ref_attention_softmax(w[5], 2.0), dtype, 5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmaxes_of_scores_whose_exp_overflows(dtype):
    """Rows big + (0, -1, -2, ...) give the weights of (0, -1, -2, ...): shifted by the max."""
    big = 1000.0 if dtype == "float64" else 100.0
    w = np.stack([big - np.arange(5.0), -big - np.arange(5.0), big * np.array([1, -1, 0, 1, -1])]).astype(dtype)
    with np.errstate(all="raise"):
        got = K.attention_softmax(w.copy(), 1.0)
        plain = K.softmax_forward(w)
    e = np.exp(w.astype(np.float64) - w.max(-1, keepdims=True))
    want = e / e.sum(-1, keepdims=True)
    for a in (got, plain):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, want, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-30)


def test_attention_softmax_writes_only_its_own_rows():
    base = _rng("slice").standard_normal((5, 4, 6))
    before = base.copy()
    K.attention_softmax(base[1:3], 0.7)  # a C-contiguous slice of a larger array
    np.testing.assert_allclose(base[1:3], ref_attention_softmax(before[1:3], 0.7), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(base[[0, 3, 4]], before[[0, 3, 4]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (2, 3, 19), (64, 64), (5,)])
def test_softmax_forward(dtype, shape, threads):
    x = (3 * _rng("smf", dtype, shape).standard_normal(shape)).astype(dtype)
    got = K.softmax_forward(x)
    _close(got, ref_softmax(x), dtype, shape[-1])
    assert got.flags.c_contiguous and not np.shares_memory(got, x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_forward_of_nans_and_infinities_is_the_formulas(dtype):
    """A row of -inf is NaN ((-inf) - (-inf)), a row with +inf too, a NaN spreads over its row."""
    x = _rng("smf-nan", dtype).standard_normal((4, 6)).astype(dtype)
    x[0], x[1, 2], x[2, 3], x[3, 0] = -np.inf, np.inf, np.nan, -np.inf  # row 3: one -inf, still fine
    got, want = K.softmax_forward(x), ref_softmax(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[:3]).all() and not np.isnan(got[3]).any()
    np.testing.assert_allclose(got[3], want[3], rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (2, 3, 4, 7), (64, 300)])
@pytest.mark.parametrize("scale", [1.0, 0.7])
def test_softmax_backward(dtype, shape, scale, threads):
    rng = _rng("smb", dtype, shape, scale)
    w = ref_softmax(rng.standard_normal(shape).astype(dtype))
    g = rng.standard_normal(shape).astype(dtype)
    want = w * (g - (g * w).sum(axis=-1, keepdims=True)) * scale
    _close(K.softmax_backward(g, w, scale), want, dtype, shape[-1])
    view = np.ascontiguousarray(g.swapaxes(0, -1)).swapaxes(0, -1)  # any layout: as its contiguous copy
    _same_bits(K.softmax_backward(view, w, scale), K.softmax_backward(g, w, scale))


# ---- ReLU -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,n", [(1, 1), (3, 7), (37, 300), (64, 1024)])
@pytest.mark.parametrize("has_bias", [True, False])
def test_bias_relu_gives_numpys_bits(dtype, rows, n, has_bias, threads):
    rng = _rng("relu", dtype, rows, n, has_bias)
    h = rng.standard_normal((rows, n)).astype(dtype)
    h.reshape(-1)[:4] = [np.nan, -0.0, np.inf, -np.inf][: h.size]
    bias = rng.standard_normal(n).astype(dtype) if has_bias else None
    got = h.copy()
    assert K.bias_relu(got, bias) is got
    _same_bits(got, np.maximum(h + bias if bias is not None else h, 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (37, 300), (3, 5, 8)])
def test_relu_backward(dtype, shape, threads):
    """dx = g * [y > 0] with NumPy's bits (NaN in y: no gradient; inf in g where y <= 0: NaN);
    its sum over every axis but the last; dx a new array shaped like g, for any layout of g."""
    rng = _rng("relub", dtype, shape)
    y = np.maximum(rng.standard_normal(shape), 0).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    y.reshape(-1)[:1], g.reshape(-1)[-1:] = np.nan, np.inf
    with np.errstate(invalid="ignore"):
        want = g * (y > 0)
    for g_in in (g, np.asfortranarray(g)):
        for want_dbias in (True, False):
            dx, db = K.relu_backward(g_in, y, want_dbias)
            _same_bits(dx, want)
            assert dx.base is None and (db is None) == (not want_dbias)
            if want_dbias:
                _close(db, want.sum(axis=tuple(range(len(shape) - 1))), dtype, shape[-1], scale=50)


# ---- Adam -----------------------------------------------------------------------------------
def _adam_arrays(dtype, shape, *key):
    rng = _rng("adam", dtype, shape, *key)
    p, g, m = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    return p, g, m, np.abs(rng.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7,), (33, 65), (3, 40000)])  # the last: split over the threads
def test_adam_update_gives_the_numpy_expressions_bits(dtype, shape, threads):
    arrays = _adam_arrays(dtype, shape)
    want = [a.copy() for a in arrays]
    for t in (1, 2, 3):  # three steps, each with its own bias corrections
        step_size, bc2_sqrt = 1e-3 / (1 - 0.9**t), (1 - 0.999**t) ** 0.5
        K.adam_update(*arrays, step_size, bc2_sqrt, 0.9, 0.999, 1e-8)
        ref_adam(*want, step_size, bc2_sqrt)
    for a, b in zip(arrays, want):
        _same_bits(a, b)
    assert not np.array_equal(arrays[0], _adam_arrays(dtype, shape)[0])


def test_adam_update_many_gives_each_parameter_its_bits(threads):
    """A list mixing float32 and float64 parameters, each with its own step; a transposed
    gradient is read as it is."""
    shapes, dtypes = [(3, 5), (7,), (2, 3, 4), (1,), (6, 2), (70000,)], ["float32", "float64"] * 3
    updates = []
    for i, (shape, dtype) in enumerate(zip(shapes, dtypes)):
        p, g, m, v = _adam_arrays(dtype, shape, i)
        if i == 4:
            g = np.ascontiguousarray(g.T).T
        updates.append((p, g, m, v, 1e-3 * (i + 1), (1 - 0.999 ** (i + 1)) ** 0.5))
    expected = [[a.copy() for a in u[:4]] for u in updates]
    K.adam_update_many(updates, 0.9, 0.999, 1e-8)
    for u, want in zip(updates, expected):
        ref_adam(*want, *u[4:])
        for a, b in zip(u[:4], want):
            _same_bits(a, b)


# ---- scatter-add ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index_shape,d", [((4, 9), 16), ((), 3), ((50,), 1), ((32, 64), 130)])
@pytest.mark.parametrize("index_dtype", ["int64", "int32"])
def test_scatter_add_gives_np_add_at_bits(dtype, index_shape, d, index_dtype, threads):
    rng = _rng("scatter", dtype, index_shape, d)
    target = rng.standard_normal((7, d)).astype(dtype)
    index = rng.integers(-7, 7, size=index_shape).astype(index_dtype)  # negative: counted from the end
    values = rng.standard_normal(index_shape + (d,)).astype(dtype)
    want = target.copy()
    np.add.at(want, index, values)
    K.scatter_add(target, index, values)
    _same_bits(target, want)
