"""Recording values and gradients for a graph picture: :func:`record`.

A graph does not hold the tensors it computed (and backward frees what ops saved), so
the statistics a picture shows are taken while the tensors exist: :func:`record` stores
them in each op's ``node.meta``. :func:`value_stats` and :func:`grad_stats` compute them
(the picture uses them for parameters and inputs too, which keep their values and ``.grad``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..autograd import Function, node_observers
from ..engine import register_node_hook
from ..tensor import Tensor


def value_stats(t: Tensor) -> dict[str, Any] | None:
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


def grad_stats(g: Tensor) -> dict[str, Any]:
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
            meta["grad"] = grad_stats(g)

        return hook

    def observe(node: Function, output: Tensor) -> None:
        meta = _meta(node)
        if values:
            meta["values"] = value_stats(output)
        if grads:
            register_node_hook(node, store_grad(meta))

    node_observers.append(observe)
    try:
        yield
    finally:
        node_observers.remove(observe)
