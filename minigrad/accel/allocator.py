"""glibc malloc settings for a process that trains with NumPy (Linux with glibc only).

NumPy takes every array's memory from ``malloc`` and frees it when the last reference
goes, so a training step allocates and frees the same large temporaries (activations,
gradients) step after step. With glibc's defaults that memory goes back to the kernel
between steps, and the kernel must hand out (fault in) and zero fresh pages the next
time:

* blocks above ``M_MMAP_THRESHOLD`` (128 KiB at start, raised adaptively up to 32 MiB
  as such blocks are freed) get pages of their own with ``mmap``, returned on ``free``;
* free memory at the top of the heap beyond ``M_TRIM_THRESHOLD`` (adaptive as well) is
  returned to the kernel.

A training step alone in its process pays thousands of page faults a step with the
defaults, and almost none with :func:`keep_freed_memory` (docs/performance.md has the
figures). In a process that also runs PyTorch, PyTorch's own large blocks raise glibc's
adaptive thresholds early, which hides this cost from a side-by-side benchmark.

Two settings, both process-wide:

* :func:`keep_freed_memory`, applied by ``minigrad.accel.enable()``: blocks up to 32 MiB come
  from the heap and up to 1 GiB of freed memory stays there for reuse. The peak memory
  of a step does not change (the next step reuses the same pages); the difference is
  that the process keeps its peak until it exits instead of handing it back between
  steps. ``MINIGRAD_MALLOC_TUNING=0`` leaves glibc alone, and so does any ``MALLOC_*``
  or ``GLIBC_TUNABLES`` setting of your own;
* :func:`share_the_main_heap`, applied when minigrad starts its worker threads: by
  default each new thread gets a heap of its own that hands freed memory back eagerly,
  and a worker that allocates the same arrays every step (a chunk under data
  parallelism) faulted them in again every step.

See ``man mallopt`` (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_ARENA_MAX).
"""

from __future__ import annotations

import ctypes
import os
import platform
from typing import Any

# glibc's mallopt parameters
M_TRIM_THRESHOLD = -1  # free memory at the top of the heap kept before returning it
M_MMAP_THRESHOLD = -3  # blocks at least this large get pages of their own (mmap)
M_ARENA_MAX = -8  # how many heaps ("arenas") threads may use

# 32 MiB is the largest mmap threshold every glibc accepts (older ones reject more, and
# a rejected value would leave the threshold at 128 KiB); the largest temporary of the
# benchmark's medium model is 8 MiB
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024 * 1024 * 1024

TUNING_SETTING = "MINIGRAD_MALLOC_TUNING"  # "0": leave glibc's thresholds alone
HEAP_SETTING = "MINIGRAD_SHARED_HEAP"  # "0": leave glibc's per-thread heaps alone
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def _mallopt() -> Any:
    """glibc's ``mallopt`` through ctypes, or None (another C library, or none found)."""
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return mallopt


_status = ["not applied (keep_freed_memory was not called)"]


def status() -> str:
    """One line: whether :func:`keep_freed_memory` changed glibc's thresholds, or why not."""
    return _status[0]


def _set_by_the_user() -> bool:
    """Whether the environment already sets glibc's malloc thresholds."""
    return any(k in os.environ for k in _USER_SETTINGS) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")


def keep_freed_memory() -> bool:
    """Keep freed blocks up to 32 MiB in the heap for reuse (see the module docstring).

    Returns True when both thresholds were set; False when declined
    (``MINIGRAD_MALLOC_TUNING=0``, the user's own ``MALLOC_*``/``GLIBC_TUNABLES``
    settings, or not glibc).
    """
    if os.environ.get(TUNING_SETTING, "1") == "0":
        _status[0] = f"off ({TUNING_SETTING}=0: glibc's defaults)"
        return False
    if _set_by_the_user():
        _status[0] = "off (the environment sets glibc's malloc variables; minigrad leaves them)"
        return False
    mallopt = _mallopt()
    if mallopt is None:
        _status[0] = "off (not glibc)"
        return False
    # the mmap threshold first: setting either one stops glibc adapting both
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1 or mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
        _status[0] = "off (glibc's mallopt refused the thresholds)"
        return False
    _status[0] = "on (minigrad set glibc's mmap threshold to 32 MiB and trim threshold to 1 GiB)"
    return True


def share_the_main_heap() -> bool:
    """Let threads started from now on allocate from the main heap.

    By default glibc gives each new thread a heap of its own, and such a heap hands freed
    memory back to the operating system eagerly. A worker thread that allocates the same
    arrays step after step (a chunk's activations under data parallelism) then faults its
    memory in again every step (docs/performance.md). ``mallopt(M_ARENA_MAX, 1)`` makes new
    threads use the main heap, which keeps freed memory for reuse; its lock costs little,
    since NumPy allocates a few large arrays per op. Called when minigrad starts its worker
    threads (``minigrad.accel.threads``); ``MINIGRAD_SHARED_HEAP=0`` leaves it alone.
    Returns True when it was set.
    """
    if os.environ.get(HEAP_SETTING, "1") == "0":
        return False
    mallopt = _mallopt()
    return mallopt is not None and mallopt(M_ARENA_MAX, 1) == 1
