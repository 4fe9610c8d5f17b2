"""Shared fixtures for minigrad's tests."""

from __future__ import annotations

import pytest
from marked_backend import MarkedBackend

import minigrad.backend as B


@pytest.fixture
def marked():
    """Register the test-only "marked" backend (CPU arrays of type MarkedArray) for one test."""
    backend = MarkedBackend()
    B.register_backend(backend)
    try:
        yield backend
    finally:
        B.unregister_backend("marked")
