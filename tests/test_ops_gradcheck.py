"""Every differentiable op's backward agrees with finite differences (float64).

Shapes cover broadcasting, size-1 and 0-d tensors, non-contiguous (transposed) inputs
and batched 3-D/4-D tensors. Inputs stay away from the points where an op is not
differentiable (kinks of abs/relu/clip/maximum, ties of max/min, log/sqrt/pow of
non-positive numbers). Core ops also pass gradgradcheck (second order), and the fused
softmax, log_softmax and layer_norm agree with their op-by-op composite versions.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

import minigrad
import minigrad.functional as F
from minigrad import gradcheck, gradgradcheck
from minigrad.ops.indexing import IndexAddZeros

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration


# ---- inputs ---------------------------------------------------------------------------------
def _values(kind, shape, rng):
    n = int(np.prod(shape))
    if kind == "n":  # normal
        return rng.standard_normal(shape)
    if kind == "p":  # positive
        return rng.uniform(0.5, 2.0, shape)
    if kind == "a":  # away from 0
        return np.sign(rng.standard_normal(shape)) * rng.uniform(0.2, 2.0, shape)
    if kind == "ga":  # on a grid offset by 0.25: never within 0.15 of a "gb" value or of +-0.5
        return rng.integers(-4, 4, shape) * 0.5 + 0.25 + rng.uniform(-0.05, 0.05, shape)
    if kind == "gb":
        return rng.integers(-4, 4, shape) * 0.5 + rng.uniform(-0.05, 0.05, shape)
    if kind == "d":  # distinct values (no ties for max/min)
        return (rng.permutation(n) * 0.3 + rng.uniform(-0.05, 0.05, n)).reshape(shape)
    raise ValueError(kind)


def make(shape, kind="n", transposed=False, rng=None):
    """A float64 leaf; ``transposed`` makes it a non-contiguous view of a transposed array."""
    rng = rng if rng is not None else np.random.default_rng(0)
    if transposed:
        base = minigrad.tensor(_values(kind, tuple(reversed(shape)), rng), dtype="float64")
        x = base.T.detach().requires_grad_()  # detach shares the transposed view
        assert not x.data.flags.c_contiguous or x.ndim < 2
        return x
    return minigrad.tensor(_values(kind, shape, rng), dtype="float64", requires_grad=True)


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def inputs_for(name, specs):
    rng = _rng(name)
    return [make(shape, kind, transposed, rng) for shape, kind, transposed in specs]


def S(shape, kind="n", transposed=False):
    """An input spec: shape, kind of values (see ``_values``), transposed (non-contiguous)."""
    return (tuple(shape), kind, transposed)


# ---- elementwise binary ops over broadcasting shapes -------------------------------------------
BINARY_SHAPES = {
    "same": ((3, 4), (3, 4)),
    "row": ((3, 4), (4,)),
    "both_sides_3d": ((2, 1, 4), (3, 1)),
    "size1": ((1,), (2, 3)),
    "scalar0d": ((), (2, 3)),
    "4d": ((2, 1, 2, 3), (1, 2, 1, 3)),
}

BINARY_OPS = {
    "add": (lambda a, b: a + b, "n", "n"),
    "sub": (lambda a, b: a - b, "n", "n"),
    "mul": (lambda a, b: a * b, "n", "n"),
    "div": (lambda a, b: a / b, "n", "p"),
    "pow": (lambda a, b: a**b, "p", "n"),
    "maximum": (F.maximum, "ga", "gb"),
    "minimum": (F.minimum, "ga", "gb"),
}


def binary_case(op, shapes="same"):
    fn, ka, kb = BINARY_OPS[op]
    sa, sb = BINARY_SHAPES[shapes]
    return fn, inputs_for(op + shapes, [S(sa, ka), S(sb, kb)])


@pytest.mark.parametrize("shapes", list(BINARY_SHAPES))
@pytest.mark.parametrize("op", list(BINARY_OPS))
def test_binary_gradcheck(op, shapes):
    fn, xs = binary_case(op, shapes)
    assert gradcheck(fn, xs)


@pytest.mark.parametrize("op", list(BINARY_OPS))
def test_binary_gradcheck_transposed(op):
    fn, ka, kb = BINARY_OPS[op]
    a, b = inputs_for(op, [S((3, 4), ka, True), S((4, 3), kb, True)])
    assert gradcheck(lambda a, b: fn(a, b.T), [a, b])


@pytest.mark.parametrize("op", list(BINARY_OPS))
def test_binary_gradcheck_one_input_constant(op):
    """Only one side requires grad (the other is a constant tensor or a Python number)."""
    fn, ka, kb = BINARY_OPS[op]
    a, b = inputs_for(op, [S((2, 3), ka), S((3,), kb)])
    assert gradcheck(lambda a: fn(a, b.detach()), [a])
    assert gradcheck(lambda b: fn(a.detach(), b), [b])
    scalar = 1.5 if op != "maximum" and op != "minimum" else 0.5
    assert gradcheck(lambda b: fn(scalar, b), [b])


# ---- elementwise unary ops ----------------------------------------------------------------------
UNARY_OPS = {
    "neg": (F.neg, "n"),
    "exp": (F.exp, "n"),
    "log": (F.log, "p"),
    "sqrt": (F.sqrt, "p"),
    "abs": (F.abs, "a"),
    "tanh": (F.tanh, "n"),
    "sigmoid": (F.sigmoid, "n"),
    "relu": (F.relu, "a"),
    "gelu": (F.gelu, "n"),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), "n"),
    "erf": (F.erf, "n"),
    "pow_2": (lambda x: x**2, "n"),
    "pow_3": (lambda x: x**3, "n"),
    "pow_1": (lambda x: x**1, "n"),
    "pow_half": (lambda x: x**0.5, "p"),
    "pow_neg": (lambda x: x**-1.5, "p"),
    "rpow": (lambda x: 2.0**x, "n"),
    "rsub_rdiv": (lambda x: 2.0 - 3.0 / x, "p"),
    "sin": (F.sin, "n"),
    "cos": (F.cos, "n"),
    "clip": (lambda x: F.clip(x, -0.5, 0.5), "ga"),
    "clip_min": (lambda x: F.clip(x, min=0.5), "ga"),
    "clip_max": (lambda x: F.clip(x, max=-0.5), "ga"),
}

UNARY_SHAPES = {
    "1d": ((5,), False),
    "0d": ((), False),
    "3d": ((2, 3, 4), False),
    "transposed": ((3, 4), True),
    "4d_size1": ((2, 1, 3, 2), False),
}


def unary_case(op, shape="1d"):
    fn, kind = UNARY_OPS[op]
    s, transposed = UNARY_SHAPES[shape]
    return fn, inputs_for(op + shape, [S(s, kind, transposed)])


@pytest.mark.parametrize("shape", list(UNARY_SHAPES))
@pytest.mark.parametrize("op", list(UNARY_OPS))
def test_unary_gradcheck(op, shape):
    fn, xs = unary_case(op, shape)
    assert gradcheck(fn, xs)


def test_sigmoid_large_inputs_are_stable():
    x = minigrad.tensor([-800.0, -30.0, 0.0, 30.0, 800.0], dtype="float64", requires_grad=True)
    y = F.sigmoid(x)
    assert np.all(np.isfinite(y.detach().numpy()))
    with np.errstate(over="ignore"):
        expected = 1 / (1 + np.exp(-np.array([-800.0, -30.0, 0.0, 30.0, 800.0])))
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-12, atol=1e-300)
    y.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    assert gradcheck(F.sigmoid, [minigrad.tensor([-30.0, -5.0, 5.0, 30.0], dtype="float64", requires_grad=True)])


# ---- reductions -----------------------------------------------------------------------------------
REDUCTIONS = {
    "sum_all": (lambda x: x.sum(), "n"),
    "sum_axis": (lambda x: x.sum(axis=1), "n"),
    "sum_axes_keepdims": (lambda x: x.sum(axis=(0, -1), keepdims=True), "n"),
    "mean_all": (lambda x: x.mean(), "n"),
    "mean_neg_axis": (lambda x: x.mean(axis=-1), "n"),
    "mean_keepdims": (lambda x: x.mean(axis=(0, 1), keepdims=True), "n"),
    "var_all": (lambda x: x.var(), "n"),
    "var_axis_ddof": (lambda x: x.var(axis=0, ddof=1), "n"),
    "var_keepdims": (lambda x: x.var(axis=-1, keepdims=True), "n"),
    "max_all": (lambda x: x.max(), "d"),
    "max_axis": (lambda x: x.max(axis=-1), "d"),
    "max_keepdims": (lambda x: x.max(axis=(0, 1), keepdims=True), "d"),
    "min_all": (lambda x: x.min(), "d"),
    "min_axis": (lambda x: x.min(axis=0, keepdims=True), "d"),
    "logsumexp_last": (lambda x: F.logsumexp(x, -1), "n"),
    "logsumexp_first_keepdims": (lambda x: F.logsumexp(x, 0, keepdims=True), "n"),
    "sum_to": (lambda x: F.sum_to(x, (x.shape[-2], 1)), "n"),
}

REDUCTION_SHAPES = {"2d": ((3, 4), False), "3d": ((2, 3, 4), False), "transposed": ((3, 4), True),
                    "4d_size1": ((2, 3, 1, 2), False)}  # fmt: skip


def reduction_case(op, shape="2d"):
    fn, kind = REDUCTIONS[op]
    s, transposed = REDUCTION_SHAPES[shape]
    return fn, inputs_for(op + shape, [S(s, kind, transposed)])


@pytest.mark.parametrize("shape", list(REDUCTION_SHAPES))
@pytest.mark.parametrize("op", list(REDUCTIONS))
def test_reduction_gradcheck(op, shape):
    fn, xs = reduction_case(op, shape)
    assert gradcheck(fn, xs)


def test_max_ties_share_the_gradient():
    x = minigrad.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    y = minigrad.tensor([1.0, 1.0], requires_grad=True)
    z = minigrad.tensor([1.0, 0.0], requires_grad=True)
    F.maximum(y, z).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [0.5, 1.0])
    np.testing.assert_allclose(z.grad.numpy(), [0.5, 0.0])


# ---- softmax family -------------------------------------------------------------------------------
SOFTMAX_CASES = {
    "2d_last": ((3, 4), False, -1),
    "2d_first": ((3, 4), False, 0),
    "3d_middle": ((2, 3, 4), False, 1),
    "transposed": ((3, 4), True, -1),
    "4d": ((2, 1, 2, 3), False, -1),
    "size1_axis": ((3, 1), False, -1),
}
SOFTMAX_OPS = {"softmax": F.softmax, "log_softmax": F.log_softmax, "logsumexp": F.logsumexp}


def softmax_case(op, case="2d_last"):
    shape, transposed, axis = SOFTMAX_CASES[case]
    fn = SOFTMAX_OPS[op]
    return (lambda x: fn(x, axis)), inputs_for(op + case, [S(shape, "n", transposed)])


@pytest.mark.parametrize("case", list(SOFTMAX_CASES))
@pytest.mark.parametrize("op", list(SOFTMAX_OPS))
def test_softmax_family_gradcheck(op, case):
    fn, xs = softmax_case(op, case)
    assert gradcheck(fn, xs)


def test_softmax_extreme_logits_are_stable():
    x = minigrad.tensor([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]], dtype="float64", requires_grad=True)
    y = F.softmax(x)
    np.testing.assert_allclose(y.detach().numpy(), [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-12)
    ls = F.log_softmax(x)
    assert np.all(np.isfinite(ls.detach().numpy()))
    np.testing.assert_allclose(ls.detach().numpy()[1], [-math.log(3)] * 3)
    np.testing.assert_allclose(F.logsumexp(x).detach().numpy(), [1000.0, -1e4 + math.log(3)])


# ---- shape ops ----------------------------------------------------------------------------------
SHAPE_OPS = {
    "reshape": (lambda x: x.reshape(4, -1), (2, 3, 2)),
    "reshape_transposed": (lambda x: x.reshape(-1), ((4, 3), True)),
    "flatten": (lambda x: x.flatten(1) * 1.0, (2, 3, 2)),
    "transpose_all": (lambda x: x.transpose(), (2, 3, 4)),
    "permute": (lambda x: x.permute(2, 0, 1), (2, 3, 4)),
    "swapaxes": (lambda x: x.swapaxes(-1, 0), (2, 1, 3, 2)),
    "split_heads": (lambda x: F.split_heads(x, 3), (2, 4, 6)),
    "split_heads_transposed": (lambda x: F.split_heads(x.transpose(1, 0, 2), 2), ((3, 2, 4), True)),
    "merge_heads": (lambda x: F.merge_heads(x), (2, 3, 4, 2)),
    "merge_heads_of_split": (lambda x: F.merge_heads(F.split_heads(x, 2) * 2.0), (2, 3, 4)),
    "expand": (lambda x: x.expand(2, 3, 4), (3, 1)),
    "expand_new_axes": (lambda x: x.expand(2, -1, 4), (3, 4)),
    "squeeze_all": (lambda x: x.squeeze(), (1, 3, 1, 2)),
    "squeeze_axis": (lambda x: x.squeeze(2), (1, 3, 1, 2)),
    "unsqueeze": (lambda x: x.unsqueeze(1), (3, 4)),
    "getitem_slices": (lambda x: x[1:, ::2], (3, 4)),
    "getitem_negative_step": (lambda x: x[::-1, -2:], (3, 4)),
    "getitem_int": (lambda x: x[1, :, -1], (2, 3, 4)),
    "getitem_none_ellipsis": (lambda x: x[None, ..., 1:3], (2, 3, 4)),
    "getitem_int_array_repeats": (lambda x: x[[0, 2, 0, 0]], (3, 4)),
    "getitem_int_tensor_2d": (lambda x: x[minigrad.tensor([[1, 1], [0, 2]])], (3, 2)),
    "getitem_mixed": (lambda x: x[:, [3, 0, 3]], (2, 4)),
    "getitem_two_arrays": (lambda x: x[[0, 1, 1], [2, 0, 2]], ((4, 3), True)),
    "getitem_bool_mask": (lambda x: x[minigrad.tensor([[True, False, True], [False, False, True]])], (2, 3)),
    "split": (lambda x: x.split(2, axis=1), (2, 5)),
    "split_sections": (lambda x: F.split(x, [1, 2], axis=0), ((3, 2), True)),
    "chunk": (lambda x: F.chunk(x, 2, axis=-1), (2, 4)),
}


def shape_case(op):
    fn, spec = SHAPE_OPS[op]
    shape, transposed = spec if isinstance(spec[0], tuple) else (spec, False)
    return fn, inputs_for(op, [S(shape, "n", transposed)])


@pytest.mark.parametrize("op", list(SHAPE_OPS))
def test_shape_op_gradcheck(op):
    fn, xs = shape_case(op)
    assert gradcheck(fn, xs)


def test_split_and_merge_heads_are_the_reshape_and_transpose_they_stand_for():
    (x,) = inputs_for("heads", [S((2, 3, 8))])
    split = F.split_heads(x, 4)
    expected = x.detach().numpy().reshape(2, 3, 4, 2).transpose(0, 2, 1, 3)
    np.testing.assert_array_equal(split.detach().numpy(), expected)
    assert split.shape == (2, 4, 3, 2) and split.grad_fn.op_name == "split_heads"
    merged = F.merge_heads(split)
    np.testing.assert_array_equal(merged.detach().numpy(), x.detach().numpy())
    assert merged.grad_fn.op_name == "merge_heads"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: F.split_heads(minigrad.zeros(2, 3, 8), 3), r"divisible by heads=3, got shape \(2, 3, 8\)"),
        (lambda: F.split_heads(minigrad.zeros(2, 8), 2), r"split_heads: expected \(batch, seq, features\)"),
        (lambda: F.split_heads(minigrad.zeros(2, 3, 8), 0), r"split_heads: heads must be a positive integer, got 0"),
        (lambda: F.merge_heads(minigrad.zeros(2, 3, 8)), r"merge_heads: expected \(batch, heads, seq, d\), got shape"),
    ],
)
def test_split_and_merge_heads_reject_bad_shapes(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---- linear algebra -----------------------------------------------------------------------------
MATMUL_SHAPES = {
    "1d_1d": ((4,), (4,)),
    "1d_2d": ((4,), (4, 3)),
    "2d_1d": ((3, 4), (4,)),
    "2d_2d": ((3, 4), (4, 2)),
    "3d_2d": ((2, 3, 4), (4, 2)),
    "1d_3d": ((3,), (2, 3, 2)),
    "batch_broadcast_4d": ((2, 1, 2, 3), (3, 3, 2)),
    "size1": ((1, 3), (3, 1)),
}


def matmul_case(shapes):
    sa, sb = MATMUL_SHAPES[shapes]
    return F.matmul, inputs_for("matmul" + shapes, [S(sa), S(sb)])


@pytest.mark.parametrize("shapes", list(MATMUL_SHAPES))
def test_matmul_gradcheck(shapes):
    fn, xs = matmul_case(shapes)
    assert gradcheck(fn, xs)


def test_matmul_transposed_gradcheck():
    a, b = inputs_for("matmul_t", [S((3, 4), "n", True), S((4, 2), "n", True)])
    assert gradcheck(lambda a, b: a @ b, [a, b])
    assert gradcheck(lambda a, b: b.T @ a.T, [a, b])


LINEAR_OPS = {"linear": F.linear, "linear_relu": F.linear_relu}
LINEAR_CASES = {  # input shape, with a bias
    "2d": ((3, 4), True),
    "3d": ((2, 2, 4), True),
    "1d": ((4,), True),
    "2d_no_bias": ((3, 4), False),
    "3d_no_bias": ((2, 2, 4), False),
    "1d_no_bias": ((4,), False),
}


def linear_case(op, case="2d"):
    xshape, bias = LINEAR_CASES[case]
    x, w, b = inputs_for(f"{op}_{case}", [S(xshape), S((3, 4)), S((3,))])
    return LINEAR_OPS[op], [x, w, b] if bias else [x, w]


@pytest.mark.parametrize("case", list(LINEAR_CASES))
@pytest.mark.parametrize("op", list(LINEAR_OPS))
def test_linear_gradcheck(op, case):
    fn, xs = linear_case(op, case)
    assert gradcheck(fn, xs)
    if op == "linear_relu":
        # an output that is all clamped has gradient 0 everywhere: the check above would see nothing
        assert (fn(*xs).detach().numpy() > 0).any()
        assert gradgradcheck(fn, xs)


def test_linear_relu_is_relu_of_linear_in_values_and_gradients():
    """The fused node gives exactly what the two nodes give, and some outputs are clamped."""
    rng = np.random.default_rng(5)
    x, w, b = (minigrad.tensor(rng.standard_normal(s), requires_grad=True) for s in [(2, 6, 4), (5, 4), (5,)])
    up = minigrad.tensor(rng.standard_normal((2, 6, 5)))
    fused = F.linear_relu(x, w, b)
    separate = F.relu(F.linear(x, w, b))
    assert fused.grad_fn.op_name == "linear_relu" and fused.shape == (2, 6, 5)
    values = fused.detach().numpy()
    np.testing.assert_array_equal(values, separate.detach().numpy())
    assert 0 < (values == 0).sum() < values.size
    g_fused = minigrad.grad([fused], [x, w, b], [up])
    g_separate = minigrad.grad([separate], [x, w, b], [up])
    for a, c in zip(g_fused, g_separate):
        np.testing.assert_allclose(a.numpy(), c.numpy(), rtol=1e-12, atol=1e-12)


# ---- neural-network ops -------------------------------------------------------------------------
LAYER_NORM_CASES = {
    "affine": ((3, 4), (4,), True, True, False),
    "3d_two_axes": ((2, 2, 3), (2, 3), True, True, False),
    "no_affine": ((2, 3, 4), (4,), False, False, False),
    "weight_only": ((3, 4), (4,), True, False, False),
    "bias_only": ((3, 4), (4,), False, True, False),
    "transposed": ((3, 4), (4,), True, True, True),
    "4d": ((2, 1, 2, 3), (3,), True, True, False),
}


def layer_norm_case(case):
    shape, nshape, w, b, transposed = LAYER_NORM_CASES[case]
    specs = [S(shape, "n", transposed)] + ([S(nshape)] if w else []) + ([S(nshape)] if b else [])
    xs = inputs_for("ln" + case, specs)

    def fn(x, *affine, op=F.layer_norm):
        it = iter(affine)
        weight = next(it) if w else None
        bias = next(it) if b else None
        return op(x, nshape, weight, bias)

    return fn, xs


@pytest.mark.parametrize("case", list(LAYER_NORM_CASES))
def test_layer_norm_gradcheck(case):
    fn, xs = layer_norm_case(case)
    assert gradcheck(fn, xs)


CE_CASES = {
    "mean": ((4, 5), dict()),
    "sum": ((4, 5), dict(reduction="sum")),
    "none": ((4, 5), dict(reduction="none")),
    "ignore_index": ((2, 3, 4), dict(ignore_index=-100)),
    "ignore_custom": ((5, 3), dict(ignore_index=1)),
    "label_smoothing": ((4, 5), dict(label_smoothing=0.1)),
    "ignore_and_smoothing_none": ((2, 3, 4), dict(label_smoothing=0.2, reduction="none")),
    "transposed": (((5, 4), True), dict(label_smoothing=0.1)),
    "single_position": ((5,), dict()),
    # class weights, as PyTorch combines them with ignore_index and label smoothing
    "ignore_weighted_smoothing": ((2, 3, 4), dict(label_smoothing=0.1, weight=[0.5, 2.0, 1.0, 1.5])),
    "weighted_sum": ((4, 5), dict(reduction="sum", weight=[1.0, 0.2, 3.0, 1.0, 0.7])),
}


def _ce_inputs(case):
    spec, kwargs = CE_CASES[case]
    shape, transposed = spec if isinstance(spec[0], tuple) else (spec, False)
    if transposed:
        shape = tuple(reversed(shape))
    rng = _rng("ce" + case)
    (x,) = inputs_for("ce" + case, [S(shape, "n", transposed)])
    target = rng.integers(0, x.shape[-1], x.shape[:-1])
    if "ignore" in case or case == "ignore_and_smoothing_none":
        target.reshape(-1)[::3] = kwargs.get("ignore_index", -100)
    if "weight" in kwargs:
        kwargs = {**kwargs, "weight": minigrad.tensor(kwargs["weight"], dtype="float64")}
    return x, minigrad.tensor(target), kwargs


def ce_case(case):
    x, target, kwargs = _ce_inputs(case)
    return (lambda x: F.cross_entropy(x, target, **kwargs)), [x]


@pytest.mark.parametrize("case", list(CE_CASES))
def test_cross_entropy_gradcheck(case):
    fn, xs = ce_case(case)
    assert gradcheck(fn, xs)


def test_cross_entropy_ignored_positions_get_no_gradient():
    x = minigrad.randn(4, 3, dtype="float64", requires_grad=True)
    target = minigrad.tensor([0, -100, 2, -100])
    F.cross_entropy(x, target, label_smoothing=0.1).backward()
    g = x.grad.numpy()
    assert np.all(g[[1, 3]] == 0)
    assert np.all(g[[0, 2]] != 0)


def test_embedding_padding_row_gets_no_gradient():
    """The padding row is read in forward but gets no gradient (as PyTorch), so no gradcheck
    can cover it (finite differences see the row); its gradient is checked exactly here."""
    (w,) = inputs_for("emb", [S((5, 3))])
    idx = minigrad.tensor([[0, 2, 2], [4, 0, 2]])
    F.embedding(idx, w, padding_idx=2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy()[:, 0], [2, 0, 0, 0, 1])  # row 2 is padding


def test_dropout_keeps_and_scales():
    (x,) = inputs_for("dropout", [S((4, 5))])
    y = _seeded_dropout(x)
    kept = y.detach().numpy() != 0
    assert 0 < kept.sum() < kept.size
    np.testing.assert_allclose(y.detach().numpy()[kept], x.detach().numpy()[kept] / 0.6)


def test_cast_backward_returns_the_source_dtype():
    x = minigrad.tensor([1.0, 2.0, 3.0], dtype="float64", requires_grad=True)
    y = x.to(dtype="float32")
    assert y.dtype == minigrad.float32
    y.backward(minigrad.tensor([0.5, -1.0, 2.0], dtype="float32"))
    assert x.grad.dtype == minigrad.float64
    np.testing.assert_array_equal(x.grad.numpy(), [0.5, -1.0, 2.0])
    assert not x.to(dtype="int64").requires_grad  # no gradient through an integer cast
    assert F.cast(x, "float64") is x  # no node: a gradcheck of it would check nothing (OP_CASES casts for real)


ATTENTION_CASES = {  # q shape, k shape (transposed: a non-contiguous view), mask kind
    "plain": ((2, 3, 4), (2, 5, 4), None),
    "broadcast_batch": ((2, 1, 2, 3), (3, 4, 3), None),
    "bool_mask_with_dead_row": ((3, 4), (5, 4), "bool"),
    "float_mask": ((2, 3, 4), (2, 5, 4), "float"),
    "float_mask_requires_grad": ((2, 3, 4), (2, 5, 4), "float_grad"),  # dmask = dS is checked too
    "transposed_k": ((3, 4), ((4, 5), True), None),
}


def attention_case(case, scale=None):
    """fn(q, k[, mask]) for a gradcheck; ``scale=None`` is the default 1/sqrt(d) (never 1 here)."""
    qs, ks, kind = ATTENTION_CASES[case]
    kshape, ktrans = ks if isinstance(ks[0], tuple) else (ks, False)
    q, k = inputs_for("attn" + case, [S(qs), S(kshape, "n", ktrans)])

    def key(k):
        return k.T if ktrans else k

    mask = None
    if kind == "bool":  # row 1 keeps one key, row 2 none: its weights are exactly 0
        mask = minigrad.tensor(np.arange(5)[None, :] > np.array([[1], [0], [-1]]))
    elif kind in ("float", "float_grad"):
        mask = minigrad.tensor(_rng("fm").standard_normal((3, 5)), dtype="float64", requires_grad=kind == "float_grad")
    if kind == "float_grad":
        return (lambda q, k, m: F.attention_weights(q, key(k), mask=m, scale=scale)), [q, k, mask]
    return (lambda q, k: F.attention_weights(q, key(k), mask=mask, scale=scale)), [q, k]


@pytest.mark.parametrize("case", list(ATTENTION_CASES))
def test_attention_weights_gradcheck(case):
    fn, xs = attention_case(case)
    assert xs[0].shape[-1] != 1  # the default scale 1/sqrt(d) is not 1: a backward that drops it fails
    assert gradcheck(fn, xs)
    fn, xs = attention_case(case, scale=0.7)
    assert gradcheck(fn, xs, mode="directional")
    w = fn(*xs).detach().numpy()
    if ATTENTION_CASES[case][2] == "bool":
        assert np.all(w[2] == 0) and np.all(w[1, 2:] == 0)
        np.testing.assert_allclose(w[:2].sum(-1), 1.0)


def test_attention_weights_matches_softmax_of_scores():
    q, k = inputs_for("attn_ref", [S((2, 3, 4)), S((2, 5, 4))])
    m = minigrad.tensor(_rng("m").random((3, 5)) < 0.3)
    m.data[:, 0] = False
    u = minigrad.tensor(_rng("u").standard_normal((2, 3, 5)), dtype="float64")
    fused = lambda q, k: F.attention_weights(q, k, mask=m, scale=0.5)  # noqa: E731
    composite = lambda q, k: F.softmax(F.masked_fill((q @ k.swapaxes(-1, -2)) * 0.5, m, -1e30), -1)  # noqa: E731
    v1, g1 = _value_and_grads(fused, [q, k], u)
    v2, g2 = _value_and_grads(composite, [q, k], u)
    np.testing.assert_allclose(v1, v2, rtol=1e-10, atol=1e-12)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _softmax_reference(scores, mask=None):
    s = np.asarray(scores, dtype=np.float64)
    if mask is not None:
        s = np.where(mask, -np.inf, s)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_attention_weights_stay_finite_when_exp_would_overflow(dtype):
    """Scores whose spread would overflow exp, and a masked key whose score is far above
    the allowed ones, still give the softmax, without a floating-point warning."""
    import warnings

    big = 1000.0 if dtype == "float64" else 100.0  # exp(big) overflows in each dtype
    huge = 3 * big + 300.0  # huge / 3 - big: exp(-that) underflows to 0 in each dtype
    t = lambda a: minigrad.tensor(np.array(a), dtype=dtype)  # noqa: E731
    k = t([[[1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]]])
    k_flat = t([[[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    first_masked = minigrad.tensor(np.array([True, False, False]))
    cases = [  # q, k, mask
        (t([[[0.5, 1.0], [-2.0, 0.3]]]), k, None),
        (t([[[big, 0.0], [0.5, 0.0]]]), k, None),  # scores big, 0, -big: exp(big - 0) overflows
        (t([[[huge, 0.0], [0.5, 0.0]]]), k_flat, first_masked),  # a masked score far above the rest
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for q, keys, mask in cases:
            w = F.attention_weights(q, keys, mask=mask, scale=1.0).numpy()
            scores = q.numpy() @ keys.numpy().swapaxes(-1, -2)
            ref = _softmax_reference(scores, None if mask is None else mask.numpy())
            assert np.isfinite(w).all()
            np.testing.assert_allclose(w, ref, rtol=1e-6, atol=1e-30)
    assert w[0, 0].tolist() == [0.0, 0.5, 0.5]


# ---- ops without a family table -------------------------------------------------------------------
def _bool_mask(name, shape):
    """The same boolean constant on every evaluation (seeded by ``name``)."""
    return minigrad.tensor(_rng(name).random(shape) < 0.5)


def _seeded_dropout(x):
    minigrad.manual_seed(11)  # the same mask on every evaluation
    return F.dropout(x, 0.4)


def _index_backward(shape, index, advanced):
    """IndexAddZeros called directly: the op that getitem's backward records."""
    return lambda g: IndexAddZeros.apply(g, shape=shape, index=index, advanced=advanced)


