"""``Tensor``: an n-dimensional array that remembers how it was computed.

A Tensor wraps one backend array (``.data``) and, when it requires grad and was made
by an op, the graph node that made it (``.grad_fn``). This module holds what a tensor
is: its data and metadata, conversions, autograd (backward, hooks, detach) and printing.
The operators and the methods that run ops (``x + y``, ``x.exp()``, ``x.sum()``...) come
from :class:`~minigrad.tensor_math.TensorMath` and
:class:`~minigrad.tensor_shape.TensorShape`, which forward them to :mod:`minigrad.functional`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from . import backend as B
from . import engine
from . import functional as F
from .saved_memory import mark_saved
from .tensor_elementwise import TensorElementwise
from .tensor_math import TensorMath
from .tensor_shape import TensorShape

Scalar = int | float | bool


class Tensor(TensorMath, TensorElementwise, TensorShape):
    """An array with autograd.

    Args:
        data: a Python number or (nested) list, a NumPy array, a backend array or a Tensor.
        requires_grad: record operations on this tensor for backward.
        dtype: ``"float32"`` (default for floats), ``"float64"``, ``"int64"``...
        device: ``"cpu"`` or ``"cuda"`` (default: ``minigrad.get_default_device()``).
    """

    __slots__ = ("data", "grad", "_requires_grad", "_ctx", "_hooks", "device", "name", "__weakref__")
    __array_priority__ = 1000  # numpy scalars defer to Tensor's reflected operators

    def __init__(
        self,
        data: Any,
        requires_grad: bool = False,
        dtype: Any = None,
        device: str | None = None,
    ) -> None:
        array, dev = _to_array(data, dtype, device)
        self.data = array
        self.device = dev
        self.grad: Tensor | None = None
        self._ctx: Any = None
        self._hooks: list[Callable] | None = None
        self.name: str | None = None
        self._requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data: Any, device: str, requires_grad: bool, ctx: Any) -> Tensor:
        """Fast internal constructor: ``data`` is already a backend array of ``device``."""
        t = object.__new__(cls)
        t.data = data
        t.device = device
        t.grad = None
        t._requires_grad = requires_grad
        t._ctx = ctx
        t._hooks = None
        t.name = None
        return t

    # ---- metadata --------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def size(self, dim: int | None = None) -> Any:
        """The shape, as PyTorch's ``x.size()``; ``x.size(d)`` is the length of dimension d."""
        if dim is None:
            return self.data.shape
        if isinstance(dim, bool) or not isinstance(dim, int) or not -self.ndim <= dim < self.ndim:
            raise IndexError(f"size: dimension {dim!r} is out of range for a tensor with {self.ndim} dimensions")
        return self.data.shape[dim]

    def numel(self) -> int:
        """The number of elements."""
        return int(self.data.size)

    def dim(self) -> int:
        """The number of dimensions (``ndim``), as PyTorch's ``x.dim()``."""
        return self.data.ndim

    @property
    def backend(self) -> B.Backend:
        return B._BACKENDS[self.device]

    @property
    def grad_fn(self) -> Any:
        """The graph node that produced this tensor (None for leaves)."""
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # ---- conversion --------------------------------------------------------------------
    def numpy(self) -> Any:
        """The values as a NumPy array on the host (a copy for GPU tensors)."""
        if self.requires_grad:
            raise RuntimeError("numpy(): call .detach() first on a tensor that requires grad")
        return self.backend.to_host(self.data)

    def tolist(self) -> Any:
        return self.backend.to_host(self.data).tolist()

    def item(self) -> Scalar:
        """The single value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted, got shape {self.shape}")
        return self.backend.to_host(self.data).reshape(()).item()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() or .all()"
            )
        return bool(self.item())

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, outside the graph."""
        t = Tensor._make(self.data, self.device, False, None)
        if self._ctx is not None:  # the node may read this memory (its output) in backward: no writes into it
            mark_saved(t, self._ctx)
        return t

    def to(self, device: str | None = None, dtype: Any = None) -> Tensor:
        """Move to ``device`` and/or cast to ``dtype`` (differentiable)."""
        out = self
        if dtype is not None and B.as_dtype(dtype) != self.dtype:
            out = F.cast(out, dtype)
        if device is not None and B.normalize_device(device) != self.device:
            out = F.to_device(out, device)
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def float(self) -> Tensor:
        return self.to(dtype=B.float32)

    def double(self) -> Tensor:
        return self.to(dtype=B.float64)

    def long(self) -> Tensor:
        return self.to(dtype=B.int64)

    # ---- autograd ----------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if not self.is_leaf:
            if not requires_grad:
                raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use .detach()")
            return self
        if requires_grad and self.dtype.kind != "f":
            raise TypeError(
                f"requires_grad: only floating tensors can require grad, got dtype {self.dtype} "
                "(convert first, e.g. x.float().requires_grad_())"
            )
        self._requires_grad = requires_grad
        return self

    def _set_requires_grad(self, requires_grad: bool) -> None:
        """``x.requires_grad = flag``: an integer or bool tensor cannot require grad (its
        gradient would be cut to integers silently), and a non-leaf cannot stop requiring it."""
        requires_grad = bool(requires_grad)
        if requires_grad and self.dtype.kind != "f":
            raise TypeError(
                f"requires_grad: only floating tensors can require grad, got dtype {self.dtype} "
                "(convert first, e.g. x.float().requires_grad_())"
            )
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad = False on a non-leaf tensor; use .detach()")
        self._requires_grad = requires_grad

    # read as fast as a plain slot (a C getter); set through the checks above
    requires_grad = property(operator.attrgetter("_requires_grad"), _set_requires_grad)

    def backward(
        self,
        gradient: Tensor | None = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
    ) -> None:
        """Backpropagate from this tensor into the ``.grad`` of every leaf it depends on.

        Leaf gradients accumulate (call ``zero_grad`` between steps). Saved values of the
        graph are freed unless ``retain_graph=True``. With ``create_graph=True`` the
        gradients themselves carry a graph (for higher-order derivatives).
        """
        engine.backward(self, gradient, retain_graph, create_graph)

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if self._ctx is not None:
            engine.retain(self._ctx, self)
        elif not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        return self

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> Callable[[], None]:
        """Call ``hook(grad)`` when this tensor's gradient is computed.

        If the hook returns a tensor, it replaces the gradient. Returns a function that
        removes the hook.
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook on a tensor that does not require grad")
        if self._ctx is not None:
            engine.register_node_hook(self._ctx, hook)
            hooks = self._ctx.hooks
        else:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
            hooks = self._hooks

        def remove() -> None:
            if hook in hooks:
                hooks.remove(hook)

        return remove

    def zero_(self) -> Tensor:
        """Set every element to zero in place (outside autograd)."""
        self.data[...] = 0
        return self

    # ---- printing ------------------------------------------------------------------------
    def __repr__(self) -> str:
        host = self.backend.to_host(self.data)
        body = B.np.array2string(host, precision=4, separator=", ", prefix="tensor(")
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.dtype != B.get_default_dtype() and self.dtype != B.int64 and self.dtype != B.bool_:
            extras.append(f"dtype={self.dtype}")
        elif self.dtype.kind != "f" and host.size == 0:
            extras.append(f"dtype={self.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{self._ctx.op_name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"


def _to_array(data: Any, dtype: Any, device: str | None) -> tuple[Any, str]:
    """Convert user data to a backend array on ``device`` with ``dtype``."""
    dt = None if dtype is None else B.as_dtype(dtype)
    if isinstance(data, Tensor):
        src_device = data.device
        array = data.data
        target = src_device if device is None else B.normalize_device(device)
        if target != src_device:
            array = B.get_backend(target).from_host(data.backend.to_host(array))
        if dt is not None and array.dtype != dt:
            array = array.astype(dt)
        elif array is data.data:
            array = array.copy()
        return array, target
    backend = B.get_backend(device)
    try:
        source = B.find_backend(data)  # already an array of some backend
    except B.BackendError:
        source = None
    if source is not None:
        array = data if source is backend else backend.from_host(source.to_host(data))
        if dt is not None and array.dtype != dt:
            array = array.astype(dt)
        elif array is data:
            array = array.copy()  # like torch.tensor: never alias the caller's array
        return backend.normalize(array), backend.device
    host = B.host_array(data)
    if host.dtype.kind == "O":
        raise TypeError(f"tensor(): cannot make a tensor from {type(data).__name__}")
    if dt is None and not B.is_host_array(data):
        # Python numbers and lists: floats take the default dtype, ints int64
        if host.dtype.kind == "f":
            dt = B.get_default_dtype()
        elif host.dtype.kind in "iu":
            dt = B.int64
    if dt is not None and host.dtype != dt:
        host = host.astype(dt)
    return backend.normalize(backend.from_host(host)), backend.device
