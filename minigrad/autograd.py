"""The graph: ops as nodes (:class:`Function`), and the switches that control recording.

Every differentiable op is a subclass of :class:`Function` with two halves:

* ``forward(*arrays, **params) -> array`` computes on raw backend arrays (no graph);
* ``backward(grad) -> grads`` receives the upstream gradient as a Tensor and returns one
  gradient per input, written with Tensor ops, with the derivative in its docstring.

That one ``backward`` is what runs: :mod:`minigrad.engine` calls it with recording off
for ordinary gradients, and with recording on (``create_graph=True``) so that the
backward pass builds a graph of its own and second-order gradients need no extra code.

Each op application creates one *node* (the Function instance) with exactly one output.
A node points to where its inputs came from (``node.next``): another node, a leaf tensor
that requires grad, or ``None`` for constants. Nodes hold no reference to their output,
so a graph is freed by reference counting as soon as nothing holds its root.

This module never imports :mod:`minigrad.tensor` (which builds on the ops): an op's output
is made by the class of its inputs, ``type(inputs[0])``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from . import backend as B
from .registry import implementations
from .saved_memory import mark_saved

if TYPE_CHECKING:
    from .tensor import Tensor


class _ThreadState(threading.local):
    """Per-thread autograd state, as in PyTorch: a ``no_grad`` in one thread does not turn
    off recording in another, and each thread has its own module-scope stack."""

    def __init__(self) -> None:
        self.enabled = True  # graph recording on (see set_grad_enabled)
        # the module scopes entered, innermost last: entries are Module objects or strings
        # (see `scope`); each element is the whole path, so recording one is a lookup
        self.scope_tuple: list[tuple[Any, ...]] = [()]


_thread_state = _ThreadState()
# Callbacks run on every node as it is recorded: observer(node, output_tensor).
# minigrad.viz uses one to keep value statistics for its pictures; empty otherwise.
node_observers: list[Callable[[Any, Any], None]] = []


def is_grad_enabled() -> bool:
    """True when ops record the graph for backward."""
    return _thread_state.enabled


class set_grad_enabled:
    """Context manager (and function) that turns graph recording on or off."""

    def __init__(self, mode: bool) -> None:
        self.prev = _thread_state.enabled
        _thread_state.enabled = bool(mode)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        _thread_state.enabled = self.prev


class no_grad:
    """Context manager (or decorator): ops inside record no graph, as ``torch.no_grad``."""

    _mode = False

    def __enter__(self) -> None:
        self.prev = _thread_state.enabled
        _thread_state.enabled = self._mode

    def __exit__(self, *exc: object) -> None:
        _thread_state.enabled = self.prev

    def __call__(self, fn: Callable) -> Callable:
        mode = self._mode

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = _thread_state.enabled
            _thread_state.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _thread_state.enabled = prev

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = fn.__doc__
        return wrapper


class enable_grad(no_grad):
    """Context manager (or decorator) that turns recording back on inside ``no_grad``."""

    _mode = True


# ---- module scopes, recorded on every node for the graph pictures --------------------
def push_scope(entry: Any) -> None:
    paths = _thread_state.scope_tuple
    paths.append((*paths[-1], entry))


def pop_scope() -> None:
    _thread_state.scope_tuple.pop()


@contextmanager
def scope(name: str):
    """Label the ops recorded inside (e.g. ``with scope("residual1"): x = x + y``).

    ``nn.Module.__call__`` pushes the module itself; ``minigrad.viz`` turns the recorded
    scopes into the labelled boxes of the graph picture.
    """
    push_scope(name)
    try:
        yield
    finally:
        pop_scope()


def current_scope() -> tuple[Any, ...]:
    return _thread_state.scope_tuple[-1]


# ---- argument checks every op shares ----------------------------------------------------
def _op_name(cls: type) -> str:
    return getattr(cls, "name", None) or cls.__name__.lower()


def check_same_device(opname: str, tensors: Sequence[Tensor]) -> str:
    device = tensors[0].device
    for t in tensors[1:]:
        if t.device != device:
            devices = ", ".join(f"{x.device}" for x in tensors)
            shapes = ", ".join(str(x.shape) for x in tensors)
            raise RuntimeError(
                f"{opname}: expected all tensors on the same device, got devices ({devices}) "
                f"for shapes ({shapes}); move them with .to(device)"
            )
    return device


def check_same_float_dtype(opname: str, tensors: Sequence[Tensor]) -> None:
    dtype = None
    for t in tensors:
        if t.dtype.kind == "f":
            if dtype is None:
                dtype = t.dtype
            elif t.dtype != dtype:
                dtypes = ", ".join(str(x.dtype) for x in tensors)
                raise TypeError(
                    f"{opname}: floating inputs must share one dtype, got ({dtypes}); "
                    f"minigrad does not upcast silently, convert with .to(dtype) or .double()"
                )


class Function:
    """One differentiable op and, once applied, one node of the graph.

    Subclasses define ``forward`` (arrays in, array out) and ``backward`` (Tensor in,
    Tensors out) and document the derivative in the class docstring.

    Class attributes a subclass may set:
        name: the op's name in errors and pictures (default: the class name, lower case).
        saves_inputs: keep the input Tensors for backward as ``self.inputs`` (default True);
            ops that need only shapes set it to False and keep what they need in forward.
        check_dtypes: require floating inputs to share one dtype (default True).
    """

    # structural fields (kept after the graph is freed, for pictures); op-specific values
    # live in the instance __dict__ and are dropped by `release`.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "next",
        "needs_input_grad",
        "in_shapes",
        "scope",
        "out_shape",
        "out_dtype",
        "device",
        "xp",
        "tensor_type",
        "hooks",
        "retained",
        "released",
        "meta",
    )
    name: str = ""
    saves_inputs = True
    check_dtypes = True

    # ---- the two halves an op defines ------------------------------------------------
    def forward(self, *arrays: Any, **params: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, grad: Tensor) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    # ---- helpers for backward --------------------------------------------------------
    def const(self, array: Any) -> Tensor:
        """Wrap an array saved in forward as a constant Tensor (no gradient flows into it)."""
        return self.tensor_type._make(array, self.device, False, None)

    def saved_output(self) -> Tensor:
        """The op's output, for backward formulas that use it (exp, tanh, softmax...).

        Save it in forward with ``self.out = result``. The returned Tensor shares the
        output's data; when gradients are being recorded (``create_graph=True``) it is
        attached to this very node, so second-order gradients flow through it correctly
        without the node ever holding its output (which would create a reference cycle).
        """
        record = _thread_state.enabled
        return self.tensor_type._make(self.out, self.device, record, self if record else None)

    # ---- applying an op ----------------------------------------------------------------
    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run forward on the inputs' arrays and, when needed, record a graph node."""
        first = inputs[0]
        device = first.device
        for t in inputs:
            if t.device != device:
                check_same_device(_op_name(cls), inputs)
        if cls.check_dtypes and len(inputs) > 1:
            dtype = first.data.dtype
            for t in inputs:
                if t.data.dtype != dtype:
                    check_same_float_dtype(_op_name(cls), inputs)
                    break
        op = implementations.get((cls, device), cls)  # a faster one that minigrad.accel registered
        fn = op.__new__(op)
        backend = B._BACKENDS[device]
        fn.xp = backend.xp
        fn.device = device
        fn.tensor_type = tensor_type = type(first)
        if cls.saves_inputs:
            fn.inputs = inputs
        out = fn.forward(*[t.data for t in inputs], **params)
        if type(out) is not backend.array_type:
            out = backend.normalize(out)
        needs = tuple([t._requires_grad for t in inputs])  # (the slot behind ``requires_grad``)
        if not (_thread_state.enabled and True in needs):
            return tensor_type._make(out, device, False, None)
        fn.next = tuple((t._ctx or t) if r else mark_saved(t, fn) for t, r in zip(inputs, needs))
        fn.needs_input_grad = needs
        fn.in_shapes = tuple(t.data.shape for t in inputs)
        fn.scope = _thread_state.scope_tuple[-1]
        fn.out_shape = out.shape
        fn.out_dtype = out.dtype
        fn.hooks = None
        fn.retained = None
        fn.released = False
        fn.meta = None
        result = tensor_type._make(out, device, True, fn)
        for observer in node_observers:
            observer(fn, result)
        return result

    def release(self) -> None:
        """Free what forward saved for backward (inputs, masks, outputs)."""
        self.__dict__.clear()
        self.released = True

    @property
    def backend(self) -> B.Backend:
        return B._BACKENDS[self.device]

    @property
    def op_name(self) -> str:
        return _op_name(type(self))

    def __repr__(self) -> str:
        shape = getattr(self, "out_shape", None)
        return f"<{self.op_name} node{'' if shape is None else ' -> ' + str(tuple(shape))}>"