# a float32 step in the middle rounds the values to ~6e-8: central differences need a large eps
F32_CHECK = dict(eps=1e-3, atol=1e-4)

_FLASH_PAD = minigrad.tensor(np.array([True, False, False, True, False]).reshape(1, 1, 1, 5))

OP_CASES = {  # name -> (function, input specs[, gradcheck keywords])
    "where": (lambda a, b: F.where(_bool_mask("cond", (3, 4)), a, b), [S((3, 4)), S((4,))]),
    "where_scalar": (lambda a: F.where(_bool_mask("cond", (3, 4)), a, 0.0), [S((3, 4))]),
    "where_transposed": (lambda b, c: F.where(_bool_mask("cond", (3, 1)), c, b), [S((4,)), S((3, 4), "n", True)]),
    # a moderate fill value: with -1e9, sum(u * out) is ~1e9 and its finite differences lose every digit
    "masked_fill": (lambda a: F.masked_fill(a, _bool_mask("mask", (1, 4)), -5.0), [S((2, 3, 4))]),
    "masked_fill_transposed": (lambda a: a.masked_fill(_bool_mask("mask", (1, 4)), 2.0), [S((3, 4), "n", True)]),
    "concat": (lambda a, b, c: F.concat([a, b, c], axis=1), [S((2, 3)), S((2, 1)), S((2, 2), "n", True)]),
    "concat_transposed": (lambda a, b, c: F.concat([a.T, b.T, c.T]), [S((2, 3)), S((2, 1)), S((2, 2), "n", True)]),
    "stack_first": (lambda d, e: F.stack([d, e, d], axis=0), [S((2, 3)), S((2, 3), "n", True)]),
    "stack_middle": (lambda d, e: F.stack([d, e, d], axis=1), [S((2, 3)), S((2, 3), "n", True)]),
    "stack_last": (lambda d, e: F.stack([d, e, d], axis=-1), [S((2, 3)), S((2, 3), "n", True)]),
    "mse_mean": (lambda a, b: F.mse_loss(a, b.T), [S((3, 4)), S((4, 3), "n", True)]),
    "mse_sum": (lambda a, b: F.mse_loss(a, b.T, reduction="sum"), [S((3, 4)), S((4, 3), "n", True)]),
    "mse_none": (lambda a, b: F.mse_loss(a, b.T, reduction="none"), [S((3, 4)), S((4, 3), "n", True)]),
    "embedding": (lambda w: F.embedding(minigrad.tensor([[0, 2, 2], [4, 0, 2]]), w), [S((5, 3))]),  # repeats add
    "dropout": (_seeded_dropout, [S((4, 5))]),
    "cast_float32": (lambda x: F.cast(F.cast(x, "float32") * 2.5, "float64") * x, [S((3, 2))], F32_CHECK),
    "to_device": (lambda x: F.to_device(F.tanh(F.to_device(x, "marked")) * 2.0, "cpu"), [S((2, 3))]),
    "index_backward_repeats": (_index_backward((3, 4), (np.array([0, 2, 0, 0]),), True), [S((4, 4))]),
    "index_backward_slices": (_index_backward((3, 4), (slice(1, None), slice(None, None, 2)), False), [S((2, 2))]),
    # FlashAttention (minigrad.ops.flash_attention): blocks of 2 over seq 4-5, so rows and keys span blocks
    "flash_attention": (lambda q, k, v: F.flash_attention(q, k, v, block_size=2), [S((2, 5, 3)), S((2, 4, 3)),
                                                                                   S((2, 4, 2), "n", True)]),
    "flash_attention_causal_padding": (  # query 0 sees only key 0, which is padding: a dead row
        lambda q, k, v: F.flash_attention(q, k, v, _FLASH_PAD, causal=True, block_size=2),
        [S((1, 2, 5, 3)), S((1, 2, 5, 3)), S((1, 2, 5, 2))],
    ),
    "flash_attention_float_mask": (
        lambda q, k, v, m: F.flash_attention(q, k, v, m, block_size=3), [S((2, 4, 3)), S((2, 5, 3)), S((2, 5, 2)),
                                                                          S((4, 5))]),
    # ---- shape and indexing, einsum, losses, rms_norm ----
    "clone": (lambda x: F.clone(x.T) * x.T, [S((3, 4))]),
    "flip": (lambda x: x.flip(0, -1), [S((2, 3, 4))]),
    "roll": (lambda x: x.roll((1, -2), (0, 2)), [S((2, 3, 4), "n", True)]),
    "roll_flat": (lambda x: x.roll(3), [S((3, 4))]),
    "pad_constant": (lambda x: F.pad(x, (1, 2, 2, 0), value=0.5), [S((2, 3, 4))]),
    "pad_constant_crop": (lambda x: F.pad(x, (-1, 2, 1, -2)), [S((3, 4))]),
    "pad_reflect": (lambda x: F.pad(x, (2, 3, 1, 1), mode="reflect"), [S((3, 4), "n", True)]),
    "pad_replicate": (lambda x: F.pad(x, (3, 1), mode="replicate"), [S((2, 3))]),
    "pad_circular": (lambda x: F.pad(x, (1, 3, 2, 1), mode="circular"), [S((2, 3, 4))]),
    "tril": (lambda x: x.tril(), [S((2, 3, 4))]),
    "triu_diagonal": (lambda x: x.triu(-1), [S((4, 3), "n", True)]),
    "repeat": (lambda x: x.repeat(2, 1, 3), [S((2, 3))]),
    "tile": (lambda x: x.tile(2), [S((3, 2), "n", True)]),
    "repeat_interleave": (lambda x: x.repeat_interleave(2, dim=-1), [S((2, 3))]),
    "repeat_interleave_counts": (lambda x: x.repeat_interleave(minigrad.tensor([2, 0, 3]), 0), [S((3, 2))]),
    "gather": (lambda x: x.gather(1, minigrad.tensor([[0, 3, 3], [1, 0, 2]])), [S((3, 4))]),  # repeats add
    "gather_dim0": (lambda x: x.gather(0, minigrad.tensor([[2, 0], [2, 2]])), [S((4, 3), "n", True)]),
    "scatter": (lambda x, s: x.scatter(1, minigrad.tensor([[4, 0, 2], [1, 3, 0]]), s), [S((3, 5)), S((2, 4))]),
    "scatter_value": (lambda x: x.scatter(0, minigrad.tensor([[0, 2, 1]]), value=3.0), [S((3, 3))]),
    "scatter_add": (lambda x, s: x.scatter_add(0, minigrad.tensor([[0, 0, 2], [2, 1, 2]]), s),
                    [S((3, 4)), S((3, 3))]),  # repeated indices add; src larger than index
    "masked_select": (lambda x: x.masked_select(_bool_mask("sel", (2, 3))), [S((2, 3))]),
    "masked_select_broadcast": (lambda x: F.masked_select(x, _bool_mask("sel", (2, 3))), [S((3,))]),
    "einsum_matmul": (lambda a, b: F.einsum("ij,jk->ik", a, b), [S((3, 4)), S((4, 2), "n", True)]),
    "einsum_trace_diag": (lambda a: F.einsum("ii->i", a) * F.einsum("ii", a), [S((3, 3))]),
    "einsum_attention": (lambda q, k: F.einsum("bhqd,bhkd->bhqk", q, k), [S((2, 2, 3, 4)), S((2, 2, 2, 4))]),
    "einsum_ellipsis_broadcast": (lambda a, b: F.einsum("...ij,...jk", a, b), [S((2, 1, 3, 4)), S((3, 4, 2))]),
    "einsum_summed_away": (lambda a, b: F.einsum("ij,k->k", a, b), [S((2, 3)), S((4,))]),
    "einsum_three": (lambda a, b, c: F.einsum("ij,jk,k->i", a, b, c), [S((2, 3)), S((3, 4)), S((4,))]),
    "l1_loss": (lambda a, b: F.l1_loss(a, b.T), [S((3, 4), "ga"), S((4, 3), "gb", True)]),
    "l1_loss_none": (lambda a, b: F.l1_loss(a, b, reduction="none"), [S((3, 4), "ga"), S((3, 4), "gb")]),
    "smooth_l1_loss": (lambda a, b: F.smooth_l1_loss(a, b, beta=0.8), [S((3, 4), "ga"), S((3, 4), "gb")]),
    "smooth_l1_loss_beta0_sum": (lambda a, b: F.smooth_l1_loss(a, b, "sum", beta=0.0),
                                 [S((3, 4), "ga"), S((3, 4), "gb")]),
    "huber_loss": (lambda a, b: F.huber_loss(a, b, delta=0.7), [S((3, 4), "ga"), S((3, 4), "gb")]),
    "huber_loss_none": (lambda a, b: F.huber_loss(a, b, "none", delta=1.5), [S((2, 3), "ga"), S((2, 3), "gb")]),
    "nll_loss": (lambda x: F.nll_loss(F.log_softmax(x, 1), minigrad.tensor([0, 2, -100, 1])), [S((4, 3))]),
    "nll_loss_weight_ignore": (
        lambda x: F.nll_loss(x, minigrad.tensor([[0, 2, 1, 1], [2, 2, 0, 1]]), weight=minigrad.tensor(
            [0.5, 2.0, 1.0], dtype="float64"), ignore_index=1),
        [S((2, 3, 4))],
    ),
    "nll_loss_none_1d": (lambda x: F.nll_loss(x, minigrad.tensor(2), reduction="none"), [S((4,))]),
    "binary_cross_entropy": (lambda x, t: F.binary_cross_entropy(F.sigmoid(x), F.sigmoid(t)), [S((3, 4)), S((3, 4))]),
    "binary_cross_entropy_weight": (
        lambda x, t: F.binary_cross_entropy(F.sigmoid(x), F.sigmoid(t), minigrad.tensor([0.5, 2.0], dtype="float64"),
                                            reduction="sum"),
        [S((3, 2), "n", True), S((3, 2))],
    ),
    "bce_with_logits": (lambda x, t: F.binary_cross_entropy_with_logits(x, F.sigmoid(t)), [S((3, 4)), S((3, 4))]),
    "bce_with_logits_pos_weight": (
        lambda x, t: F.binary_cross_entropy_with_logits(
            x, F.sigmoid(t), weight=minigrad.tensor([[2.0], [0.5]], dtype="float64"),
            pos_weight=minigrad.tensor([1.0, 3.0, 0.5], dtype="float64"), reduction="none"),
        [S((2, 3)), S((2, 3))],
    ),
    "kl_div": (lambda x, t: F.kl_div(x, t, reduction="batchmean"), [S((3, 4)), S((3, 4), "p")]),
    "kl_div_log_target": (lambda x, t: F.kl_div(x, t, "none", log_target=True), [S((2, 3)), S((2, 3), "n", True)]),
    "rms_norm": (lambda x, w: F.rms_norm(x, 4, w, eps=1e-5), [S((2, 3, 4)), S((4,))]),
    "rms_norm_two_axes": (lambda x: F.rms_norm(x.T, (4, 3)), [S((3, 4), "n", True)]),
}  # fmt: skip
NEEDS_MARKED = {"to_device"}  # rows that move to the test-only "marked" device


