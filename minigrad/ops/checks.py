"""Argument checks the op wrappers share: Python numbers as tensors, broadcasting, axes.

Every error names the op, the values it got and what is allowed. Tensors are recognised
by what they carry (``data`` and ``grad_fn``), so this module needs no import of
:mod:`minigrad.tensor`, which builds on the ops.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import numbers
from collections.abc import Callable
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


def number_arg(value: Any, opname: str, what: str) -> Any:
    """A parameter that is a number (a scale, a probability, an epsilon): a tensor is taken by
    value only if it does not require grad, since the op would not differentiate through it."""
    if is_tensor(value):
        refuse_grad(value, opname, what)
        value = value.item()
    if isinstance(value, bool) or not is_number(value):
        raise TypeError(f"{opname}: {what} must be a number, got {type(value).__name__}")
    return value


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
    """Normalize ``axis`` (None, int or sequence; negative allowed) to a sorted tuple.

    A 0-d tensor accepts axis 0 and -1, as PyTorch does; reducing over it reduces over
    everything there is, so the result is None (all axes).
    """
    if axis is None:
        return None
    items = (axis,) if isinstance(axis, int) else tuple(axis)
    if ndim == 0:
        for ax in items:
            axis_arg(ax, 0, opname, scalar_ok=True)
        return None
    out = []
    for ax in items:
        if not -ndim <= ax < ndim:
            raise ValueError(f"{opname}: axis {ax} is out of range for a tensor with {ndim} dimensions")
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{opname}: repeated axis in {axis}")
    return tuple(sorted(out))


def axis_arg(axis: int, ndim: int, opname: str, scalar_ok: bool = False) -> int:
    """``axis`` as a non-negative int; with ``scalar_ok`` a 0-d tensor accepts 0 and -1 (PyTorch)."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{opname}: axis must be an integer, got {axis!r}")
    if ndim == 0 and scalar_ok and axis in (0, -1):
        return 0
    if not -ndim <= axis < ndim:
        raise ValueError(f"{opname}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return int(axis) % ndim


# PyTorch's argument names and the NumPy names minigrad's ops use
TORCH_NAMES = {"dim": "axis", "keepdim": "keepdims", "start_dim": "start_axis", "end_dim": "end_axis",
               "dim0": "axis1", "dim1": "axis2"}  # fmt: skip


def torch_names(fn: Callable) -> Callable:
    """Let ``fn`` take PyTorch's names too: ``dim=`` for ``axis=``, ``keepdim=`` for ``keepdims=``
    (and ``start_dim``/``end_dim``, ``dim0``/``dim1``). Giving both names is a one-line error.

    Only keyword arguments are looked at: a call without PyTorch's names costs one set test.
    """
    params = list(inspect.signature(fn).parameters)
    aliases = {t: n for t, n in TORCH_NAMES.items() if n in params}
    position = {n: params.index(n) for n in aliases.values()}
    opname = fn.__name__
    torch_keys = frozenset(aliases)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs and not torch_keys.isdisjoint(kwargs):
            for torch_name, numpy_name in aliases.items():
                if torch_name in kwargs:
                    if numpy_name in kwargs or len(args) > position[numpy_name]:
                        raise TypeError(
                            f"{opname}: got both {numpy_name} and {torch_name}= (two names for one argument); "
                            "give one of them"
                        )
                    kwargs[numpy_name] = kwargs.pop(torch_name)
        return fn(*args, **kwargs)

    return wrapper
