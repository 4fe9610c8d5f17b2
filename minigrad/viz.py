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
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .autograd import Function, node_observers
from .engine import register_node_hook, topological_order
from .files import write_atomic
from .nn.module import Module, Parameter
from .tensor import Tensor

if TYPE_CHECKING:
    import graphviz

VIEWS = ("expanded", "collapsed")
RENDER_FORMATS = ("svg", "png", "pdf")
INSTALL_HINT = "pip install 'minigrad-encoder[viz]'"
DOT_MISSING = (
    "Graphviz's 'dot' program is not installed; wrote {path}. "
    "Install Graphviz (e.g. apt-get install graphviz, brew install graphviz) to render SVG/PNG."
)

# ---- how each kind of node looks (the legend repeats these) --------------------------------
_BAD = {"color": "red", "fontcolor": "red", "fillcolor": "#f4cccc", "penwidth": "2"}
_STYLES: dict[str, dict[str, str]] = {
    "op": {"shape": "ellipse", "style": "filled", "fillcolor": "#cfe2f3", "color": "#3d6fa8", "height": "0.3"},
    "tensor": {
        "shape": "box",
        "style": "filled",
        "fillcolor": "white",
        "color": "#999999",
        "fontsize": "9",
        "height": "0.2",
        "margin": "0.06,0.02",
    },
    "parameter": {"shape": "box", "style": "filled", "fillcolor": "#fce5cd", "color": "#b45f06"},
    "input": {"shape": "box", "style": "filled", "fillcolor": "#d9ead3", "color": "#38761d"},
    "constant": {
        "shape": "box",
        "style": "dashed",
        "color": "#999999",
        "fontcolor": "#666666",
        "fontsize": "9",
        "height": "0.2",
        "margin": "0.06,0.02",
    },
    "output": {"shape": "box", "style": "filled,bold", "fillcolor": "#d9d2e9", "color": "#674ea7", "peripheries": "2"},
    "module": {"shape": "box3d", "style": "filled", "fillcolor": "#cfe2f3", "color": "#3d6fa8"},
    "scope": {"shape": "box", "style": "filled,dashed,rounded", "fillcolor": "#fff2cc", "color": "#bf9000"},
    "nonfinite": {"shape": "box", "style": "filled", **_BAD},
}
_LEGEND_TEXT = {
    "op": "op",
    "tensor": "op output\\n(shape, dtype)",
    "parameter": "parameter\\n(module path)",
    "input": "input (leaf)",
    "constant": "constant\\n(needs no grad)",
    "output": "output",
    "module": "module\\n(collapsed)",
    "scope": "named scope\\n(collapsed)",
    "nonfinite": "NaN or inf\\n(value or grad)",
}
_CLUSTER_FILLS = ("#f3f6fb", "#e6ecf6", "#d9e2f1", "#ccd8ec")


# ---- recording values and gradients ---------------------------------------------------------
def _value_stats(t: Tensor) -> dict[str, Any] | None:
    """mean/std/min/max of a floating tensor (None for empty or non-floating tensors)."""
    host = t.detach().numpy()
    if host.size == 0 or host.dtype.kind != "f":
        return None
    h = host.astype("float64")
    lo, hi = float(h.min()), float(h.max())  # NaN propagates through min and max
    return {
        "mean": float(h.mean()),
        "std": float(h.std()),
        "min": lo,
        "max": hi,
        "finite": math.isfinite(lo) and math.isfinite(hi),
    }


def _grad_stats(g: Tensor) -> dict[str, Any]:
    """The L2 norm of a gradient and whether every entry is finite."""
    h = g.detach().numpy().astype("float64")
    if h.size == 0:
        return {"norm": 0.0, "finite": True}
    finite = math.isfinite(float(h.min())) and math.isfinite(float(h.max()))
    return {"norm": math.sqrt(float((h * h).sum())), "finite": finite}


def _meta(node: Function) -> dict[str, Any]:
    if node.meta is None:
        node.meta = {}
    return node.meta


