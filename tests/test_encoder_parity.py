"""Parity with torch.nn.TransformerEncoderLayer / TransformerEncoder, forward and backward.

Reference values come from tests/reference/make_encoder_reference.py (run with torch);
this module needs only numpy. Float64, dropout 0: output, input gradient and every
parameter gradient must agree within 1e-9.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

import minigrad
from encoder import TransformerEncoder, TransformerEncoderLayer
from encoder.interop import load_torch_state_dict, to_torch_state_dict

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration

REF = np.load(Path(__file__).parent / "reference" / "encoder_reference.npz")
B, S, D, FF = 2, 5, 8, 12
LENGTHS = [5, 3]
CASES = list(itertools.product((False, True), (1, 2, 4), ("none", "padding", "causal", "both"), (1, 2)))


def build(norm_first: bool, nhead: int, layers: int):
    layer = TransformerEncoderLayer(D, nhead, FF, dropout=0.0, norm_first=norm_first)
    if layers == 1:
        return layer
    return TransformerEncoder(layer, layers, norm=minigrad.nn.LayerNorm(D))


def masks(mask: str):
    kpm = minigrad.tensor([[i >= n for i in range(S)] for n in LENGTHS]) if mask in ("padding", "both") else None
    causal = None
    if mask in ("causal", "both"):
        rows = [[-math.inf if j > i else 0.0 for j in range(S)] for i in range(S)]
        causal = minigrad.tensor(rows, dtype="float64")
    return kpm, causal


@pytest.mark.parametrize("norm_first,nhead,mask,layers", CASES)
def test_matches_torch(norm_first, nhead, mask, layers):
    name = f"{'pre' if norm_first else 'post'}_h{nhead}_{mask}_L{layers}"
    shared = f"h{nhead}_L{layers}/"
    model = build(norm_first, nhead, layers).double()
    params = {k[len(shared) :]: REF[k] for k in REF.files if k.startswith(shared)}
    del params["x"], params["upstream"]
    load_torch_state_dict(model, params)
    x = minigrad.tensor(REF[shared + "x"], requires_grad=True)
    kpm, causal = masks(mask)
    if layers == 1:
        y = model(x, src_mask=causal, src_key_padding_mask=kpm)
    else:
        y = model(x, mask=causal, src_key_padding_mask=kpm)
    y.backward(minigrad.tensor(REF[shared + "upstream"]))

    np.testing.assert_allclose(y.detach().numpy(), REF[name + "/out"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(x.grad.numpy(), REF[name + "/grad_x"], rtol=0, atol=1e-9)
    grads = to_torch_state_dict(model, grads=True)
    expected = {k[len(name) + 6:]: REF[k] for k in REF.files if k.startswith(name + "/grad/")}
    assert sorted(grads) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(grads[key], value, rtol=0, atol=1e-9, err_msg=key)


def test_state_dict_round_trip_through_torch_names():
    minigrad.manual_seed(3)
    model = build(False, 2, 2)
    exported = to_torch_state_dict(model)
    assert exported["layers.0.self_attn.in_proj_weight"].shape == (3 * D, D)
    clone = build(False, 2, 2)
    load_torch_state_dict(clone, exported)
    for (k1, a), (k2, b) in zip(model.state_dict().items(), clone.state_dict().items()):
        assert k1 == k2
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_wrong_shape_names_the_key():
    model = build(False, 2, 1)
    state = to_torch_state_dict(model)
    state["linear1.weight"] = np.zeros((FF + 1, D), dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"ff\.linear1\.weight.*\(13, 8\).*\(12, 8\)"):
        load_torch_state_dict(model, state)
    state = to_torch_state_dict(model)
    state["self_attn.in_proj_weight"] = np.zeros((3 * D, D + 1), dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"in_proj_weight.*\(24, 9\).*\(24, 8\)"):
        load_torch_state_dict(model, state)


def test_unexpected_key_is_reported():
    model = build(False, 2, 1)
    state = to_torch_state_dict(model)
    state["bogus.weight"] = np.zeros(3)
    with pytest.raises(RuntimeError, match="bogus.weight"):
        load_torch_state_dict(model, state)