def op_case(name):
    fn, specs = OP_CASES[name][:2]
    return fn, inputs_for(name, specs)


@pytest.mark.parametrize("name", list(OP_CASES))
def test_op_gradcheck(name, request):
    if name in NEEDS_MARKED:
        request.getfixturevalue("marked")
    fn, xs = op_case(name)
    assert gradcheck(fn, xs, **(OP_CASES[name][2] if len(OP_CASES[name]) > 2 else {}))


# ---- second order ----------------------------------------------------------------------------------
GRADGRAD = {  # name -> (function, input specs[, gradgradcheck keywords])
    "add_broadcast": (lambda a, b: a + b, [S((2, 3)), S((3,))]),
    "sub_broadcast": (lambda a, b: a - b, [S((2, 1)), S((2, 3))]),
    "mul_broadcast": (lambda a, b: a * b, [S((2, 3)), S((2, 1))]),
    "div_broadcast": (lambda a, b: a / b, [S((2, 3)), S((3,), "p")]),
    "pow_scalar": (lambda a: a**3, [S((2, 3))]),
    "pow_tensor": (lambda a, b: a**b, [S((2, 3), "p"), S((3,))]),
    "exp": (F.exp, [S((2, 3))]),
    "log": (F.log, [S((2, 3), "p")]),
    "tanh": (F.tanh, [S((2, 3), "n", True)]),
    "sigmoid": (F.sigmoid, [S((2, 3))]),
    "gelu": (F.gelu, [S((2, 3))]),
    "matmul_2d": (F.matmul, [S((2, 3)), S((3, 2), "n", True)]),
    "matmul_batch": (F.matmul, [S((2, 2, 3)), S((3, 2))]),
    "softmax": (lambda x: F.softmax(x, -1), [S((2, 4))]),
    "softmax_axis0": (lambda x: F.softmax(x, 0), [S((3, 2), "n", True)]),
    "log_softmax": (lambda x: F.log_softmax(x, -1), [S((2, 4))]),
    "log_softmax_axis0": (lambda x: F.log_softmax(x, 0), [S((3, 2), "n", True)]),
    "logsumexp": (lambda x: F.logsumexp(x, -1), [S((2, 4))]),
    "logsumexp_axis1_of_3d": (lambda x: F.logsumexp(x, 1), [S((2, 3, 2))]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 4, w, b), [S((2, 4)), S((4,)), S((4,))]),
    "layer_norm_no_affine": (lambda x: F.layer_norm(x, (2, 3)), [S((2, 3))]),
    "var": (lambda x: x.var(axis=-1), [S((2, 4))]),
    "getitem": (lambda x: x[[0, 1, 1], 1:], [S((3, 3))]),
    "embedding": (lambda w: F.embedding(minigrad.tensor([1, 1, 0]), w), [S((3, 2))]),
    "sin_cos": (lambda x: F.sin(x) * F.cos(x), [S((2, 3))]),
    "attention_weights": (F.attention_weights, [S((2, 3)), S((4, 3))]),
    "attention_weights_float_mask": (
        lambda q, k, m: F.attention_weights(q, k, mask=m, scale=0.7),
        [S((2, 3)), S((4, 3)), S((2, 4))],
    ),
    "flash_attention": (
        lambda q, k, v: F.flash_attention(q, k, v, block_size=2),
        [S((1, 3, 2)), S((1, 4, 2)), S((1, 4, 2))],
    ),
    "flash_attention_float_mask_causal": (  # second order through the rebuilt logsumexp and the mask
        lambda q, k, v, m: F.flash_attention(q, k, v, m, causal=True, block_size=2),
        [S((3, 2)), S((4, 2)), S((4, 2)), S((1, 4))],
    ),
    "neg": (lambda a: -a, [S((2, 3))]),
    "pow_scalar_2_half": (lambda a: a**2 * a**0.5, [S((2, 3), "p")]),
    "rpow": (lambda a: 2.0**a, [S((3,))]),
    "sqrt": (F.sqrt, [S((2, 3), "p")]),
    "abs": (F.abs, [S((2, 3), "a")]),
    "relu": (F.relu, [S((2, 3), "a")]),
    "erf": (F.erf, [S((2, 3))]),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), [S((2, 3))]),
    "clip": (lambda x: F.clip(x, -0.5, 0.5), [S((2, 4), "ga")]),
    "maximum": (F.maximum, [S((2, 3), "ga"), S((3,), "gb")]),
    "minimum": (F.minimum, [S((2, 3), "ga"), S((2, 1), "gb")]),
    "where": (lambda a, b: F.where(_bool_mask("cond", (3, 4)), a, b), [S((3, 4)), S((4,))]),
    "masked_fill": (lambda a: F.masked_fill(a, _bool_mask("mask", (1, 4)), 2.0), [S((3, 4))]),
    "sum": (lambda x: x.sum(axis=0), [S((2, 3))]),
    "mean": (lambda x: x.mean(axis=(0, 1), keepdims=True), [S((2, 3, 2))]),
    "max": (lambda x: x.max(axis=-1), [S((2, 3), "d")]),
    "min": (lambda x: x.min(), [S((2, 3), "d")]),
    "sum_to": (lambda x: F.sum_to(x, (1, 3)), [S((2, 2, 3))]),
    "reshape": (lambda x: x.reshape(3, 2), [S((2, 3))]),
    "transpose": (lambda x: x.permute(2, 0, 1), [S((2, 3, 2))]),
    "squeeze_unsqueeze": (lambda x: x.squeeze(0).unsqueeze(-1), [S((1, 3))]),
    "expand": (lambda x: x.expand(2, 3, 4), [S((3, 1))]),
    "split_heads": (lambda x: F.split_heads(x, 2), [S((2, 3, 4))]),
    "merge_heads": (F.merge_heads, [S((1, 2, 3, 2))]),
    "concat": (lambda a, b: F.concat([a, b], axis=1), [S((2, 3)), S((2, 1))]),
    "linear": (F.linear, [S((2, 4)), S((3, 4)), S((3,))]),
    "linear_relu": (F.linear_relu, [S((2, 4)), S((3, 4)), S((3,))]),
    "cross_entropy": (lambda x: F.cross_entropy(x, minigrad.tensor([0, -100, 3]), label_smoothing=0.1), [S((3, 4))]),
    "dropout": (_seeded_dropout, [S((3, 4))]),
    "cast_float32": (lambda x: F.cast(F.cast(x, "float32") * 2.5, "float64") * x, [S((3,))], F32_CHECK),
    "to_device": (lambda x: F.to_device(F.to_device(x, "marked") * 2.0, "cpu") * x, [S((3,))]),
    "index_backward": (_index_backward((3, 3), (np.array([0, 2, 0]),), True), [S((3, 3))]),
    # elementwise functions, activations, reductions, scans, sorting (tests/test_ops_math.py)
    "tan": (lambda x: F.tan(0.5 * x), [S((2, 3), "a")]),
    "asin": (lambda x: F.asin(0.45 * x), [S((2, 3), "a")]),
    "acos": (lambda x: F.acos(0.45 * x), [S((2, 3), "a")]),
    "atan": (F.atan, [S((2, 3))]),
    "sinh_cosh": (lambda x: F.sinh(x) * F.cosh(x), [S((2, 3))]),
    "asinh": (F.asinh, [S((2, 3))]),
    "acosh": (lambda x: F.acosh(x + 1.0), [S((2, 3), "p")]),
    "atanh": (lambda x: F.atanh(0.45 * x), [S((2, 3), "a")]),
    "log2_log10": (lambda x: F.log2(x) * F.log10(x), [S((2, 3), "p")]),
    "exp2": (F.exp2, [S((2, 3))]),
    "expm1_log1p": (lambda x: F.expm1(x) * F.log1p(x), [S((2, 3), "p")]),
    "rsqrt": (F.rsqrt, [S((2, 3), "p")]),
    "lerp": (F.lerp, [S((2, 3)), S((3,)), S((2, 1))]),
    "rounding": (lambda x: F.floor(x) * x + x.ceil() * x + F.round(x) * x + x.trunc() * x, [S((2, 3), "ga")]),
    "silu": (F.silu, [S((2, 3))]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2) * x, [S((2, 3), "a")]),
    "elu": (lambda x: F.elu(x, 0.7), [S((2, 3), "a")]),
    "selu": (F.selu, [S((2, 3), "a")]),
    "softplus": (F.softplus, [S((2, 3))]),
    "softplus_threshold": (lambda x: F.softplus(x, beta=2.0, threshold=1.0), [S((2, 3), "ga")]),
    "softsign": (F.softsign, [S((2, 3), "a")]),
    "logsigmoid": (F.logsigmoid, [S((2, 3))]),
    "hardtanh": (lambda x: F.hardtanh(x) * x, [S((2, 3), "ga")]),
    "relu6": (lambda x: F.relu6(4.0 * x) * x, [S((2, 3), "ga")]),
    "hardswish": (lambda x: F.hardswish(2.0 * x), [S((2, 3), "ga")]),
    "mish": (F.mish, [S((2, 3))]),
    "std": (lambda x: F.std(x, -1), [S((2, 4))]),
    "std_all_correction0": (lambda x: F.std(x, correction=0), [S((2, 3))]),
    "prod": (lambda x: F.prod(x, 1), [S((2, 3), "a")]),
    "prod_all": (F.prod, [S((2, 2), "a")]),
    "cumsum": (lambda x: F.cumsum(x, 1) * x, [S((2, 3))]),
    "cumprod": (lambda x: F.cumprod(x, -1), [S((2, 3), "a")]),
    "logcumsumexp": (lambda x: F.logcumsumexp(x, 0), [S((3, 2))]),
    "sort": (lambda x: F.sort(x, -1).values * x, [S((2, 3), "d")]),
    "topk": (lambda x: F.topk(x, 2, 0).values ** 2, [S((3, 2), "d")]),
    # ---- shape and indexing, einsum, losses, rms_norm ----
    "clone": (lambda x: F.clone(x) * x, [S((2, 3))]),
    "flip_roll": (lambda x: x.flip(1).roll(1, 0) * x, [S((2, 3))]),
    "pad": (lambda x: F.pad(x, (1, 1), value=2.0) * F.pad(x, (2, 0), mode="reflect"), [S((2, 3))]),
    "pad_replicate_circular": (lambda x: F.pad(x, (1, 2), mode="replicate") * F.pad(x, (2, 1), mode="circular"),
                               [S((2, 3))]),
    "tril_triu": (lambda x: x.tril() * x.triu(-1), [S((3, 3))]),
    "repeat": (lambda x: x.repeat(2, 2) * x.tile((2, 2)), [S((2, 2))]),
    "repeat_interleave": (lambda x: x.repeat_interleave(minigrad.tensor([2, 1]), 0) ** 2, [S((2, 3))]),
    "gather": (lambda x: x.gather(1, minigrad.tensor([[0, 0], [2, 1]])) ** 2, [S((2, 3))]),
    "scatter": (lambda x, s: x.scatter(1, minigrad.tensor([[2, 0]]), s) ** 2, [S((2, 3)), S((1, 2))]),
    "scatter_add": (lambda x, s: x.scatter_add(1, minigrad.tensor([[1, 1]]), s) ** 2, [S((2, 3)), S((1, 2))]),
    "masked_select": (lambda x: x.masked_select(_bool_mask("sel", (2, 3))) ** 2, [S((2, 3))]),
    "einsum": (lambda a, b: F.einsum("ij,kj->ik", a, b) * F.einsum("ii->i", a @ b.T).sum(), [S((2, 3)), S((2, 3))]),
    "l1_loss": (lambda a, b: F.l1_loss(a * b, b), [S((2, 3), "ga"), S((2, 3), "p")]),
    "smooth_l1_loss": (lambda a, b: F.smooth_l1_loss(a, b, beta=0.8), [S((2, 3), "ga"), S((2, 3), "gb")]),
    "huber_loss": (lambda a, b: F.huber_loss(a, b, delta=0.7), [S((2, 3), "ga"), S((2, 3), "gb")]),
    "nll_loss": (lambda x: F.nll_loss(x * x, minigrad.tensor([0, 2])), [S((2, 3))]),
    "binary_cross_entropy": (lambda x, t: F.binary_cross_entropy(F.sigmoid(x), F.sigmoid(t)), [S((2, 3)), S((2, 3))]),
    "bce_with_logits": (
        lambda x, t: F.binary_cross_entropy_with_logits(x, F.sigmoid(t), pos_weight=minigrad.tensor(
            [1.0, 3.0, 0.5], dtype="float64")),
        [S((2, 3)), S((2, 3))],
    ),
    "kl_div": (lambda x, t: F.kl_div(x, t, "sum") + F.kl_div(x, t.log(), "sum", log_target=True),
               [S((2, 3)), S((2, 3), "p")]),
    "rms_norm": (lambda x, w: F.rms_norm(x, 3, w), [S((2, 3)), S((3,))]),
}


