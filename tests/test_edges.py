"""PyTorch's semantics at the edges (issue 22) and PyTorch's names (issue 21).

Values and gradients are compared with tests/reference/edges_reference.npz (regenerate
with tests/reference/make_edges_reference.py; torch is never imported here). Each test
here failed before the fix it guards: empty reductions, 0-d tensors with an axis, pow at
zero and on integers, bitwise operators, any/all/argmin/argmax with axes, a tuple inside
an index, cross_entropy with class probabilities and class weights; and each place where
an input's array could cross into an op without its Tensor either carries the gradient or
refuses ``requires_grad`` with one line (PyTorch's names and docs/semantics.md are in
tests/test_pytorch_names.py).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import minigrad
import minigrad.functional as F
from minigrad import gradcheck, gradgradcheck, nn

REF = np.load(Path(__file__).parent / "reference" / "edges_reference.npz")
CE_CASES = json.loads(str(REF["ce_cases"]))


def t64(name: str, requires_grad: bool = True) -> minigrad.Tensor:
    return minigrad.tensor(REF[name], dtype="float64", requires_grad=requires_grad)


def same(actual, expected) -> None:
    """Equal to 1e-12, NaN where NaN and inf where inf (with its sign)."""
    actual = actual.detach().numpy() if isinstance(actual, minigrad.Tensor) else np.asarray(actual)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12, equal_nan=True)


def check(name: str, out: minigrad.Tensor, inputs: dict[str, minigrad.Tensor]) -> None:
    """The value and every input's gradient (under the stored upstream gradient) as PyTorch's."""
    same(out, REF[f"{name}/value"])
    up = minigrad.tensor(REF[f"{name}/up"], dtype="float64")
    grads = minigrad.grad([out], list(inputs.values()), [up], allow_unused=True)
    for key, g in zip(inputs, grads):
        same(minigrad.zeros_like(inputs[key]) if g is None else g, REF[f"{name}/grad_{key}"])


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's 0 * inf in the expected NaNs
        yield


# ---- empty reductions and var with ddof >= N ------------------------------------------------------
@pytest.mark.parametrize("name,axis", [("mean_empty_rows", 0), ("mean_empty_cols", 1)])
def test_mean_over_no_elements_is_nan_and_its_backward_does_not_raise(name, axis):
    x = t64(f"{name}/x")
    check(name, x.mean(axis), {"x": x})


def test_var_over_no_elements_is_nan_and_its_backward_does_not_raise():
    x = minigrad.zeros(0, 3, dtype="float64", requires_grad=True)
    v = x.var(0)
    assert np.isnan(v.detach().numpy()).all() and v.shape == (3,)
    v.sum().backward()
    assert x.grad.shape == (0, 3)


@pytest.mark.parametrize("name", ["var_ddof_one", "var_ddof_equal", "var_ddof_over", "var_ddof_rows",
                                  "var_ddof_rows_equal"])  # fmt: skip
def test_var_with_ddof_at_least_n_is_nan_or_inf_as_pytorch(name):
    """The values are PyTorch's (divisor max(0, N - ddof)). The gradient of such a value is
    never finite here; PyTorch's backward is inconsistent there (+inf everywhere for a full
    reduction, a finite 2 (x - mean) / (N - ddof) per dimension when ddof > N), so it is
    compared only where ddof == N per dimension, where both give 2 (x - mean) / 0."""
    x = t64(f"{name}/x")
    dim, ddof = int(REF[f"{name}/dim"]), int(REF[f"{name}/ddof"])
    out = x.var(None if dim == -99 else dim, ddof=ddof)
    if name == "var_ddof_rows":
        check(name, out, {"x": x})
        return
    same(out, REF[f"{name}/value"])
    out.backward(minigrad.tensor(REF[f"{name}/up"], dtype="float64"))
    assert not np.isfinite(x.grad.numpy()).any()


def test_var_refuses_a_negative_ddof():
    with pytest.raises(ValueError, match="var: ddof must be a non-negative integer, got -1"):
        minigrad.randn(3).var(ddof=-1)


# ---- 0-d tensors with axis 0 or -1 --------------------------------------------------------------------
@pytest.mark.usefixtures("accel_mode")
@pytest.mark.parametrize("op", ["sum", "mean", "softmax", "log_softmax", "logsumexp", "squeeze"])
@pytest.mark.parametrize("dim", [0, -1])
def test_scalar_tensors_take_axis_0_and_minus_1(op, dim):
    x = minigrad.tensor(1.7, dtype="float64", requires_grad=True)
    method = getattr(x, op)(dim)
    check(f"scalar_{op}_{dim}", method, {"x": x})
    functional = getattr(F, op)(x, dim)
    assert functional.shape == () and functional.item() == method.item()


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("dim", [0, -1])
def test_scalar_argmax_argmin_take_axis_0_and_minus_1(op, dim):
    out = getattr(minigrad.tensor(1.7), op)(dim)
    assert out.dtype == minigrad.int64
    same(out, REF[f"scalar_{op}_{dim}/value"])


def test_scalar_tensors_still_refuse_other_axes():
    for call in (lambda x: x.sum(1), lambda x: x.softmax(-2), lambda x: x.squeeze(2)):
        with pytest.raises(ValueError, match="out of range for a tensor with 0 dimensions"):
            call(minigrad.tensor(1.0))


def test_scalar_softmax_family_gradchecks():
    x = minigrad.tensor(0.3, dtype="float64", requires_grad=True)
    for fn in (F.softmax, F.log_softmax, F.logsumexp):
        assert gradcheck(lambda a, fn=fn: fn(a, 0) * a, [x])


# ---- pow at zero and on integers ----------------------------------------------------------------------
def test_pow_gradients_at_zero_match_pytorch():
    a, b = t64("pow_tensor/a"), t64("pow_tensor/b")
    check("pow_tensor", a**b, {"a": a, "b": b})
    a = t64("pow_zero_exponent/a")
    check("pow_zero_exponent", a**0, {"a": a})
    y = t64("pow_zero_base_number/y")
    check("pow_zero_base_number", 0.0**y, {"y": y})
    y = t64("pow_zero_base_tensor/y")
    check("pow_zero_base_tensor", minigrad.tensor(0.0, dtype="float64") ** y, {"y": y})


def test_pow_still_gradchecks_away_from_the_edges():
    a = minigrad.tensor([0.5, 1.5, 2.0], dtype="float64", requires_grad=True)
    b = minigrad.tensor([0.0, -1.0, 2.5], dtype="float64", requires_grad=True)
    assert gradcheck(lambda a, b: a**b, [a, b])
    assert gradcheck(lambda a: a**0, [a])
    assert gradgradcheck(lambda a, b: a**b, [a, b])


def test_integer_tensors_can_be_raised_to_a_power():
    i = minigrad.tensor([1, 2, 3, -2])
    cube = i**3
    assert cube.dtype == minigrad.int64 and cube.tolist() == REF["pow_int_int/value"].tolist()
    both = i ** minigrad.tensor([2, 0, 1, 3])
    assert both.dtype == minigrad.int64 and both.tolist() == REF["pow_int_tensor/value"].tolist()
    root = i**0.5
    assert root.dtype == minigrad.get_default_dtype() == REF["pow_int_float/value"].dtype
    np.testing.assert_allclose(root.numpy(), REF["pow_int_float/value"], rtol=1e-6, equal_nan=True)
    powers = 2 ** minigrad.tensor([0, 1, 4])
    assert powers.dtype == minigrad.int64 and powers.tolist() == REF["pow_number_int/value"].tolist()
    with pytest.raises(ValueError, match="pow: integers to negative integer powers are not allowed"):
        i**-1


# ---- bitwise operators, any/all, argmin/argmax ----------------------------------------------------------
def test_bitwise_operators_on_integers_are_bitwise():
    a, b = minigrad.tensor(REF["bitwise/a"]), minigrad.tensor(REF["bitwise/b"])
    for out, key in ((a & b, "and"), (a | b, "or"), (a ^ b, "xor"), (~a, "not"), (a & 5, "and_number")):
        assert out.dtype == minigrad.int64
        assert out.tolist() == REF[f"bitwise_{key}/value"].tolist(), key
    assert (5 & a).tolist() == REF["bitwise_and_number/value"].tolist()


def test_bitwise_operators_on_booleans_stay_logical_and_floats_are_refused():
    p, q = minigrad.tensor([True, True, False, False]), minigrad.tensor([True, False, True, False])
    assert (p & q).tolist() == [True, False, False, False] and (p | q).tolist() == [True, True, True, False]
    assert (p ^ q).tolist() == [False, True, True, False] and (~p).tolist() == [False, False, True, True]
    assert (p & q).dtype == minigrad.bool_
    x = minigrad.tensor([1.0, 0.0])
    for call in (lambda: x & p, lambda: ~x, lambda: p | 1.5):
        with pytest.raises(TypeError, match="bitwise_(and|or|not): expected (an )?integer"):
            call()
    assert F.logical_xor(x, p[:2]).tolist() == [False, True]  # the logical functions take any dtype


@pytest.mark.parametrize("op", ["any", "all"])
def test_any_and_all_take_an_axis(op):
    m = minigrad.tensor(REF["bool/m"])
    assert getattr(m, op)(dim=1, keepdim=True).tolist() == REF[f"{op}_dim1_keepdim/value"].tolist()
    assert getattr(m, op)(axis=1, keepdims=True).shape == (2, 1)
    assert getattr(m, op)(0).tolist() == REF[f"{op}_dim0/value"].tolist()
    assert getattr(F, op)(m).item() == REF[f"{op}_all/value"].item()
    assert getattr(F, op)(m, dim=0).dtype == minigrad.bool_


@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_and_argmin_keep_dims(op):
    x = minigrad.tensor(REF["arg/x"])
    assert getattr(x, op)(keepdim=True).tolist() == REF[f"{op}_keepdim/value"].tolist()
    assert getattr(x, op)(dim=1, keepdim=True).tolist() == REF[f"{op}_dim1_keepdim/value"].tolist()
    assert getattr(F, op)(x, 1, keepdims=True).shape == (3, 1)
    assert getattr(x, op)(0).tolist() == REF[f"{op}_dim0/value"].tolist()


def test_integer_true_division_gives_the_default_float_dtype():
    a, b = minigrad.tensor([5, 2]), minigrad.tensor([2, 4])
    for out in (a / b, a / 2, 10 / a):
        assert out.dtype == minigrad.get_default_dtype()
    assert (a / b).tolist() == [2.5, 0.5]


# ---- a tuple inside an index ---------------------------------------------------------------------------
@pytest.mark.parametrize("name,index", [("index_tuple_one", ((0,),)), ("index_tuple_two", ((2, 0, 2),)),
                                        ("index_tuple_2d", ((1,), (0,)))])  # fmt: skip
def test_a_tuple_inside_an_index_is_an_integer_array(name, index):
    x = t64(f"{name}/x")
    check(name, x[index], {"x": x})


# ---- cross_entropy: class probabilities, class weights, label smoothing, ignore_index -------------------
def _ce_inputs(name: str):
    """Logits and target of a reference case (a probability target requires grad), and the kwargs."""
    case = CE_CASES[name]
    inputs = {"x": t64(f"ce_{name}/x")}
    if case["target"].startswith("prob"):
        inputs["target"] = target = t64(f"ce_{name}/target")
    else:
        target = minigrad.tensor(REF[f"ce_{name}/target"])
    kwargs = dict(case["kwargs"])
    if kwargs.pop("weight", False):
        kwargs["weight"] = minigrad.tensor(REF[f"ce_{name}/weight"], dtype="float64")
    return inputs, target, kwargs


@pytest.mark.usefixtures("accel_mode")
@pytest.mark.parametrize("fn", [F.cross_entropy, F.cross_entropy_composite], ids=["fused", "composite"])
@pytest.mark.parametrize("name", list(CE_CASES))
def test_cross_entropy_matches_pytorch(name, fn):
    inputs, target, kwargs = _ce_inputs(name)
    check(f"ce_{name}", fn(inputs["x"], target, **kwargs), inputs)


@pytest.mark.parametrize("name", ["prob_smooth_weight", "prob_unnormalized", "prob_3d", "index_weight_ignore_smooth",
                                  "index_weight_smooth_none"])  # fmt: skip
def test_cross_entropy_gradchecks_with_probabilities_and_weights(name):
    inputs, target, kwargs = _ce_inputs(name)
    if "target" in inputs:  # with respect to the logits and the probabilities
        assert gradcheck(lambda x, p: F.cross_entropy(x, p, **kwargs), [inputs["x"], inputs["target"]])
        assert gradgradcheck(lambda x, p: F.cross_entropy(x, p, **kwargs), [inputs["x"], inputs["target"]])
    else:
        assert gradcheck(lambda x: F.cross_entropy(x, target, **kwargs), [inputs["x"]])
        assert gradgradcheck(lambda x: F.cross_entropy(x, target, **kwargs), [inputs["x"]])


def test_cross_entropy_one_hot_probabilities_equal_class_indices():
    x = minigrad.randn(4, 3, dtype="float64")
    t = minigrad.tensor([2, 0, 1, 1])
    onehot = minigrad.tensor(np.eye(3)[t.numpy()], dtype="float64")
    for kwargs in ({}, {"label_smoothing": 0.2}, {"reduction": "sum"}):
        assert abs(F.cross_entropy(x, onehot, **kwargs).item() - F.cross_entropy(x, t, **kwargs).item()) < 1e-12


def test_cross_entropy_loss_module_takes_a_class_weight():
    w = minigrad.tensor([1.0, 2.0, 0.5], dtype="float64")
    x, t = minigrad.randn(4, 3, dtype="float64"), minigrad.tensor([2, 0, 1, -100])
    loss = nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)
    assert loss(x, t).item() == F.cross_entropy(x, t, label_smoothing=0.1, weight=w).item()
    assert "weight" in loss.state_dict()


def test_cross_entropy_refuses_bad_probability_targets_and_weights():
    x = minigrad.randn(3, 4)
    with pytest.raises(ValueError, match=r"float targets are class probabilities of the logits' shape \(3, 4\)"):
        F.cross_entropy(x, minigrad.randn(3, 5))
    with pytest.raises(TypeError, match="probability targets must be float32, got float64"):
        F.cross_entropy(x, minigrad.randn(3, 4, dtype="float64"))
    with pytest.raises(ValueError, match=r"weight must be a float32 tensor of shape \(4,\)"):
        F.cross_entropy(x, minigrad.tensor([0, 1, 2]), weight=minigrad.ones(3))
    with pytest.raises(TypeError, match=r"ignore_index must be an integer, got Tensor \(class weights go in weight=\)"):
        F.cross_entropy(x, minigrad.tensor([0, 1, 2]), minigrad.ones(4))  # PyTorch's third argument is weight


# ---- the sweep: every tensor argument carries its gradient or refuses requires_grad ------------------------
def test_probability_targets_carry_their_gradient_through_the_fused_op():
    x = minigrad.randn(3, 4, dtype="float64", requires_grad=True)
    p = F.softmax(minigrad.randn(3, 4, dtype="float64"), -1).detach().requires_grad_()
    F.cross_entropy(x, p, label_smoothing=0.1).backward()
    expected = -F.log_softmax(x, -1).detach().numpy() * 0.9 / 3
    np.testing.assert_allclose(p.grad.numpy(), expected, rtol=1e-12)


SWEEP = {  # place -> (call, the one-line error it must give)
    "cross_entropy weight": (
        lambda w: F.cross_entropy(minigrad.randn(2, 3), minigrad.tensor([0, 1]), weight=w), "cross_entropy: weight"),
    "cross_entropy_composite weight": (
        lambda w: F.cross_entropy_composite(minigrad.randn(2, 3), minigrad.tensor([0, 1]), weight=w),
        "cross_entropy: weight"),
    "clip min": (lambda w: F.clip(minigrad.randn(3), min=w), "clip: min"),
    "clamp max": (lambda w: minigrad.randn(3).clamp(max=w), "clip: max"),
    "attention_weights scale": (
        lambda w: F.attention_weights(minigrad.randn(1, 2, 3), minigrad.randn(1, 2, 3), scale=w.sum()),
        "attention_weights: scale"),
    "masked_fill value": (
        lambda w: minigrad.randn(3).masked_fill(minigrad.tensor([True, False, True]), w.sum()), "masked_fill: value"),
    "getitem index": (lambda w: minigrad.randn(3)[w], "getitem: the index"),
    "dropout p": (lambda w: F.dropout(minigrad.randn(3), w.sum() * 0.1), "dropout: p"),
    "layer_norm eps": (lambda w: F.layer_norm(minigrad.randn(2, 3), 3, eps=w.sum()), "layer_norm: eps"),
    "layer_norm_composite eps": (
        lambda w: F.layer_norm_composite(minigrad.randn(2, 3), 3, eps=w.sum()), "layer_norm: eps"),
}  # fmt: skip


@pytest.mark.parametrize("place", list(SWEEP))
def test_a_value_that_cannot_carry_a_gradient_refuses_requires_grad(place):
    call, message = SWEEP[place]
    w = minigrad.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match=f"^{message} requires grad, but .* pass .*detach"):
        call(w)
    if place != "getitem index":  # a float index is refused for its dtype
        call(w.detach())


def test_tensor_bounds_and_scale_without_gradients_are_used_as_values():
    x = minigrad.tensor([-2.0, 0.5, 3.0], requires_grad=True)
    y = F.clip(x, min=minigrad.tensor([-1.0, 1.0, 0.0]), max=minigrad.tensor(2.0))
    assert y.tolist() == [-1.0, 1.0, 2.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    q, k = minigrad.randn(1, 2, 3), minigrad.randn(1, 2, 3)
    a, b = F.attention_weights(q, k, scale=minigrad.tensor(0.5)), F.attention_weights(q, k, scale=0.5)
    assert a.tolist() == b.tolist()
    with pytest.raises(TypeError, match="attention_weights: scale must be a number, got str"):
        F.attention_weights(q, k, scale="0.5")


def test_masks_and_conditions_must_be_boolean_so_they_cannot_require_grad():
    x, m = minigrad.randn(3), minigrad.ones(3, requires_grad=True)
    for call in (lambda: F.where(m, x, 0.0), lambda: x.masked_fill(m, 0.0)):
        with pytest.raises(TypeError, match="(where: cond|masked_fill: mask) must be a boolean Tensor"):
            call()


def test_integer_index_and_embedding_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="only floating tensors can require grad"):
        minigrad.tensor([0, 1]).requires_grad_()
    with pytest.raises(TypeError, match="embedding: indices must be integers, got dtype float32"):
        F.embedding(minigrad.tensor([0.0, 1.0], requires_grad=True), minigrad.randn(3, 2))
