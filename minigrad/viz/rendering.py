"""Writing a drawn graph to a file: :func:`render`.

SVG, PNG or PDF with Graphviz's ``dot`` program; the DOT source when ``dot`` is missing.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..files import write_atomic

if TYPE_CHECKING:
    import graphviz

RENDER_FORMATS = ("svg", "png", "pdf")
DOT_MISSING = (
    "Graphviz's 'dot' program is not installed; wrote {path}. "
    "Install Graphviz (e.g. apt-get install graphviz, brew install graphviz) to render SVG/PNG."
)


def _find_dot() -> str | None:
    """Where Graphviz's ``dot`` program is, or None."""
    return shutil.which("dot")


def render(graph: graphviz.Digraph, path: str | os.PathLike, format: str | None = None) -> Path:
    """Write ``graph`` to ``path`` as SVG, PNG or PDF (from the suffix or ``format``).

    Needs Graphviz's ``dot`` program; without it the DOT source is written next to
    ``path`` (same name, ``.dot`` suffix) and a message says how to install Graphviz.
    A ``.dot`` path (or ``format="dot"``) writes the source. Returns the path written.
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt == "dot":
        write_atomic(path, graph.source.encode())
        return path
    if fmt not in RENDER_FORMATS:
        raise ValueError(f"render: format must be one of {RENDER_FORMATS} or 'dot', got {fmt or path.name!r}")
    if _find_dot() is None:
        dot_path = path.with_suffix(".dot")
        write_atomic(dot_path, graph.source.encode())
        print(DOT_MISSING.format(path=dot_path), file=sys.stderr)
        return dot_path
    write_atomic(path, graph.pipe(format=fmt))
    return path
