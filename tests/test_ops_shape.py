"""Shape and indexing ops, einsum, the losses and rms_norm of issue 22: PyTorch's values and
input gradients (stored in tests/reference/ops_shape_reference.npz, regenerated with
tests/reference/make_ops_shape_reference.py), PyTorch's edge semantics, the one-line
errors, in-place writes (``x[i] = v``), ``nn.RMSNorm``, ``nn.ModuleDict`` and ``Module.apply``.

The gradient checks (first and second order) of these ops are rows of the tables in
tests/test_ops_gradcheck.py and tests/test_backend_independence.py.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
from reference.ops_shape_cases import CASES, make_inputs, seed

import minigrad
import minigrad.functional as F

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration

REFERENCE = np.load(Path(__file__).parent / "reference" / "ops_shape_reference.npz")
LIB = types.SimpleNamespace(F=F, einsum=F.einsum)


def _run_case(name):
    specs, fn = CASES[name]
    arrays, needs = make_inputs(specs, np.random.default_rng(seed(name)))
    inputs = [minigrad.tensor(a, dtype="float64" if a.dtype.kind == "f" else None, requires_grad=g)
              for a, g in zip(arrays, needs)]  # fmt: skip
    outs = fn(LIB, *inputs)
    return arrays, inputs, list(outs) if isinstance(outs, (list, tuple)) else [outs]


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_pytorch(name):
    arrays, inputs, outs = _run_case(name)
    for k, a in enumerate(arrays):  # the same inputs as PyTorch had
        np.testing.assert_array_equal(a, REFERENCE[f"{name}/in{k}"])
    loss = None
    for k, o in enumerate(outs):
        expected = REFERENCE[f"{name}/out{k}"]
        assert o.shape == expected.shape, (name, k)
        assert (o.dtype.kind == "f") == (expected.dtype.kind == "f"), (name, o.dtype, expected.dtype)
        np.testing.assert_allclose(o.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
        if o.dtype.kind == "f":
            term = (o * minigrad.tensor(REFERENCE[f"{name}/up{k}"], dtype="float64")).sum()
            loss = term if loss is None else loss + term
    float_inputs = [t for t in inputs if t.requires_grad]
    if loss is None:
        assert not any(f"{name}/grad{k}" in REFERENCE for k in range(len(arrays)))
        return
    grads = minigrad.grad(loss, float_inputs, allow_unused=True)
    for k, (t, g) in enumerate(zip(float_inputs, grads)):
        got = np.zeros(t.shape) if g is None else g.numpy()
        np.testing.assert_allclose(got, REFERENCE[f"{name}/grad{k}"], rtol=1e-10, atol=1e-12, err_msg=f"{name} grad{k}")


def test_every_new_op_has_a_pytorch_reference():
    ops = ["clone", "t", "flip", "roll", "pad", "tril", "triu", "repeat", "tile", "repeat_interleave", "chunk",
           "gather", "scatter", "scatter_add", "masked_select", "one_hot", "einsum", "nll_loss", "binary_cross_entropy",
           "bce_with_logits", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "rms_norm"]  # fmt: skip
    for op in ops:
        assert any(name == op or name.startswith(op + "_") for name in CASES), op
    assert str(REFERENCE["torch_version"]).startswith("2.")
