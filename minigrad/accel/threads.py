"""CPU threads for the acceleration layer: a small pool that runs slices of work at once.

:func:`run_jobs` calls ``kernel(lo, hi)`` on ``[lo, hi)`` slices of a range of jobs, one
slice per thread (``minigrad.data_parallel_backward`` runs the chunks of a batch this
way); NumPy and numba release the GIL inside their loops, so the slices really run at
once. The slices depend only on the thread count, so a run is reproducible for a given
:func:`get_num_threads`, and results come back in slice order.

The thread count defaults to the CPUs this process may use; ``MINIGRAD_NUM_THREADS`` or
``minigrad.set_num_threads`` change it (1 turns the threads off). Their users (data
parallelism, the accelerated matrix product) ask :func:`allowed` first, which is true
only while the acceleration is on; the threads start on the first job that needs them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from .allocator import share_the_main_heap


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


class _Worker:
    """A helper thread that runs one slice when told to, then waits for the next.

    Two locks serve as signals (a released lock is a signal not yet taken; ``_signal``):
    the caller signals ``_go`` to start a job, the worker signals ``_done`` when it has
    finished. That costs one thread wake-up each way and little else: on the 2-core test
    machine a hand-off costs less than through a ``ThreadPoolExecutor`` (queue, Future,
    wait; docs/performance.md).

    Every job has a number, so a caller interrupted while it waits (Ctrl-C) leaves nothing
    inconsistent behind: the next caller's ``wait`` skips the finished signal of a job
    nobody waited for, and the worker skips the start signal of a job that was replaced
    before it got to run.
    """

    def __init__(self, name: str) -> None:
        self._go = threading.Lock()
        self._go.acquire()
        self._done = threading.Lock()
        self._done.acquire()
        self._job: tuple[int, Callable[[int, int], Any] | None, int, int] = (0, None, 0, 0)
        self._finished = 0  # number of the last job the worker ran
        self._result: Any = None
        self._error: BaseException | None = None
        threading.Thread(target=self._loop, name=name, daemon=True).start()

    def _loop(self) -> None:
        _inside.active = True  # run_jobs called from a slice runs serially in this thread
        while True:
            self._go.acquire()
            number, kernel, lo, hi = self._job
            if number == self._finished:  # the start signal of a job that was replaced: already done
                continue
            result = error = None
            if kernel is not None:
                try:
                    result = kernel(lo, hi)
                except BaseException as exc:  # handed to the caller by wait()
                    error = exc
            self._result, self._error, self._finished = result, error, number
            _signal(self._done)
            if kernel is None:  # told to stop
                return

    def start(self, kernel: Callable[[int, int], Any] | None, lo: int = 0, hi: int = 0) -> int:
        """Hand the worker ``kernel(lo, hi)`` (None: stop); returns the job's number for wait()."""
        number = self._job[0] + 1
        self._job = (number, kernel, lo, hi)
        _signal(self._go)
        return number

    def wait(self, number: int) -> tuple[Any, BaseException | None]:
        """Block until job ``number`` has finished; its result and the exception it raised (or None)."""
        while self._finished != number:
            self._done.acquire()
        done = self._result, self._error
        self._result = self._error = None  # hold no arrays (or tracebacks) between jobs
        return done

    def stop(self) -> None:
        self.wait(self.start(None))


def _signal(lock: threading.Lock) -> None:
    """Release ``lock`` unless it is released already (a signal nobody took yet: one is enough)."""
    try:
        lock.release()
    except RuntimeError:
        pass


_state: dict[str, Any] = {"threads": _default_threads(), "workers": None, "allowed": False, "fork_handler": False}
_pool_lock = threading.Lock()  # held while a run_jobs call uses the workers
_inside = threading.local()  # set while a thread runs a slice: nested calls run serially


def allow(on: bool) -> None:
    """Let work run on threads (the acceleration is on) or not (the reference path)."""
    _state["allowed"] = bool(on)


def allowed() -> bool:
    return _state["allowed"] and not getattr(_inside, "active", False)


def get_num_threads() -> int:
    """How many threads minigrad's CPU kernels use (1: no threads)."""
    return _state["threads"]


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for minigrad's CPU kernels (like ``torch.set_num_threads``)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    if getattr(_inside, "active", False):
        raise RuntimeError("set_num_threads: cannot be called from inside a job that run_jobs is running")
    if n != _state["threads"]:
        with _pool_lock:  # not while another thread's run_jobs uses the workers
            workers = _state["workers"]
            _state["workers"] = None
            for worker in workers or ():
                worker.stop()
            _state["threads"] = n


def _workers() -> list[_Worker]:
    """The helper threads (threads - 1: the calling thread works too), started on first use."""
    workers = _state["workers"]
    if workers is None:
        if _state["threads"] > 1:
            share_the_main_heap()
        if not _state["fork_handler"] and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_forget_workers)  # a forked child has none of these threads
            _state["fork_handler"] = True
        workers = [_Worker(f"minigrad-{i}") for i in range(1, _state["threads"])]
        _state["workers"] = workers
    return workers


def _forget_workers() -> None:
    """In a forked child the parent's threads do not exist: start new ones when needed."""
    global _pool_lock
    _pool_lock = threading.Lock()
    _state["workers"] = None


def even_slices(count: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ``(lo, hi)`` ranges covering ``[0, count)``, sizes differing by at most 1."""
    bounds = [count * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _run_slice(kernel: Callable[[int, int], Any], lo: int, hi: int) -> Any:
    _inside.active = True
    try:
        return kernel(lo, hi)
    finally:
        _inside.active = False


def run_jobs(kernel: Callable[[int, int], Any], count: int) -> list[Any]:
    """Call ``kernel(lo, hi)`` for slices covering jobs ``[0, count)``, one slice per thread.

    The jobs are large however few they are (whole chunks of a batch,
    ``minigrad.data_parallel_backward``): every thread gets a slice, up to ``count``.
    """
    parts = min(_state["threads"], count)
    if parts <= 1 or getattr(_inside, "active", False):
        return [kernel(0, count)]
    return _run_parts(kernel, even_slices(count, parts))


def _run_parts(kernel: Callable[[int, int], Any], parts: list[tuple[int, int]]) -> list[Any]:
    """Run one slice per thread (the first on the calling thread); results in slice order."""
    if len(parts) == 1:
        return [kernel(*parts[0])]
    if not _pool_lock.acquire(blocking=False):
        return [_run_slice(kernel, lo, hi) for lo, hi in parts]
    try:
        jobs = [(worker, worker.start(kernel, lo, hi)) for worker, (lo, hi) in zip(_workers(), parts[1:])]
        try:
            first = _run_slice(kernel, *parts[0])
        finally:
            done = [worker.wait(number) for worker, number in jobs]  # every slice has finished, even after an error
    finally:
        _pool_lock.release()
    for _, error in done:
        if error is not None:
            raise error
    return [first, *[result for result, _ in done]]
