"""minigrad.accel.threads: the worker pool behind ``run_jobs``, and what it leaves alone.

The ``pool`` fixture sets 3 threads (odd, so slices are uneven) and lets work run on
threads (as ``minigrad.accel.enable()`` does), and restores both afterwards. Under it:

* ``even_slices``/``run_jobs``: contiguous, balanced slices, one per thread up to the
  number of jobs; results in slice order, the first slice on the calling thread; nested
  calls run serially without deadlock; an exception in any slice reaches the caller
  after every slice has finished; changing the thread count stops the old workers and
  bad counts are rejected (also from inside a job); two callers at once both get their
  own results; an interrupt (Ctrl-C) while a call waits leaves the workers usable; a
  forked child starts its own workers;
* without the acceleration (``threads.allow(False)``, the default) data parallelism
  never reaches ``run_jobs``: every chunk runs on the calling thread;
* in a fresh interpreter, ``import minigrad`` plus a forward/backward starts no thread,
  registers no at-fork handler and leaves OPENBLAS_THREAD_TIMEOUT alone; the workers
  and their fork handler come with the first ``run_jobs`` that splits;
* MINIGRAD_NUM_THREADS sets the default count, and a bad value fails the import.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from threads import num_threads

import minigrad
import minigrad.functional as F
from minigrad.accel import threads

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def allowed(on: bool) -> Iterator[None]:
    """``threads.allow(on)`` inside the block, the previous setting after."""
    before = threads._state["allowed"]
    threads.allow(on)
    try:
        yield
    finally:
        threads.allow(before)


@pytest.fixture
def pool():
    """3 threads, and work may run on them (the acceleration's setting)."""
    with allowed(True), num_threads(3):
        yield


def _worker_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("minigrad-")]


# ---- slices ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("parts", [1, 2, 3, 4, 7])
def test_even_slices_cover_the_jobs_contiguously(parts):
    for count in range(parts, 13):
        slices = threads.even_slices(count, parts)
        assert len(slices) == parts
        assert slices[0][0] == 0 and slices[-1][1] == count
        for (_, hi), (next_lo, _) in zip(slices, slices[1:]):
            assert hi == next_lo  # contiguous
        sizes = [hi - lo for lo, hi in slices]
        assert min(sizes) >= 1  # no empty slice
        assert max(sizes) - min(sizes) <= 1  # balanced


