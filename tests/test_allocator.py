"""minigrad.accel.allocator: glibc's malloc settings, and what they change.

* ``keep_freed_memory`` (called by ``minigrad.accel.enable()``, never by ``import
  minigrad``) sets the mmap threshold before the trim threshold, and declines when asked
  to, when the user set glibc's malloc variables, or outside glibc. In subprocesses: a
  NumPy loop that allocates and frees the same large arrays faults its pages in every
  time after a plain ``import minigrad`` (glibc's defaults), and faults no fresh pages
  once the acceleration is enabled;
* ``share_the_main_heap`` is asked once, when ``minigrad.accel.threads`` starts its
  worker threads, before any of them exists; it can be declined.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from threads import num_threads

import minigrad
from minigrad.accel import allocator, threads

ROOT = Path(__file__).resolve().parents[1]
GLIBC = platform.libc_ver()[0] == "glibc"


class _FakeLibc:
    """Stands in for glibc: records each ``mallopt(param, value)`` and how many of
    minigrad's worker threads were running at the time."""

    def __init__(self):
        self.calls = []
        self.workers_running = []

        def mallopt(param, value):
            self.calls.append((param, value))
            self.workers_running.append(len(_worker_threads()))
            return 1

        self.mallopt = mallopt


def _worker_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("minigrad-")]


@pytest.fixture
def fake_libc(monkeypatch):
    libc = _FakeLibc()
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: libc)
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.delenv(allocator.HEAP_SETTING, raising=False)
    return libc


@pytest.fixture
def threads_allowed():
    """Work may run on threads (as with the acceleration on); the previous setting after."""
    before = threads._state["allowed"]
    threads.allow(True)
    try:
        yield
    finally:
        threads.allow(before)


def test_starting_the_workers_asks_glibc_for_one_shared_heap(fake_libc, threads_allowed):
    """The first run_jobs call on 2 threads asks for mallopt(M_ARENA_MAX, 1) before its
    worker starts; later calls reuse the worker and do not ask again; on 1 thread no
    worker starts and nothing is asked."""

    def kernel(lo, hi):
        return lo, hi

    with num_threads(1):
        assert threads.run_jobs(kernel, 4) == [(0, 4)]
        assert fake_libc.calls == [] and _worker_threads() == []
        with num_threads(2):  # changing the count stopped any earlier workers: none exist now
            assert threads._state["workers"] is None
            assert threads.run_jobs(kernel, 4) == [(0, 2), (2, 4)]
            assert fake_libc.calls == [(allocator.M_ARENA_MAX, 1)]
            assert fake_libc.workers_running == [0]  # asked before the worker thread started
            workers = threads._state["workers"]
            assert len(workers) == 1 and len(_worker_threads()) == 1
            assert threads.run_jobs(kernel, 6) == [(0, 3), (3, 6)]
            assert threads._state["workers"] is workers and len(fake_libc.calls) == 1
    # the count is back where it was and the workers started under the fake glibc are gone
    assert threads._state["workers"] is None


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
        {"MALLOC_TOP_PAD_": "0"},
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
    assert allocator.status() == "off (not glibc)"


def test_a_rejected_threshold_is_reported(fake_libc, no_user_settings):
    fake_libc.mallopt = lambda param, value: 0  # an old glibc refusing the value
    assert allocator.keep_freed_memory() is False
    assert allocator.status() == "off (glibc's mallopt refused the thresholds)"


def test_enable_keeps_freed_memory_unless_told_not_to(monkeypatch):
    """``enable()`` calls keep_freed_memory and reports its status; ``malloc=False`` does not call it."""
    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append("kept") or True)
    monkeypatch.setattr(allocator, "status", lambda: "the allocator's line")
    try:
        minigrad.accel.enable(malloc=False)
        assert calls == []
        assert minigrad.accel.enable().count("malloc: the allocator's line") == 1
        assert calls == ["kept"]
    finally:
        minigrad.accel.disable()


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

# enable() without the fast extra: numba cannot be imported, so enabling compiles no
# kernels (the malloc setting does not depend on them) and the subprocess stays quick
WITHOUT_NUMBA = "import sys; sys.modules['numba'] = None\nimport minigrad\n"


def _faults(setup: str, **env_vars: str) -> int:
    drop = ("GLIBC_TUNABLES", "MINIGRAD_ACCEL", allocator.TUNING_SETTING, *allocator._USER_SETTINGS)
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_vars)
    code = FAULTS.format(setup=setup)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


FORWARD_BACKWARD = "x = minigrad.randn(64, 64, requires_grad=True)\n(x @ x).sum().backward()"
EVERY_STEP = 50 * 1000  # about 2,048 faults a step with glibc's defaults; 50 steps


@pytest.mark.skipif(not GLIBC, reason="the thresholds are glibc's; this C library has none")
def test_import_leaves_glibc_alone_and_enabling_stops_fresh_pages_every_step():
    """With glibc's defaults each step faults its 8 MiB in again (about 2,048 pages);
    with keep_freed_memory the freed pages stay in the heap and the next step reuses them."""
    assert _faults("") > EVERY_STEP  # NumPy alone: the baseline
    assert _faults("import minigrad") > EVERY_STEP  # importing changes nothing
    assert _faults("import minigrad\n" + FORWARD_BACKWARD) > EVERY_STEP  # nor does using it
    assert _faults("import minigrad\nassert minigrad.accel.allocator.keep_freed_memory()") < 100
    assert _faults(WITHOUT_NUMBA + "assert 'malloc: on' in minigrad.accel.enable()") < 100
    assert _faults(WITHOUT_NUMBA + "assert minigrad.accel.is_enabled()", MINIGRAD_ACCEL="1") < 100  # at import


@pytest.mark.skipif(not GLIBC, reason="the thresholds are glibc's; this C library has none")
def test_enabling_without_the_malloc_setting_keeps_glibcs_defaults():
    assert _faults(WITHOUT_NUMBA + "minigrad.accel.enable(malloc=False)") > EVERY_STEP
    assert _faults(WITHOUT_NUMBA + "minigrad.accel.enable()", MINIGRAD_MALLOC_TUNING="0") > EVERY_STEP
    assert _faults(WITHOUT_NUMBA + "minigrad.accel.enable()", MALLOC_TRIM_THRESHOLD_="131072") > EVERY_STEP
