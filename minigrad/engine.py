"""The engine: walk the graph from an output back to the leaves, applying the chain rule.

``backward`` orders the nodes so that each comes after every node it feeds into, then
visits them from the output towards the inputs. At each node the gradients that reached
its output are summed, the node's ``backward`` turns that sum into one gradient per
input, and each input's gradient goes to the node that made the input (or, for a leaf,
into its ``.grad``). With ``create_graph=False`` the backward formulas run with recording
off; with ``create_graph=True`` they are recorded, so the gradients carry a graph of
their own (higher-order derivatives).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .autograd import Function, set_grad_enabled

if TYPE_CHECKING:
    from .tensor import Tensor


# Callbacks told of every gradient backward hands on: observer(node, slot, target, grad), the
# gradient ``node`` computed for its input ``slot``, on its way to ``target`` (the node that
# made that input, or a leaf). minigrad.viz.explore uses one to show gradients accumulating
# term by term; empty otherwise, and then the loop below does not look at it.
edge_observers: list[Callable[[Function, int, Any, Tensor], None]] = []
# Callbacks run on the gradients each node's backward returns: observer(node, grads).
# minigrad.anomaly uses one to find the first non-finite gradient; empty otherwise.
grad_observers: list[Callable[[Any, Any], None]] = []


class GraphFreedError(RuntimeError):
    """Backward through a graph whose saved values were already freed."""


def topological_order(roots: Iterable[Function]) -> list[Function]:
    """Nodes reachable from ``roots``, inputs before the nodes that use them.

    Iterative depth-first post-order (no recursion limit); children are visited in
    argument order, so the order is the same every run.
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
            while i < len(nxt):  # advance to the next child that is an unvisited node
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



class _Gradients:
    """The gradients of one backward pass, summed where paths meet.

    Gradients are plain Tensors; with ``create_graph=False`` the engine may add into an
    array in place only when it allocated that array itself and no one else holds it
    yet, and a leaf's first ``.grad`` is copied when its array is held elsewhere too
    (a backward may return the same array for two inputs, or a view of its input).
    """

    def __init__(self, create_graph: bool) -> None:
        self.create_graph = create_graph
        self.pending: dict[int, Tensor] = {}  # node id -> the sum of the gradients that reached it
        self.owned = _ArraySet()  # sums allocated here, held only by `pending`
        self.handed = _ArraySet()  # arrays already given to a node's backward or a leaf

    def add(self, existing: Tensor | None, new: Tensor) -> Tensor:
        if existing is None:
            return new
        if self.create_graph:
            return existing + new
        if existing.data in self.owned:
            existing.data += new.data
            return existing
        total = existing + new
        self.owned.add(total.data)
        return total

    def send(self, node: Function, g: Tensor) -> None:
        self.pending[id(node)] = self.add(self.pending.get(id(node)), g)

    def take(self, node: Function) -> Tensor | None:
        g = self.pending.pop(id(node), None)
        if g is not None:
            self.owned.discard(g.data)
            self.handed.add(g.data)
        return g

    def to_leaf(self, t: Tensor, g: Tensor) -> None:
        """``t.grad += g`` (in place when ``t.grad`` carries no graph, as PyTorch)."""
        if t.grad is None:
            data = g.data
            if not self.create_graph and (data in self.handed or getattr(data, "base", None) is not None):
                g = type(g)._make(data.copy(), g.device, False, None)
            self.handed.add(g.data)
            t.grad = g
        else:
            add_to_grad(t, g, self.create_graph)


def add_to_grad(t: Tensor, g: Tensor, create_graph: bool = False) -> None:
    """``t.grad += g`` for a ``t.grad`` that exists: in place when that is safe, i.e. the
    old gradient carries no graph (PyTorch's accumulation rule), else a new tensor."""
    if not create_graph and t.grad._ctx is None and not t.grad.requires_grad:
        t.grad.data += g.data
    else:
        with set_grad_enabled(create_graph):
            t.grad = t.grad + g


