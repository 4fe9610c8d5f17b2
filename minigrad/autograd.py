"""Reverse-mode automatic differentiation: the graph and the engine that walks it.

Every differentiable op is a subclass of :class:`Function` with two halves:

* ``forward(*arrays, **params) -> array`` computes on raw backend arrays
  (the backend boundary: fast, no graph);
* ``backward(grad) -> grads`` receives the upstream gradient as a :class:`Tensor` and
  returns one gradient per input, written with Tensor ops (the autograd boundary).

Because ``backward`` is written with Tensor ops, running it with gradient recording on
(``create_graph=True``) builds a graph of the backward pass itself, so second-order
gradients need no extra code.

Each op application creates one *node* (the Function instance) with exactly one output.
A node points to where its inputs came from (``node.next``): another node, a leaf tensor
that requires grad, or ``None`` for constants. Nodes hold no reference to their output,
so a graph is freed by reference counting as soon as nothing holds its root.

The engine orders nodes with an iterative depth-first search (no recursion limit,
deterministic: inputs are visited in argument order), then walks them from the root
towards the leaves, summing the gradients that meet at each node.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from . import backend as B

if TYPE_CHECKING:
    from .tensor import Tensor
else:
    Tensor = None  # set by minigrad.tensor once the class exists (the two modules need each other)


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


# ---- errors ----------------------------------------------------------------------------
class GraphFreedError(RuntimeError):
    """Backward through a graph whose saved values were already freed."""


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
        "hooks",
        "retained",
        "released",
        "meta",
    )
    name: str = ""
    saves_inputs = True
    check_dtypes = True
    # Optional: the same derivative on raw arrays, `backward_array(self, g_array) -> arrays`.
    # The engine uses it for first-order gradients (no graph of the backward is needed), where
    # it skips building Tensors for every intermediate; `backward` stays the definition and is
    # used whenever create_graph=True. tests/test_fast_backward.py checks that both agree.
    backward_array = None

    # ---- the two halves an op defines ------------------------------------------------
    def forward(self, *arrays: Any, **params: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, grad: Tensor) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    # ---- helpers for backward --------------------------------------------------------
    def const(self, array: Any) -> Tensor:
        """Wrap an array saved in forward as a constant Tensor (no gradient flows into it)."""

        return Tensor._make(array, self.device, False, None)

    def saved_output(self) -> Tensor:
        """The op's output, for backward formulas that use it (exp, tanh, softmax...).

        Save it in forward with ``self.out = result``. The returned Tensor shares the
        output's data; when gradients are being recorded (``create_graph=True``) it is
        attached to this very node, so second-order gradients flow through it correctly
        without the node ever holding its output (which would create a reference cycle).
        """

        record = _thread_state.enabled
        return Tensor._make(self.out, self.device, record, self if record else None)

    # ---- helpers for array kernels (forward, backward_array) ----------------------------
    def run_rows(self, kernel: Callable[[int, int], Any], rows: int, work: int) -> list[Any]:
        """``kernel(lo, hi)`` over slices of rows ``[0, rows)``, on several CPU threads when
        ``work`` (elements touched) is large; the results in slice order.
        See ``minigrad.parallel`` for the rules a kernel follows."""
        return B._BACKENDS[self.device].run_rows(kernel, rows, work)

    def sum_rows(self, a: Any) -> Any:
        """``a.sum(axis=0)`` for a 2-D array, the backend's fastest way (a BLAS product on the CPU)."""
        return self.backend.col_sum(a)

    def run_batch(self, kernel: Callable[..., Any], arrays: Sequence[Any], shape: tuple[int, ...]) -> None:
        """``kernel(*arrays)`` for a batched computation whose result has ``shape``.

        On the CPU, slices of the batch (axis 0) run on threads: each array with ``shape``'s
        rank and batch size is sliced, the others (None, or broadcast along axis 0) are
        passed whole. The kernel writes its results into output arrays among ``arrays``.
        """
        batch = shape[0] if len(shape) >= 3 else 0
        if batch < 2 or not self.backend.threaded:  # one call; on a GPU each slice costs CPU time
            kernel(*arrays)
            return
        ndim = len(shape)

        def rows(lo: int, hi: int) -> None:
            kernel(*[a if a is None or a.ndim < ndim or a.shape[0] != batch else a[lo:hi] for a in arrays])

        self.run_rows(rows, batch, 3 * math.prod(shape))

    def elementwise(self, kernel: Callable[..., Any], *arrays: Any) -> Any:
        """A new array like ``arrays[0]``, filled slice by slice by ``kernel(out, *inputs)``.

        All arrays have one shape; the kernel writes ``out`` (some rows of the result) from
        the same rows of the inputs, e.g. ``xp.maximum(a, 0, out=out)``.
        """
        first = arrays[0]
        out = self.xp.empty_like(first)
        if first.ndim == 0 or not self.backend.threaded:  # one call over everything
            kernel(out, *arrays)
            return out

        def rows(lo: int, hi: int) -> None:
            kernel(out[lo:hi], *[a[lo:hi] for a in arrays])

        self.run_rows(rows, first.shape[0], first.size * (len(arrays) + 1))
        return out

    # ---- applying an op ----------------------------------------------------------------
    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run forward on the inputs' arrays and, when needed, record a graph node."""

        device = inputs[0].device
        for t in inputs:
            if t.device != device:
                check_same_device(_op_name(cls), inputs)
        if cls.check_dtypes and len(inputs) > 1:
            dtype = inputs[0].data.dtype
            for t in inputs:
                if t.data.dtype != dtype:
                    check_same_float_dtype(_op_name(cls), inputs)
                    break
        fn = cls.__new__(cls)
        backend = B._BACKENDS[device]
        fn.xp = backend.xp
        fn.device = device
        if cls.saves_inputs:
            fn.inputs = inputs
        out = fn.forward(*[t.data for t in inputs], **params)
        if type(out) is not backend.array_type:
            out = backend.normalize(out)
        requires_grad = False
        if _thread_state.enabled:
            for t in inputs:
                if t.requires_grad:
                    requires_grad = True
                    break
        if not requires_grad:
            return Tensor._make(out, device, False, None)
        fn.next = tuple((t._ctx if t._ctx is not None else t) if t.requires_grad else None for t in inputs)
        fn.needs_input_grad = tuple(t.requires_grad for t in inputs)
        fn.in_shapes = tuple(t.data.shape for t in inputs)
        fn.scope = _thread_state.scope_tuple[-1]
        fn.out_shape = out.shape
        fn.out_dtype = out.dtype
        fn.hooks = None
        fn.retained = None
        fn.released = False
        fn.meta = None
        result = Tensor._make(out, device, True, fn)
        if node_observers:
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


