"""Anomaly mode: find the first op that produced a NaN or an infinity.

    with minigrad.detect_anomaly():
        loss = model(x).sum()        # an op whose output is not finite raises here
        loss.backward()              # an op whose input gradient is not finite raises here

Inside the context every op recorded for backward has its output checked, and during
backward every gradient a node's ``backward`` returns is checked. The first non-finite
value raises :class:`AnomalyError`, naming the op, the module that ran it (its dotted
path inside the outermost module, e.g. ``encoder.layers.0.self_attn``) and the shapes of
its inputs, as PyTorch's ``torch.autograd.detect_anomaly`` points at the culprit.

The checks ride on two hook lists, ``minigrad.autograd.node_observers`` (forward) and
``minigrad.engine.grad_observers`` (backward), which are empty outside the context, so
anomaly mode costs nothing when it is off. Ops run under ``no_grad`` (or on inputs that do
not require grad) record no node and are not checked. The checks copy one boolean per op
to the host, so they slow training down: use them to debug, not all the time.
"""

from __future__ import annotations

import threading
from typing import Any

from . import engine
from .autograd import node_observers

__all__ = ["AnomalyError", "detect_anomaly", "is_anomaly_enabled"]


class AnomalyError(FloatingPointError):
    """An op's output, or a gradient backward computed, holds a NaN or an infinity."""


_lock = threading.Lock()
_depth = 0


def is_anomaly_enabled() -> bool:
    """True inside :func:`detect_anomaly`."""
    return _depth > 0


def _module_path(scope: tuple[Any, ...]) -> str:
    """``scope`` (the modules entered, outermost first) as ``in dotted.path (ClassName)``."""
    modules = [s for s in scope if not isinstance(s, str)]
    if not modules:
        return "outside any module"
    root, inner = modules[0], modules[-1]
    names = {id(m): name for name, m in root.named_modules()} if hasattr(root, "named_modules") else {}
    path = names.get(id(inner)) or type(root).__name__
    labels = [s for s in scope if isinstance(s, str)]
    where = path + (f" [{'/'.join(labels)}]" if labels else "")
    return f"in {where} ({type(inner).__name__})"


def _what(array: Any, xp: Any) -> str:
    kinds = []
    if bool(xp.isnan(array).any()):
        kinds.append("NaN")
    if bool(xp.isinf(array).any()):
        kinds.append("inf")
    return " and ".join(kinds)


def _finite(array: Any, xp: Any) -> bool:
    if array.dtype.kind not in "fc":
        return True
    return bool(xp.isfinite(array).all())


def _shapes(node: Any) -> str:
    return ", ".join(str(tuple(s)) for s in getattr(node, "in_shapes", ()))


def _check_output(node: Any, out: Any) -> None:
    xp = node.xp
    if not _finite(out.data, xp):
        raise AnomalyError(
            f"anomaly: {node.op_name} produced {_what(out.data, xp)} in its output {tuple(out.shape)} "
            f"{_module_path(node.scope)}; input shapes {_shapes(node)}"
        )


def _check_grads(node: Any, grads: Any) -> None:
    grads = grads if isinstance(grads, tuple) else (grads,)
    for i, g in enumerate(grads):
        if g is None:
            continue
        data, xp = g.data, node.xp
        if not _finite(data, xp):
            raise AnomalyError(
                f"anomaly: the backward of {node.op_name} returned {_what(data, xp)} in the gradient of "
                f"input {i} {_module_path(node.scope)}; input shapes {_shapes(node)}"
            )


class detect_anomaly:
    """Context manager: raise :class:`AnomalyError` at the first op whose output or gradient
    is NaN or infinite (``check_nan=False`` turns it into a no-op, as in PyTorch)."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self) -> detect_anomaly:
        global _depth
        if not self.check_nan:
            return self
        with _lock:
            if _depth == 0:
                node_observers.append(_check_output)
                engine.grad_observers.append(_check_grads)
            _depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        global _depth
        if not self.check_nan:
            return
        with _lock:
            _depth -= 1
            if _depth == 0:
                node_observers.remove(_check_output)
                engine.grad_observers.remove(_check_grads)
