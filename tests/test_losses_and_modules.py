"""The losses of issue 22 (targets that carry their gradient, weights that refuse one,
reductions, stability, errors), rms_norm's errors, ``nn.RMSNorm``, ``nn.ModuleDict`` and
``Module.apply``. Their values and gradients against PyTorch are in tests/test_ops_shape.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad
import minigrad.functional as F
from minigrad import nn


# ---- losses: targets, weights, reductions, errors ---------------------------------------------------
def test_bce_target_gets_its_gradient_and_weights_refuse_grad():
    """PyTorch differentiates bce in its target (a probability), not in its weights: minigrad
    gives the target its gradient and refuses a weight that requires grad, at the call."""
    x = minigrad.tensor([0.2, 0.7], dtype="float64", requires_grad=True)
    t = minigrad.tensor([0.0, 0.9], dtype="float64", requires_grad=True)
    F.binary_cross_entropy(x, t, reduction="sum").backward()
    np.testing.assert_allclose(t.grad.numpy(), np.log(1 - x.detach().numpy()) - np.log(x.detach().numpy()))
    w = minigrad.ones(2, dtype="float64", requires_grad=True)
    for call in (
        lambda: F.binary_cross_entropy(x, t, weight=w),
        lambda: F.binary_cross_entropy_with_logits(x, t, weight=w),
        lambda: F.binary_cross_entropy_with_logits(x, t, pos_weight=w),
        lambda: F.nll_loss(x[None], minigrad.tensor([1]), weight=w),
    ):
        with pytest.raises(ValueError, match=r"(weight|pos_weight) requires grad, but .* does not differentiate"):
            call()


def test_bce_with_logits_is_stable_for_large_logits():
    x = minigrad.tensor([-800.0, -30.0, 30.0, 800.0], dtype="float64", requires_grad=True)
    t = minigrad.tensor([1.0, 0.0, 1.0, 0.0], dtype="float64")
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss.detach().numpy(), [800.0, np.log1p(np.exp(-30.0)), np.log1p(np.exp(-30.0)), 800.0])
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [-1.0, 1 / (1 + np.exp(30.0)), -1 / (1 + np.exp(30.0)), 1.0], atol=1e-15)


def test_nll_loss_mean_divides_by_the_weights_of_the_targets_not_ignored():
    logp = minigrad.tensor([[-1.0, -2.0], [-3.0, -4.0], [-5.0, -6.0]], dtype="float64", requires_grad=True)
    w = minigrad.tensor([2.0, 0.5], dtype="float64")
    loss = F.nll_loss(logp, minigrad.tensor([0, 1, -100]), weight=w)
    assert loss.item() == pytest.approx((2.0 * 1.0 + 0.5 * 4.0) / 2.5)
    loss.backward()
    np.testing.assert_allclose(logp.grad.numpy(), [[-2.0 / 2.5, 0], [0, -0.5 / 2.5], [0, 0]])
    all_ignored = F.nll_loss(logp, minigrad.tensor([-100, -100, -100]))
    assert np.isnan(all_ignored.item())  # as PyTorch: 0 / 0


def test_kl_div_batchmean_is_the_kl_divergence_per_sample():
    p = np.array([[0.2, 0.8], [0.5, 0.5]])
    q = np.array([[0.4, 0.6], [0.9, 0.1]])
    out = F.kl_div(minigrad.tensor(np.log(q), dtype="float64"), minigrad.tensor(p, dtype="float64"), "batchmean")
    assert out.item() == pytest.approx((p * np.log(p / q)).sum() / 2)
    zero_target = F.kl_div(minigrad.tensor([[0.3]], dtype="float64"), minigrad.tensor([[0.0]], dtype="float64"), "sum")
    assert zero_target.item() == 0.0  # 0 log 0 = 0


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda a, b: F.l1_loss(a, b[:1]), ValueError,
         r"l1_loss: input has shape \(2, 3\) but target has shape \(1, 3\)"),
        (lambda a, b: F.huber_loss(a, b, reduction="avg"), ValueError,
         r"huber_loss: reduction must be one of 'mean', 'sum', 'none'"),
        (lambda a, b: F.huber_loss(a, b, delta=0.0), ValueError, r"huber_loss: delta must be > 0, got 0.0"),
        (lambda a, b: F.smooth_l1_loss(a, b, beta=-1.0), ValueError, r"smooth_l1_loss: beta must be >= 0, got -1.0"),
        (lambda a, b: F.l1_loss(a, b.numpy()), TypeError, r"l1_loss: target must be a Tensor, got ndarray"),
        (lambda a, b: F.kl_div(a, b, reduction="batchsum"), ValueError,
         r"kl_div: reduction must be one of 'mean', 'batchmean'"),
        (lambda a, b: F.binary_cross_entropy(a * 3, b), ValueError,
         r"binary_cross_entropy: input must hold probabilities in \[0, 1\]"),
        (lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=minigrad.ones(2)), ValueError,
         r"binary_cross_entropy_with_logits: shapes \(2,\) and \(2, 3\) cannot be broadcast together"),
        (lambda a, b: F.nll_loss(a, minigrad.tensor([0, 3])), IndexError,
         r"nll_loss: target values must be in \[0, 3\) or ignore_index=-100, got 3"),
        (lambda a, b: F.nll_loss(a, minigrad.tensor([0])), ValueError,
         r"nll_loss: input of shape \(2, 3\) needs a target of shape \(2,\)"),
        (lambda a, b: F.nll_loss(a, minigrad.tensor([0.0, 1.0])), TypeError,
         r"nll_loss: target must hold integer class indices"),
        (lambda a, b: F.nll_loss(a, minigrad.tensor([0, 1]), weight=minigrad.ones(2)), ValueError,
         r"nll_loss: weight must have shape \(3,\), one per class"),
        (lambda a, b: F.rms_norm(a, 2), ValueError,
         r"rms_norm: input of shape \(2, 3\) does not end with normalized_shape"),
        (lambda a, b: F.rms_norm(a, 3, weight=minigrad.ones(2)), ValueError,
         r"rms_norm: weight has shape \(2,\), expected \(3,\)"),
    ],
)
def test_loss_and_norm_errors_name_the_op(call, error, message):
    a = minigrad.full((2, 3), 0.5)
    b = minigrad.full((2, 3), 0.25)
    with pytest.raises(error, match=message):
        call(a, b)


# ---- nn: RMSNorm, ModuleDict, Module.apply ------------------------------------------------------------
def test_rms_norm_module():
    norm = nn.RMSNorm((3,), dtype="float64")
    assert [name for name, _ in norm.named_parameters()] == ["weight"]
    assert norm.weight.tolist() == [1.0, 1.0, 1.0]
    assert repr(norm) == "RMSNorm((3,), eps=None, elementwise_affine=True)"
    x = minigrad.tensor([[3.0, 0.0, 4.0], [1.0, 1.0, 1.0]], dtype="float64")
    rms = np.sqrt(np.array([25.0 / 3, 1.0]) + np.finfo(np.float64).eps)[:, None]  # eps=None: machine epsilon
    np.testing.assert_allclose(norm(x).detach().numpy(), x.numpy() / rms, rtol=1e-15)
    norm(x).sum().backward()
    assert norm.weight.grad is not None
    bare = nn.RMSNorm(3, eps=1e-3, elementwise_affine=False)
    assert list(bare.parameters()) == [] and bare.eps == 1e-3
    with pytest.raises(ValueError, match=r"RMSNorm: eps must be >= 0 or None, got -1"):
        nn.RMSNorm(3, eps=-1)


def test_module_dict_registers_its_modules():
    d = nn.ModuleDict({"encoder": nn.Linear(2, 3), "norm": nn.RMSNorm(3)})
    d["head"] = nn.Linear(3, 1)
    assert list(d) == ["encoder", "norm", "head"] and len(d) == 3 and "norm" in d
    assert list(d.state_dict()) == ["encoder.weight", "encoder.bias", "norm.weight", "head.weight", "head.bias"]
    assert len(list(d.parameters())) == 5
    d.double()
    assert d["encoder"].weight.dtype == minigrad.float64
    d.update([("extra", nn.ReLU())])
    assert list(d.keys())[-1] == "extra" and isinstance(d.pop("extra"), nn.ReLU)
    del d["head"]
    assert [k for k, _ in d.items()] == ["encoder", "norm"]
    with pytest.raises(KeyError, match=r"ModuleDict: no module named 'missing' \(keys: encoder, norm\)"):
        d["missing"]
    with pytest.raises(TypeError, match=r"ModuleDict: 'x' must map to a Module, got int"):
        d["x"] = 3
    with pytest.raises(KeyError, match=r"ModuleDict: keys must be non-empty strings without '.'"):
        d["a.b"] = nn.ReLU()
    with pytest.raises(KeyError, match=r"ModuleDict: key 'keys' would hide the attribute of the same name"):
        d["keys"] = nn.ReLU()
    with pytest.raises(NotImplementedError, match=r"ModuleDict has no forward"):
        d(minigrad.zeros(2))
    d.clear()
    assert len(d) == 0 and list(d.parameters()) == []


def test_module_apply_visits_children_first_and_returns_the_module():
    model = nn.Sequential(nn.Linear(2, 3), nn.ModuleDict({"act": nn.ReLU(), "out": nn.Linear(3, 1)}))
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "ReLU", "Linear", "ModuleDict", "Sequential"]

    def init(m):
        if isinstance(m, nn.Linear):
            m.weight.data[...] = 0.5

    model.apply(init)
    assert all((m.weight.detach().numpy() == 0.5).all() for m in model.modules() if isinstance(m, nn.Linear))
