"""Shared fixtures for minigrad's tests."""

from __future__ import annotations

import pytest
from marked_backend import MarkedBackend

import minigrad.backend as B


@pytest.fixture(autouse=True)
def reference_path_after_each_test():
    """A test that enabled the acceleration (the CLI does, in process) leaves it off again."""
    yield
    import minigrad

    if minigrad.accel.is_enabled():
        minigrad.accel.disable()


@pytest.fixture
def marked():
    """Register the test-only "marked" backend (CPU arrays of type MarkedArray) for one test."""
    backend = MarkedBackend()
    B.register_backend(backend)
    try:
        yield backend
    finally:
        B.unregister_backend("marked")


# The two paths every value, gradient-check, parity and optimizer test runs on: the
# reference ops, and the acceleration (minigrad.accel) at 1 and 2 threads (both the
# thread pool and the numba kernels' threads). A test module
# opts in with `pytestmark = pytest.mark.usefixtures("accel_mode")`.
ACCEL_MODES = {"reference": None, "accel-1thread": 1, "accel-2threads": 2}


@pytest.fixture(params=list(ACCEL_MODES))
def accel_mode(request):
    """Run the test on the reference path, then with the acceleration on (1 and 2 threads).

    A kernel that fails its self-check is a failure here, not a skip: enable() must
    report the CPU kernels on wherever numba is installed.
    """
    import minigrad

    threads = ACCEL_MODES[request.param]
    if threads is None:
        minigrad.accel.disable()
        yield request.param
        return
    pytest.importorskip("numba", reason="the acceleration's CPU kernels need numba (the fast extra)")
    previous = minigrad.get_num_threads()
    status = minigrad.accel.enable(malloc=False)
    assert "cpu: on" in status, status
    minigrad.set_num_threads(threads)
    minigrad.accel.set_kernel_threads(threads)
    try:
        yield request.param
    finally:
        minigrad.set_num_threads(previous)
        minigrad.accel.set_kernel_threads(1)
        minigrad.accel.disable()
