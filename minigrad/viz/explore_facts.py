"""What the explorer page says about one node or tensor: statistics, a heatmap slice, a
saved value in one line, and the op's docstring and source lines.

Used by :mod:`minigrad.viz.explore`; every function takes host (NumPy) arrays or nodes.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..autograd import Function
from ..nn.module import Module
from ..tensor import Tensor
from .explore_page import encode_array

HEAT_ROWS, HEAT_COLS = 16, 32  # the largest 2-D slice kept per value or gradient
_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the minigrad package


def stats(array: np.ndarray) -> dict[str, float] | None:
    """min, max, mean, std and L2 norm of a floating array (None for empty or non-floating)."""
    if array.size == 0 or array.dtype.kind != "f":
        return None
    h = array.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # -inf scores (masked keys): NaN/inf, shown as such
        return {
            "min": float(h.min()),
            "max": float(h.max()),
            "mean": float(h.mean()),
            "std": float(h.std()),
            "norm": math.sqrt(float((h * h).sum())),
        }


def heat_slice(array: np.ndarray) -> dict[str, Any] | None:
    """The first 2-D slice of ``array`` (leading indices 0), cropped, as float16 base64."""
    if array.size == 0 or array.dtype.kind not in "fiub":
        return None
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 0:
        a = a.reshape(1, 1)
    elif a.ndim == 1:
        a = a.reshape(1, -1)
    lead = a.ndim - 2
    a = a[(0,) * lead][:HEAT_ROWS, :HEAT_COLS]
    where = "[" + ", ".join(["0"] * lead + [f":{a.shape[0]}", f":{a.shape[1]}"]) + "]"
    return {"rows": a.shape[0], "cols": a.shape[1], "slice": where, "data": encode_array(a, np.float16)}


def host(t: Tensor) -> np.ndarray:
    return np.array(t.detach().numpy(), copy=True)


def describe(value: Any) -> str:
    """One line on a saved value: a tensor or array's kind, shape and dtype, else its repr."""
    if isinstance(value, Tensor):
        return f"Tensor {tuple(value.shape)} {value.dtype}" + (" (requires grad)" if value.requires_grad else "")
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"array {tuple(int(d) for d in value.shape)} {value.dtype}"
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, Tensor) for v in value):
        return "(" + ", ".join(describe(v) for v in value) + ")"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _where(fn: Any) -> str:
    """ "minigrad/ops/unary.py:42": where a function is defined."""
    try:
        path = Path(inspect.getsourcefile(fn) or "").resolve()
        line = inspect.getsourcelines(fn)[1]
    except (OSError, TypeError):
        return "unknown"
    try:
        path = path.relative_to(_ROOT)
    except ValueError:
        pass
    return f"{path.as_posix()}:{line}"


def reference_class(node: Function) -> type:
    """The op class in minigrad.ops (an accelerated op subclasses it) or the node's own class."""
    for cls in type(node).__mro__:
        if cls.__module__.startswith("minigrad.ops"):
            return cls
    return type(node)


def op_info(node: Function) -> dict[str, str]:
    """The op's docstring (its derivative), its module's docstring, and file:line of forward/backward."""
    ref = reference_class(node)
    info = {
        "doc": inspect.getdoc(ref) or "",
        "module_doc": inspect.getdoc(inspect.getmodule(ref)) or "",
        "forward": _where(ref.forward),
        "backward": _where(ref.backward),
    }
    if type(node) is not ref and type(node).forward is not ref.forward:
        info["ran"] = f"{type(node).__name__} (accelerated) {_where(type(node).forward)}"
    return info


def module_path(node: Function, module_paths: dict[int, str]) -> str:
    """The path of the innermost module the node was recorded in."""
    for entry in reversed(node.scope):
        if isinstance(entry, Module) and id(entry) in module_paths:
            return module_paths[id(entry)] or "(the module)"
    return "(outside any module)"
