"""Data parallelism on CPU threads: split a batch, backpropagate the chunks at once.

A mean loss over a batch is a weighted sum of the chunks' mean losses, and a gradient
is linear, so for chunks c_1..c_k of the batch with weights w_i (the chunk's share of
the examples the loss averages over):

    L = sum_i w_i * L(c_i)        dL/dp = sum_i w_i * dL(c_i)/dp

Each chunk's forward and backward is an independent graph that only reads the
parameters, so the chunks can run on separate threads; the gradients are added in
chunk order at the end (the same sums for any number of threads).

Why it pays on a CPU: splitting the batch hands work to another thread once per step,
instead of once per op. The chunks run on threads only when the acceleration is on
(``minigrad.accel.enable()``) and ``threadpoolctl`` can hold NumPy's BLAS to one thread
during the chunks (two threads each asking a multi-threaded BLAS for products slow each
other down); otherwise they run one after the other, with the same result. The Python
work of the ops still takes turns on the GIL, so a model whose step is mostly Python
(tiny arrays) gets slower, not faster: ``benchmarks/encoder_step.py --data-parallel``
measures it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .. import backend as B
from ..engine import add_to_grad, grad
from ..tensor import Tensor
from . import threads
from .ops import kernels_for


def data_parallel_backward(
    loss_fn: Callable[[Any], Tensor],
    chunks: Sequence[Any],
    params: Sequence[Tensor],
    weights: Sequence[float] | None = None,
) -> Tensor:
    """Run ``loss_fn(chunk)`` and its backward for every chunk on its own thread, and add
    ``sum_i weights[i] * d loss_fn(chunks[i]) / d p`` into ``p.grad`` of every parameter
    (as ``loss.backward()`` of the weighted sum of the chunks' losses would).

    Args:
        loss_fn: maps one chunk (whatever ``chunks`` holds: tensors, a tuple, a batch
            object) to a scalar loss tensor.
        chunks: the pieces of the batch, processed in this order.
        params: the tensors to differentiate (those without ``requires_grad`` are skipped);
            parameters a chunk does not use get no contribution from it.
        weights: each chunk's weight; by default ``1 / len(chunks)`` each (right for a mean
            loss over equal chunks). For chunks of different sizes pass their shares.

    Returns the weighted loss, a tensor without a graph. With the acceleration on, the
    chunks run on up to ``minigrad.get_num_threads()`` threads on the CPU; otherwise (and
    on other devices, when NumPy's BLAS cannot be limited to one thread, or when called
    from inside a minigrad thread) one after the other, with the same result. Hooks on
    parameters run once per chunk, with that chunk's gradient.
    """
    chunks = list(chunks)
    if not chunks:
        raise ValueError("data_parallel_backward: no chunks")
    if weights is None:
        weights = [1.0 / len(chunks)] * len(chunks)
    weights = [float(w) for w in weights]
    if len(weights) != len(chunks):
        raise ValueError(f"data_parallel_backward: {len(chunks)} chunks but {len(weights)} weights")
    targets: list[Tensor] = []
    seen: set[int] = set()
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"data_parallel_backward: params must be Tensors, got {type(p).__name__}")
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            targets.append(p)
    if not targets:
        raise ValueError("data_parallel_backward: no parameter requires grad")
    backend = B.get_backend(targets[0].device)

    def run_chunk(i: int) -> tuple[float, Any, tuple[Tensor | None, ...]]:
        loss = loss_fn(chunks[i])
        if not isinstance(loss, Tensor) or loss.data.size != 1:
            shape = getattr(loss, "shape", type(loss).__name__)
            raise ValueError(f"data_parallel_backward: loss_fn must return a scalar Tensor, got {shape} for chunk {i}")
        if not loss.requires_grad:
            raise RuntimeError(f"data_parallel_backward: the loss of chunk {i} does not depend on any parameter")
        weight = Tensor._make(backend.xp.full(loss.shape, weights[i], dtype=loss.dtype), loss.device, False, None)
        grads = grad(loss, targets, grad_outputs=weight, allow_unused=True)
        return float(loss.item()) * weights[i], loss.dtype, grads

    def run_slice(lo: int, hi: int) -> list[tuple[float, Any, tuple[Tensor | None, ...]]]:
        return [run_chunk(i) for i in range(lo, hi)]

    results = _run_on_threads(targets[0].device, run_slice, len(chunks))
    _accumulate(targets, [r[2] for r in results])
    total = sum(r[0] for r in results)
    return Tensor._make(backend.xp.asarray(total, dtype=results[0][1]), targets[0].device, False, None)


def _run_on_threads(device: str, run_slice: Callable[[int, int], list], count: int) -> list:
    """The chunks' results in order: on threads when that is safe, else one after the other."""
    if not threads.allowed() or device != "cpu" or min(threads.get_num_threads(), count) < 2:
        return run_slice(0, count)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return run_slice(0, count)
    kernels = kernels_for("cpu")

    def run_here(lo: int, hi: int) -> list:
        if kernels is not None:
            kernels.use_in_this_thread(1)  # the chunks are the threads' work: one thread each inside
        return run_slice(lo, hi)

    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return [r for part in threads.run_jobs(run_here, count) for r in part]
    finally:
        if kernels is not None:
            kernels.use_in_this_thread()  # the calling thread ran a slice too


def _accumulate(targets: list[Tensor], per_chunk: list[tuple[Tensor | None, ...]]) -> None:
    """``p.grad += sum over chunks`` (chunk order), never aliasing one array into two grads."""
    used: set[int] = set()
    for j, p in enumerate(targets):
        parts = [g[j].data for g in per_chunk if g[j] is not None]
        if not parts:
            continue
        total = parts[0] + parts[1] if len(parts) > 1 else parts[0]  # a new array when there are two
        for extra in parts[2:]:
            total += extra
        if len(parts) == 1 and id(total) in used:  # the engine may hand one array to two leaves
            total = total.copy()
        used.add(id(total))
        g = Tensor._make(total, p.device, False, None)
        if p.grad is None:
            p.grad = g
        else:
            add_to_grad(p, g)
