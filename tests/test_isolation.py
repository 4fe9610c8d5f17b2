"""A library changes nothing it was not asked to: importing and using minigrad leaves the
process as it was (environment, threads, files under HOME, glibc's malloc settings).

Each check runs in a fresh interpreter that imports minigrad first, then runs a forward
and a backward of an encoder layer.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, os, sys, threading
before_env = dict(os.environ)

def os_threads():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])

threads_before = os_threads()
import minigrad
import minigrad.functional as F
from encoder.layers import TransformerEncoderLayer

minigrad.manual_seed(0)
layer = TransformerEncoderLayer(32, 4, 64, dropout=0.1)
x = minigrad.randn(4, 10, 32, requires_grad=True)
(layer(x) ** 2).mean().backward()
assert x.grad is not None

def rss_mib():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1]) / 1024

import numpy as np
arrays = [np.ones(10_000_000) for _ in range(10)]  # 800 MB of float64
peak = rss_mib()
del arrays
print(json.dumps({
    "env_changed": sorted(k for k in set(before_env) | set(os.environ) if before_env.get(k) != os.environ.get(k)),
    "threads": [threads_before, os_threads(), threading.active_count()],
    "peak_mib": peak,
    "after_free_mib": rss_mib(),
    "accel": minigrad.accel.status(),
}))
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MINIGRAD_", "MALLOC_", "NUMBA_"))}
    env.pop("GLIBC_TUNABLES", None)
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), home


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/self/status (Linux)")
def test_importing_and_using_minigrad_changes_no_environment_variable(probe):
    result, _ = probe
    assert result["env_changed"] == []
    assert result["accel"].startswith("acceleration: off")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/self/status (Linux)")
def test_importing_and_using_minigrad_starts_no_thread(probe):
    result, _ = probe
    before, after, python_threads = result["threads"]
    assert python_threads == 1
    # NumPy's BLAS may start its own threads for the products; minigrad starts none of its own
    import numpy as np  # noqa: F401  (this process has NumPy loaded: compare with what it did here)

    assert after <= before + max(0, _blas_threads() - 1), result


def _blas_threads() -> int:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return os.cpu_count() or 1
    return sum(i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas") or 1


def test_importing_and_using_minigrad_writes_nothing_under_home(probe):
    _, home = probe
    assert [p.relative_to(home).as_posix() for p in home.rglob("*")] == []


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc keeps or returns freed memory")
def test_freed_memory_goes_back_to_the_system(probe):
    result, _ = probe
    assert result["peak_mib"] > 760  # 800 MB is 763 MiB
    assert result["after_free_mib"] < 200, result