def gradgrad_case(op):
    fn, specs = GRADGRAD[op][:2]
    return fn, inputs_for("gg" + op, specs)


@pytest.mark.parametrize("op", list(GRADGRAD))
def test_gradgradcheck(op, request):
    if op in NEEDS_MARKED:
        request.getfixturevalue("marked")
    fn, xs = gradgrad_case(op)
    assert gradgradcheck(fn, xs, **(GRADGRAD[op][2] if len(GRADGRAD[op]) > 2 else {}))


@pytest.mark.parametrize("case", ["mean", "ignore_index", "label_smoothing", "ignore_and_smoothing_none"])
def test_cross_entropy_gradgradcheck(case):
    x, target, kwargs = _ce_inputs(case)
    assert gradgradcheck(lambda x: F.cross_entropy(x, target, **kwargs), [x])


# ---- fused ops agree with their composite versions ------------------------------------------------
def _value_and_grads(fn, xs, u):
    out = fn(*xs)
    grads = minigrad.grad(out, xs, u)
    return out.detach().numpy(), [g.numpy() for g in grads]


@pytest.mark.parametrize(
    "shape,axis,transposed",
    [((3, 5), -1, False), ((3, 5), 0, False), ((2, 3, 4), 1, False), ((4, 3), -1, True), ((2, 1), -1, False)],
)
@pytest.mark.parametrize("pair", ["softmax", "log_softmax"])
def test_fused_softmax_matches_composite(pair, shape, axis, transposed):
    fused, composite = {
        "softmax": (F.softmax, F.softmax_composite),
        "log_softmax": (F.log_softmax, F.log_softmax_composite),
    }[pair]
    (x,) = inputs_for(pair + str(shape), [S(shape, "n", transposed)])
    x.data *= 5.0  # large logits exercise the max shift
    u = minigrad.tensor(_rng("u").standard_normal(x.shape), dtype="float64")
    v1, g1 = _value_and_grads(lambda x: fused(x, axis), [x], u)
    v2, g2 = _value_and_grads(lambda x: composite(x, axis), [x], u)
    np.testing.assert_allclose(v1, v2, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(g1[0], g2[0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", list(LAYER_NORM_CASES))
def test_fused_layer_norm_matches_composite(case):
    fn, xs = layer_norm_case(case)
    u = minigrad.tensor(_rng("u").standard_normal(fn(*xs).shape), dtype="float64")
    v1, g1 = _value_and_grads(fn, xs, u)
    v2, g2 = _value_and_grads(lambda *a: fn(*a, op=F.layer_norm_composite), xs, u)
    np.testing.assert_allclose(v1, v2, rtol=1e-10, atol=1e-10)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_fused_second_derivatives_match_composite():
    (x,) = inputs_for("second", [S((2, 4))])
    u = minigrad.tensor(_rng("u2").standard_normal((2, 4)), dtype="float64")
    for fused, composite in [
        (F.softmax, F.softmax_composite),
        (F.log_softmax, F.log_softmax_composite),
        (lambda x: F.layer_norm(x, 4), lambda x: F.layer_norm_composite(x, 4)),
    ]:
        results = []
        for fn in (fused, composite):
            (g,) = minigrad.grad(fn(x), x, u, create_graph=True)
            (gg,) = minigrad.grad((g * g).sum(), x)
            results.append(gg.numpy())
        np.testing.assert_allclose(results[0], results[1], rtol=1e-8, atol=1e-10)


# ---- forward values against NumPy references --------------------------------------------------------
def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


_erf = np.vectorize(math.erf)

FORWARD_REFS = {
    "exp": (F.exp, np.exp),
    "log": (lambda x: F.log(F.abs(x)), lambda x: np.log(np.abs(x))),
    "tanh": (F.tanh, np.tanh),
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "relu": (F.relu, lambda x: np.maximum(x, 0)),
    "erf": (F.erf, _erf),
    "gelu": (F.gelu, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
    "gelu_tanh": (
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    ),
    "clip": (lambda x: F.clip(x, -0.5, 0.3), lambda x: np.clip(x, -0.5, 0.3)),
    "softmax": (lambda x: F.softmax(x, 0), lambda x: _np_softmax(x, 0)),
    "log_softmax": (F.log_softmax, lambda x: np.log(_np_softmax(x, -1))),
    "logsumexp": (F.logsumexp, lambda x: np.log(np.exp(x).sum(-1))),
    "var_ddof": (lambda x: x.var(axis=0, ddof=1), lambda x: x.var(axis=0, ddof=1)),
    "max": (lambda x: x.max(axis=1), lambda x: x.max(axis=1)),
    "min": (lambda x: x.min(), lambda x: x.min()),
    "mean": (lambda x: x.mean(axis=(0, 1)), lambda x: x.mean(axis=(0, 1))),
    "layer_norm": (
        lambda x: F.layer_norm(x, 4, eps=1e-5),
        lambda x: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5),
    ),
    "matmul": (lambda x: x @ x.T, lambda x: x @ x.T),
    "getitem": (lambda x: x[[2, 0], 1:3], lambda x: x[[2, 0], 1:3]),
    "pow": (lambda x: F.abs(x) ** 1.7, lambda x: np.abs(x) ** 1.7),
}


@pytest.mark.parametrize("op", list(FORWARD_REFS))
def test_forward_matches_numpy(op):
    ours, ref = FORWARD_REFS[op]
    x = _rng(op).standard_normal((3, 4))
    out = ours(minigrad.tensor(x, dtype="float64"))
    assert out.dtype == minigrad.float64
    np.testing.assert_allclose(out.numpy(), ref(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("smoothing", [0.0, 0.25])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_forward_matches_reference(reduction, smoothing):
    rng = _rng("ce_ref")
    x = rng.standard_normal((6, 4))
    t = rng.integers(0, 4, 6)
    t[[1, 4]] = -100
    logp = np.log(_np_softmax(x, -1))
    valid = t != -100
    q = np.zeros_like(x)
    q[valid, t[valid]] = 1.0
    q = q * (1 - smoothing) + smoothing / 4
    losses = -(q * logp).sum(-1) * valid
    expected = {"mean": losses.sum() / valid.sum(), "sum": losses.sum(), "none": losses}[reduction]
    out = F.cross_entropy(minigrad.tensor(x, dtype="float64"), minigrad.tensor(t), label_smoothing=smoothing,
                          reduction=reduction)  # fmt: skip
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_composite_equals_the_fused_op(reduction, smoothing):
    """The README's claim: F.cross_entropy_composite (log_softmax, indexing, mean) gives the
    fused F.cross_entropy's value and gradient, ignored targets included."""
    r = np.random.default_rng(7)
    x = minigrad.tensor(r.standard_normal((3, 4, 5)), dtype="float64")
    t = r.integers(0, 5, (3, 4))
    t[0, 1] = t[2, 3] = -100
    target = minigrad.tensor(t)
    u = None if reduction != "none" else minigrad.tensor(r.standard_normal((3, 4)), dtype="float64")
    results = []
    for fn in (F.cross_entropy, F.cross_entropy_composite):
        xs = x.detach().requires_grad_()
        loss = fn(xs, target, label_smoothing=smoothing, reduction=reduction)
        (loss if u is None else loss * u).sum().backward()
        results.append((loss.detach().numpy(), xs.grad.numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12, atol=1e-14)
