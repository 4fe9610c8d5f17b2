"""Build and load the CPU backend's C kernels (source: ``minigrad/cpu_kernels.py``).

The first time the NumPy backend needs a kernel, :func:`library` compiles the source with
the machine's C compiler into a shared library, keeps it in a cache folder and loads it
with ``ctypes``; later runs load the cached file. Nothing here is required: without a
compiler (or with ``MINIGRAD_NATIVE=0``) :func:`library` returns None and the ops compose
the same formulas from NumPy calls, as they always can. :func:`status` says which it is
and why.

* compiler: ``$CC``, else the one Python was built with, else ``cc``, ``gcc`` or ``clang``;
  flags ``-O3 -march=native -fopenmp-simd -ffp-contract=off -fno-math-errno`` (retried
  without ``-march=native`` when the compiler refuses it);
* cache: ``$MINIGRAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/minigrad``, else
  ``~/.cache/minigrad``. The file's name is a hash of the source, the compiler, the flags
  and the CPU's features, so a changed source or another machine builds a new file. It is
  written under a temporary name and renamed when complete, so a reader never loads a
  half-written library, even with several processes building at once;
* self-check: after loading, a layer norm and a softmax of a small array are compared
  with the same formulas in Python; a mismatch disables the library.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import platform
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
import threading
from pathlib import Path
from typing import Any

from . import cpu_kernels

ENV_SWITCH = "MINIGRAD_NATIVE"  # "0": do not build or load the C kernels
ENV_CACHE = "MINIGRAD_CACHE_DIR"
FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared")
BUILD_TIMEOUT_S = 120

_C_TYPES = {"p": ctypes.c_void_p, "i": ctypes.c_int, "q": ctypes.c_longlong}
_ELEMENT_TYPES = {"f32": ctypes.c_float, "f64": ctypes.c_double}

_lock = threading.Lock()
_state: dict[str, Any] = {"loaded": False, "library": None, "status": "not built yet (built on first use)"}


class Library:
    """The loaded kernels: ``lib.function("layer_norm_forward", "f32")`` is a ctypes function
    with its argument types set (arrays are passed as addresses, ``array.ctypes.data``)."""

    def __init__(self, cdll: ctypes.CDLL, path: Path) -> None:
        self.path = path
        self._functions: dict[tuple[str, str], Any] = {}
        for name, signature in cpu_kernels.SIGNATURES.items():
            for suffix, element in _ELEMENT_TYPES.items():
                fn = getattr(cdll, f"{name}_{suffix}")
                fn.argtypes = [element if c == "T" else _C_TYPES[c] for c in signature]
                fn.restype = None
                self._functions[name, suffix] = fn

    def function(self, name: str, suffix: str) -> Any:
        return self._functions[name, suffix]


def status() -> str:
    """One line: whether the C kernels are in use, where from, or why not."""
    return _state["status"]


def library() -> Library | None:
    """The compiled kernels, building them on the first call; None when unavailable."""
    if _state["loaded"]:
        return _state["library"]
    with _lock:
        if not _state["loaded"]:
            lib, message = _load()
            _state.update(loaded=True, library=lib, status=message)
    return _state["library"]


def reset() -> None:
    """Forget the loaded library, so that the next :func:`library` call looks again (tests)."""
    with _lock:
        _state.update(loaded=False, library=None, status="not built yet (built on first use)")


def find_compiler() -> list[str] | None:
    """The C compiler command: ``$CC``, Python's own compiler, or cc/gcc/clang on PATH."""
    candidates = []
    if os.environ.get("CC"):
        candidates.append(os.environ["CC"])
    else:
        if sysconfig.get_config_var("CC"):
            candidates.append(sysconfig.get_config_var("CC"))
        candidates += ["cc", "gcc", "clang"]
    for candidate in candidates:
        command = shlex.split(candidate)
        if command and shutil.which(command[0]):
            return command
    return None


