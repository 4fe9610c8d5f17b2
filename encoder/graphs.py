"""Pictures of one encoder layer's autograd graph (built on :mod:`minigrad.viz`).

:func:`layer_graph` runs a small layer on seeded random input and draws the graph; the
command line wraps it. The pictures in ``docs/`` are made with::

    python -m encoder graph --out docs/layer_collapsed.svg
    python -m encoder graph --view expanded --out docs/layer_expanded.svg
    python -m encoder graph --grads --out docs/layer_collapsed_grads.svg

(or, without the command line, ``python -c "from encoder.graphs import write_layer_graph;
write_layer_graph('docs/layer_collapsed.svg')"``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import minigrad
from minigrad import Tensor, viz

from .layers import TransformerEncoderLayer

if TYPE_CHECKING:
    import graphviz


def padding_mask(batch: int, seq: int) -> Tensor:
    """(batch, seq) bool, True = padding: sequence b has its last min(b, seq - 1) positions padded."""
    rows = [[j >= seq - min(b, seq - 1) for j in range(seq)] for b in range(batch)]
    return minigrad.tensor(rows, dtype=minigrad.bool_)


def _describe(layer: TransformerEncoderLayer, x: Tensor) -> str:
    ln = "pre-LN" if layer.norm_first else "post-LN"
    kind = "fused" if layer.fused else "composite"
    ff = layer.ff.linear1.out_features
    return (
        f"TransformerEncoderLayer ({ln}, {kind}): d_model={layer.d_model}, nhead={layer.nhead}, "
        f"dim_feedforward={ff}; input {tuple(x.shape)}"
    )


def layer_graph(
    layer: TransformerEncoderLayer | None = None,
    view: str = "collapsed",
    grads: bool = False,
    norm_first: bool = False,
    fused: bool = True,
    d_model: int = 16,
    nhead: int = 2,
    dim_feedforward: int = 32,
    seq: int = 5,
    batch: int = 2,
    seed: int = 0,
) -> graphviz.Digraph:
    """Draw the graph of one encoder layer applied to seeded random input.

    Without ``layer`` a small layer is built (dropout 0, ``norm_first`` and ``fused`` as
    given); the dimension arguments size it, ``seq``/``batch`` size the input, which gets a
    padding mask (see :func:`padding_mask`). With ``grads`` the output is backpropagated
    from a random upstream gradient (the loss ``sum(output * upstream)``) and the picture
    shows gradient norms; a given layer's ``.grad`` values are restored afterwards.
    ``minigrad.manual_seed(seed)`` is called first, so the picture is reproducible.
    """
    minigrad.manual_seed(seed)
    if layer is None:
        layer = TransformerEncoderLayer(
            d_model, nhead, dim_feedforward, dropout=0.0, norm_first=norm_first, fused=fused
        )
    dtype = next(layer.parameters()).dtype
    x = minigrad.randn(batch, seq, layer.d_model, dtype=dtype, requires_grad=True)
    mask = padding_mask(batch, seq)
    with viz.record(grads=grads, values=False):
        y = layer(x, src_key_padding_mask=mask)
    if grads:
        saved = [(p, p.grad) for p in layer.parameters()]
        layer.zero_grad()
        try:
            y.backward(minigrad.randn(*y.shape, dtype=y.dtype))
            return viz.draw_graph(y, module=layer, view=view, grads=True, title=_describe(layer, x))
        finally:
            for p, g in saved:
                p.grad = g
    return viz.draw_graph(y, module=layer, view=view, title=_describe(layer, x))


def write_layer_graph(path: str | os.PathLike, **kwargs: Any) -> Path:
    """:func:`layer_graph` (same keyword arguments) rendered to ``path`` (.svg, .png, .pdf or .dot).

    Returns the path written: the ``.dot`` source instead when Graphviz's ``dot`` is missing.
    """
    return viz.render(layer_graph(**kwargs), path)
