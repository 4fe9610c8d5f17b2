"""The environment of a benchmark: minigrad's acceleration, threads, BLAS, glibc malloc, the header.

Every script in this folder prints :func:`environment_lines` first, so that a figure
always comes with what produced it: the commit, the versions, NumPy's BLAS and its
threads, the variables that change speed, and ``minigrad.accel.status()``.

The acceleration is a choice of each run (``--accel on|off``, :func:`add_accel_flags`,
:func:`apply_accel`); importing minigrad changes nothing in the process.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from typing import Any

import numpy as np

import minigrad

MALLOC_VARS = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_ARENA_MAX",
    "GLIBC_TUNABLES",
)
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_REEXEC_MARK = "MINIGRAD_BENCH_REEXEC"


# ---- optional libraries -------------------------------------------------------------------------
def import_torch() -> Any:
    """The torch module, or None when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _threadpoolctl() -> Any:
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl


# ---- minigrad's acceleration and glibc's malloc -------------------------------------------------------
def add_accel_flags(p: argparse.ArgumentParser) -> None:
    """``--accel on|off``, ``--kernel-threads N`` and ``--malloc-tuning [auto|on|off]``, shared by the scripts."""
    p.add_argument(
        "--accel",
        choices=("on", "off"),
        default="on",
        help="on (default): minigrad.accel.enable() (numba kernels, threads, malloc setting);\n"
        "off: the reference path (minigrad.accel.disable())",
    )
    p.add_argument(
        "--kernel-threads",
        type=int,
        default=None,
        metavar="N",
        help="threads each numba kernel and large matrix product is split over\n"
        "(minigrad.accel.set_kernel_threads; default: --threads, or every CPU)",
    )
    p.add_argument(
        "--malloc-tuning",
        choices=("auto", "on", "off"),
        nargs="?",
        const="on",
        default="auto",
        help="glibc keeps freed memory for reuse (minigrad.accel.allocator; process-wide, so PyTorch's\n"
        "half runs under it too). auto (default): as --accel; on (the flag alone): even with --accel off;\n"
        "off: glibc's defaults even with --accel on",
    )


def malloc_wanted(accel: str, malloc: str) -> bool:
    """Whether the run keeps freed memory in glibc's heap (see :func:`add_accel_flags`)."""
    return malloc == "on" or (malloc == "auto" and accel == "on")


def apply_accel(args: argparse.Namespace) -> None:
    """Turn minigrad's acceleration on or off as the flags of :func:`add_accel_flags` say,
    and set glibc's malloc as asked.

    Call it after :func:`resolve_threads`: the status line then says the thread counts the
    run uses. numba compiles each kernel on first use (or loads it from its cache);
    ``enable`` runs every kernel's self-check, so that happens here, before any timing.
    """
    if args.kernel_threads is not None:
        minigrad.accel.set_kernel_threads(args.kernel_threads)
    if args.accel == "on":
        minigrad.accel.enable(malloc=malloc_wanted(args.accel, args.malloc_tuning))
    else:
        minigrad.accel.disable()
        if malloc_wanted(args.accel, args.malloc_tuning):
            minigrad.accel.allocator.keep_freed_memory()


def accel_argv(args: argparse.Namespace) -> list[str]:
    """The flags that give a subprocess the same acceleration, kernel threads and malloc setting."""
    argv = ["--accel", args.accel, "--malloc-tuning", args.malloc_tuning]
    return argv + (["--kernel-threads", str(args.kernel_threads)] if args.kernel_threads is not None else [])


def data_parallel_note(parts: int, threads: int) -> str:
    """How ``minigrad.data_parallel_backward`` will run ``parts`` chunks in this process."""
    how = f"the batch in {parts} chunks, forward+backward "
    if not minigrad.accel.is_enabled():
        return how + "one after the other (the chunks run on threads only with --accel on)"
    if _threadpoolctl() is None:
        return how + "one after the other (threadpoolctl is missing: BLAS cannot be held to one thread)"
    if min(threads, parts) < 2:
        return how + "one after the other (one thread: --threads 2 or more)"
    return how + f"on {min(threads, parts)} threads (minigrad.data_parallel_backward; BLAS on 1 thread meanwhile)"


# ---- environment: BLAS, threads ---------------------------------------------------------------------
def reexec_with_env(changes: dict[str, str | None]) -> None:
    """Restart this script with environment variables set (str) or unset (None), if needed.

    BLAS reads these variables once, when it loads, so they must be in place before the
    process starts: we re-execute ourselves with the same arguments. Nothing happens when
    the environment already matches (the re-executed process), so there is no loop.
    """
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    if env == dict(os.environ):
        return
    if os.environ.get(_REEXEC_MARK):
        raise RuntimeError("re-executing did not set the environment; giving up")
    env[_REEXEC_MARK] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def env_flag_changes(unset_openblas_env: bool, threads: int | None) -> dict[str, str | None]:
    """The environment changes the common flags ask for (see :func:`reexec_with_env`)."""
    changes: dict[str, str | None] = {}
    if unset_openblas_env:
        changes.update({key: None for key in OPENBLAS_VARS})  # both together
    if threads is not None and _threadpoolctl() is None:
        # without threadpoolctl, the only way to size BLAS's pool is before it loads
        changes.update({key: str(threads) for key in THREAD_VARS})
    return changes


