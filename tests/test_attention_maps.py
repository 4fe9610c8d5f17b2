"""Attention maps: collecting weights and their gradients, and plotting them."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import minigrad
from encoder.attention_maps import collect_attention, plot_attention
from encoder.models import ModelConfig, build_model

TOKENS = [[3, 4, 5, 6, 7, 0], [5, 6, 7, 8, 0, 0]]  # 0 = <pad>
TARGETS = [[0, 1, 2, 0, 1, -100], [1, 1, 2, 0, -100, -100]]


@pytest.fixture
def model_and_batch():
    minigrad.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=12, num_classes=3, d_model=16, nhead=2, num_layers=2, dropout=0.0))
    tokens = minigrad.tensor(TOKENS, dtype="int64")
    return model, tokens, tokens == 0, minigrad.tensor(TARGETS, dtype="int64")


def test_weights_are_distributions_over_unpadded_keys(model_and_batch):
    model, tokens, pad, _ = model_and_batch
    maps = collect_attention(model, tokens, pad)
    assert len(maps) == 2
    for weights, grads in maps:
        assert isinstance(weights, np.ndarray) and weights.shape == (2, 2, 6, 6)
        assert grads is None
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
        masked = np.broadcast_to(pad.numpy()[:, None, None, :], weights.shape)
        assert np.all(weights[masked] == 0.0)
    # switched back off afterwards
    assert all(not layer.self_attn.keep_attention for layer in model.encoder.layers)


def test_gradients_of_the_loss_with_respect_to_the_weights(model_and_batch):
    model, tokens, pad, targets = model_and_batch
    maps = collect_attention(model, tokens, pad, targets)
    for weights, grads in maps:
        assert grads.shape == weights.shape and np.isfinite(grads).all() and np.abs(grads).max() > 0
    assert all(p.grad is None for p in model.parameters())  # parameters untouched
    one = collect_attention(model, tokens, pad, targets, layer=-1)
    assert len(one) == 1
    np.testing.assert_allclose(one[0][1], maps[1][1], rtol=1e-5, atol=1e-8)
    with pytest.raises(IndexError):
        collect_attention(model, tokens, pad, layer=2)


def test_gradient_matches_a_finite_difference(model_and_batch, monkeypatch):
    """<d loss / d weights, D> equals the slope of the loss when layer 0's weights move along D."""
    import encoder.attention as A

    model, tokens, pad, targets = model_and_batch
    model.double()
    (weights, grads), _ = collect_attention(model, tokens, pad, targets)
    direction = np.random.default_rng(0).normal(size=weights.shape) * (weights > 0)
    real = A.scaled_dot_product_attention

    def loss_with(nudge: np.ndarray) -> float:
        calls = []

        def nudged(q, k, v, *args, **kwargs):
            out, w = real(q, k, v, *args, **kwargs)
            if calls:  # only the first layer's weights move
                return out, w
            calls.append(1)
            w = w + minigrad.tensor(nudge, dtype="float64")
            return w @ v, w

        monkeypatch.setattr(A, "scaled_dot_product_attention", nudged)
        with minigrad.no_grad():
            return float(minigrad.functional.cross_entropy(model(tokens, pad), targets))

    eps = 1e-6
    numeric = (loss_with(eps * direction) - loss_with(-eps * direction)) / (2 * eps)
    analytic = float((grads * direction).sum())
    assert abs(analytic) > 1e-4 and numeric == pytest.approx(analytic, rel=1e-5)


def test_plot_writes_a_png(model_and_batch, tmp_path):
    pytest.importorskip("matplotlib")
    model, tokens, pad, targets = model_and_batch
    (weights, grads), _ = collect_attention(model, tokens, pad, targets)
    labels = ["a", "b", "c", "d", "<pad>", "<pad>"]
    path = plot_attention(weights[1], tokens=labels, grads=grads[1], path=tmp_path / "maps" / "attn.png", title="t")
    assert path == tmp_path / "maps" / "attn.png"
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in path.parent.iterdir()] == ["attn.png"]  # no temporary left behind
    plot_attention(weights[0, 0], path=tmp_path / "one_head.png")  # a single map works too
    with pytest.raises(ValueError, match="one sequence"):
        plot_attention(weights, path=tmp_path / "batch.png")


def test_plot_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[plot\]'"):
        plot_attention(np.full((1, 2, 2), 0.5), path=tmp_path / "attn.png")


def _images(fig):
    return [(ax.get_title(), ax.images[0]) for ax in fig.axes if ax.images]


def test_each_map_has_its_own_colour_scale_unless_fixed(model_and_batch):
    pytest.importorskip("matplotlib")
    from encoder.attention_maps import attention_figure

    model, tokens, pad, targets = model_and_batch
    maps = collect_attention(model, tokens, pad, targets)
    layers = [(w[0], g[0]) for w, g in maps]
    fig = attention_figure(layers, tokens=list("abcdef"), title="run: task, layers 0-1, example 0")
    weights = [(t, im) for t, im in _images(fig) if t.endswith("weights")]
    assert [t for t, _ in weights] == [f"layer {i}, head {h}: weights" for i in range(2) for h in range(2)]
    for (_, image), (layer, head) in zip(weights, [(i, h) for i in range(2) for h in range(2)]):
        assert image.get_clim() == (0.0, pytest.approx(float(maps[layer][0][0, head].max())))
    assert fig._suptitle.get_text() == "run: task, layers 0-1, example 0"
    fixed = attention_figure(layers, scale="fixed")
    assert all(im.get_clim() == (0.0, 1.0) for t, im in _images(fixed) if t.endswith("weights"))
    with pytest.raises(ValueError, match="scale"):
        attention_figure(layers, scale="log")


def test_long_sequences_show_the_first_max_tokens(tmp_path):
    pytest.importorskip("matplotlib")
    from encoder.attention_maps import attention_figure

    rng = np.random.default_rng(0)
    w = rng.random((4, 80, 80))
    w /= w.sum(-1, keepdims=True)
    fig = attention_figure([(w, None)], tokens=[f"t{i}" for i in range(80)], title="mlm", max_tokens=32)
    assert all(im.get_array().shape == (32, 32) for _, im in _images(fig))
    assert fig._suptitle.get_text() == "mlm (first 32 of 80 tokens)"
    assert fig.get_size_inches()[0] * 100 <= 2100  # 4 heads of 32 tokens wrap: at most ~2000 px wide
    assert len(_images(fig)) == 4 and fig.get_size_inches()[1] > fig.get_size_inches()[0] / 2
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [f"t{i}" for i in range(32)]
    path = plot_attention(w, tokens=[f"t{i}" for i in range(80)], path=tmp_path / "long.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