# ---- the engine --------------------------------------------------------------------------
def _topological_order(roots: Iterable[Function]) -> list[Function]:
    """Nodes reachable from ``roots``, every node after all the nodes it feeds into
    have been listed... reversed: the returned list has inputs before users.

    Iterative depth-first post-order; children are visited in argument order, so the
    order is the same every run.
    """
    order: list[Function] = []
    visited: set[int] = set()
    for root in roots:
        if id(root) in visited:
            continue
        visited.add(id(root))
        stack: list[tuple[Function, int]] = [(root, 0)]
        while stack:
            node, i = stack[-1]
            nxt = node.next
            # advance to the next child that is an unvisited node
            while i < len(nxt):
                child = nxt[i]
                i += 1
                if isinstance(child, Function) and id(child) not in visited:
                    visited.add(id(child))
                    stack[-1] = (node, i)
                    stack.append((child, 0))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def _check_grad_shape(node_name: str, index: int, grad: Tensor, shape: tuple[int, ...]) -> None:
    if grad.shape != tuple(shape):
        raise RuntimeError(
            f"{node_name}: backward returned a gradient of shape {grad.shape} for input {index} "
            f"of shape {tuple(shape)} (a bug in the op's backward)"
        )


class _ArraySet:
    """A set of arrays by identity that does not keep them alive.

    The engine must know which arrays it already handed out (to copy rather than alias)
    and which sums it allocated itself (safe to add into in place). Holding the arrays
    would keep every intermediate gradient alive until backward ends; remembering bare
    ``id``s would be wrong once an array is freed and a new one reuses its id. A weak
    reference does neither; array types without weak references are held strongly.
    """

    __slots__ = ("_refs",)

    def __init__(self) -> None:
        self._refs: dict[int, Callable[[], Any]] = {}

    def add(self, array: Any) -> None:
        try:
            ref = weakref.ref(array)
        except TypeError:
            ref = _StrongRef(array)
        self._refs[id(array)] = ref

    def __contains__(self, array: Any) -> bool:
        ref = self._refs.get(id(array))
        return ref is not None and ref() is array