def blas_info() -> dict[str, Any]:
    """Which BLAS NumPy uses and its thread count (threadpoolctl when installed, else numpy's config)."""
    tpc = _threadpoolctl()
    if tpc is not None:
        pools = [p for p in tpc.threadpool_info() if p.get("user_api") == "blas"]
        numpy_pools = [p for p in pools if "numpy" in p.get("filepath", "")] or pools
        if numpy_pools:
            p = numpy_pools[0]
            return {
                "source": "threadpoolctl",
                "name": p.get("internal_api"),
                "version": p.get("version"),
                "arch": p.get("architecture"),
                "threading": p.get("threading_layer"),
                "threads": p.get("num_threads"),
            }
    info: dict[str, Any] = {"source": "numpy.show_config (threadpoolctl not installed)", "threads": None}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info.update(name=blas.get("name"), version=blas.get("version"), arch=None, threading=None)
    except Exception:  # older NumPy: no dict mode
        info.update(name="unknown", version=None, arch=None, threading=None)
    return info


def set_threads(n: int) -> bool:
    """Use ``n`` threads for the rest of the process: NumPy's BLAS (threadpoolctl) and minigrad's
    thread pool (``minigrad.set_num_threads``: data parallelism). Returns whether BLAS was set.
    The numba kernels' own count is ``--kernel-threads``."""
    minigrad.set_num_threads(n)
    tpc = _threadpoolctl()
    if tpc is None:
        return False
    tpc.threadpool_limits(limits=n, user_api="blas")
    return True


def resolve_threads(requested: int | None) -> tuple[int, str]:
    """The thread count both frameworks use, and how it was found."""
    if requested is not None:
        if set_threads(requested):
            return requested, "--threads (set with threadpoolctl)"
        return requested, "--threads (set through *_NUM_THREADS before BLAS loaded; threadpoolctl missing)"
    info = blas_info()
    if info["threads"]:
        return int(info["threads"]), f"numpy's BLAS default [{info['source']}]"
    for key in THREAD_VARS:
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key]), f"${key}"
    return os.cpu_count() or 1, "os.cpu_count() (OpenBLAS's default; BLAS not queryable, count not verified)"


# ---- the header ---------------------------------------------------------------------------------------
def _torch_version() -> str:
    """The installed torch version without importing it (importing torch costs a lot of RSS)."""
    from importlib import metadata

    try:
        return metadata.version("torch") + " (not imported)"
    except metadata.PackageNotFoundError:
        return "not installed"


def code_version() -> str:
    """The repository's commit, and whether minigrad/ or encoder/ differ from it (the code measured)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--", "minigrad", "encoder"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + (" + uncommitted changes in minigrad/ or encoder/" if dirty else "")


def environment_lines(torch: Any = None) -> list[str]:
    """Header lines: versions, BLAS, the variables that change speed, minigrad's acceleration."""
    info = blas_info()
    unset = "<unset>"
    lines = [
        f"code: commit {code_version()}",
        f"python {platform.python_version()}, numpy {np.__version__}"
        + f", torch {torch.__version__ if torch is not None else _torch_version()}"
        + f", {platform.machine()}, {os.cpu_count()} cpus",
        f"numpy BLAS: {info['name']} {info.get('version') or ''} arch={info.get('arch')} "
        f"threading={info.get('threading')} threads={info['threads']} [{info['source']}]",
        "OpenBLAS env: "
        + ", ".join(f"{k}={os.environ.get(k, unset)}" for k in (*OPENBLAS_VARS, "OPENBLAS_THREAD_TIMEOUT")),
    ]
    # minigrad.accel.status(): "acceleration: on" and a line per part (cpu, cuda, malloc, threads)
    lines += ["minigrad " + line.strip() for line in minigrad.accel.status().splitlines()]
    if not minigrad.accel.is_enabled():
        lines.append(f"minigrad malloc: {minigrad.accel.allocator.status()}")
        lines.append(f"minigrad threads: {minigrad.get_num_threads()} (unused on the reference path)")
    malloc = [f"{k}={os.environ[k]}" for k in MALLOC_VARS if k in os.environ]
    lines.append(
        "glibc malloc variables: " + (", ".join(malloc) if malloc else "none")
        + " (the malloc setting is process-wide: both frameworks run under it)"
    )  # fmt: skip
    return lines
