"""The picture of an autograd graph, independent of Graphviz: :class:`Picture`.

It walks the graph behind a tensor and decides which nodes (ops, tensors, parameters,
inputs, constants, collapsed groups), which labelled boxes (modules and named scopes)
and which edges the drawing has, with their labels and styles. :mod:`minigrad.viz.dot`
turns the result into a ``graphviz.Digraph``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..autograd import Function
from ..engine import topological_order
from ..nn.module import Module, Parameter
from ..tensor import Tensor
from .recording import grad_stats, value_stats
from .styles import BAD, STYLES


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
class Cluster:
    """A labelled box: a module or a named scope, holding nodes and nested boxes."""

    name: str
    label: str
    kind: str  # "module" or "scope"
    level: int
    items: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    children: dict[tuple, Cluster] = field(default_factory=dict)


class Picture:
    """Decides which nodes, boxes and edges the drawing has (no Graphviz involved)."""

    def __init__(self, output: Tensor, module: Module | None, depth: int | None, grads: bool, values: bool) -> None:
        self.output, self.module, self.depth = output, module, depth
        self.grads, self.values = grads, values
        self.param_names: dict[int, str] = {}
        self.module_paths: dict[int, str] = {}
        if module is not None:
            self.param_names = {id(p): name for name, p in module.named_parameters()}
            self.module_paths = {id(m): name for name, m in module.named_modules()}
        self.top = Cluster("", "", "root", 0)
        self.n_clusters = 0
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        self.edge_keys: set[tuple[str, str, str]] = set()
        self.kinds: list[str] = []
        self.entry_info: dict[tuple, tuple[str, str, str]] = {}  # key -> (label, kind, class)
        self.recorded_grads = False  # did any op keep its output gradient (viz.record)?
        # which drawn node shows each op (topological index -> "op3" or a group "g2") and
        # each leaf (id(tensor) -> "p1", "in1", or the group a parameter is folded into)
        self.units: list[str] = []
        self.leaf_units: dict[int, str] = {}
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

    def _cluster(self, path: tuple[tuple, ...]) -> Cluster:
        cluster = self.top
        for i, key in enumerate(path):
            child = cluster.children.get(key)
            if child is None:
                self.n_clusters += 1
                label, kind, cls = self.entry_info[key]
                text = f"{label} ({cls})" if cls else label
                child = Cluster(f"cluster_{self.n_clusters}", text, kind, i + 1)
                cluster.children[key] = child
            cluster = child
        return cluster

    # -- nodes and edges ----------------------------------------------------------------------
    def _add(self, path: tuple[tuple, ...], node_id: str, kind: str, label: str, bad: bool = False) -> None:
        attrs = {"label": label, "class": kind, **STYLES[kind]}
        if bad:
            attrs.update(BAD)
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
        values = value_stats(leaf) if self.values else None
        grad = grad_stats(leaf.grad) if self.grads and leaf.grad is not None else None
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
        self.units = unit
        self.leaf_units = {**leaf_ids, **folded}

        # 4. the output
        root = nodes[root_index]
        label, bad = self._tensor_label(["output"], root.out_shape, root.out_dtype, self._output_stats(root))
        self._add((), "out", "output", label, bad)
        if unit[root_index].startswith("g"):
            self._edge(unit[root_index], "out", "out", _shape_text(root.out_shape))
        else:
            self._edge(unit[root_index], "out", "out")

    def _output_stats(self, root: Function) -> tuple[dict | None, dict | None]:
        values = value_stats(self.output) if self.values else None
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
            numel = sum(p.numel() for p in params)
            count += f", {len(params)} param" + ("s" if len(params) != 1 else "") + f" ({numel:,})"
        lines.append(count)
        bad = False
        for node in members:
            bad |= _annotations(*self._node_stats(node), self.values, self.grads)[1]
        if self.grads:
            norms = [grad_stats(p.grad) for p in params if p.grad is not None]
            if norms:
                lines.append(f"param grad norm {_num(math.sqrt(sum(n['norm'] ** 2 for n in norms)))}")
                bad |= not all(n["finite"] for n in norms)
        if self.values:
            for p in params:
                stats = value_stats(p)
                bad |= stats is not None and not stats["finite"]
        self._add(key[:-1], gid, kind, "\\n".join(lines), bad)
