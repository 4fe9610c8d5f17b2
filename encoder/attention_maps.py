"""Attention maps: what each head looks at, and how the loss would like that to change.

:func:`collect_attention` runs a model with every layer's ``self_attn.keep_attention``
switched on and returns, per layer, the attention weights (batch, nhead, seq_q, seq_k)
and, when targets are given, the gradient of the cross-entropy loss with respect to
those weights. :func:`plot_attention` draws one sequence's weights as a grid of
heatmaps, one per head, with the gradients in a second row::

    model.eval()
    maps = collect_attention(model, tokens, padding_mask, targets)
    weights, grads = maps[0]                       # first layer
    plot_attention(weights[0], tokens=labels, grads=grads[0], path="attn.png")

Reading the gradient row: a positive entry means the loss would rise if that weight
grew, so training pushes the head away from that key (and towards negative entries).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import minigrad
import minigrad.functional as F
from minigrad import Tensor, nn
from minigrad.files import write_atomic

from .layers import TransformerEncoderLayer

PLOT_HINT = "pip install 'minigrad-encoder[plot]'"


def _encoder_layers(model: nn.Module) -> list[TransformerEncoderLayer]:
    """The model's encoder layers in the order they run (the model itself if it is one)."""
    layers = [m for m in model.modules() if isinstance(m, TransformerEncoderLayer)]
    if not layers:
        raise ValueError(f"collect_attention: {type(model).__name__} has no TransformerEncoderLayer")
    return layers


def collect_attention(
    model: nn.Module,
    tokens: Tensor,
    padding_mask: Tensor | None,
    targets: Tensor | None = None,
    layer: int | None = None,
) -> list[tuple[Any, Any]]:
    """Attention weights (and d loss / d weights) of every layer, or of layer ``layer`` only.

    ``model(tokens, padding_mask)`` must return logits (any head of
    :mod:`encoder.models`). With ``targets`` the cross-entropy loss of the logits is
    backpropagated to the attention weights only (``minigrad.grad``: the model's
    parameter ``.grad`` are left untouched) and each layer's
    ``self_attn.last_attention.grad`` is set to that gradient. Returns one
    ``(weights, grads)`` pair of host (NumPy) arrays of shape (batch, nhead, seq, seq)
    per layer; ``grads`` is None without targets. Padded keys have weight 0; so do
    queries with no key to attend to.
    """
    layers = _encoder_layers(model)
    if layer is not None:
        if not -len(layers) <= layer < len(layers):
            raise IndexError(f"collect_attention: layer {layer} out of range for {len(layers)} layers")
        layers = [layers[layer]]
    previous = [(lay.self_attn.keep_attention, lay.self_attn.impl) for lay in layers]
    for lay in layers:
        lay.self_attn.keep_attention = True
        lay.self_attn.impl = "naive"  # flash never forms the weights; the plain attention is the same numbers
    try:
        if targets is None:
            with minigrad.no_grad():
                model(tokens, padding_mask)
            return [(lay.self_attn.last_attention.numpy(), None) for lay in layers]
        logits = model(tokens, padding_mask)
        loss = F.cross_entropy(logits, targets)
        weights = [lay.self_attn.last_attention for lay in layers]
        grads = minigrad.grad(loss, weights, allow_unused=True)
        result = []
        for w, g in zip(weights, grads):
            if g is None:  # the loss does not depend on these weights (e.g. unused layer)
                g = minigrad.zeros_like(w.detach())
            w.grad = g
            result.append((w.detach().numpy(), g.detach().numpy()))
        return result
    finally:
        for lay, (keep, impl) in zip(layers, previous):
            lay.self_attn.keep_attention, lay.self_attn.impl = keep, impl
            if not keep:
                lay.self_attn.last_attention = None


def _import_matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"plotting attention maps needs matplotlib: {PLOT_HINT}") from exc
    return Figure, FigureCanvasAgg


def _heads(array: Any, what: str) -> Any:
    """(seq_q, seq_k), (nhead, seq_q, seq_k) or (1, nhead, seq_q, seq_k) -> (nhead, seq_q, seq_k)."""
    if isinstance(array, Tensor):
        array = array.detach().numpy()
    if array.ndim == 2:
        return array[None]
    if array.ndim == 4 and array.shape[0] == 1:
        return array[0]
    if array.ndim != 3:
        raise ValueError(
            f"plot_attention: {what} must be (nhead, seq_q, seq_k) for one sequence "
            f"(index the batch first: weights[i]), got shape {tuple(array.shape)}"
        )
    return array


def plot_attention(
    weights: Any,
    tokens: list[str] | None = None,
    grads: Any = None,
    path: str | os.PathLike = "attn.png",
    title: str | None = None,
) -> Path:
    """Heatmaps of one sequence's attention, one column per head; returns the path written.

    ``weights`` is (nhead, seq_q, seq_k) (a single (seq_q, seq_k) map works too); rows are
    queries, columns keys. ``tokens`` labels both axes. ``grads`` (same shape) adds a second
    row with d loss / d weights on a blue-red scale centred on 0 (cells whose weight is 0,
    i.e. masked keys, are left blank: no gradient flows through them). The file format follows
    the suffix of ``path`` (png, svg, pdf); the file is written atomically.
    """
    Figure, FigureCanvasAgg = _import_matplotlib()
    w = _heads(weights, "weights")
    g = None if grads is None else _heads(grads, "grads")
    if g is not None and g.shape != w.shape:
        raise ValueError(f"plot_attention: grads have shape {g.shape} but weights have shape {w.shape}")
    nhead, seq_q, seq_k = w.shape
    if tokens is not None and len(tokens) not in (seq_q, seq_k):
        raise ValueError(f"plot_attention: got {len(tokens)} token labels for {seq_q}x{seq_k} maps")
    rows = 1 if g is None else 2
    cell = max(2.2, 0.35 * max(seq_q, seq_k) + 1.0)
    fig = Figure(figsize=(cell * nhead + 0.8, cell * rows + (0.5 if title else 0.2)), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, nhead, squeeze=False)
    for h in range(nhead):
        image = axes[0][h].imshow(w[h], vmin=0.0, vmax=1.0, cmap="viridis")
        axes[0][h].set_title(f"head {h}", fontsize=9)
        if g is not None:
            # a weight fixed at 0 by a mask passes no gradient on, whatever d loss / d weight is
            # there: leave those cells blank so they do not set the colour scale
            gh = g[h].astype(float)
            live = w[h] > 0
            gh[~live] = float("nan")
            limit = (float(abs(gh[live]).max()) if live.any() else 0.0) or 1.0
            gimage = axes[1][h].imshow(gh, vmin=-limit, vmax=limit, cmap="RdBu_r")
            axes[1][h].set_title(f"head {h}: d loss / d weight", fontsize=9)
            fig.colorbar(gimage, ax=axes[1][h], shrink=0.8)
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="attention weight")
    for row in axes:
        for ax in row:
            ax.set_xlabel("key", fontsize=8)
            ax.set_ylabel("query", fontsize=8)
            if tokens is not None:
                ax.set_xticks(range(seq_k), [str(t) for t in tokens[:seq_k]], rotation=90, fontsize=8)
                ax.set_yticks(range(seq_q), [str(t) for t in tokens[:seq_q]], fontsize=8)
            else:
                ax.tick_params(labelsize=8)
    if title:
        fig.suptitle(title, fontsize=10)

    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=120)
    write_atomic(path, buffer.getvalue())
    return path
