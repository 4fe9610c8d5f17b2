"""The encoder: gradients, padding, attention weights and masks, embeddings, models.

PyTorch parity is in test_encoder_parity.py; these tests check the properties the
encoder must have on its own (all in float64 where values are compared).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import encoder
import encoder.attention as attention_module
import minigrad
import minigrad.functional as F
from encoder import (
    MaskedLanguageModel,
    ModelConfig,
    MultiHeadAttention,
    PositionalEncoding,
    SequenceClassifier,
    TokenClassifier,
    TokenEmbedding,
    TransformerEncoder,
    TransformerEncoderLayer,
    build_model,
    scaled_dot_product_attention,
    sinusoidal_table,
)
from encoder.attention import attention_weights_composite, combine_masks
from minigrad import nn

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration


def arr(t: minigrad.Tensor) -> np.ndarray:
    return t.detach().numpy()


def randn(*shape: int, requires_grad: bool = False, seed: int = 0) -> minigrad.Tensor:
    data = np.random.default_rng(seed).standard_normal(shape)
    return minigrad.tensor(data, dtype="float64", requires_grad=requires_grad)


def padding_mask(lengths: list[int], seq: int) -> minigrad.Tensor:
    return minigrad.tensor([[i >= n for i in range(seq)] for n in lengths])


def causal_bool(seq: int) -> minigrad.Tensor:
    return minigrad.tensor([[j > i for j in range(seq)] for i in range(seq)])


def causal_float(seq: int) -> minigrad.Tensor:
    return minigrad.tensor([[-math.inf if j > i else 0.0 for j in range(seq)] for i in range(seq)], dtype="float64")


def jitter(module: nn.Module, seed: int = 1, scale: float = 0.2) -> nn.Module:
    """Add noise to every parameter so zero biases and unit norm weights are exercised too."""
    rng = np.random.default_rng(seed)
    module.load_state_dict({k: arr(v) + scale * rng.standard_normal(v.shape) for k, v in module.state_dict().items()})
    return module


def make_layer(
    d: int, nhead: int, ff: int, norm_first: bool = False, fused: bool = True, **kw
) -> TransformerEncoderLayer:
    minigrad.manual_seed(0)
    layer = TransformerEncoderLayer(d, nhead, ff, dropout=0.0, norm_first=norm_first, fused=fused, **kw).double()
    return jitter(layer)


# ---------------------------------------------------------------------------------------
# gradcheck of a whole layer: input and every parameter
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
def test_layer_gradcheck_full(norm_first):
    layer = make_layer(4, 2, 6, norm_first)
    x = randn(2, 3, 4, requires_grad=True)
    kpm = padding_mask([3, 2], 3)
    params = list(layer.parameters())
    assert len(params) == 16

    def fn(x, *ps):  # ps are the layer's own Parameters: gradcheck perturbs their data in place
        return layer(x, src_key_padding_mask=kpm)

    assert minigrad.gradcheck(fn, [x, *params], mode="full")


@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")])
def test_layer_gradcheck_directional_larger(norm_first, activation):
    layer = make_layer(16, 4, 24, norm_first, activation=activation)
    x = randn(2, 6, 16, requires_grad=True, seed=3)
    kpm = padding_mask([6, 4], 6)
    causal = causal_float(6)

    def fn(x, *ps):
        return layer(x, src_mask=causal, src_key_padding_mask=kpm)

    for seed in range(3):
        assert minigrad.gradcheck(fn, [x, *layer.parameters()], mode="directional", seed=seed)


def test_gradcheck_of_the_layer_detects_a_wrong_gradient():
    """Guard against a vacuous check: a tampered backward must fail the same gradcheck."""
    layer = make_layer(4, 2, 6)
    x = randn(2, 3, 4, requires_grad=True)

    def fn(x, *ps):
        y = layer(x)
        if y.requires_grad:  # gradcheck's finite-difference passes run under no_grad
            y.register_hook(lambda g: g * 1.01)
        return y

    with pytest.raises(minigrad.GradcheckError):
        minigrad.gradcheck(fn, [x, *layer.parameters()], mode="full")


# ---------------------------------------------------------------------------------------
# padding is invisible to real positions
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("fused", [True, False])
def test_padded_inputs_change_nothing_at_real_positions(norm_first, fused):
    minigrad.manual_seed(0)
    kwargs = dict(d_model=8, nhead=2, dim_feedforward=12, dropout=0.0, norm_first=norm_first, fused=fused)
    model = jitter(TransformerEncoder(kwargs, 2, norm=nn.LayerNorm(8)).double())
    lengths, seq = [5, 3], 5
    kpm = padding_mask(lengths, seq)
    real = ~arr(kpm)
    base = np.random.default_rng(0).standard_normal((2, seq, 8))
    other = base.copy()
    other[~real] = 100.0 * np.random.default_rng(1).standard_normal((int((~real).sum()), 8))
    upstream = np.random.default_rng(2).standard_normal((2, seq, 8)) * real[..., None]

    def run(data):
        model.zero_grad()
        x = minigrad.tensor(data, requires_grad=True)
        y = model(x, src_key_padding_mask=kpm)
        (y * minigrad.tensor(upstream)).sum().backward()
        return arr(y), arr(x.grad), {k: arr(p.grad) for k, p in model.named_parameters()}

    y1, gx1, gp1 = run(base)
    y2, gx2, gp2 = run(other)
    assert not np.allclose(y1[~real], y2[~real])  # the padded inputs did change something
    np.testing.assert_allclose(y1[real], y2[real], rtol=0, atol=1e-12)
    np.testing.assert_allclose(gx1[real], gx2[real], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(gx1[~real], 0.0)  # nothing flows back into padding
    np.testing.assert_array_equal(gx2[~real], 0.0)
    assert sorted(gp1) == sorted(gp2) and len(gp1) == 2 * 16 + 2
    # The key projection's bias adds q . b_k to every score of a query's row (masked scores
    # stay -inf), and softmax ignores a constant added to a whole row: its gradient is exactly 0
    # in the math, so only rounding is left of it. Every other parameter does get a gradient.
    key_bias = [k for k in gp1 if k.endswith("self_attn.k_proj.bias")]
    assert len(key_bias) == 2
    largest = max(np.linalg.norm(gp1[k]) for k in gp1 if k not in key_bias)
    assert largest > 1.0
    for k in gp1:
        if k in key_bias:
            assert np.linalg.norm(gp1[k]) <= 1e-12 * largest, (k, np.linalg.norm(gp1[k]), largest)
        else:
            assert np.linalg.norm(gp1[k]) > 1e-3 * largest, k  # 0.05 of the largest at least, here
        np.testing.assert_allclose(gp1[k], gp2[k], rtol=0, atol=1e-12, err_msg=k)


# ---------------------------------------------------------------------------------------
# attention weights
# ---------------------------------------------------------------------------------------
def make_mha(d: int = 8, nhead: int = 2, fused: bool = True) -> MultiHeadAttention:
    minigrad.manual_seed(0)
    return jitter(MultiHeadAttention(d, nhead, fused=fused).double())


@pytest.mark.parametrize("fused", [True, False])
def test_attention_weights_rows_sum_to_one_and_masked_are_zero(fused):
    mha = make_mha(fused=fused)
    lengths, seq = [5, 3], 5
    x = randn(2, seq, 8)
    out, w = mha(x, attn_mask=causal_bool(seq), key_padding_mask=padding_mask(lengths, seq), need_weights=True)
    assert out.shape == (2, seq, 8)
    assert w.shape == (2, 2, seq, seq)
    w = arr(w)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=0, atol=1e-14)
    j = np.arange(seq)
    for b, n in enumerate(lengths):
        for i in range(seq):
            blocked = (j > i) | (j >= n)
            assert np.all(w[b, :, i, blocked] == 0.0)
            assert np.all(w[b, :, i, ~blocked] > 0.0)
    assert mha(x)[1] is None  # weights only on request


def test_attention_weights_per_head_and_3d_inputs():
    q, k, v = randn(2, 3, 4, seed=1), randn(2, 5, 4, seed=2), randn(2, 5, 6, seed=3)
    out, w = scaled_dot_product_attention(q, k, v, key_padding_mask=padding_mask([5, 2], 5))
    assert out.shape == (2, 3, 6) and w.shape == (2, 3, 5)
    np.testing.assert_array_equal(arr(w)[1, :, 2:], 0.0)
    scores = arr(q) @ arr(k).transpose(0, 2, 1) / 2.0
    scores[1, :, 2:] = -np.inf
    expected = np.exp(scores - scores.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(arr(w), expected, rtol=0, atol=1e-14)
    np.testing.assert_allclose(arr(out), expected @ arr(v), rtol=0, atol=1e-13)


@pytest.mark.parametrize("fused", [True, False])
def test_keep_attention_gradient_matches_closed_form(fused):
    mha = make_mha(fused=fused)
    assert mha.keep_attention is False
    x = randn(2, 4, 8)
    mha(x)
    assert mha.last_attention is None  # not kept unless asked
    mha.keep_attention = True
    kpm = padding_mask([4, 3], 4)
    y, _ = mha(x, key_padding_mask=kpm)
    u = np.random.default_rng(5).standard_normal(y.shape)
    y.backward(minigrad.tensor(u))
    w = mha.last_attention
    assert w is not None and w.shape == (2, 2, 4, 4)
    assert w.grad is not None and w.grad.shape == (2, 2, 4, 4)

    # y = concat_h(W_h V_h) Wo^T + bo  =>  dL/dW_h = (u Wo)_h V_h^T
    def heads(a):
        return a.reshape(2, 4, 2, 4).transpose(0, 2, 1, 3)

    v = heads(arr(x) @ arr(mha.v_proj.weight).T + arr(mha.v_proj.bias))
    g_out = heads(u @ arr(mha.out_proj.weight))
    expected = g_out @ v.transpose(0, 1, 3, 2)
    np.testing.assert_allclose(arr(w.grad), expected, rtol=0, atol=1e-12)


def test_keep_attention_gradient_matches_finite_differences():
    """Central differences of the loss recomputed from the kept weights (given V, y is linear in W)."""
    mha = make_mha()
    mha.keep_attention = True
    x = randn(1, 3, 8)
    y, _ = mha(x)
    u = np.random.default_rng(6).standard_normal(y.shape)
    y.backward(minigrad.tensor(u))
    w = arr(mha.last_attention)
    v = (arr(x) @ arr(mha.v_proj.weight).T + arr(mha.v_proj.bias)).reshape(1, 3, 2, 4).transpose(0, 2, 1, 3)

    def loss(weights):
        o = (weights @ v).transpose(0, 2, 1, 3).reshape(1, 3, 8)
        return float(((o @ arr(mha.out_proj.weight).T + arr(mha.out_proj.bias)) * u).sum())

    eps = 1e-6
    numeric = np.zeros_like(w)
    for idx in np.ndindex(*w.shape):
        plus, minus = w.copy(), w.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
    assert abs(loss(w) - float((arr(y) * u).sum())) < 1e-10  # the re-computation is faithful
    np.testing.assert_allclose(arr(mha.last_attention.grad), numeric, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------
# fully masked rows: weights 0, outputs and gradients finite
# ---------------------------------------------------------------------------------------
def test_fully_masked_policy_is_documented():
    doc = attention_module.__doc__
    assert "Fully masked rows" in doc and "exactly 0" in doc and "NaN" in doc


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("kind", ["bool", "float", "padding"])
def test_fully_masked_rows_are_zero_and_finite(fused, kind):
    mha = make_mha(fused=fused)
    seq = 4
    rows = np.zeros((seq, seq), dtype=bool)
    rows[1] = True  # query 1 may attend to nothing
    rows[2, 3] = True
    attn_mask = kpm = None
    if kind == "bool":
        attn_mask = minigrad.tensor(rows)
    elif kind == "float":
        attn_mask = minigrad.tensor(np.where(rows, -np.inf, 0.0))
    else:
        kpm = minigrad.tensor([[False] * seq, [True] * seq])  # the second sequence is all padding
    x = randn(2, seq, 8, requires_grad=True)
    y, w = mha(x, attn_mask=attn_mask, key_padding_mask=kpm, need_weights=True)
    w = arr(w)
    dead = np.zeros((2, 2, seq), dtype=bool)
    if kind == "padding":
        dead[1] = True
    else:
        dead[:, :, 1] = True
    np.testing.assert_array_equal(w[dead], 0.0)
    np.testing.assert_allclose(w.sum(-1)[~dead], 1.0, rtol=0, atol=1e-14)
    assert np.isfinite(arr(y)).all()
    # a dead row's attention output is 0, so the layer outputs just out_proj's bias there
    dead_pos = dead[:, 0, :]
    np.testing.assert_allclose(
        arr(y)[dead_pos], np.broadcast_to(arr(mha.out_proj.bias), (dead_pos.sum(), 8)), atol=1e-15
    )
    y.backward(randn(*y.shape, seed=9))
    assert np.isfinite(arr(x.grad)).all()
    for name, p in mha.named_parameters():
        assert np.isfinite(arr(p.grad)).all(), name


@pytest.mark.parametrize("fused", [True, False])
def test_fully_padded_sequence_through_a_layer_is_finite(fused):
    layer = make_layer(8, 2, 12, fused=fused)
    x = randn(2, 3, 8, requires_grad=True)
    y = layer(x, src_key_padding_mask=minigrad.tensor([[False, False, True], [True, True, True]]))
    y.backward(randn(*y.shape, seed=4))
    assert np.isfinite(arr(y)).all() and np.isfinite(arr(x.grad)).all()
    assert all(np.isfinite(arr(p.grad)).all() for p in layer.parameters())


# ---------------------------------------------------------------------------------------
# fused and composite attention agree
# ---------------------------------------------------------------------------------------
def _mask(kind: str, batch: int, nhead: int, seq_q: int, seq_k: int) -> minigrad.Tensor | None:
    rng = np.random.default_rng(11)
    bool_attn = rng.random((seq_q, seq_k)) < 0.3
    bool_attn[2] = True  # a fully masked row
    float_attn = np.where(bool_attn, -np.inf, rng.standard_normal((seq_q, seq_k)))
    kpm = padding_mask([seq_k, seq_k - 2], seq_k)
    if kind == "none":
        return None
    if kind == "bool":
        m = combine_masks(minigrad.tensor(bool_attn), kpm, batch, nhead, seq_q, seq_k, minigrad.float64)
    elif kind == "float":
        m = combine_masks(minigrad.tensor(float_attn), None, batch, nhead, seq_q, seq_k, minigrad.float64)
    else:  # float attn_mask and bool padding combined
        m = combine_masks(minigrad.tensor(float_attn), kpm, batch, nhead, seq_q, seq_k, minigrad.float64)
    assert (m.dtype == minigrad.bool_) == (kind == "bool")
    return m


@pytest.mark.parametrize("kind", ["none", "bool", "float", "both"])
def test_fused_and_composite_attention_weights_agree(kind):
    q = randn(2, 2, 5, 3, requires_grad=True, seed=1)
    k = randn(2, 2, 6, 3, requires_grad=True, seed=2)
    mask = _mask(kind, 2, 2, 5, 6)
    u = randn(2, 2, 5, 6, seed=3)
    scale = 0.7
    fused = F.attention_weights(q, k, mask, scale)
    composite = attention_weights_composite(q, k, mask, scale)
    np.testing.assert_allclose(arr(fused), arr(composite), rtol=0, atol=1e-10)
    gf = minigrad.grad(fused, [q, k], u)
    gc = minigrad.grad(composite, [q, k], u)
    for a, b in zip(gf, gc):
        assert np.abs(arr(a)).max() > 0
        np.testing.assert_allclose(arr(a), arr(b), rtol=0, atol=1e-10)
    if kind != "none":
        assert np.all(arr(fused)[:, :, 2] == 0.0)  # the fully masked row
    # and both are right, not just equal
    assert minigrad.gradcheck(lambda q, k: F.attention_weights(q, k, mask, scale), [q, k])
    assert minigrad.gradcheck(lambda q, k: attention_weights_composite(q, k, mask, scale), [q, k])


@pytest.mark.parametrize("norm_first", [False, True])
def test_fused_and_composite_layers_agree(norm_first):
    fused = make_layer(8, 2, 12, norm_first, fused=True)
    minigrad.manual_seed(99)
    composite = TransformerEncoderLayer(8, 2, 12, dropout=0.0, norm_first=norm_first, fused=False).double()
    composite.load_state_dict(fused.state_dict())
    kpm, causal = padding_mask([5, 3], 5), causal_float(5)
    u = randn(2, 5, 8, seed=7)
    results = []
    for layer in (fused, composite):
        x = randn(2, 5, 8, requires_grad=True)
        y = layer(x, src_mask=causal, src_key_padding_mask=kpm)
        y.backward(u)
        results.append((arr(y), arr(x.grad), [arr(p.grad) for p in layer.parameters()]))
    (y1, gx1, gp1), (y2, gx2, gp2) = results
    np.testing.assert_allclose(y1, y2, rtol=0, atol=1e-10)
    np.testing.assert_allclose(gx1, gx2, rtol=0, atol=1e-10)
    for (name, _), a, b in zip(fused.named_parameters(), gp1, gp2):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10, err_msg=name)


# ---------------------------------------------------------------------------------------
# masks follow PyTorch's conventions
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fused", [True, False])
def test_bool_src_mask_equals_float_minus_inf(fused):
    layer = make_layer(8, 2, 12, fused=fused)
    rng = np.random.default_rng(3)
    allowed = rng.random((5, 5)) < 0.6
    np.fill_diagonal(allowed, True)
    x = randn(2, 5, 8)
    y_bool = layer(x, src_mask=minigrad.tensor(~allowed))
    y_float = layer(x, src_mask=minigrad.tensor(np.where(allowed, 0.0, -np.inf)))
    y_none = layer(x)
    np.testing.assert_allclose(arr(y_bool), arr(y_float), rtol=0, atol=1e-12)
    assert not np.allclose(arr(y_bool), arr(y_none))


def test_float_src_mask_is_added_to_scores():
    mha = make_mha()
    x = randn(1, 3, 8)
    bias = np.array([[0.0, 1.5, -2.0], [0.3, 0.0, 0.0], [-1.0, 0.0, 2.0]])
    _, w = mha(x, attn_mask=minigrad.tensor(bias), need_weights=True)
    _, w0 = mha(x, need_weights=True)
    # softmax(s + bias) = softmax(s) * exp(bias), renormalized
    expected = arr(w0) * np.exp(bias)
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(arr(w), expected, rtol=0, atol=1e-14)


def test_per_head_3d_src_mask():
    batch, nhead, seq = 2, 2, 4
    rng = np.random.default_rng(8)
    mask3 = rng.random((batch * nhead, seq, seq)) < 0.4
    mask3[:, :, 0] = False  # every row keeps a key
    mha = make_mha(8, nhead)
    x = randn(batch, seq, 8)
    _, w = mha(x, attn_mask=minigrad.tensor(mask3), need_weights=True)
    w = arr(w)
    for b in range(batch):
        for h in range(nhead):  # PyTorch's order: index b * nhead + h
            m = mask3[b * nhead + h]
            assert np.all(w[b, h][m] == 0.0) and np.all(w[b, h][~m] > 0.0)
    # a (batch * nhead, seq, seq) mask repeating a 2-D mask gives the 2-D mask's result
    layer = make_layer(8, nhead, 12)
    causal = arr(causal_bool(seq))
    y2 = layer(x, src_mask=minigrad.tensor(causal))
    y3 = layer(x, src_mask=minigrad.tensor(np.broadcast_to(causal, (batch * nhead, seq, seq)).copy()))
    np.testing.assert_allclose(arr(y2), arr(y3), rtol=0, atol=1e-13)


def test_wrong_mask_shapes_and_dtypes():
    layer = make_layer(8, 2, 12)
    x = randn(2, 5, 8)
    expected = r"expected \(5, 5\), \(4, 5, 5\) or a shape that broadcasts to \(2, 2, 5, 5\)"
    with pytest.raises(ValueError, match=r"attn_mask has shape \(5, 4\), " + expected):
        layer(x, src_mask=minigrad.tensor(np.zeros((5, 4), dtype=bool)))
    with pytest.raises(ValueError, match=expected):
        layer(x, src_mask=minigrad.tensor(np.zeros((3, 5, 5), dtype=bool)))
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(2, 4\), expected \(2, 5\)"):
        layer(x, src_key_padding_mask=minigrad.tensor(np.zeros((2, 4), dtype=bool)))
    with pytest.raises(TypeError, match="key_padding_mask must be bool"):
        layer(x, src_key_padding_mask=minigrad.tensor(np.zeros((2, 5))))
    with pytest.raises(TypeError, match="key_padding_mask must be bool"):
        layer(x, src_key_padding_mask=minigrad.tensor(np.zeros((2, 5), dtype=np.int64)))
    with pytest.raises(TypeError, match="attn_mask must be bool"):
        layer(x, src_mask=minigrad.tensor(np.zeros((5, 5), dtype=np.int64)))


# ---------------------------------------------------------------------------------------
# positional encoding and token embedding
# ---------------------------------------------------------------------------------------
def test_sinusoidal_values_at_known_positions():
    d = 6
    t = arr(sinusoidal_table(10, d, dtype="float64"))
    assert t.shape == (10, d)
    np.testing.assert_array_equal(t[0, 0::2], 0.0)  # sin 0
    np.testing.assert_array_equal(t[0, 1::2], 1.0)  # cos 0
    assert abs(t[1, 0] - math.sin(1.0)) < 1e-15
    assert abs(t[1, 1] - math.cos(1.0)) < 1e-15
    for i in range(d // 2):
        angle = 3 / 10000 ** (2 * i / d)
        assert abs(t[3, 2 * i] - math.sin(angle)) < 1e-14
        assert abs(t[3, 2 * i + 1] - math.cos(angle)) < 1e-14
    pos = np.arange(10)[:, None]
    i2 = np.arange(0, d, 2)[None, :]
    np.testing.assert_allclose(t[:, 0::2], np.sin(pos / 10000 ** (i2 / d)), atol=1e-13)
    np.testing.assert_allclose(t[:, 1::2], np.cos(pos / 10000 ** (i2 / d)), atol=1e-13)


def test_sinusoidal_odd_d_model():
    d = 7
    t = arr(sinusoidal_table(5, d, dtype="float64"))
    assert t.shape == (5, d)
    for pos in range(5):
        for j in range(d):
            angle = pos / 10000 ** ((j - j % 2) / d)
            expected = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert abs(t[pos, j] - expected) < 1e-14
    pe = PositionalEncoding(d, max_len=5, dropout=0.0)
    assert pe(minigrad.zeros(1, 3, d)).shape == (1, 3, d)


def test_positional_encoding_buffer_or_parameter():
    pe = PositionalEncoding(8, max_len=16, dropout=0.0)
    assert "table" not in pe.state_dict() and len(pe.state_dict()) == 0
    assert [n for n, _ in pe.named_buffers()] == ["table"] and list(pe.parameters()) == []
    np.testing.assert_allclose(arr(pe.table), arr(sinusoidal_table(16, 8, dtype="float64")), atol=1e-7)
    pe.double()
    assert pe.table.dtype == minigrad.float64
    x = randn(2, 5, 8)
    np.testing.assert_allclose(arr(pe(x)), arr(x) + arr(pe.table)[:5], rtol=0, atol=0)

    learned = PositionalEncoding(8, max_len=16, dropout=0.0, learned=True)
    assert isinstance(learned.table, nn.Parameter)
    assert [n for n, _ in learned.named_parameters()] == ["table"]
    assert list(learned.state_dict()) == ["table"] and learned.table.shape == (16, 8)
    y = learned(minigrad.zeros(2, 3, 8))
    y.sum().backward()
    g = arr(learned.table.grad)
    np.testing.assert_array_equal(g[:3], 2.0)
    np.testing.assert_array_equal(g[3:], 0.0)


def test_positional_encoding_too_long():
    pe = PositionalEncoding(8, max_len=4, dropout=0.0)
    pe(minigrad.zeros(1, 4, 8))
    with pytest.raises(ValueError, match="sequence length 5 exceeds max_len=4"):
        pe(minigrad.zeros(1, 5, 8))


def test_token_embedding_scaled_by_sqrt_d_model():
    emb = TokenEmbedding(10, 9, padding_idx=0).double()
    assert emb.weight is emb.embedding.weight
    tokens = minigrad.tensor([[1, 4, 0], [9, 4, 2]])
    out = arr(emb(tokens))
    assert out.shape == (2, 3, 9)
    np.testing.assert_allclose(out, arr(emb.weight)[arr(tokens)] * 3.0, rtol=1e-15)
    np.testing.assert_array_equal(out[0, 2], 0.0)


# ---------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------
def config(head: str, **kw) -> ModelConfig:
    base = dict(vocab_size=12, num_classes=3, head=head, d_model=8, nhead=2, num_layers=2, dropout=0.0, max_len=16)
    return ModelConfig(**{**base, **kw})


TOKENS = np.array([[3, 5, 7, 2, 9, 4], [6, 2, 8, 11, 0, 0]])
LENGTHS = [6, 4]


def model_inputs(tokens: np.ndarray = TOKENS):
    return minigrad.tensor(tokens), padding_mask(LENGTHS, tokens.shape[1])


def build(cfg: ModelConfig) -> encoder.EncoderModel:
    minigrad.manual_seed(0)
    return jitter(build_model(cfg).double().eval())


@pytest.mark.parametrize("norm_first", [False, True])
def test_mean_pooling_ignores_padded_positions(norm_first):
    model = build(config("sequence", pooling="mean", norm_first=norm_first))
    tokens, pm = model_inputs()
    logits = model(tokens, pm)
    assert logits.shape == (2, 3)
    changed = TOKENS.copy()
    changed[1, 4:] = [5, 10]
    np.testing.assert_allclose(arr(model(minigrad.tensor(changed), pm)), arr(logits), rtol=0, atol=1e-12)
    # the pool is the mean of the real positions only
    h = arr(model.encode(tokens, pm))
    pooled = np.stack([h[b, :n].mean(0) for b, n in enumerate(LENGTHS)])
    expected = pooled @ arr(model.head.weight).T + arr(model.head.bias)
    np.testing.assert_allclose(arr(logits), expected, rtol=0, atol=1e-12)
    real_change = TOKENS.copy()
    real_change[1, 1] = 5
    assert not np.allclose(arr(model(minigrad.tensor(real_change), pm))[1], arr(logits)[1])


def test_cls_pooling_uses_position_zero():
    model = build(config("sequence", pooling="cls"))
    tokens, pm = model_inputs()
    logits = arr(model(tokens, pm))
    h = arr(model.encode(tokens, pm))
    np.testing.assert_allclose(logits, h[:, 0] @ arr(model.head.weight).T + arr(model.head.bias), rtol=0, atol=1e-12)
    mean = h[0].mean(0) @ arr(model.head.weight).T + arr(model.head.bias)
    assert not np.allclose(logits[0], mean)


def test_token_classifier_shape():
    model = build(config("token", num_classes=5))
    tokens, pm = model_inputs()
    assert isinstance(model, TokenClassifier)
    assert model(tokens, pm).shape == (2, 6, 5)
    with pytest.raises(ValueError, match="tokens must be"):
        model(minigrad.tensor([1, 2, 3]))


def test_mlm_tied_weights_share_one_parameter():
    model = build(config("mlm", tie_weights=True))
    assert isinstance(model, MaskedLanguageModel)
    shared = model.embed.embedding.weight
    assert model.head.weight is shared and model.embed.weight is shared
    params = [p for _, p in model.named_parameters()]
    assert sum(p is shared for p in params) == 1
    assert len(params) == len({id(p) for p in params})
    tokens, pm = model_inputs()
    logits = model(tokens, pm)
    assert logits.shape == (2, 6, 12)
    logits.sum().backward()
    assert shared.grad is not None and shared.grad.shape == (12, 8)
    untied = build(config("mlm", tie_weights=False))
    assert untied.head.weight is not untied.embed.embedding.weight
    assert untied.num_parameters() == model.num_parameters() + 12 * 8


def test_build_model_picks_class_by_head():
    expected = {"token": TokenClassifier, "sequence": SequenceClassifier, "mlm": MaskedLanguageModel}
    for head, cls in expected.items():
        assert type(build_model(config(head))) is cls
    with pytest.raises(ValueError, match="head must be one of"):
        config("regression")


def test_model_config_validation_and_round_trip():
    with pytest.raises(ValueError, match="d_model=10 is not divisible by nhead=3"):
        ModelConfig(vocab_size=5, num_classes=2, d_model=10, nhead=3)
    with pytest.raises(ValueError, match="pooling"):
        config("sequence", pooling="max")
    cfg = config("sequence", pooling="cls", norm_first=True, extra={"note": "x"})
    assert cfg.dim_feedforward == 32  # 4 * d_model by default
    d = cfg.to_dict()
    assert ModelConfig.from_dict(d) == cfg
    assert ModelConfig.from_dict(json.loads(json.dumps(d))) == cfg
    assert d["d_model"] == 8 and d["head"] == "sequence"


# ---------------------------------------------------------------------------------------
# the stack of layers
# ---------------------------------------------------------------------------------------
def test_encoder_makes_independent_copies():
    minigrad.manual_seed(0)
    layer = TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    enc = TransformerEncoder(layer, 3)
    assert len(enc.layers) == 3
    assert all(isinstance(m, TransformerEncoderLayer) and m is not layer for m in enc.layers)
    assert len({id(p) for p in enc.parameters()}) == 3 * 16
    assert enc.num_parameters() == 3 * layer.num_parameters()
    for m in enc.layers:  # deep copies start from the same values
        np.testing.assert_array_equal(arr(m.ff.linear1.weight), arr(layer.ff.linear1.weight))
    enc.layers[0].ff.linear1.weight.data[...] = 0.0
    assert not np.any(arr(enc.layers[0].ff.linear1.weight))
    assert np.any(arr(enc.layers[1].ff.linear1.weight)) and np.any(arr(layer.ff.linear1.weight))
    enc.layers[1].norm1.bias.data[...] = 1.0
    assert not np.any(arr(enc.layers[2].norm1.bias))
    with pytest.raises(ValueError, match="num_layers"):
        TransformerEncoder(layer, 0)


def test_encoder_from_kwargs_dict():
    minigrad.manual_seed(0)
    enc = TransformerEncoder(dict(d_model=8, nhead=2, dim_feedforward=12, dropout=0.0, norm_first=True), 2)
    assert all(isinstance(m, TransformerEncoderLayer) and m.norm_first and m.d_model == 8 for m in enc.layers)
    assert enc.layers[0].ff.linear1.weight.shape == (12, 8)
    # each copy gets its own fresh initialization
    assert not np.array_equal(arr(enc.layers[0].self_attn.q_proj.weight), arr(enc.layers[1].self_attn.q_proj.weight))
    enc.double()
    x = randn(2, 4, 8)
    y = enc(x)
    manual = enc.layers[1](enc.layers[0](x))
    np.testing.assert_array_equal(arr(y), arr(manual))


# ---------------------------------------------------------------------------------------
# the encoder is built from minigrad only
# ---------------------------------------------------------------------------------------
def test_encoder_sources_do_not_import_numpy_or_cupy():
    root = Path(encoder.__file__).parent
    files = {f.relative_to(root).as_posix(): f for f in sorted(root.rglob("*.py"))}
    assert {"attention.py", "layers.py", "models.py", "tasks/batching.py", "training/trainer.py"} <= set(files)
    pattern = re.compile(r"^\s*(import|from)\s+(numpy|cupy)\b|__import__\(\s*['\"](numpy|cupy)", re.MULTILINE)
    offenders = [f"{name}: {m.group(0).strip()}" for name, f in files.items() for m in pattern.finditer(f.read_text())]
    assert offenders == []


def test_a_float_attention_mask_that_requires_grad_gets_its_gradient():
    """The fused path hands the mask to the op as a tensor: its gradient is the composite path's."""
    from encoder.attention import scaled_dot_product_attention

    r = np.random.default_rng(5)
    q, k, v = (minigrad.tensor(r.standard_normal((2, 2, 4, 8)), dtype="float64") for _ in range(3))
    mask0 = r.standard_normal((4, 4))
    grads = []
    for fused in (True, False):
        m = minigrad.tensor(mask0, dtype="float64", requires_grad=True)
        out, _ = scaled_dot_product_attention(q, k, v, attn_mask=m, fused=fused)
        (out * out).sum().backward()
        assert m.grad is not None
        grads.append(m.grad.numpy())
    assert np.abs(grads[1]).max() > 0.1
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-14)
