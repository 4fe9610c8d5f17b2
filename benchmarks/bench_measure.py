"""Measuring a benchmark: interleaved timing, page-fault and kernel-time counters, memory (RSS).

:func:`time_interleaved` runs the frameworks round by round in a rotating order, so that
a slow period of a noisy machine hits them alike; :func:`measure_memory` runs one
framework's steps in a fresh interpreter (``encoder_step.py --memory-child``) and reads
its peak RSS.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any


# ---- timing ---------------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values)


def time_interleaved(
    fns: dict[str, Callable[[], Any]],
    repeats: int,
    warmup: int,
    sync: dict[str, Callable[[], None]] | None = None,
    counters: dict[str, Callable[[], float]] | None = None,
    settle: float = 0.0,
) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    """Run each function ``warmup`` times, then ``repeats`` timed rounds, alternating them.

    Round r runs the functions in an order rotated by r (A B, B A, ... for two), so slow
    drifts of a noisy machine hit all of them alike. ``sync[name]`` (e.g. a CUDA
    synchronize) runs inside the timed region after the call. ``counters`` are read before
    and after every timed call (e.g. page faults); their mean change per call is returned.
    With ``settle`` > 0, every timed call is preceded by ``settle`` seconds of sleep and
    untimed calls of the same function for at least ``REWARM`` seconds (at least one call;
    see :func:`settle_seconds`).

    Returns ({name: [seconds per call]}, {name: {counter: mean change per call}}).
    """
    sync = sync or {}
    counters = counters or {}
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
            sync.get(name, _noop)()
    times: dict[str, list[float]] = {name: [] for name in names}
    deltas: dict[str, dict[str, float]] = {name: dict.fromkeys(counters, 0.0) for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            if settle:  # let the others' threads fall asleep, then run ours untimed for >= 50 ms
                time.sleep(settle)
                start = time.perf_counter()
                while True:
                    fns[name]()
                    sync.get(name, _noop)()
                    if time.perf_counter() - start >= REWARM:
                        break
            before = {c: read() for c, read in counters.items()}
            t0 = time.perf_counter()
            fns[name]()
            sync.get(name, _noop)()
            times[name].append(time.perf_counter() - t0)
            for c, read in counters.items():
                deltas[name][c] += read() - before[c]
    for name in names:
        for c in counters:
            deltas[name][c] /= max(repeats, 1)
    return times, deltas


REWARM = 0.05  # seconds of untimed calls after a settle pause


def settle_seconds(threads: int, requested_ms: float | None) -> float:
    """Pause before each timed call: 0.25 s when several threads are used, else none.

    After a call, OpenBLAS's worker threads (and PyTorch's OpenMP threads, and numba's)
    keep spinning for a while before they sleep. With more than one thread, the
    framework timed next would share its cores with the other's spinning threads, so
    every timed call waits first. But a process that slept is slow to start again too
    (its threads asleep, caches and the CPU's clock cold), so after the pause the
    function runs untimed for ``REWARM`` seconds before the timed call (see
    :func:`time_interleaved`). With one thread there are no worker threads to wait for,
    and no pause. docs/performance.md has what the pause changes on the test machine.
    """
    if requested_ms is not None:
        return requested_ms / 1e3
    return 0.25 if threads > 1 else 0.0


def _noop() -> None:
    return None


def minor_faults() -> float:
    """Minor page faults of this process so far (a first touch of fresh memory from the OS)."""
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def system_ms() -> float:
    """CPU time this process spent in the kernel so far, in ms (page faults, mmap/munmap, ...)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime * 1e3


# ---- memory ---------------------------------------------------------------------------------------
def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:  # no /proc (not Linux): the caller reports the figure as unavailable
        return None
    return None


def rss_bytes() -> int:
    """Current resident set size (Linux /proc, else psutil, else the peak as a last resort)."""
    kib = _proc_status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        return peak_rss_bytes()


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; True when supported.

    Writing "5" to /proc/self/clear_refs (Linux >= 4.0) does it; without it the peak is
    ``ru_maxrss``, the peak of the whole process life (imports included).
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """Peak RSS since the last :func:`reset_peak_rss` (VmHWM), else of the process life (ru_maxrss)."""
    kib = _proc_status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, KiB on Linux


MiB = 1024 * 1024


def measure_memory(
    config: str,
    device: str,
    framework: str,
    threads: int,
    steps: int,
    seed: int = 0,
    data_parallel: int = 1,
    accel_argv: list[str] | None = None,
) -> dict | None:
    """Peak memory of ``steps`` training steps of one framework, measured in a fresh interpreter.

    Runs ``encoder_step.py --memory-child`` (same Python, same environment, the flags
    ``accel_argv`` from ``bench_env.accel_argv``) and parses the JSON line it prints;
    see ``encoder_step.memory_child`` for what is measured.
    """
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "encoder_step.py")
    cmd = [sys.executable, script, "--memory-child", framework, "--config", config, "--device", device]
    cmd += ["--threads", str(threads), "--memory-steps", str(steps), "--seed", str(seed)]
    cmd += ["--data-parallel", str(data_parallel), *(accel_argv or [])]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("MEMORY "):
            return json.loads(line[len("MEMORY ") :])
    print(f"  (memory subprocess for {framework} failed: {proc.stderr.strip()[-500:]})")
    return None
