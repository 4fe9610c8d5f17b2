"""The acceleration layer: faster implementations beneath the reference ops, opt-in.

    import minigrad
    minigrad.accel.enable()     # or MINIGRAD_ACCEL=1 in the environment
    print(minigrad.accel.status())

Nothing here runs at import. :func:`enable` registers, for each op that has one, a
faster implementation beneath the same op (``minigrad.registry``): numba kernels on the
CPU (``minigrad.accel.cpu``, the ``fast`` extra), CuPy kernels on a GPU
(``minigrad.accel.cuda``). Each is a subclass of its reference op with the same
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

_state: dict[str, Any] = {"enabled": False, "parts": {}, "kernel_threads": 1}


def enable(*, malloc: bool = True) -> str:
    """Turn the acceleration on; returns :func:`status`. Safe to call again.

    ``malloc=False`` leaves glibc's malloc settings alone.
    """
    from . import ops  # the accelerated ops; importing them compiles nothing

    parts: dict[str, str] = {}
    registry.clear()
    parts["cpu"] = ops.register_cpu(_state["kernel_threads"])
    parts["cuda"] = ops.register_cuda()
    if malloc:
        allocator.keep_freed_memory()
    parts["malloc"] = allocator.status()
    threads.allow(True)
    parts["threads"] = _threads_part()
    _state.update(enabled=True, parts=parts)
    return status()


def disable() -> None:
    """Back to the reference implementations (glibc's malloc settings stay as they are)."""
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
    return "acceleration on: " + ", ".join(f"{name} {parts[name]}" for name in ("cpu", "cuda") if name in parts)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for data parallelism and large stacks of matrix products (like
    ``torch.set_num_threads``); the numba kernels have their own count, :func:`set_kernel_threads`."""
    threads.set_num_threads(n)
    if _state["enabled"]:
        _state["parts"]["threads"] = _threads_part()


def _threads_part() -> str:
    return f"{threads.get_num_threads()} (set_num_threads; data_parallel_backward runs chunks on them)"


def set_kernel_threads(n: int) -> None:
    """Split each numba kernel's rows over ``n`` threads (default 1).

    One thread is the default because a kernel split over OpenMP threads stalls whenever
    another thread holds a core (another framework's spinning threads, the BLAS, a busy
    machine), and the kernels are short; docs/performance.md has the measurements.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_kernel_threads: expected a positive integer, got {n!r}")
    _state["kernel_threads"] = n
    from .ops import kernels_for  # the accelerated ops; importing them compiles nothing

    kernels = kernels_for("cpu")
    if kernels is not None:
        kernels.set_threads(n)
        _state["parts"]["cpu"] = f"on (numba {kernels.version()}, {kernels.get_threads()} kernel threads)"


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