class _StrongRef:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> Any:
        return self.value


def add_to_grad(t: Tensor, g: Tensor, create_graph: bool = False) -> None:
    """``t.grad += g`` for a ``t.grad`` that exists: in place when that is safe, i.e. the
    old gradient carries no graph (PyTorch's accumulation rule), else a new tensor."""
    if not create_graph and t.grad._ctx is None and not t.grad.requires_grad:
        t.grad.data += g.data
    else:
        with set_grad_enabled(create_graph):
            t.grad = t.grad + g


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor] | None = None,
) -> list[Tensor | None] | None:
    """Backpropagate ``root_grads`` from ``roots``.

    Without ``capture`` gradients accumulate into the ``.grad`` of leaves (and of tensors
    that called ``retain_grad``). With ``capture`` (used by :func:`grad`) nothing is
    written to ``.grad``; the gradients of the captured tensors are returned instead.
    """

    grads: dict[int, Tensor] = {}
    nodes: list[Function] = []
    # Arrays already handed to some destination in this pass; a leaf that would receive
    # one of them gets a copy, so gradients never alias one another.
    handed = _ArraySet()

    capture_nodes: dict[int, int] = {}
    capture_leaves: dict[int, int] = {}
    captured: list[Tensor | None] = []
    if capture is not None:
        for i, t in enumerate(capture):
            if t._ctx is not None:
                capture_nodes[id(t._ctx)] = i
            else:
                capture_leaves[id(t)] = i
        captured = [None] * len(capture)

    summed = _ArraySet()  # arrays that add_to allocated: nobody else holds them

    def add_to(existing: Tensor | None, new: Tensor) -> Tensor:
        if existing is None:
            return new
        if create_graph:
            return existing + new
        if existing.data in summed:
            existing.data += new.data
            return existing
        total = Tensor._make(existing.data + new.data, existing.device, False, None)
        summed.add(total.data)
        return total

    def owned(g: Tensor) -> Tensor:
        data = g.data
        if create_graph:
            return g
        if data in handed or getattr(data, "base", None) is not None:
            g = Tensor._make(data.copy(), g.device, False, None)
        handed.add(g.data)
        return g

    def accumulate_into(t: Tensor, g: Tensor) -> None:
        if t.grad is None:
            t.grad = owned(g) if not create_graph else g
        else:
            add_to_grad(t, g, create_graph)

    def deliver_leaf(leaf: Tensor, g: Tensor) -> None:
        if leaf._hooks:
            for hook in leaf._hooks:
                result = hook(g)
                if result is not None:
                    g = result
        if capture is not None:
            i = capture_leaves.get(id(leaf))
            if i is not None:
                captured[i] = add_to(captured[i], g)
            return
        accumulate_into(leaf, g)

    for root, g in zip(roots, root_grads):
        handed.add(g.data)
        if root._ctx is None:
            deliver_leaf(root, g)
        else:
            node = root._ctx
            grads[id(node)] = add_to(grads.get(id(node)), g)
            nodes.append(node)

    order = _topological_order(nodes)
    with set_grad_enabled(create_graph):
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if node.released:
                raise GraphFreedError(
                    f"{node.op_name}: trying to backward through the graph a second time (or after "
                    "its saved values were freed). Saved values are freed by backward() and "
                    "minigrad.grad(); pass retain_graph=True to the first call to keep them."
                )
            if g is None:  # no gradient reached this node
                if not retain_graph:
                    node.release()
                continue
            if node.hooks:
                for hook in node.hooks:
                    result = hook(g)
                    if result is not None:
                        g = result
            if capture is not None:
                i = capture_nodes.get(id(node))
                if i is not None:
                    captured[i] = add_to(captured[i], g)
            elif node.retained is not None:
                t = node.retained()
                if t is not None:
                    accumulate_into(t, g if create_graph else g.detach())
            handed.add(g.data)
            fast = None if create_graph else type(node).backward_array
            if fast is not None:
                input_grads = _wrap_arrays(node, fast(node, g.data))
            else:
                input_grads = node.backward(g)
                if not isinstance(input_grads, tuple):
                    input_grads = (input_grads,)
            nxt = node.next
            if len(input_grads) != len(nxt):
                raise RuntimeError(
                    f"{node.op_name}: backward returned {len(input_grads)} gradients for {len(nxt)} inputs"
                )
            for i, (target, ig) in enumerate(zip(nxt, input_grads)):
                if target is None or ig is None:
                    continue
                if ig.data.shape != node.in_shapes[i]:
                    _check_grad_shape(node.op_name, i, ig, node.in_shapes[i])
                if isinstance(target, Function):
                    key = id(target)
                    existing = grads.get(key)
                    if existing is None:
                        grads[key] = ig
                        handed.add(ig.data)
                    else:
                        grads[key] = add_to(existing, ig)
                else:
                    deliver_leaf(target, ig)
            if not retain_graph:
                node.release()
    return captured if capture is not None else None