def cache_dir() -> Path:
    """Where built libraries are kept (see the module docstring)."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "minigrad"


def _cpu_features() -> str:
    """What -march=native depends on: the CPU's feature flags (Linux), else its name."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> tuple[Library | None, str]:
    """The library and the status line: built or loaded, self-checked; or why not."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return None, f"off ({ENV_SWITCH}={os.environ[ENV_SWITCH]}): NumPy array calls"
    compiler = find_compiler()
    if compiler is None:
        return None, "unavailable: no C compiler found ($CC, cc, gcc, clang): NumPy array calls"
    try:
        folder = _writable_cache_dir()
    except OSError as exc:
        return None, f"unavailable: no folder to build in ({exc}): NumPy array calls"
    errors = []
    for flags in (FLAGS, tuple(f for f in FLAGS if f != "-march=native")):
        key = "\n".join([cpu_kernels.SOURCE, " ".join(compiler), " ".join(flags), platform.machine(), _cpu_features()])
        path = folder / f"minigrad-cpu-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"
        lib, error = _open_or_build(compiler, flags, path)
        if lib is None:
            errors.append(error)
            continue
        problem = self_check(lib)
        if problem:
            return None, f"disabled: the self-check failed ({problem}): NumPy array calls"
        return lib, f"on: C kernels from {path} ({' '.join(compiler)} {' '.join(flags)})"
    return None, "unavailable: " + "; ".join(errors) + ": NumPy array calls"


def _writable_cache_dir() -> Path:
    """:func:`cache_dir`, created if needed; a folder in the temporary directory if it cannot be."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(tempfile.gettempdir()) / f"minigrad-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open_or_build(compiler: list[str], flags: tuple[str, ...], path: Path) -> tuple[Library | None, str]:
    """The library at ``path``, compiled first when the file is missing. A file that does
    not load (damaged, or left by another machine) is compiled afresh, once."""
    rebuild = not path.exists()
    failure = ""
    for _ in range(2):
        if rebuild:
            error = _build(compiler, flags, path)
            if error:
                return None, error
        try:
            return Library(ctypes.CDLL(str(path)), path), ""
        except (OSError, AttributeError) as exc:
            failure = f"cannot load {path}: {exc}"
            if rebuild:  # compiled just now and still does not load: compiling again will not help
                break
            rebuild = True
    return None, failure


def _build(compiler: list[str], flags: tuple[str, ...], path: Path) -> str | None:
    """Compile the source into ``path`` (atomically); an error message, or None."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp")
    except OSError as exc:
        return f"cannot write in {path.parent}: {exc}"
    os.close(fd)
    src = tmp[: -len(".tmp")] + ".c"
    command = [*compiler, *flags, "-o", tmp, src, "-lm"]
    try:
        Path(src).write_text(cpu_kernels.SOURCE)
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return f"{' '.join(compiler)} {' '.join(flags)} exited with {done.returncode}: {' | '.join(tail)}"
        os.replace(tmp, path)  # complete: now readers may see it
        return None
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(compiler)} failed: {exc}"
    finally:
        for leftover in (tmp, src):
            try:
                os.unlink(leftover)
            except OSError:
                pass


def self_check(lib: Library) -> str | None:
    """Run two kernels on small rows and compare with the formulas in plain Python."""
    n = 5
    x = [0.5, -1.25, 2.0, 3.5, -0.75]
    w = [1.5, -0.5, 2.0, 0.25, 1.0]
    b = [0.1, 0.2, -0.3, 0.4, 0.0]
    row = ctypes.c_double * n
    one = ctypes.c_double * 1
    xs, ws, bs, y, mean, rstd = row(*x), row(*w), row(*b), row(), one(), one()
    address = ctypes.addressof
    lib.function("layer_norm_forward", "f64")(
        address(xs), address(ws), address(bs), address(y), address(mean), address(rstd), 1, n, 1e-5
    )
    mu = sum(x) / n
    rs = 1.0 / math.sqrt(sum((v - mu) ** 2 for v in x) / n + 1e-5)
    want = [(v - mu) * rs * wj + bj for v, wj, bj in zip(x, w, b)]
    if any(abs(got - exp) > 1e-12 for got, exp in zip(y, want)) or abs(mean[0] - mu) > 1e-12:
        return f"layer_norm_forward gave {list(y)}, expected {want}"
    g = row(*b)
    out = row()
    lib.function("softmax_backward", "f64")(address(g), address(ws), address(out), 1, n, 0.5)
    dot = sum(gj * wj for gj, wj in zip(b, w))
    want = [wj * (gj - dot) * 0.5 for gj, wj in zip(b, w)]
    if any(abs(got - exp) > 1e-12 for got, exp in zip(out, want)):
        return f"softmax_backward gave {list(out)}, expected {want}"
    return None
