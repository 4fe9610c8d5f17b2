"""Drawing the picture with Graphviz: :func:`draw_graph` (a ``graphviz.Digraph``) and :func:`count_ops`.

The ``graphviz`` Python package is an extra (``minigrad-encoder[viz]``); it is imported
only when a graph is drawn, with a message naming the extra when it is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine import topological_order
from ..nn.module import Module
from ..tensor import Tensor
from .picture import Cluster, Picture
from .styles import CLUSTER_FILLS, LEGEND_TEXT, STYLES

if TYPE_CHECKING:
    import graphviz

VIEWS = ("expanded", "collapsed")
INSTALL_HINT = "pip install 'minigrad-encoder[viz]'"


def _import_graphviz():
    try:
        import graphviz
    except ImportError as exc:
        raise ImportError(
            f"drawing graphs needs the 'graphviz' Python package: {INSTALL_HINT} (or pip install graphviz)"
        ) from exc
    return graphviz


def _emit_cluster(graph: graphviz.Digraph, cluster: Cluster) -> None:
    for node_id, attrs in cluster.items:
        graph.node(node_id, **attrs)
    for child in cluster.children.values():
        with graph.subgraph(name=child.name) as sub:
            if child.kind == "module":
                fill = CLUSTER_FILLS[min(child.level, len(CLUSTER_FILLS)) - 1]
                sub.attr(style="rounded,filled", fillcolor=fill, color="#8da2c8")
            else:
                sub.attr(style="rounded,dashed", color="#bf9000")
            sub.attr(label=child.label, labeljust="l", fontsize="10", **{"class": child.kind})
            _emit_cluster(sub, child)


def _emit_legend(graph: graphviz.Digraph, kinds: list[str]) -> None:
    with graph.subgraph(name="cluster_legend") as sub:
        sub.attr(label="legend", labeljust="l", style="rounded", color="#bbbbbb", fontsize="10", **{"class": "legend"})
        previous = None
        for kind in STYLES:  # fixed order, only the kinds the picture uses
            if kind not in kinds:
                continue
            node_id = f"legend_{kind}"
            sub.node(node_id, label=LEGEND_TEXT[kind], **{**STYLES[kind], "class": "legend"})
            if previous is not None:
                sub.edge(previous, node_id, style="invis")
            previous = node_id


def draw_graph(
    output: Tensor,
    module: Module | None = None,
    view: str = "expanded",
    depth: int | None = None,
    grads: bool = False,
    values: bool = False,
    title: str | None = None,
    legend: bool = True,
) -> graphviz.Digraph:
    """The graph that computed ``output``, as a ``graphviz.Digraph`` (see :mod:`minigrad.viz`).

    Args:
        output: the tensor whose graph to draw (a loss, a layer's output...).
        module: names parameters (``self_attn.q_proj.weight``) and boxes by their path in
            this module; without it boxes are labelled with class names.
        view: ``"expanded"`` (every op) or ``"collapsed"`` (one node per child of ``module``
            and per named scope, shapes on the edges).
        depth: keep the boxes of the first ``depth`` levels open and collapse deeper ones
            into one node each (``depth=1`` is the collapsed view); overrides ``view``.
        grads: annotate gradient norms (after ``backward``; op outputs need :func:`record`).
        values: annotate mean/std/min/max (op outputs need :func:`record`).
        title: a caption at the top.
        legend: add a box explaining the node shapes and colours.
    """
    gv = _import_graphviz()
    if view not in VIEWS:
        raise ValueError(f"draw_graph: view must be one of {VIEWS}, got {view!r}")
    if depth is None:
        depth = 1 if view == "collapsed" else None
    elif depth < 1:
        raise ValueError(f"draw_graph: depth must be >= 1 (or None for every op), got {depth}")
    picture = Picture(output, module, depth, grads, values)

    caption = [title] if title else []
    if grads and not picture.recorded_grads and count_ops(output):
        caption.append("(gradients of op outputs were not recorded: run the forward pass inside viz.record())")
    graph = gv.Digraph(
        name="minigrad",
        graph_attr={
            "rankdir": "TB",
            "newrank": "true",
            "nodesep": "0.2",
            "ranksep": "0.3",
            "fontname": "Helvetica",
            "fontsize": "12",
            "labelloc": "t",
            **({"label": "\\n".join(caption)} if caption else {}),
        },
        node_attr={"fontname": "Helvetica", "fontsize": "10"},
        edge_attr={"fontname": "Helvetica", "fontsize": "8", "arrowsize": "0.6", "color": "#555555"},
    )
    _emit_cluster(graph, picture.top)
    for src, dst, attrs in picture.edges:
        graph.edge(src, dst, **attrs)
    if legend:
        _emit_legend(graph, picture.kinds)
    return graph


def count_ops(output: Tensor) -> int:
    """How many op nodes the graph behind ``output`` has (the op nodes of the expanded view)."""
    return 0 if output._ctx is None else len(topological_order([output._ctx]))
