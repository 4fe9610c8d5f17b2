"""The acceleration layer: faster implementations beneath the reference ops, opt-in.

    import minigrad
    minigrad.accel.enable()     # or MINIGRAD_ACCEL=1 in the environment
    print(minigrad.accel.status())

Nothing here runs at import. :func:`enable` registers, for each op that has one, a
faster implementation beneath the same op (``minigrad.registry``): numba kernels on the
CPU (``minigrad.accel.cpu``, the ``fast`` extra), CuPy kernels on a GPU
(``minigrad.accel.cuda``). With two or more kernel threads the large matrix products run
as slices on numba's threads too, and NumPy's own BLAS is held to one thread until
:func:`disable` (``minigrad.accel.numba_gemm``). Each is a subclass of its reference op with the same
derivative; where a kernel does not apply (a dtype, a layout) it hands the call to the
reference, and with ``create_graph=True`` backward is always the reference's Tensor-op
backward, so higher-order gradients are unchanged. :func:`enable` also keeps freed
memory in glibc's heap for reuse (``minigrad.accel.allocator``, process-wide) and lets
:func:`data_parallel_backward` run chunks on threads. :func:`disable` returns to the
reference path (the malloc setting stays until the process exits).
"""

from __future__ import annotations

from typing import Any

from .. import registry
from . import allocator, threads
from .data_parallel import data_parallel_backward
from .threads import get_num_threads

_state: dict[str, Any] = {"enabled": False, "parts": {}, "kernel_threads": None}  # None: set_num_threads's count


def enable(*, malloc: bool = True) -> str:
    """Turn the acceleration on; returns :func:`status`. Safe to call again.

    ``malloc=False`` leaves glibc's malloc settings alone.
    """
    from . import ops  # the accelerated ops; importing them compiles nothing

    parts: dict[str, str] = {}
    registry.clear()
    parts["cpu"] = ops.register_cpu(_kernel_threads())
    parts["cuda"] = ops.register_cuda()
    _state["parts"] = parts
    _apply_kernel_threads()
    if malloc:
        allocator.keep_freed_memory()
    parts["malloc"] = allocator.status()
    threads.allow(True)
    parts["threads"] = _threads_part()
    _state.update(enabled=True, parts=parts)
    return status()


def disable() -> None:
    """Back to the reference implementations (glibc's malloc settings stay as they are)."""
    kernels = _cpu_kernels()
    if kernels is not None:
        kernels.use_thread_products(False)  # NumPy's BLAS gets its thread count back
    registry.clear()
    threads.allow(False)
    _state.update(enabled=False, parts={})


def is_enabled() -> bool:
    return _state["enabled"]


def status() -> str:
    """What is on, and why a part is not: one line per part."""
    if not _state["enabled"]:
        return "acceleration: off (the reference path; minigrad.accel.enable() turns it on)"
    lines = ["acceleration: on"] + [f"  {name}: {text}" for name, text in _state["parts"].items()]
    return "\n".join(lines)


def summary() -> str:
    """What :func:`status` says, in one line: "acceleration on: cpu on (...), cuda off (...)"."""
    if not _state["enabled"]:
        return "acceleration off"
    parts = _state["parts"]
    shown = [f"{name} {parts[name]}" for name in ("cpu", "products", "cuda") if name in parts]
    return "acceleration on: " + ", ".join(shown)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for data parallelism and, unless :func:`set_kernel_threads` set a
    count of their own, for the numba kernels and the large matrix products (like
    ``torch.set_num_threads``)."""
    threads.set_num_threads(n)
    if _state["enabled"]:
        _state["parts"]["threads"] = _threads_part()
        if _state["kernel_threads"] is None:
            _apply_kernel_threads()


def _threads_part() -> str:
    return f"{threads.get_num_threads()} (set_num_threads; data_parallel_backward runs chunks on them)"


def set_kernel_threads(n: int | None) -> None:
    """Split each numba kernel, and each large matrix product, over ``n`` threads (None, the
    default: :func:`set_num_threads`'s count, which defaults to the CPUs this process may use;
    one where the products cannot run on numba's threads, see below).

    With two or more, the products run as slices on numba's threads, one BLAS thread each,
    and NumPy's own BLAS is held to one thread while the acceleration is on: one pool of
    threads then runs every pass of a step. (NumPy's BLAS threads spin for a while after
    each product, on the cores numba's threads need; with both pools busy, a kernel split
    over threads waited for a core. docs/performance.md has the measurements.)
    """
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"set_kernel_threads: expected a positive integer or None, got {n!r}")
    _state["kernel_threads"] = n
    if _state["enabled"]:
        _apply_kernel_threads()


def _kernel_threads() -> int:
    n = _state["kernel_threads"]
    return threads.get_num_threads() if n is None else n


def _cpu_kernels() -> Any:
    from .ops import kernels_for  # the accelerated ops; importing them compiles nothing

    return kernels_for("cpu")


def _apply_kernel_threads() -> None:
    """Set the kernel threads, and the products on them; without the products (NumPy's BLAS
    is not OpenBLAS, say), the default count falls back to one kernel thread, since a kernel
    split over threads stalls beside another library's spinning BLAS threads."""
    kernels = _cpu_kernels()
    if kernels is None:
        _state["parts"]["products"] = _products_part()
        return
    kernels.set_threads(_kernel_threads())
    _state["parts"]["products"] = _products_part()
    if _state["kernel_threads"] is None and not _state["parts"]["products"].startswith("on"):
        kernels.set_threads(1)
    _state["parts"]["cpu"] = f"on (numba {kernels.version()}, {kernels.get_threads()} kernel threads)"


def _products_part() -> str:
    """Turn the products on numba's threads on or off as the kernel thread count says; its status line."""
    kernels = _cpu_kernels()
    if kernels is None:
        return "off (the CPU kernels are off)"
    if kernels.get_threads() < 2:
        kernels.use_thread_products(False)
        return "off (one kernel thread: NumPy's BLAS runs the products as it is)"
    why = kernels.use_thread_products(True)
    if why is not None:
        return f"off ({why}: NumPy's BLAS runs the products with its own threads)"
    n = kernels.get_threads()
    return f"on (large matrix products as {n} slices on numba's {n} threads; NumPy's BLAS held to 1 thread)"


__all__ = [
    "data_parallel_backward",
    "disable",
    "enable",
    "get_num_threads",
    "is_enabled",
    "set_kernel_threads",
    "set_num_threads",
    "status",
    "summary",
]
