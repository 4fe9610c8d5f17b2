"""CPU threads for minigrad's own array kernels (the NumPy backend).

NumPy runs a matrix multiplication on every core (through its BLAS), but every
elementwise pass (``a + b``, ``exp``, ``x > 0``, a row mean) on one. In a Transformer
step those passes are a third of the time, so the fused ops (layer norm, attention
weights, ReLU, ...) split their work by rows: :func:`run_rows` calls a *kernel*
``kernel(lo, hi)`` on ``[lo, hi)`` slices of the leading axis, one slice per thread.
NumPy releases the GIL inside its loops, so the slices really run at once.

Rules a kernel follows, so the result is the same for any number of threads:

* it reads its inputs' rows ``lo:hi`` and writes only its own rows of outputs that the
  op allocated before the call (``out[lo:hi] = ...``);
* a sum over rows (a bias gradient, say) is returned per slice and added up by the
  caller in slice order. The slices depend only on the thread count, so a run is
  reproducible for a given :func:`get_num_threads`.

Threads are used only when a call has enough work (``work`` elements, at least
``MIN_WORK_PER_THREAD`` per thread): for small arrays handing a slice to another thread
costs more than it saves.

The thread count defaults to the CPUs this process may use; ``MINIGRAD_NUM_THREADS`` or
:func:`set_num_threads` change it (1 turns the threads off). It does not change NumPy's
BLAS threads (``threadpoolctl`` does that).

One interaction matters on small machines: after a matrix multiplication, OpenBLAS keeps
its worker threads spinning for a while (about 0.1 s by default), and they would compete
with these threads for the cores. ``minigrad/__init__.py`` therefore sets
``OPENBLAS_THREAD_TIMEOUT`` (how long they spin) to a short value when NumPy is not
loaded yet; if you import NumPy first, set it yourself (``OPENBLAS_THREAD_TIMEOUT=16``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

MIN_WORK_PER_THREAD = 1 << 18  # array elements; below this a slice is not worth a thread

# OpenBLAS reads this when NumPy loads it: idle BLAS threads spin 2**16 cycles (~25 us), then sleep.
OPENBLAS_SPIN_SETTING = ("OPENBLAS_THREAD_TIMEOUT", "16")


def _default_threads() -> int:
    env = os.environ.get("MINIGRAD_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"MINIGRAD_NUM_THREADS must be a positive integer, got {env!r}")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_state: dict[str, Any] = {"threads": _default_threads(), "pool": None}
_pool_lock = threading.Lock()
_inside = threading.local()  # set while a thread runs a slice: nested calls run serially


def get_num_threads() -> int:
    """How many threads minigrad's CPU kernels use (1: no threads)."""
    return _state["threads"]


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for minigrad's CPU kernels (like ``torch.set_num_threads``)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    if getattr(_inside, "active", False):
        raise RuntimeError("set_num_threads: cannot be called from inside a kernel that run_rows is running")
    if n != _state["threads"]:
        pool = _state["pool"]
        _state["pool"] = None
        if pool is not None:
            pool.shutdown(wait=True)
        _state["threads"] = n


def _pool() -> ThreadPoolExecutor:
    with _pool_lock:  # two user threads may ask at once
        pool = _state["pool"]
        if pool is None:  # the calling thread works too, so it needs threads - 1 helpers
            pool = ThreadPoolExecutor(_state["threads"] - 1, thread_name_prefix="minigrad")
            _state["pool"] = pool
        return pool


def slices(rows: int, work: int) -> list[tuple[int, int]]:
    """The ``(lo, hi)`` row ranges :func:`run_rows` would use for this call."""
    parts = min(_state["threads"], rows, max(1, work // MIN_WORK_PER_THREAD))
    if parts <= 1 or getattr(_inside, "active", False):
        return [(0, rows)]
    bounds = [rows * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _run_slice(kernel: Callable[[int, int], Any], lo: int, hi: int) -> Any:
    _inside.active = True
    try:
        return kernel(lo, hi)
    finally:
        _inside.active = False


def run_rows(kernel: Callable[[int, int], Any], rows: int, work: int) -> list[Any]:
    """Call ``kernel(lo, hi)`` for slices covering rows ``[0, rows)``; return their results in order.

    ``work`` is the number of array elements the whole call touches (it decides whether
    threads pay off). The calling thread runs the first slice itself.
    """
    if work < 2 * MIN_WORK_PER_THREAD or _state["threads"] == 1:  # the common small case, quickly
        return [kernel(0, rows)]
    parts = slices(rows, work)
    if len(parts) == 1:
        return [kernel(0, rows)]
    pool = _pool()
    futures: list[Future] = [pool.submit(_run_slice, kernel, lo, hi) for lo, hi in parts[1:]]
    try:
        first = _run_slice(kernel, *parts[0])
    finally:
        wait(futures)  # every slice has finished before anything is reused, even after an error
    return [first, *[f.result() for f in futures]]


def add_partials(parts: list[Any]) -> Any:
    """Add per-slice partial results in slice order (a new array when there is one slice)."""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total