@contextmanager
def record(grads: bool = True, values: bool = True) -> Iterator[None]:
    """Keep, for every op recorded inside, what :func:`draw_graph` annotates.

    ``values``: statistics (mean, std, min, max) of each op's output, stored in
    ``node.meta["values"]`` right away. ``grads``: a node hook that stores the norm of the
    op's output gradient in ``node.meta["grad"]`` whenever backward reaches the node (so
    ``backward`` may be called after the ``with`` block).
    """

    def store_grad(meta: dict[str, Any]):
        def hook(g: Tensor) -> None:
            meta["grad"] = _grad_stats(g)

        return hook

    def observe(node: Function, output: Tensor) -> None:
        meta = _meta(node)
        if values:
            meta["values"] = _value_stats(output)
        if grads:
            register_node_hook(node, store_grad(meta))

    node_observers.append(observe)
    try:
        yield
    finally:
        node_observers.remove(observe)


# ---- the picture, independent of Graphviz ------------------------------------------------------
def _shape_text(shape: tuple[int, ...]) -> str:
    """ "(2, 5, 16)", "(16,)" as Python prints shapes; "scalar" for ()."""
    return "scalar" if len(shape) == 0 else str(tuple(int(d) for d in shape))


def _num(x: float) -> str:
    return f"{x:.3g}"


def _annotations(values: dict | None, grad: dict | None, show_values: bool, show_grads: bool) -> tuple[list[str], bool]:
    """Label lines for a tensor's statistics and whether it holds NaN/inf."""
    lines: list[str] = []
    bad = False
    if show_values and values:
        lines.append(f"mean {_num(values['mean'])}  std {_num(values['std'])}")
        lines.append(f"min {_num(values['min'])}  max {_num(values['max'])}")
    if show_grads and grad:
        lines.append(f"grad norm {_num(grad['norm'])}")
    if (show_values and values and not values["finite"]) or (show_grads and grad and not grad["finite"]):
        bad = True
    return lines, bad


@dataclass
class _Cluster:
    """A labelled box: a module or a named scope, holding nodes and nested boxes."""

    name: str
    label: str
    kind: str  # "module" or "scope"
    level: int
    items: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    children: dict[tuple, _Cluster] = field(default_factory=dict)


