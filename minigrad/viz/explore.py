"""The explorer's data: one forward and backward pass of a module, kept whole: :func:`explore`.

:func:`explore` runs ``module(*inputs)``, applies ``loss`` and backpropagates, keeping what
a learner wants to look at afterwards (a graph frees its tensors as backward goes, so it
is taken while they exist):

* every op node: its op, module path, input/output shapes and dtype, statistics (min,
  max, mean, std, norm) and a small 2-D slice of its output value and of the gradient it
  received, what it saved for backward, its docstring (the derivative) and where its
  forward and backward are defined (file:line);
* every leaf (parameters, inputs) with its value and gradient;
* the backward order (the order the engine visited the nodes) and, for every tensor,
  each gradient term that reached it and the running sum (a tensor used by several ops
  receives one term per use: :data:`minigrad.engine.edge_observers`);
* per attention layer and head (the ``attention_weights`` op, or a module that keeps its
  weights: :mod:`minigrad.viz.explore_attention`): the weights A, their gradient dL/dA,
  the scores' gradient dL/dS = A * (dL/dA - sum(A * dL/dA)) (the softmax's
  vector-Jacobian product) and A * dL/dA.

Values, gradients and heatmaps cover the whole batch; the attention panels and heatmap
slices show its first sequence.

The result is an :class:`~minigrad.viz.explore_page.ExplorerPage`: ``.save("page.html")``
writes one offline HTML page (:mod:`minigrad.viz.explore_page`), and in Jupyter it shows
inline. The module's parameter ``.grad`` are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import engine
from ..autograd import Function, node_observers
from ..engine import register_node_hook, topological_order
from ..nn.module import Module
from ..tensor import Tensor
from .dot import VIEWS
from .explore_attention import attention_layers
from .explore_facts import describe, heat_slice, host, module_path, op_info, reference_class, stats
from .explore_page import ExplorerPage
from .recording import grad_stats


class _Capture:
    """What the observers keep while the forward and backward passes run."""

    def __init__(self) -> None:
        self.values: dict[int, tuple[dict | None, dict | None, np.ndarray | None]] = {}
        self.saved: dict[int, list[tuple[str, str]]] = {}
        self.in_dtypes: dict[int, list[str]] = {}
        self.grads: dict[int, tuple[dict | None, dict | None, np.ndarray | None]] = {}
        self.visited: list[int] = []  # node ids in the order backward reached them
        self.terms: dict[int, list[dict[str, Any]]] = {}  # id(target) -> the terms it received
        self.sums: dict[int, np.ndarray] = {}
        self.hooks: list[tuple[Function, Callable]] = []  # to remove afterwards

    def keep_whole(self, node: Function) -> bool:
        return node.op_name == "attention_weights"

    def observe(self, node: Function, output: Tensor) -> None:
        arr = host(output)
        self.values[id(node)] = (stats(arr), heat_slice(arr), arr if self.keep_whole(node) else None)
        self.saved[id(node)] = [(k, describe(v)) for k, v in node.__dict__.items()]
        inputs = node.__dict__.get("inputs")
        if inputs is not None:
            self.in_dtypes[id(node)] = [str(t.dtype) for t in inputs]
        node.meta = node.meta or {}  # the picture reads the gradient norm our hook stores there
        hook = self._grad_hook(node)
        self.hooks.append((node, hook))
        register_node_hook(node, hook)

    def _grad_hook(self, node: Function) -> Callable[[Tensor], None]:
        def hook(g: Tensor) -> None:
            arr = host(g)
            self.grads[id(node)] = (stats(arr), heat_slice(arr), arr if self.keep_whole(node) else None)
            self.visited.append(id(node))
            node.meta["grad"] = grad_stats(g)

        return hook

    def on_edge(self, node: Function, slot: int, target: Any, g: Tensor) -> None:
        arr = host(g).astype(np.float64)
        key = id(target)
        total = self.sums.get(key)
        total = arr if total is None else total + arr
        self.sums[key] = total
        self.terms.setdefault(key, []).append(
            {
                "from": id(node),
                "slot": slot,
                "norm": float(np.sqrt((arr * arr).sum())),
                "sum_norm": float(np.sqrt((total * total).sum())),
            }
        )


def _dtype_of(source: Any) -> str:
    """An input's dtype from where it came from (a constant's is not kept when the op saves no inputs)."""
    if isinstance(source, Function):
        return str(source.out_dtype)
    return str(source.dtype) if isinstance(source, Tensor) else ""


def _scope_text(node: Function, module_paths: dict[int, str]) -> str:
    parts, parent = [], ""
    for entry in node.scope:
        if isinstance(entry, Module):
            name = module_paths.get(id(entry))
            if name:  # relative to the module around it: encoder / layers.0 / self_attn
                parts.append(name[len(parent) + 1 :] if parent and name.startswith(parent + ".") else name)
                parent = name
        else:
            parts.append(str(entry))
    return " / ".join(parts)


def _tensor_entry(stat_heat: tuple | None) -> dict[str, Any]:
    if stat_heat is None:
        return {"stats": None, "heat": None}
    return {"stats": stat_heat[0], "heat": stat_heat[1]}


def explore(
    module: Module,
    *inputs: Any,
    loss: Callable[[Any], Tensor] | None = None,
    tokens: list[str] | None = None,
    view: str = "collapsed",
    title: str | None = None,
    kwargs: dict[str, Any] | None = None,
    depth: int | None = None,
) -> ExplorerPage:
    """Run ``loss(module(*inputs, **kwargs))`` forward and backward and keep it all for the explorer page.

    Args:
        module: the model (its parameters are named by their path in it).
        inputs: passed to ``module``.
        loss: turns the module's output into a scalar Tensor; None: the output must be one.
        tokens: labels of the sequence positions in the attention panels (default 0, 1, ...).
        view: the graph shown first: ``"collapsed"`` or ``"expanded"`` (the page switches).
        title: the page's heading.
        kwargs: keyword arguments for ``module`` (e.g. ``{"src_key_padding_mask": mask}``).
        depth: how deep the collapsed view keeps module boxes open (as :func:`draw_graph`'s
            ``depth``; default 1: one node per child of ``module``).

    Returns an :class:`~minigrad.viz.explore_page.ExplorerPage` (``.save(path)``,
    ``.data``, ``_repr_html_``). The parameters' ``.grad`` are left as they were.
    """
    if view not in VIEWS:
        raise ValueError(f"explore: view must be one of {VIEWS}, got {view!r}")
    if not isinstance(module, Module):
        raise TypeError(f"explore: module must be a minigrad nn.Module, got {type(module).__name__}")
    if depth is not None and (not isinstance(depth, int) or depth < 1):
        raise ValueError(f"explore: depth must be an integer >= 1 (or None for 1), got {depth!r}")
    capture = _Capture()
    saved_grads = [(p, p.grad) for p in module.parameters()]
    saved_grads += [(t, t.grad) for t in inputs if isinstance(t, Tensor)]
    # modules that keep their attention weights on request (encoder's MultiHeadAttention);
    # FlashAttention never forms them, so a flash module is left as it is
    keepers = [m for m in module.modules() if hasattr(m, "keep_attention") and hasattr(m, "last_attention")
               and getattr(m, "impl", "naive") != "flash"]
    kept = [(m, m.keep_attention, m.last_attention) for m in keepers]
    try:
        for t, _ in saved_grads:
            t.grad = None
        for m in keepers:
            m.keep_attention = True
        node_observers.append(capture.observe)
        try:
            output = module(*inputs, **(kwargs or {}))
            result = loss(output) if loss is not None else output
        finally:
            node_observers.remove(capture.observe)
        if not isinstance(result, Tensor) or result.numel() != 1 or result._ctx is None:
            what = type(result).__name__ if not isinstance(result, Tensor) else f"a tensor of shape {result.shape}"
            raise ValueError(f"explore: loss must give a scalar Tensor computed from the module, got {what}")
        engine.edge_observers.append(capture.on_edge)
        try:
            result.backward()
        finally:
            engine.edge_observers.remove(capture.on_edge)
        weights = [(m, m.last_attention) for m in keepers if isinstance(m.last_attention, Tensor)]
        return _assemble(module, result, capture, tokens, view, title, depth or 1, weights)
    finally:
        for node, hook in capture.hooks:
            node.hooks.remove(hook)
            if not node.hooks:
                node.hooks = None
        for t, g in saved_grads:
            t.grad = g
        for m, keep, last in kept:
            m.keep_attention, m.last_attention = keep, last


def _assemble(
    module: Module,
    result: Tensor,
    capture: _Capture,
    tokens: list[str] | None,
    view: str,
    title: str | None,
    depth: int,
    weights: list[tuple[Module, Tensor]],
) -> ExplorerPage:
    from .picture import Picture

    nodes = topological_order([result._ctx])
    index = {id(n): i for i, n in enumerate(nodes)}
    module_paths = {id(m): name for name, m in module.named_modules()}
    param_names = {id(p): name for name, p in module.named_parameters()}
    expanded = Picture(result, module, None, True, False)
    collapsed = Picture(result, module, depth, True, False)

    leaves: list[Tensor] = []
    leaf_index: dict[int, int] = {}
    for node in nodes:
        for src in node.next:
            if isinstance(src, Tensor) and id(src) not in leaf_index:
                leaf_index[id(src)] = len(leaves)
                leaves.append(src)

    def source(key: int) -> str | None:
        return f"n{index[key]}" if key in index else None

    def terms_of(key: int) -> list[dict[str, Any]]:
        return [{**t, "from": source(t["from"])} for t in capture.terms.get(key, [])]

    docs: dict[str, dict[str, str]] = {}
    node_rows = []
    for i, node in enumerate(nodes):
        ref = reference_class(node)
        docs.setdefault(ref.__name__, op_info(node))
        node_rows.append(
            {
                "id": f"n{i}",
                "op": node.op_name,
                "cls": ref.__name__,
                "module": module_path(node, module_paths),
                "scope": _scope_text(node, module_paths),
                "in_shapes": [list(s) for s in node.in_shapes],
                "in_dtypes": capture.in_dtypes.get(id(node)) or [_dtype_of(s) for s in node.next],
                "inputs": [
                    (
                        f"n{index[id(s)]}"
                        if isinstance(s, Function)
                        else f"l{leaf_index[id(s)]}"
                        if s is not None
                        else None
                    )
                    for s in node.next
                ],
                "out_shape": list(node.out_shape),
                "dtype": str(node.out_dtype),
                "value": _tensor_entry(capture.values.get(id(node))),
                "grad": _tensor_entry(capture.grads.get(id(node))),
                "saved": capture.saved.get(id(node), []),
                "terms": terms_of(id(node))
                or ([{"from": None, "slot": 0, "norm": 1.0, "sum_norm": 1.0}] if i == len(nodes) - 1 else []),
                "units": {"expanded": expanded.units[i], "collapsed": collapsed.units[i]},
            }
        )
    leaf_rows = []
    for j, leaf in enumerate(leaves):
        value = host(leaf)
        grad = host(leaf.grad) if leaf.grad is not None else None
        name = param_names.get(id(leaf))
        leaf_rows.append(
            {
                "id": f"l{j}",
                "kind": "parameter" if name is not None else "input",
                "name": name or leaf.name or "input",
                "shape": list(leaf.shape),
                "dtype": str(leaf.dtype),
                "value": {"stats": stats(value), "heat": heat_slice(value)},
                "grad": {
                    "stats": None if grad is None else stats(grad),
                    "heat": None if grad is None else heat_slice(grad),
                },
                "terms": terms_of(id(leaf)),
                "units": {
                    "expanded": expanded.leaf_units.get(id(leaf)),
                    "collapsed": collapsed.leaf_units.get(id(leaf)),
                },
            }
        )
    groups = {}  # collapsed view: group id -> "path (Class)" of the module or scope it shows
    for node, unit in zip(nodes, collapsed.units):
        if unit.startswith("g") and unit not in groups:
            label, _, cls = collapsed.entry_info[collapsed._relative_scope(node.scope)[depth - 1]]
            groups[unit] = f"{label} ({cls})" if cls else label
    data = {
        "groups": groups,
        "title": title or f"{type(module).__name__}: forward and backward",
        "loss": float(result.detach().numpy().reshape(-1)[0]),
        "view": view,
        "depth": depth,
        "nodes": node_rows,
        "leaves": leaf_rows,
        "order": [f"n{index[k]}" for k in capture.visited if k in index],
        "docs": docs,
        "attention": attention_layers(nodes, capture, module_paths, tokens, weights),
    }
    return ExplorerPage(data, {"expanded": expanded, "collapsed": collapsed}, result, module)
