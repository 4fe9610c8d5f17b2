"""Attention maps: what each head looks at, and how the loss would like that to change.

:func:`collect_attention` runs a model with every layer's ``self_attn.keep_attention``
switched on and returns, per layer, the attention weights (batch, nhead, seq_q, seq_k)
and, when targets are given, the gradient of the cross-entropy loss with respect to
those weights. :func:`plot_attention` draws one sequence's weights as a grid of
heatmaps, one per head, with the gradients in a second row, and
:func:`plot_attention_layers` draws several layers in one picture::

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

PLOT_HINT = "the 'plot' extra: pip install -e '.[plot]' in the project folder, or pip install matplotlib"


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
        raise ImportError(f"plotting attention maps needs matplotlib, {PLOT_HINT}") from exc
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


SCALES = ("per-map", "fixed")
MAX_WIDTH = 20.0  # inches (2000 px at 100 dpi): wider rows of heads wrap onto the next row


def _crop(array: Any, limit: int | None) -> Any:
    return array if limit is None else array[:, :limit, :limit]


def plot_attention_layers(
    layers: list[tuple[Any, Any]],
    tokens: list[str] | None = None,
    path: str | os.PathLike = "attn.png",
    title: str | None = None,
    layer_names: list[str] | None = None,
    scale: str = "per-map",
    max_tokens: int | None = 32,
) -> Path:
    """Heatmaps of one sequence's attention in several layers, in one picture; returns the path.

    The picture is :func:`attention_figure` (same arguments); the format follows the suffix
    of ``path`` (png, svg, pdf) and the file is written atomically.
    """
    fig = attention_figure(layers, tokens, title, layer_names, scale, max_tokens)
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=100)
    write_atomic(path, buffer.getvalue())
    return path


def attention_figure(
    layers: list[tuple[Any, Any]],
    tokens: list[str] | None = None,
    title: str | None = None,
    layer_names: list[str] | None = None,
    scale: str = "per-map",
    max_tokens: int | None = 32,
) -> Any:
    """The matplotlib Figure of :func:`plot_attention_layers`.

    ``layers`` holds one ``(weights, grads)`` pair per layer, each (nhead, seq_q, seq_k) (or
    (seq_q, seq_k)); ``grads`` may be None. Each layer is a row of heads (with ``grads``, a
    second row of d loss / d weights on a blue-red scale centred on 0; cells whose weight is
    0, i.e. masked keys, are blank: no gradient flows through them). ``scale="per-map"``
    gives every map its own colour scale from 0 to its largest weight (so a flat map still
    shows its pattern); ``"fixed"`` puts every map on 0-1. Sequences longer than
    ``max_tokens`` show their first ``max_tokens`` queries and keys (None: all), and the title
    says so, and rows of heads wider than about 2000 pixels wrap onto several rows.
    """
    if scale not in SCALES:
        raise ValueError(f"plot_attention: scale must be one of {SCALES}, got {scale!r}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"plot_attention: max_tokens must be >= 1 or None, got {max_tokens}")
    Figure, FigureCanvasAgg = _import_matplotlib()
    pairs = []
    for w, g in layers:
        w = _heads(w, "weights")
        g = None if g is None else _heads(g, "grads")
        if g is not None and g.shape != w.shape:
            raise ValueError(f"plot_attention: grads have shape {g.shape} but weights have shape {w.shape}")
        pairs.append((w, g))
    nhead, seq_q, seq_k = pairs[0][0].shape
    if tokens is not None and len(tokens) not in (seq_q, seq_k):
        raise ValueError(f"plot_attention: got {len(tokens)} token labels for {seq_q}x{seq_k} maps")
    shown = max(seq_q, seq_k) if max_tokens is None else min(max(seq_q, seq_k), max_tokens)
    if shown < max(seq_q, seq_k):
        note = f"first {shown} of {max(seq_q, seq_k)} tokens"
        title = f"{title} ({note})" if title else note
    pairs = [(_crop(w, shown), None if g is None else _crop(g, shown)) for w, g in pairs]
    labels = None if tokens is None else [str(t) for t in tokens[:shown]]
    names = layer_names or [f"layer {i}" for i in range(len(pairs))]
    cell = max(2.4, 0.24 * shown + 1.2)
    cols = max(1, min(nhead, int(MAX_WIDTH // cell)))  # heads per row: wide pictures wrap
    blocks = -(-nhead // cols)  # rows of heads per layer
    rows = sum(blocks * (1 if g is None else 2) for _, g in pairs)
    fig = Figure(figsize=(cell * cols + 0.4, cell * rows + (0.6 if title else 0.2)), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for row in axes:
        for ax in row:
            ax.set_axis_off()  # switched on below for the axes that get a map
    r = 0
    for name, (w, g) in zip(names, pairs):
        per_block = 1 if g is None else 2
        for h in range(w.shape[0]):
            row, col = r + (h // cols) * per_block, h % cols
            ax = axes[row][col]
            ax.set_axis_on()
            top = float(w[h].max()) if scale == "per-map" else 1.0
            image = ax.imshow(w[h], vmin=0.0, vmax=top if top > 0 else 1.0, cmap="viridis")
            ax.set_title(f"{name}, head {h}: weights", fontsize=9)
            fig.colorbar(image, ax=ax, shrink=0.8)
            if g is not None:
                # a weight fixed at 0 by a mask passes no gradient on, whatever d loss / d weight is
                # there: leave those cells blank so they do not set the colour scale
                gh = g[h].astype(float)
                live = w[h] > 0
                gh[~live] = float("nan")
                limit = (float(abs(gh[live]).max()) if live.any() else 0.0) or 1.0
                gax = axes[row + 1][col]
                gax.set_axis_on()
                gimage = gax.imshow(gh, vmin=-limit, vmax=limit, cmap="RdBu_r")
                gax.set_title(f"{name}, head {h}: dL/dweight", fontsize=9)
                fig.colorbar(gimage, ax=gax, shrink=0.8)
        r += blocks * per_block
    n = w.shape[-1]
    for row in axes:
        for ax in row:
            if not ax.images:
                continue
            ax.set_xlabel("key", fontsize=8)
            ax.set_ylabel("query", fontsize=8)
            if labels is not None:
                ax.set_xticks(range(n), labels[:n], rotation=90, fontsize=8)
                ax.set_yticks(range(n), labels[:n], fontsize=8)
            else:
                ax.tick_params(labelsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_attention(
    weights: Any,
    tokens: list[str] | None = None,
    grads: Any = None,
    path: str | os.PathLike = "attn.png",
    title: str | None = None,
    scale: str = "per-map",
    max_tokens: int | None = 32,
) -> Path:
    """Heatmaps of one layer's attention for one sequence, one column per head; returns the path.

    ``weights`` is (nhead, seq_q, seq_k) (a single (seq_q, seq_k) map works too); rows are
    queries, columns keys. ``tokens`` labels both axes; ``grads`` (same shape) adds a row of
    d loss / d weights. ``scale`` and ``max_tokens`` as in :func:`plot_attention_layers`.
    """
    return plot_attention_layers(
        [(weights, grads)], tokens=tokens, path=path, title=title, layer_names=["layer"], scale=scale,
        max_tokens=max_tokens,
    )
