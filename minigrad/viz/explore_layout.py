"""A simple layered drawing of a graph picture, for the explorer page when Graphviz's ``dot``
is missing: :func:`simple_svg`.

Each node of the :class:`~minigrad.viz.picture.Picture` goes on the row of its longest path
from an input (the output at the bottom, as ``dot`` draws it; parameters, inputs and constants
on the row above their first consumer), nodes of a row side by side in the order of the nodes
feeding them; edges are straight lines. The markup mirrors Graphviz's (``<g class="node">``
with a ``<title>`` holding the node id), so the page treats both drawings alike. Module
boxes are not drawn: a node's module is in its details.
"""

from __future__ import annotations

from html import escape
from typing import Any

from .styles import STYLES

CHAR_W, LINE_H, GAP_X, GAP_Y, PAD = 5.4, 12, 14, 34, 10


def _items(cluster: Any) -> list[tuple[str, dict[str, str]]]:
    out = list(cluster.items)
    for child in cluster.children.values():
        out.extend(_items(child))
    return out


def simple_svg(picture: Any) -> str:
    """The picture's nodes and edges as inline SVG markup."""
    items = _items(picture.top)
    order = {node_id: k for k, (node_id, _) in enumerate(items)}
    rank = {node_id: 0 for node_id, _ in items}
    edges = [(s, d) for s, d, _ in picture.edges if s in order and d in order]
    for _ in range(len(items)):  # longest path by relaxation (the graph is acyclic)
        changed = False
        for s, d in edges:
            if rank[d] < rank[s] + 1:
                rank[d] = rank[s] + 1
                changed = True
        if not changed:
            break
    # sources (parameters, inputs, constants) go on the row just above their first consumer
    succ: dict[str, list[str]] = {}
    has_pred = {d for _, d in edges}
    for s, d in edges:
        succ.setdefault(s, []).append(d)
    for node_id in rank:
        if node_id not in has_pred and node_id in succ:
            rank[node_id] = max(0, min(rank[d] for d in succ[node_id]) - 1)
    sizes = {}
    for node_id, attrs in items:
        lines = attrs["label"].split("\\n")
        sizes[node_id] = (max(len(t) for t in lines) * CHAR_W + 2 * PAD, len(lines) * LINE_H + 8, lines)
    rows: dict[int, list[str]] = {}
    for node_id, _ in items:
        rows.setdefault(rank[node_id], []).append(node_id)
    # one downward sweep: order each row by the mean place of the nodes feeding it
    place: dict[str, float] = {}
    preds: dict[str, list[str]] = {}
    for s, d in edges:
        preds.setdefault(d, []).append(s)
    for r in sorted(rows):
        def key(n: str) -> float:
            known = [place[p] for p in preds.get(n, []) if p in place]
            return sum(known) / len(known) if known else order[n]

        rows[r].sort(key=key)
        for k, n in enumerate(rows[r]):
            place[n] = k - (len(rows[r]) - 1) / 2
    widths = {r: sum(sizes[n][0] for n in ns) + GAP_X * (len(ns) - 1) for r, ns in rows.items()}
    total_w = max(widths.values(), default=0) + 2 * PAD
    pos: dict[str, tuple[float, float, float, float]] = {}
    y = PAD
    for r in sorted(rows):
        x = (total_w - widths[r]) / 2
        height = max(sizes[n][1] for n in rows[r])
        for n in rows[r]:
            w, h, _ = sizes[n]
            pos[n] = (x, y + (height - h) / 2, w, h)
            x += w + GAP_X
        y += height + GAP_Y
    parts = [
        f'<svg width="{total_w:.0f}pt" height="{y:.0f}pt" viewBox="0 0 {total_w:.0f} {y:.0f}">',
        '<g class="graph">',
    ]
    for s, d in edges:
        sx, sy, sw, sh = pos[s]
        dx, dy, dw, _ = pos[d]
        parts.append(
            f'<g class="edge"><title>{escape(s)}&#45;&gt;{escape(d)}</title>'
            f'<path fill="none" stroke="#888" d="M{sx + sw / 2:.1f},{sy + sh:.1f} L{dx + dw / 2:.1f},{dy:.1f}"/></g>'
        )
    kind_of = {node_id: attrs.get("class", "") for node_id, attrs in items}
    for node_id, _ in items:
        x, y0, w, h = pos[node_id]
        style = STYLES.get(kind_of[node_id], STYLES["tensor"])
        fill = style.get("fillcolor", "white") if "filled" in style.get("style", "") else "white"
        shape = (
            f'<ellipse cx="{x + w / 2:.1f}" cy="{y0 + h / 2:.1f}" rx="{w / 2:.1f}" ry="{h / 2:.1f}"'
            if style.get("shape") == "ellipse"
            else f'<rect x="{x:.1f}" y="{y0:.1f}" width="{w:.1f}" height="{h:.1f}" rx="3"'
        )
        parts.append(
            f'<g class="node"><title>{escape(node_id)}</title>'
            f'{shape} fill="{fill}" stroke="{style.get("color", "#999")}"/>'
        )
        for k, line in enumerate(sizes[node_id][2]):
            parts.append(
                f'<text text-anchor="middle" x="{x + w / 2:.1f}" y="{y0 + 4 + LINE_H * (k + 0.8):.1f}" '
                f'font-family="Helvetica,sans-serif" font-size="9">{escape(line)}</text>'
            )
        parts.append("</g>")
    parts.append("</g></svg>")
    return "\n".join(parts)
