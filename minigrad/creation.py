"""Functions that make new tensors: ``tensor``, ``zeros``, ``randn``...

Random functions draw from the seeded generator of the target device
(``minigrad.manual_seed``), so a seed reproduces the same numbers run after run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import backend as B
from .tensor import Tensor


def _shape(shape: Sequence[Any]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _float_dtype(dtype: Any) -> Any:
    return B.get_default_dtype() if dtype is None else B.as_dtype(dtype)


def _new(array: Any, backend: B.Backend, requires_grad: bool) -> Tensor:
    t = Tensor._make(backend.normalize(array), backend.device, False, None)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data: Any, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor from a number, a nested list, a NumPy array or another tensor (copied)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def zeros(*shape: Any, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    backend = B.get_backend(device)
    return _new(backend.xp.zeros(_shape(shape), dtype=_float_dtype(dtype)), backend, requires_grad)


def ones(*shape: Any, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    backend = B.get_backend(device)
    return _new(backend.xp.ones(_shape(shape), dtype=_float_dtype(dtype)), backend, requires_grad)


def full(
    shape: Sequence[int] | int,
    fill_value: float,
    dtype: Any = None,
    device: str | None = None,
    requires_grad: bool = False,
) -> Tensor:
    backend = B.get_backend(device)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if dtype is None and isinstance(fill_value, bool):
        dtype = B.bool_
    elif dtype is None and isinstance(fill_value, int):
        dtype = B.int64
    return _new(backend.xp.full(shape, fill_value, dtype=_float_dtype(dtype)), backend, requires_grad)


def arange(
    start: float,
    stop: float | None = None,
    step: float = 1,
    dtype: Any = None,
    device: str | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Evenly spaced values in [start, stop); int64 for integer arguments, as PyTorch."""
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        ints = all(isinstance(v, int) for v in (start, stop, step))
        dtype = B.int64 if ints else B.get_default_dtype()
    backend = B.get_backend(device)
    return _new(backend.xp.arange(start, stop, step, dtype=B.as_dtype(dtype)), backend, requires_grad)


def randn(*shape: Any, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """Samples from the standard normal distribution."""
    backend = B.get_backend(device)
    return _new(backend.normal(_shape(shape), _float_dtype(dtype)), backend, requires_grad)


def rand(*shape: Any, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """Samples from the uniform distribution on [0, 1)."""
    backend = B.get_backend(device)
    return _new(backend.uniform(_shape(shape), _float_dtype(dtype)), backend, requires_grad)


def randint(low: int, high: int, shape: Sequence[int], device: str | None = None) -> Tensor:
    """Integers uniformly drawn from [low, high) (int64)."""
    backend = B.get_backend(device)
    return _new(backend.integers(low, high, tuple(shape)), backend, False)


def _like(t: Tensor, dtype: Any, device: str | None) -> tuple[Any, str]:
    return (t.dtype if dtype is None else B.as_dtype(dtype)), (t.device if device is None else device)


def zeros_like(t: Tensor, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    dt, dev = _like(t, dtype, device)
    return zeros(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    dt, dev = _like(t, dtype, device)
    return ones(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value: float, dtype: Any = None, device: str | None = None) -> Tensor:
    dt, dev = _like(t, dtype, device)
    return full(t.shape, fill_value, dtype=dt, device=dev)


def randn_like(t: Tensor, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    dt, dev = _like(t, dtype, device)
    return randn(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def rand_like(t: Tensor, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    dt, dev = _like(t, dtype, device)
    return rand(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def eye(
    n: int, m: int | None = None, dtype: Any = None, device: str | None = None, requires_grad: bool = False
) -> Tensor:
    """The (n, m) identity matrix (ones on the diagonal; m defaults to n), as ``torch.eye``."""
    for name, value in (("n", n), ("m", m)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError(f"eye: {name} must be a non-negative int, got {value!r}")
    backend = B.get_backend(device)
    return _new(backend.xp.eye(n, n if m is None else m, dtype=_float_dtype(dtype)), backend, requires_grad)


def linspace(
    start: float,
    end: float,
    steps: int,
    dtype: Any = None,
    device: str | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included (``torch.linspace``)."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, got {steps!r}")
    backend = B.get_backend(device)
    return _new(backend.xp.linspace(start, end, steps, dtype=_float_dtype(dtype)), backend, requires_grad)


def empty(*shape: Any, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``shape`` whose values are whatever the memory held (``torch.empty``): fill it before use."""
    backend = B.get_backend(device)
    return _new(backend.xp.empty(_shape(shape), dtype=_float_dtype(dtype)), backend, requires_grad)


def from_numpy(array: Any) -> Tensor:
    """A CPU tensor that shares ``array``'s memory and dtype (``torch.from_numpy``): writes to one show in the other."""
    if type(array) is not np.ndarray:
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"from_numpy: dtype {array.dtype} is not supported (bool, integer or floating only)")
    return Tensor._make(array, "cpu", False, None)
