"""The explorer's attention panels: per layer, the weights A, dL/dA, dL/dS and A * dL/dA.

Two ways to find a layer's attention weights in a graph: the fused ``attention_weights``
op (its output is A, the gradient it receives is dL/dA), and modules that keep their
weights on request (``keep_attention``/``last_attention``, as encoder's MultiHeadAttention:
:func:`minigrad.viz.explore` switches it on, so composite layers, built op by op, show too;
the weights' gradient is kept with ``retain_grad``). dL/dS is the softmax's vector-Jacobian
product A * (dL/dA - sum_k A * dL/dA), the gradient the scores receive.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Function
from ..nn.module import Module
from ..tensor import Tensor
from .explore_facts import host, module_path
from .explore_page import encode_array


def _first_sequence(a: np.ndarray) -> np.ndarray:
    """(batch, heads, q, k) -> the first sequence's (heads, q, k); (q, k) -> (1, q, k)."""
    a = np.asarray(a, dtype=np.float64)
    while a.ndim > 3:
        a = a[0]
    return a[None] if a.ndim == 2 else a


def attention_layers(
    nodes: list[Function],
    capture: Any,
    module_paths: dict[int, str],
    tokens: list[str] | None,
    weights: list[tuple[Module, Tensor]],
) -> list[dict[str, Any]]:
    """One entry per attention layer, in the order the layers ran (first sequence of the batch)."""
    index = {id(n): i for i, n in enumerate(nodes)}
    found: dict[int, tuple[str, Any, Any]] = {}  # node index -> (module path, A, dL/dA)
    for i, node in enumerate(nodes):
        if node.op_name == "attention_weights" and id(node) in capture.grads:
            found[i] = (module_path(node, module_paths), capture.values[id(node)][2], capture.grads[id(node)][2])
    for module, w in weights:
        i = index.get(id(w._ctx)) if w._ctx is not None else None
        if i is None or (i not in found and w.grad is None):
            continue
        name = module_paths.get(id(module)) or "(the module)"
        found[i] = (name, *found[i][1:]) if i in found else (name, host(w), host(w.grad))
    layers = []
    for i in sorted(found):
        name, a, g = found[i]
        a, g = _first_sequence(a), _first_sequence(g)
        ds = a * (g - (a * g).sum(-1, keepdims=True))
        seq = a.shape[-1]
        labels = [str(t) for t in tokens[:seq]] if tokens is not None else []
        labels += [str(k) for k in range(len(labels), seq)]
        layers.append(
            {
                "node": f"n{i}",
                "module": name,
                "heads": a.shape[0],
                "seq_q": a.shape[1],
                "seq_k": a.shape[2],
                "tokens": labels,
                "A": encode_array(a, np.float32),
                "dA": encode_array(g, np.float32),
                "dS": encode_array(ds, np.float32),
                "AdA": encode_array(a * g, np.float32),
            }
        )
    return layers
