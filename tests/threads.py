"""Thread helpers shared by the tests of minigrad's CPU threads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import minigrad


@contextmanager
def num_threads(n: int) -> Iterator[None]:
    """minigrad's kernel threads set to ``n`` inside the block, restored after."""
    prev = minigrad.get_num_threads()
    minigrad.set_num_threads(n)
    try:
        yield
    finally:
        minigrad.set_num_threads(prev)