def test_uneven_slices_of_three():
    assert threads.even_slices(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert threads.even_slices(5, 3) == [(0, 1), (1, 3), (3, 5)]
    assert threads.even_slices(2, 2) == [(0, 1), (1, 2)]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_run_jobs_gives_each_thread_one_slice_up_to_the_number_of_jobs(n):
    lock = threading.Lock()
    with allowed(True), num_threads(n):
        for count in range(1, 9):
            calls = []

            def kernel(lo, hi, calls=calls):
                with lock:
                    calls.append((lo, hi))
                return lo, hi

            want = threads.even_slices(count, min(n, count))
            assert threads.run_jobs(kernel, count) == want  # every slice once, results in slice order
            assert sorted(calls) == want


def test_results_come_back_in_slice_order(pool):
    def kernel(lo, hi):
        time.sleep(0.02 * (3 - lo // 4))  # later slices finish first
        return lo, hi, threading.current_thread().name

    out = threads.run_jobs(kernel, 12)
    assert [(lo, hi) for lo, hi, _ in out] == [(0, 4), (4, 8), (8, 12)]
    assert out[0][2] == threading.current_thread().name  # the caller runs the first slice
    assert all(name.startswith("minigrad-") for _, _, name in out[1:])  # the others run on the pool
    assert len({name for _, _, name in out}) == 3


def test_nested_run_jobs_is_serial_and_does_not_deadlock(pool):
    inner_calls, allowed_inside, errors = [], [], []
    lock = threading.Lock()

    def inner(lo, hi):
        with lock:
            inner_calls.append((lo, hi))
        return hi - lo

    def outer(lo, hi):
        with lock:
            allowed_inside.append(threads.allowed())  # what data parallelism asks before using threads
        return threads.run_jobs(inner, 6)

    def main():
        try:
            assert threads.run_jobs(outer, 9) == [[6], [6], [6]]
        except BaseException as e:  # reported to the test thread below
            errors.append(e)

    t = threading.Thread(target=main, daemon=True)
    t.start()
    t.join(timeout=10)
    assert not t.is_alive(), "nested run_jobs deadlocked"
    assert not errors, errors
    assert allowed_inside == [False] * 3
    assert inner_calls == [(0, 6)] * 3  # each nested call ran as one slice on its own thread
    # outside a job, the calling thread is not marked as inside any more
    assert threads.allowed() is True
    assert threads.run_jobs(lambda lo, hi: (lo, hi), 6) == [(0, 2), (2, 4), (4, 6)]


@pytest.mark.parametrize("bad_slice", [0, 1, 2])
def test_an_exception_in_any_slice_reaches_the_caller(pool, bad_slice):
    parts = threads.even_slices(9, 3)

    def kernel(lo, hi):
        if (lo, hi) == parts[bad_slice]:
            raise KeyError(f"slice {lo}:{hi}")
        return lo

    with pytest.raises(KeyError, match=f"slice {parts[bad_slice][0]}:{parts[bad_slice][1]}"):
        threads.run_jobs(kernel, 9)
    assert threads.run_jobs(lambda lo, hi: lo, 9) == [0, 3, 6]  # the pool still works


@pytest.mark.parametrize("bad", [0, 3])
def test_an_exception_waits_for_every_slice(pool, bad):
    """Whether the caller's slice or a worker's fails, run_jobs returns after the others finished."""
    finished = []

    def kernel(lo, hi):
        if lo == bad:
            raise RuntimeError("boom")
        if lo == 6:
            time.sleep(0.2)
            finished.append(lo)
        return lo

    with pytest.raises(RuntimeError, match="boom"):
        threads.run_jobs(kernel, 9)
    assert finished == [6], "run_jobs returned while a slice was still running"


def test_changing_the_count_stops_the_old_workers():
    with allowed(True), num_threads(4):
        threads.run_jobs(lambda lo, hi: lo, 8)
        assert len(_worker_threads()) == 3
        minigrad.set_num_threads(2)
        assert _worker_threads() == []  # stopped and gone, not left waiting forever
        threads.run_jobs(lambda lo, hi: lo, 8)
        assert len(_worker_threads()) == 1


def test_changing_the_thread_count():
    for n in (2, 5, 3, 1):
        with allowed(True), num_threads(n):
            assert minigrad.get_num_threads() == threads.get_num_threads() == n
            # n slices meet at a barrier: they must really run at once, on n different threads
            barrier = threading.Barrier(n, timeout=5)

            def kernel(lo, hi, barrier=barrier):
                barrier.wait()
                return threading.current_thread().name

            names = threads.run_jobs(kernel, 100)
            assert len(names) == len(set(names)) == n


def test_two_callers_at_once_get_their_own_results(pool):
    """While one thread's call uses the workers, another's runs its slices itself."""
    errors = []

    def caller(tag: int) -> None:
        try:
            for _ in range(200):
                out = threads.run_jobs(lambda lo, hi: (tag, lo, hi), 9)
                assert out == [(tag, 0, 3), (tag, 3, 6), (tag, 6, 9)]
        except BaseException as e:  # reported to the test thread below
            errors.append(e)

    callers = [threading.Thread(target=caller, args=(tag,)) for tag in range(3)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in callers), "concurrent run_jobs calls deadlocked"
    assert not errors, errors


INTERRUPTED_CALL = """
import signal, time
import minigrad
from minigrad.accel import threads

threads.allow(True)
minigrad.set_num_threads(3)


def slow(lo, hi):
    if lo:
        time.sleep(0.3)  # the workers' slices are still running when the interrupt comes
    return lo


def interrupt(signum, frame):
    raise KeyboardInterrupt


signal.signal(signal.SIGALRM, interrupt)
signal.setitimer(signal.ITIMER_REAL, 0.05)
try:
    threads.run_jobs(slow, 9)
except KeyboardInterrupt:
    pass
else:
    raise AssertionError("the interrupt did not reach the caller")
for i in range(30):  # the first calls meet workers still busy with the interrupted call
    out = threads.run_jobs(lambda lo, hi, i=i: (i, lo, hi), 9)
    assert out == [(i, 0, 3), (i, 3, 6), (i, 6, 9)], out
minigrad.set_num_threads(2)  # stopping the workers works after an interrupt too
assert threads.run_jobs(lambda lo, hi: lo, 9) == [0, 4]
print("ok")
"""


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="signal.setitimer is not available on this platform")
def test_an_interrupted_call_leaves_the_workers_usable():
    """Ctrl-C while run_jobs waits for a worker: later calls still get their own results.
    (In a subprocess, so that a deadlock fails the test after a timeout instead of hanging it.)"""
    assert _python(INTERRUPTED_CALL) == "ok"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available on this platform")
def test_a_forked_child_starts_its_own_workers(pool):
    threads.run_jobs(lambda lo, hi: lo, 9)  # the parent's workers exist
    with warnings.catch_warnings():  # Python 3.12+ warns that forking a threaded process is risky
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its copy of the parent's workers has no threads behind it
        try:
            signal.alarm(20)  # a deadlock kills the child instead of hanging the test
            ok = threads.run_jobs(lambda lo, hi: lo, 9) == [0, 3, 6] and len(_worker_threads()) == 2
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3", None])
def test_set_num_threads_rejects_bad_counts(bad):
    prev = minigrad.get_num_threads()
    with pytest.raises(ValueError, match="positive integer"):
        minigrad.set_num_threads(bad)
    assert minigrad.get_num_threads() == prev


def test_set_num_threads_inside_a_job_is_refused(pool):
    assert threads.run_jobs(lambda lo, hi: _try_set_threads(), 6) == ["RuntimeError"] * 3
    assert minigrad.get_num_threads() == 3


def _try_set_threads():
    try:
        minigrad.set_num_threads(2)
    except RuntimeError:
        return "RuntimeError"
    return "accepted"


# ---- data parallelism uses the pool only with the acceleration on ---------------------------------
def _data_parallel_step(monkeypatch) -> tuple[list[int], list[int]]:
    """A data_parallel_backward of 4 chunks on 2 threads: the threads the chunks ran on,
    and the job counts run_jobs was asked for (run_jobs replaced by a serial stand-in)."""
    asked: list[int] = []

    def fake_run_jobs(kernel, count):
        asked.append(count)
        return [kernel(0, count)]

    monkeypatch.setattr(threads, "run_jobs", fake_run_jobs)
    minigrad.manual_seed(0)
    layer = minigrad.nn.Linear(3, 2, dtype="float64")
    rng = np.random.default_rng(0)
    chunks = [minigrad.tensor(rng.standard_normal((2, 3)), dtype="float64") for _ in range(4)]
    ran_on: list[int] = []

    def loss_fn(x):
        ran_on.append(threading.get_ident())
        return F.relu(layer(x)).sum()

    with num_threads(2):
        minigrad.data_parallel_backward(loss_fn, chunks, layer.parameters())
    return ran_on, asked


def test_without_the_acceleration_data_parallelism_never_reaches_run_jobs(monkeypatch):
    with allowed(False):
        ran_on, asked = _data_parallel_step(monkeypatch)
    assert asked == []
    assert ran_on == [threading.get_ident()] * 4  # every chunk on the calling thread


def test_with_the_acceleration_data_parallelism_asks_run_jobs(monkeypatch):
    """The counterpart of the test above: the same step reaches run_jobs once threads are allowed."""
    pytest.importorskip("threadpoolctl", reason="data parallelism uses threads only where threadpoolctl limits BLAS")
    with allowed(True):
        _, asked = _data_parallel_step(monkeypatch)
    assert asked == [4]


# ---- a fresh interpreter --------------------------------------------------------------------------
def _python(code: str, **env_vars: str) -> str:
    drop = ("OPENBLAS_THREAD_TIMEOUT", "MINIGRAD_NUM_THREADS", "MINIGRAD_ACCEL")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_vars)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# Counts the process's threads (the OS's count beyond those NumPy's BLAS starts by
# itself, and Python's) and the at-fork handlers minigrad registers (the standard
# library registers its own, e.g. ``random`` when NumPy's RNG first loads).
PROBES = """
import os, threading
import numpy as np

def os_threads():
    try:
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("Threads:")).split()[1])
    except OSError:  # no /proc: not Linux
        return None

a = np.ones((256, 256))
a @ a
blas_threads = os_threads()
handlers = []
register_at_fork = os.register_at_fork

def counting_register_at_fork(**kwargs):
    handlers.extend(f for f in kwargs.values() if getattr(f, "__module__", "").startswith("minigrad"))
    register_at_fork(**kwargs)

os.register_at_fork = counting_register_at_fork

def report(what):
    extra = None if blas_threads is None else os_threads() - blas_threads
    print(what, threading.active_count(), extra, len(handlers))
"""

STEP = """
import minigrad
import minigrad.functional as F
from minigrad.accel import threads

minigrad.manual_seed(0)
model = minigrad.nn.Sequential(minigrad.nn.Linear(8, 16), minigrad.nn.ReLU(), minigrad.nn.Linear(16, 3))
x = minigrad.randn(32, 8)
labels = minigrad.randint(0, 3, (32,))
F.cross_entropy(model(x), labels).backward()
chunks = [(x[:16], labels[:16]), (x[16:], labels[16:])]
minigrad.set_num_threads(2)
minigrad.data_parallel_backward(lambda c: F.cross_entropy(model(c[0]), c[1]), chunks, model.parameters())
report("after the step")
print("allowed", threads.allowed(), "workers", threads._state["workers"])
"""


def test_import_and_a_step_start_no_thread_and_register_no_fork_handler():
    """A forward/backward and a data-parallel backward on 2 threads, without the acceleration:
    one Python thread, no OS thread beyond NumPy's own, no at-fork handler, no workers."""
    out = _python(PROBES + STEP).splitlines()
    assert out[0].split()[:4] == ["after", "the", "step", "1"]
    assert out[0].split()[4] in ("0", "None")  # None: no /proc to read the OS's count from
    assert out[0].split()[5] == "0"
    assert out[1] == "allowed False workers None"


def test_the_workers_and_their_fork_handler_come_with_the_first_split():
    """The probes of the test above do see minigrad's threads: a run_jobs that splits over
    3 threads starts 2 workers and registers one at-fork handler, the next call neither."""
    code = PROBES + STEP + (
        "threads.allow(True)\n"
        "minigrad.set_num_threads(3)\n"
        "threads.run_jobs(lambda lo, hi: lo, 3)\n"
        "report('first')\n"
        "threads.run_jobs(lambda lo, hi: lo, 3)\n"
        "report('second')\n"
    )
    out = _python(code).splitlines()
    for line in out[2:]:
        what, python_threads, os_threads, handlers = line.split()
        assert what in ("first", "second") and python_threads == "3" and handlers == "1", line
        assert os_threads in ("2", "None"), line
    assert len(out) == 4


def test_import_minigrad_leaves_the_openblas_timeout_alone():
    show = "import minigrad, os; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
    assert _python(show) == "None"
    assert _python(show, OPENBLAS_THREAD_TIMEOUT="4") == "4"


def test_minigrad_num_threads_env_sets_default():
    assert _python("import minigrad; print(minigrad.get_num_threads())", MINIGRAD_NUM_THREADS="3") == "3"


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_bad_minigrad_num_threads_env_fails_import(value):
    code = "try:\n    import minigrad\nexcept ValueError as e:\n    print('ValueError:', e)"
    out = _python(code, MINIGRAD_NUM_THREADS=value)
    assert out.startswith("ValueError:") and "MINIGRAD_NUM_THREADS" in out and repr(value) in out