class _Picture:
    """Decides which nodes, boxes and edges the drawing has (no Graphviz involved)."""

    def __init__(self, output: Tensor, module: Module | None, depth: int | None, grads: bool, values: bool) -> None:
        self.output, self.module, self.depth = output, module, depth
        self.grads, self.values = grads, values
        self.param_names: dict[int, str] = {}
        self.module_paths: dict[int, str] = {}
        if module is not None:
            self.param_names = {id(p): name for name, p in module.named_parameters()}
            self.module_paths = {id(m): name for name, m in module.named_modules()}
        self.top = _Cluster("", "", "root", 0)
        self.n_clusters = 0
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        self.edge_keys: set[tuple[str, str, str]] = set()
        self.kinds: list[str] = []
        self.entry_info: dict[tuple, tuple[str, str, str]] = {}  # key -> (label, kind, class)
        self.recorded_grads = False  # did any op keep its output gradient (viz.record)?
        self._build()

    # -- scopes --------------------------------------------------------------------------
    def _entry_key(self, entry: Any) -> tuple:
        if isinstance(entry, Module):
            key = ("m", id(entry))
            if key not in self.entry_info:
                path = self.module_paths.get(id(entry), "")
                cls = type(entry).__name__
                self.entry_info[key] = (path or cls, "module", cls if path else "")
        else:
            key = ("s", str(entry))
            self.entry_info.setdefault(key, (str(entry), "scope", ""))
        return key

    def _relative_scope(self, scope: tuple[Any, ...]) -> tuple[tuple, ...]:
        """The node's scope below ``module`` (the whole scope if recorded outside it)."""
        if self.module is not None:
            for i, entry in enumerate(scope):
                if entry is self.module:
                    scope = scope[i + 1 :]
                    break
        return tuple(self._entry_key(e) for e in scope)

    def _cluster(self, path: tuple[tuple, ...]) -> _Cluster:
        cluster = self.top
        for i, key in enumerate(path):
            child = cluster.children.get(key)
            if child is None:
                self.n_clusters += 1
                label, kind, cls = self.entry_info[key]
                text = f"{label} ({cls})" if cls else label
                child = _Cluster(f"cluster_{self.n_clusters}", text, kind, i + 1)
                cluster.children[key] = child
            cluster = child
        return cluster

    # -- nodes and edges ----------------------------------------------------------------------
    def _add(self, path: tuple[tuple, ...], node_id: str, kind: str, label: str, bad: bool = False) -> None:
        attrs = {"label": label, "class": kind, **_STYLES[kind]}
        if bad:
            attrs.update(_BAD)
            self._use("nonfinite")
        self._use(kind)
        self._cluster(path).items.append((node_id, attrs))

    def _use(self, kind: str) -> None:
        if kind not in self.kinds:
            self.kinds.append(kind)

    def _edge(self, src: str, dst: str, what: str, label: str | None = None, bad: bool = False) -> None:
        key = (src, dst, what)
        if key in self.edge_keys:
            return
        self.edge_keys.add(key)
        attrs: dict[str, str] = {}
        if label:
            attrs["label"] = label
        if bad:
            attrs.update(color="red", fontcolor="red", penwidth="2")
        self.edges.append((src, dst, attrs))

    def _node_stats(self, node: Function) -> tuple[dict | None, dict | None]:
        meta = node.meta if isinstance(node.meta, dict) else {}
        if "grad" in meta:
            self.recorded_grads = True
        return meta.get("values"), meta.get("grad")

    def _leaf_stats(self, leaf: Tensor) -> tuple[dict | None, dict | None]:
        values = _value_stats(leaf) if self.values else None
        grad = _grad_stats(leaf.grad) if self.grads and leaf.grad is not None else None
        return values, grad

    def _tensor_label(self, head: list[str], shape: tuple, dtype: Any, stats: tuple) -> tuple[str, bool]:
        lines, bad = _annotations(stats[0], stats[1], self.values, self.grads)
        dtype_text = f" {dtype}" if dtype is not None else ""
        return "\\n".join([*head, _shape_text(shape) + dtype_text, *lines]), bad

    # -- the walk ------------------------------------------------------------------------------
    def _build(self) -> None:
        out = self.output
        if out._ctx is None:  # a leaf: nothing was computed
            label, bad = self._tensor_label(["output"], out.shape, out.dtype, self._leaf_stats(out))
            self._add((), "out", "output", label, bad)
            return
        nodes = topological_order([out._ctx])
        index = {id(n): i for i, n in enumerate(nodes)}
        paths = [self._relative_scope(n.scope) for n in nodes]

        # 1. which unit shows each op: itself ("op3") or the collapsed group holding it ("g2")
        group_ids: dict[tuple, str] = {}
        group_members: dict[str, list[int]] = {}
        unit: list[str] = []
        for i, path in enumerate(paths):
            if self.depth is not None and len(path) >= self.depth:
                key = path[: self.depth]
                if key not in group_ids:
                    group_ids[key] = f"g{len(group_ids) + 1}"
                gid = group_ids[key]
                group_members.setdefault(gid, []).append(i)
                unit.append(gid)
            else:
                unit.append(f"op{i + 1}")

        # 2. leaves, in order of first use, with the units that consume them
        leaves: list[Tensor] = []
        leaf_index: dict[int, int] = {}
        consumers: dict[int, list[int]] = {}
        for i, node in enumerate(nodes):
            for src in node.next:
                if isinstance(src, Tensor):
                    if id(src) not in leaf_index:
                        leaf_index[id(src)] = len(leaves)
                        leaves.append(src)
                    consumers.setdefault(id(src), []).append(i)
        # a parameter used only inside one collapsed group is folded into it
        folded: dict[int, str] = {}
        for leaf in leaves:
            if id(leaf) in self.param_names or isinstance(leaf, Parameter):
                units = {unit[i] for i in consumers[id(leaf)]}
                if len(units) == 1 and next(iter(units)).startswith("g"):
                    folded[id(leaf)] = next(iter(units))

        # 3. emit nodes in traversal order
        leaf_ids: dict[int, str] = {}
        n_inputs = sum(1 for t in leaves if id(t) not in self.param_names and not isinstance(t, Parameter))
        counters = {"p": 0, "in": 0, "c": 0}
        drawn_groups: set[str] = set()
        root_index = len(nodes) - 1
        for i, node in enumerate(nodes):
            me = unit[i]
            for src in node.next:
                if isinstance(src, Tensor) and id(src) not in leaf_ids and id(src) not in folded:
                    leaf_ids[id(src)] = self._emit_leaf(src, paths[consumers[id(src)][0]], counters, n_inputs)
            if me.startswith("g"):
                if me not in drawn_groups:
                    drawn_groups.add(me)
                    key = paths[i][: self.depth]
                    self._emit_group(me, key, [nodes[k] for k in group_members[me]], leaves, folded)
            else:
                self._add(paths[i], me, "op", node.op_name)
                if i != root_index:
                    label, bad = self._tensor_label([], node.out_shape, node.out_dtype, self._node_stats(node))
                    self._add(paths[i], f"t{i + 1}", "tensor", label, bad)
            # edges into this op (one per argument: x * x gets two) or into its group (one per tensor)
            for slot, src in enumerate(node.next):
                arg = "" if me.startswith("g") else f":{slot}"
                if src is None:
                    if not me.startswith("g"):
                        counters["c"] += 1
                        cid = f"c{counters['c']}"
                        self._add(paths[i], cid, "constant", "constant\\n" + _shape_text(node.in_shapes[slot]))
                        self._edge(cid, me, cid)
                elif isinstance(src, Function):
                    k = index[id(src)]
                    if unit[k].startswith("g"):
                        self._group_edge(unit[k], me, src, f"n{k}")
                    else:
                        self._edge(f"t{k + 1}", me, f"n{k}{arg}")
                else:
                    if id(src) in folded:
                        continue
                    lid = leaf_ids[id(src)]
                    label = _shape_text(src.shape) if me.startswith("g") else None
                    self._edge(lid, me, lid + arg, label)
            if not me.startswith("g") and i != root_index:
                self._edge(me, f"t{i + 1}", me)

        # 4. the output
        root = nodes[root_index]
        label, bad = self._tensor_label(["output"], root.out_shape, root.out_dtype, self._output_stats(root))
        self._add((), "out", "output", label, bad)
        if unit[root_index].startswith("g"):
            self._edge(unit[root_index], "out", "out", _shape_text(root.out_shape))
        else:
            self._edge(unit[root_index], "out", "out")

    def _output_stats(self, root: Function) -> tuple[dict | None, dict | None]:
        values = _value_stats(self.output) if self.values else None
        return values, self._node_stats(root)[1]

    def _group_edge(self, gid: str, dst: str, src: Function, what: str) -> None:
        """An edge leaving a collapsed group: the shape (and gradient) travel on the edge."""
        if gid == dst:
            return
        lines, bad = _annotations(*self._node_stats(src), show_values=False, show_grads=self.grads)
        self._edge(gid, dst, what, "\\n".join([_shape_text(src.out_shape), *lines]), bad)

    def _emit_leaf(self, leaf: Tensor, consumer_path: tuple, counters: dict[str, int], n_inputs: int) -> str:
        name = self.param_names.get(id(leaf))
        stats = self._leaf_stats(leaf)
        if name is not None or isinstance(leaf, Parameter):
            counters["p"] += 1
            node_id, kind = f"p{counters['p']}", "parameter"
            head = name or leaf.name or "parameter"
            path = self._param_path(name, consumer_path)
        else:
            counters["in"] += 1
            node_id, kind = f"in{counters['in']}", "input"
            head = leaf.name or ("input" if n_inputs == 1 else f"input {counters['in']}")
            path = ()
        label, bad = self._tensor_label([head], leaf.shape, leaf.dtype, stats)
        self._add(path, node_id, kind, label, bad)
        return node_id

    def _param_path(self, name: str | None, consumer_path: tuple) -> tuple:
        """Inside the box of the module that owns the parameter, when that box is drawn."""
        if name is None:
            return ()
        owner = name.rsplit(".", 1)[0] if "." in name else ""
        limit = len(consumer_path) if self.depth is None else min(len(consumer_path), self.depth - 1)
        for i in range(limit, 0, -1):
            label, kind, _ = self.entry_info[consumer_path[i - 1]]
            if kind == "module" and label == owner:
                return consumer_path[:i]
        return ()

    def _emit_group(self, gid: str, key: tuple, members: list[Function], leaves: list[Tensor], folded: dict) -> None:
        label, kind, cls = self.entry_info[key[-1]]
        lines = [label] + ([cls] if cls else [])
        params = [t for t in leaves if folded.get(id(t)) == gid]
        count = f"{len(members)} op" + ("s" if len(members) != 1 else "")
        if params:
            numel = sum(p.size for p in params)
            count += f", {len(params)} param" + ("s" if len(params) != 1 else "") + f" ({numel:,})"
        lines.append(count)
        bad = False
        for node in members:
            bad |= _annotations(*self._node_stats(node), self.values, self.grads)[1]
        if self.grads:
            norms = [_grad_stats(p.grad) for p in params if p.grad is not None]
            if norms:
                lines.append(f"param grad norm {_num(math.sqrt(sum(n['norm'] ** 2 for n in norms)))}")
                bad |= not all(n["finite"] for n in norms)
        if self.values:
            for p in params:
                stats = _value_stats(p)
                bad |= stats is not None and not stats["finite"]
        self._add(key[:-1], gid, kind, "\\n".join(lines), bad)