def _run_hooks(hooks: list[Callable] | None, g: Tensor) -> Tensor:
    for hook in hooks or ():
        result = hook(g)
        if result is not None:
            g = result
    return g


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
    grads = _Gradients(create_graph)
    captured: list[Tensor | None] = [None] * len(capture or ())
    capture_index = {id(t._ctx if t._ctx is not None else t): i for i, t in enumerate(capture or ())}

    def deliver(target: Any, g: Tensor) -> None:
        """The gradient of a node's output, or of a leaf, arrives at ``target``."""
        i = capture_index.get(id(target))
        if i is not None:
            captured[i] = grads.add(captured[i], g)
        if isinstance(target, Function):
            if target.retained is not None and capture is None and (t := target.retained()) is not None:
                grads.to_leaf(t, g if create_graph else g.detach())
            return
        if capture is None:
            grads.to_leaf(target, g)

    starts = []
    for root, g in zip(roots, root_grads):
        grads.handed.add(g.data)
        if root._ctx is None:
            deliver(root, _run_hooks(root._hooks, g))
        else:
            grads.send(root._ctx, g)
            starts.append(root._ctx)

    watch = tuple(edge_observers)
    with set_grad_enabled(create_graph):
        for node in reversed(topological_order(starts)):
            if node.released:
                raise GraphFreedError(
                    f"{node.op_name}: trying to backward through the graph a second time (or after "
                    "its saved values were freed). Saved values are freed by backward() and "
                    "minigrad.grad(); pass retain_graph=True to the first call to keep them."
                )
            g = grads.take(node)
            if g is not None:
                g = _run_hooks(node.hooks, g)
                deliver(node, g)
                input_grads = node.backward(g)
                if grad_observers:
                    for observer in grad_observers:
                        observer(node, input_grads)
                for i, (target, ig) in enumerate(zip(node.next, _as_tuple(node, input_grads))):
                    if target is None or ig is None:
                        continue
                    _check_shape(node, i, ig)
                    if watch:
                        for observer in watch:
                            observer(node, i, target, ig)
                    if isinstance(target, Function):
                        grads.send(target, ig)
                    else:
                        deliver(target, _run_hooks(target._hooks, ig))
            if not retain_graph:
                node.release()
    return captured if capture is not None else None


def _as_tuple(node: Function, grads: Any) -> tuple:
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) != len(node.next):
        raise RuntimeError(f"{node.op_name}: backward returned {len(grads)} gradients for {len(node.next)} inputs")
    return grads


def _check_shape(node: Function, index: int, grad: Tensor) -> None:
    shape = tuple(node.in_shapes[index])
    if grad.data.shape != shape:
        raise RuntimeError(
            f"{node.op_name}: backward returned a gradient of shape {grad.shape} for input {index} "
            f"of shape {shape} (a bug in the op's backward)"
        )


class _ArraySet:
    """A set of arrays by identity that does not keep them alive.

    Holding the arrays would keep every intermediate gradient alive until backward ends;
    remembering bare ``id``s would be wrong once an array is freed and a new one reuses
    its id. A weak reference does neither; array types without weak references are held
    strongly.
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

    def discard(self, array: Any) -> None:
        if array in self:
            del self._refs[id(array)]

    def __contains__(self, array: Any) -> bool:
        ref = self._refs.get(id(array))
        return ref is not None and ref() is array


class _StrongRef:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> Any:
        return self.value


# ---- the public entry points ----------------------------------------------------------------
def _root_gradient(t: Tensor, gradient: Any, what: str) -> Tensor:
    if gradient is None:
        if t.data.size != 1:
            raise RuntimeError(
                f"{what}: grad can be created implicitly only for scalar outputs, but the "
                f"output has shape {t.shape}; pass gradient= (a tensor of that shape)"
            )
        return type(t)._make(t.backend.xp.ones_like(t.data), t.device, False, None)
    if not isinstance(gradient, type(t)):
        gradient = type(t)(gradient, dtype=t.dtype, device=t.device)
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
    outs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    ins = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if grad_outputs is None or not isinstance(grad_outputs, (list, tuple)):
        if grad_outputs is not None and len(outs) != 1:
            raise ValueError("grad: pass one grad_output per output")
        gouts = [grad_outputs] * len(outs)
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
