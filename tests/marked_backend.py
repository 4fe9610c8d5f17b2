"""A test-only backend that runs on the CPU but marks every array it makes.

``MarkedArray`` is an ``np.ndarray`` subclass. The backend's ``xp`` is a namespace that
wraps NumPy so that every array it returns is a ``MarkedArray``: code that computes
through the backend (``self.xp.where``, ``backend.uniform``...) keeps its arrays
marked, while code that calls NumPy directly, bypassing the backend, produces plain
``np.ndarray`` objects and is caught by ``type(array) is MarkedArray`` checks.

This stands in for CuPy on machines without a GPU: an op that silently falls back to
NumPy would, on the GPU, hand a host array to a device computation.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

import minigrad.backend as B


class MarkedArray(np.ndarray):
    """A NumPy array that was made by the marked backend.

    Its methods return MarkedArray, as CuPy's return CuPy arrays (NumPy already keeps the
    subclass for all but ``nonzero``).
    """

    def nonzero(self):
        return tuple(i.view(MarkedArray) for i in super().nonzero())


def mark(value: Any) -> Any:
    """View ndarray results (also inside tuples/lists) and NumPy scalars as MarkedArray."""
    if type(value) is MarkedArray:
        return value
    if isinstance(value, np.ndarray):
        return value.view(MarkedArray)
    if isinstance(value, np.generic):
        return np.asarray(value).view(MarkedArray)
    if isinstance(value, tuple):
        return tuple(mark(v) for v in value)
    if isinstance(value, list):
        return [mark(v) for v in value]
    return value


class _Wrapped:
    """A callable (function or ufunc) whose results are marked; attributes are wrapped too
    (``xp.add.at``, ``xp.maximum.reduce``)."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return mark(self._target(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return _wrap(getattr(self._target, name))

    def __repr__(self) -> str:
        return f"<marked {self._target!r}>"


def _wrap(obj: Any) -> Any:
    if isinstance(obj, type):  # dtypes (xp.float32), xp.ndarray...: unchanged
        return obj
    if isinstance(obj, types.ModuleType):
        return MarkedNamespace(obj)
    if callable(obj):
        return _Wrapped(obj)
    return obj  # constants: pi, inf, newaxis


class MarkedNamespace:
    """``numpy`` (or a submodule of it) whose functions return MarkedArray."""

    def __init__(self, module: Any = np) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        value = _wrap(getattr(self._module, name))
        setattr(self, name, value)  # cache
        return value

    def __repr__(self) -> str:
        return f"<marked namespace {self._module.__name__}>"


class MarkedBackend(B.Backend):
    """NumPy on the CPU, every array marked; device name ``"marked"``."""

    device = "marked"
    array_type = MarkedArray
    xp = MarkedNamespace(np)

    def from_host(self, array: np.ndarray) -> Any:
        # a copy, as a real device transfer: a marked tensor never aliases a host array
        return np.array(array, copy=True).view(MarkedArray)

    def to_host(self, array: Any) -> np.ndarray:
        return np.asarray(array)

    def normalize(self, out: Any) -> Any:
        """Wrap NumPy scalars (and Python numbers) only: a plain ndarray is a leak and
        must stay plain so that the tests see it."""
        if isinstance(out, np.ndarray):
            return out
        return np.asarray(out).view(MarkedArray)

    def scatter_add(self, target: Any, index: Any, values: Any) -> None:
        np.add.at(target, index, values)

    def erf(self, array: Any) -> Any:
        return mark(B.Backend.erf(self, np.asarray(array)))

    def uniform(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return mark(np.asarray(super().uniform(shape, dtype)))

    def normal(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return mark(np.asarray(super().normal(shape, dtype)))

    def integers(self, low: int, high: int, shape: tuple[int, ...]) -> Any:
        return mark(np.asarray(super().integers(low, high, shape)))


def register() -> MarkedBackend:
    backend = MarkedBackend()
    B.register_backend(backend)
    return backend


def unregister() -> None:
    B.unregister_backend("marked")
