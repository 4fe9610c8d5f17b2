"""Argument checks the op wrappers share: Python numbers as tensors, broadcasting, axes.

Every error names the op, the values it got and what is allowed. Tensors are recognised
by what they carry (``data`` and ``grad_fn``), so this module needs no import of
:mod:`minigrad.tensor`, which builds on the ops.
"""

from __future__ import annotations

import builtins
import numbers
from typing import Any

from .. import backend as B


def is_tensor(value: Any) -> bool:
    return hasattr(value, "grad_fn") and hasattr(value, "data")


def is_number(value: Any) -> bool:
    """A Python or NumPy scalar (bool, int, float)."""
    if isinstance(value, (bool, numbers.Real)) and not is_tensor(value):
        return True
    return B.is_host_array(value) and getattr(value, "ndim", 1) == 0 and value.dtype.kind in "biuf"


def constant(array: Any, like: Any) -> Any:
    """A tensor (no gradient) holding a backend array of ``like``'s device."""
    return type(like)._make(array, like.device, False, None)


def scalar_like(value: Any, like: Any, opname: str) -> Any:
    """A Python number as a 0-d tensor of ``like``'s dtype and device (no gradient)."""
    if is_tensor(value):
        return value
    if is_number(value):
        if like.dtype.kind == "f" or isinstance(value, (bool, int)) and not isinstance(value, float):
            dtype = like.dtype
        else:
            dtype = B.get_default_dtype()
        return constant(like.backend.asarray(value, dtype=dtype), like)
    raise TypeError(
        f"{opname}: expected a Tensor or a Python number, got {type(value).__name__}; "
        "wrap arrays with minigrad.tensor(...)"
    )


def require_tensor(value: Any, opname: str, what: str = "input") -> None:
    if not is_tensor(value):
        raise TypeError(f"{opname}: {what} must be a Tensor, got {type(value).__name__}")


def require_float(t: Any, opname: str) -> None:
    if t.dtype.kind != "f":
        raise TypeError(f"{opname}: expected a floating tensor, got dtype {t.dtype}")


def refuse_grad(t: Any, opname: str, what: str) -> None:
    """Inputs an op uses only as values (masks, targets, indices) cannot carry a gradient."""
    if t is not None and is_tensor(t) and t.requires_grad:
        raise ValueError(
            f"{opname}: {what} requires grad, but {opname} does not differentiate with respect to it; "
            f"pass {what}.detach()"
        )


def broadcast_shapes(opname: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy's broadcasting rule, with an error that names the op and the shapes."""
    ndim = builtins.max(len(s) for s in shapes)
    out = []
    for i in range(ndim):
        size = 1
        for s in shapes:
            j = i - (ndim - len(s))
            if j < 0:
                continue
            d = s[j]
            if d != 1:
                if size != 1 and d != size:
                    listed = " and ".join(str(tuple(x)) for x in shapes)
                    raise ValueError(f"{opname}: shapes {listed} cannot be broadcast together")
                size = d
        out.append(size)
    return tuple(out)


def axes_arg(axis: Any, ndim: int, opname: str) -> tuple[int, ...] | None:
    """Normalize ``axis`` (None, int or sequence; negative allowed) to a sorted tuple."""
    if axis is None:
        return None
    items = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for ax in items:
        if not -ndim <= ax < builtins.max(ndim, 1):
            raise ValueError(f"{opname}: axis {ax} is out of range for a tensor with {ndim} dimensions")
        out.append(ax % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"{opname}: repeated axis in {axis}")
    return tuple(sorted(out))


def axis_arg(axis: int, ndim: int, opname: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{opname}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return axis % ndim
