"""Pictures of the autograd graph: which ops ran, inside which module, on what shapes.

:func:`draw_graph` walks the graph behind a tensor (the same nodes ``backward`` walks)
and returns a ``graphviz.Digraph``:

* **op nodes** (ellipses) are the ops, labelled with their names;
* **tensor nodes** (boxes) are the data: parameters, named by their module path
  (``self_attn.q_proj.weight``), other leaves (inputs), the output of every op (shape
  and dtype) and the final output. Inputs of an op that need no gradient (masks,
  tensors without ``requires_grad``) are drawn as dashed *constant* boxes;
* every op sits in a labelled box for each scope it was recorded in: the modules
  (``nn.Module.__call__`` pushes the module) and named scopes such as
  ``minigrad.scope("residual1")``, nested as the calls were.

Three levels of detail: ``view="expanded"`` draws every op; ``view="collapsed"`` draws
one node per top-level submodule of ``module`` (and per named scope), with the shapes
that flow between them written on the edges; ``depth=k`` keeps the boxes of the first
k levels open and collapses everything deeper into one node each.

Values and gradients. A graph does not hold the tensors it computed (and backward
frees what ops saved), so statistics must be taken while they exist. Wrap the forward
pass in :func:`record`: it stores value statistics of every op output in the op's
``node.meta`` as the op is recorded, and registers a node hook that stores the norm of
the op's output gradient when backward runs. Parameters and inputs keep their values
and ``.grad``, which are read when drawing::

    from minigrad import viz

    with viz.record(grads=True, values=True):
        loss = model(x).sum()
    loss.backward()
    g = viz.draw_graph(loss, module=model, grads=True, values=True)
    viz.render(g, "graph.svg")      # SVG or PNG with Graphviz's `dot`, else the .dot source

A tensor whose values or gradient contain NaN or inf is drawn in red.

Pictures are deterministic: node ids follow the traversal order (inputs before the ops
that use them, in argument order), never memory addresses, so the same model and input
give the same DOT text.

The package, one concept per module: :mod:`~minigrad.viz.recording` (:func:`record`),
:mod:`~minigrad.viz.picture` (what the drawing holds, without Graphviz),
:mod:`~minigrad.viz.styles` (how each kind of node looks), :mod:`~minigrad.viz.dot`
(:func:`draw_graph` and :func:`count_ops`, with Graphviz) and
:mod:`~minigrad.viz.rendering` (:func:`render`, writing files).

:func:`explore` (:mod:`~minigrad.viz.explore`) keeps one whole forward and backward pass
(values, every gradient term, the backward order, attention maps) and writes it as one
offline HTML page to click through (:mod:`~minigrad.viz.explore_page`).
"""

from .dot import INSTALL_HINT, VIEWS, count_ops, draw_graph
from .explore import explore
from .recording import record
from .rendering import DOT_MISSING, RENDER_FORMATS, render

__all__ = [
    "DOT_MISSING",
    "INSTALL_HINT",
    "RENDER_FORMATS",
    "VIEWS",
    "count_ops",
    "draw_graph",
    "explore",
    "record",
    "render",
]
