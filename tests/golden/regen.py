"""Regenerate the golden DOT files of tests/test_viz.py (run from the repository root):

    python tests/golden/regen.py

Run it after an intended change to the pictures (or to how ops decompose, which changes
the graph), then review the diff of tests/golden/*.dot before committing it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("tiny_layer_expanded.dot")
# the tiny layer of the golden picture: small enough to review the DOT text by eye
TINY_LAYER = dict(view="expanded", d_model=4, nhead=2, dim_feedforward=8, seq=3, batch=2, seed=0)


def tiny_layer_source() -> str:
    """The DOT text of the tiny layer's expanded graph (no numbers, only names and shapes)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from encoder.graphs import layer_graph

    return layer_graph(**TINY_LAYER).source


if __name__ == "__main__":
    GOLDEN.write_text(tiny_layer_source())
    print(f"wrote {GOLDEN.relative_to(ROOT)}")