# ---- to Graphviz ------------------------------------------------------------------------------
def _import_graphviz():
    try:
        import graphviz
    except ImportError as exc:
        raise ImportError(
            f"drawing graphs needs the 'graphviz' Python package: {INSTALL_HINT} (or pip install graphviz)"
        ) from exc
    return graphviz


def _emit_cluster(graph: graphviz.Digraph, cluster: _Cluster) -> None:
    for node_id, attrs in cluster.items:
        graph.node(node_id, **attrs)
    for child in cluster.children.values():
        with graph.subgraph(name=child.name) as sub:
            if child.kind == "module":
                fill = _CLUSTER_FILLS[min(child.level, len(_CLUSTER_FILLS)) - 1]
                sub.attr(style="rounded,filled", fillcolor=fill, color="#8da2c8")
            else:
                sub.attr(style="rounded,dashed", color="#bf9000")
            sub.attr(label=child.label, labeljust="l", fontsize="10", **{"class": child.kind})
            _emit_cluster(sub, child)


def _emit_legend(graph: graphviz.Digraph, kinds: list[str]) -> None:
    with graph.subgraph(name="cluster_legend") as sub:
        sub.attr(label="legend", labeljust="l", style="rounded", color="#bbbbbb", fontsize="10", **{"class": "legend"})
        previous = None
        for kind in _STYLES:  # fixed order, only the kinds the picture uses
            if kind not in kinds:
                continue
            node_id = f"legend_{kind}"
            sub.node(node_id, label=_LEGEND_TEXT[kind], **{**_STYLES[kind], "class": "legend"})
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
    """The graph that computed ``output``, as a ``graphviz.Digraph`` (see the module docstring).

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
    picture = _Picture(output, module, depth, grads, values)

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


# ---- writing files --------------------------------------------------------------------------------
def _find_dot() -> str | None:
    """Where Graphviz's ``dot`` program is, or None."""
    return shutil.which("dot")


def render(graph: graphviz.Digraph, path: str | os.PathLike, format: str | None = None) -> Path:
    """Write ``graph`` to ``path`` as SVG, PNG or PDF (from the suffix or ``format``).

    Needs Graphviz's ``dot`` program; without it the DOT source is written next to
    ``path`` (same name, ``.dot`` suffix) and a message says how to install Graphviz.
    A ``.dot`` path (or ``format="dot"``) writes the source. Returns the path written.
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt == "dot":
        write_atomic(path, graph.source.encode())
        return path
    if fmt not in RENDER_FORMATS:
        raise ValueError(f"render: format must be one of {RENDER_FORMATS} or 'dot', got {fmt or path.name!r}")
    if _find_dot() is None:
        dot_path = path.with_suffix(".dot")
        write_atomic(dot_path, graph.source.encode())
        print(DOT_MISSING.format(path=dot_path), file=sys.stderr)
        return dot_path
    write_atomic(path, graph.pipe(format=fmt))
    return path
