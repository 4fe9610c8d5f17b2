"""minigrad.allocator: glibc's malloc settings, and what they change.

* ``keep_freed_memory`` (applied at import) sets the mmap threshold before the trim
  threshold, declines when asked to, when the user set glibc's malloc variables, or
  outside glibc; a NumPy loop that allocates and frees the same large arrays faults no
  fresh pages with it and faults them in every time without it (run in subprocesses);
* ``share_the_main_heap`` is asked once, when minigrad starts its worker threads.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from minigrad import allocator, parallel

ROOT = Path(__file__).resolve().parents[1]
GLIBC = platform.libc_ver()[0] == "glibc"


class _FakeLibc:
    def __init__(self):
        self.calls = []

        def mallopt(param, value):
            self.calls.append((param, value))
            return 1

        self.mallopt = mallopt


@pytest.fixture
def fake_libc(monkeypatch):
    libc = _FakeLibc()
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: libc)
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.delenv(allocator.HEAP_SETTING, raising=False)
    return libc


def test_starting_the_workers_asks_glibc_for_one_shared_heap(fake_libc, monkeypatch):
    """The first worker threads are started after mallopt(M_ARENA_MAX, 1); later calls
    reuse the workers and do not ask again; one thread starts no worker and asks nothing."""
    monkeypatch.setitem(parallel._state, "workers", None)
    monkeypatch.setitem(parallel._state, "threads", 1)
    assert parallel._workers() == [] and fake_libc.calls == []
    monkeypatch.setitem(parallel._state, "workers", None)
    monkeypatch.setitem(parallel._state, "threads", 2)
    try:
        workers = parallel._workers()
        assert len(workers) == 1 and fake_libc.calls == [(allocator.M_ARENA_MAX, 1)]
        assert parallel._workers() is workers and len(fake_libc.calls) == 1
    finally:
        for worker in parallel._state["workers"] or ():
            worker.stop()


def test_the_shared_heap_can_be_declined(fake_libc, monkeypatch):
    monkeypatch.setenv(allocator.HEAP_SETTING, "0")
    assert allocator.share_the_main_heap() is False and fake_libc.calls == []


def test_no_shared_heap_setting_outside_glibc(fake_libc, monkeypatch):
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    assert allocator.share_the_main_heap() is False and fake_libc.calls == []


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's; this C library has none")
def test_the_real_mallopt_accepts_the_setting():
    assert allocator.share_the_main_heap() is True


# ---- keeping freed memory ------------------------------------------------------------------------
@pytest.fixture
def no_user_settings(monkeypatch):
    monkeypatch.setattr(allocator, "_status", list(allocator._status))  # the real one comes back after
    for key in (allocator.TUNING_SETTING, "GLIBC_TUNABLES", *allocator._USER_SETTINGS):
        monkeypatch.delenv(key, raising=False)


def test_keep_freed_memory_sets_the_mmap_threshold_then_the_trim_threshold(fake_libc, no_user_settings):
    assert allocator.keep_freed_memory() is True
    assert allocator.status().startswith("on")
    assert fake_libc.calls == [
        (allocator.M_MMAP_THRESHOLD, 32 * 1024 * 1024),
        (allocator.M_TRIM_THRESHOLD, 1024 * 1024 * 1024),
    ]


@pytest.mark.parametrize(
    "env",
    [
        {"MINIGRAD_MALLOC_TUNING": "0"},
        {"MALLOC_MMAP_THRESHOLD_": "65536"},
        {"MALLOC_TRIM_THRESHOLD_": "0"},
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"},
    ],
)
def test_keep_freed_memory_declines_when_asked_or_set_by_the_user(fake_libc, no_user_settings, monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert allocator.keep_freed_memory() is False and fake_libc.calls == []
    assert allocator.status().startswith("off (")


def test_other_glibc_tunables_do_not_stop_the_tuning(fake_libc, no_user_settings, monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX512F")
    assert allocator.keep_freed_memory() is True and len(fake_libc.calls) == 2


def test_keep_freed_memory_outside_glibc_does_nothing(fake_libc, no_user_settings, monkeypatch):
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    assert allocator.keep_freed_memory() is False and fake_libc.calls == []


def test_a_rejected_threshold_is_reported(fake_libc, no_user_settings):
    fake_libc.mallopt = lambda param, value: 0  # an old glibc refusing the value
    assert allocator.keep_freed_memory() is False
    assert allocator.status() == "off (glibc's mallopt refused the thresholds)"


# A step's worth of temporaries: eight 1 MiB arrays made and freed together, 50 times.
# glibc's adaptive thresholds settle at 1 MiB for mmap and 2 MiB for trimming, so each
# time the 8 MiB freed at the top of the heap go back to the kernel, and come back as
# 2,048 faulted pages the next time. Prints the page faults of the 50 steps.
FAULTS = (
    "import resource, numpy as np\n"
    "{setup}\n"
    "def faults():\n"
    "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
    "def step():\n"
    "    arrays = [np.ones(1 << 18, dtype=np.float32) for _ in range(8)]\n"
    "    del arrays\n"
    "for _ in range(3):\n"
    "    step()\n"
    "before = faults()\n"
    "for _ in range(50):\n"
    "    step()\n"
    "print(faults() - before)\n"
)


def _faults(setup: str, **env_vars: str) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", *allocator._USER_SETTINGS)}
    env.pop(allocator.TUNING_SETTING, None)
    env.update(env_vars)
    code = FAULTS.format(setup=setup)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


@pytest.mark.skipif(not GLIBC, reason="the thresholds are glibc's; this C library has none")
def test_importing_minigrad_stops_numpy_faulting_in_fresh_pages_every_step():
    """Without the settings each step faults its 8 MiB in again (about 2,048 pages); with
    them the freed pages stay in the heap and the next step reuses them."""
    plain = _faults("")
    declined = _faults("import minigrad", MINIGRAD_MALLOC_TUNING="0")
    tuned = _faults("import minigrad")
    assert plain > 50 * 1000 and declined > 50 * 1000  # about 2,048 faults a step
    assert tuned < 100
