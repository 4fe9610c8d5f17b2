"""``t[index] = value``: writing into a tensor in place, outside autograd.

An in-place write is not an op of the graph: it changes the values a graph node may
already have read. So it is allowed only where it cannot corrupt a gradient:

* not into a tensor that requires grad (its gradient would ignore the write);
* not into a tensor a recorded node took as an input (or a detached view of a node's
  output) while that node is alive and not yet run by backward: the node may read the
  values again in backward;
* not with a value that requires grad (the gradient could not reach it).

Build a new tensor instead (``where``, ``masked_fill``, ``scatter``), or write into a
``clone()``.
"""

from __future__ import annotations

from typing import Any

from ..saved_memory import readers_of
from .checks import is_number, is_tensor, refuse_grad
from .indexing import _normalize_index


def setitem(t: Any, index: Any, value: Any) -> None:
    """``t[index] = value`` in place (ints, slices, None, Ellipsis, integer or boolean
    index tensors); ``value`` is a number, a nested list, an array or a Tensor that
    broadcasts to ``t[index]``."""
    if t.requires_grad:
        raise RuntimeError(
            "setitem: cannot write in place into a tensor that requires grad (backward would not see the "
            "write); build a new tensor with where, masked_fill or scatter, or write into x.detach().clone()"
        )
    readers = readers_of(t.data)
    if readers:
        raise RuntimeError(
            f"setitem: the tensor of shape {t.shape} is saved by the graph node {readers[0].op_name}, "
            "which reads it in backward; write into a clone() instead (or run backward first)"
        )
    if is_tensor(value):
        refuse_grad(value, "setitem", "the value")
        if value.device != t.device:
            raise RuntimeError(f"setitem: value on device {value.device}, tensor on device {t.device}")
        array = value.data
    elif is_number(value) or isinstance(value, (list, tuple)) or hasattr(value, "__array__"):
        array = t.backend.asarray(value)
    else:
        raise TypeError(f"setitem: value must be a number, a list or a Tensor, got {type(value).__name__}")
    raw, _ = _normalize_index(t, index)
    try:
        t.data[raw] = array
    except (IndexError, ValueError) as exc:
        raise type(exc)(f"setitem: cannot assign a value of shape {array.shape} at index {index!r} "
                        f"of a tensor of shape {t.shape}: {exc}") from None  # fmt: skip