def _wrap_arrays(node: Function, arrays: Any) -> tuple[Tensor | None, ...]:
    """Tensors (outside any graph) for the raw gradients a ``backward_array`` returned."""

    if not isinstance(arrays, tuple):
        arrays = (arrays,)
    backend = B._BACKENDS[node.device]
    out = []
    for a in arrays:
        if a is None:
            out.append(None)
        else:
            if type(a) is not backend.array_type:
                a = backend.normalize(a)
            out.append(Tensor._make(a, node.device, False, None))
    return tuple(out)


def _root_gradient(t: Tensor, gradient: Any, what: str) -> Tensor:

    if gradient is None:
        if t.data.size != 1:
            raise RuntimeError(
                f"{what}: grad can be created implicitly only for scalar outputs, but the "
                f"output has shape {t.shape}; pass gradient= (a tensor of that shape)"
            )
        return Tensor._make(t.backend.xp.ones_like(t.data), t.device, False, None)
    if not isinstance(gradient, Tensor):
        gradient = Tensor(gradient, dtype=t.dtype, device=t.device)
    if gradient.shape != t.shape:
        raise RuntimeError(f"{what}: gradient has shape {gradient.shape} but the output has shape {t.shape}")
    if gradient.device != t.device:
        raise RuntimeError(f"{what}: gradient is on device {gradient.device} but the output is on {t.device}")
    if gradient.dtype != t.dtype:
        raise TypeError(f"{what}: gradient has dtype {gradient.dtype} but the output has dtype {t.dtype}")
    return gradient


def backward(
    tensor: Tensor,
    gradient: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> None:
    """Accumulate d(tensor)/d(leaf) into every leaf's ``.grad``; see ``Tensor.backward``."""
    if not tensor.requires_grad:
        raise RuntimeError(
            "backward: the tensor does not require grad and has no graph "
            "(was it computed under no_grad, or from tensors without requires_grad=True?)"
        )
    g = _root_gradient(tensor, gradient, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    run_backward([tensor], [g], retain_graph, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated).

    As ``torch.autograd.grad``: with ``create_graph=True`` the returned gradients carry
    a graph, so they can be differentiated again (higher-order gradients).
    """

    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        gouts = [grad_outputs] * len(outs) if len(outs) == 1 or grad_outputs is None else None
        if gouts is None:
            raise ValueError("grad: pass one grad_output per output")
    else:
        gouts = list(grad_outputs)
    if len(gouts) != len(outs):
        raise ValueError(f"grad: got {len(outs)} outputs but {len(gouts)} grad_outputs")
    for i, t in enumerate(ins):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) does not require grad")
    for i, t in enumerate(outs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: output {i} (shape {t.shape}) does not require grad")
    root_grads = [_root_gradient(o, g, "grad") for o, g in zip(outs, gouts)]
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(outs, root_grads, retain_graph, create_graph, capture=ins)
    assert result is not None
    for i, r in enumerate(result):
        if r is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} (shape {ins[i].shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
    return tuple(result)


def register_node_hook(node: Function, hook: Callable) -> None:
    if node.hooks is None:
        node.hooks = []
    node.hooks.append(hook)


def retain(node: Function, tensor: Tensor) -> None:
    node.retained = weakref.ref(tensor)
