"""The explorer page: one offline HTML file (:class:`ExplorerPage`).

The page is the template ``explorer_assets/explorer.html`` with its style
(``explorer.css``), its script (``explorer.js``), the graph pictures (SVG) and the data
of :func:`minigrad.viz.explore` written inside it: no network reference of any kind, so it
works from a file, offline, and can be mailed around. Arrays travel as base64
(float32 for the attention maps, float16 for the small heatmaps); everything else is JSON.

The graph is our module-clustered picture (:mod:`minigrad.viz.picture`) in both views,
rendered by Graphviz's ``dot`` when it is installed (and the ``graphviz`` package, the viz
extra); without them each view is drawn
by :mod:`minigrad.viz.explore_layout` (simpler, same node ids) and the page says so.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..files import write_atomic
from .rendering import _find_dot

ASSETS = "explorer_assets"
NO_DOT = (
    "Graphviz's 'dot' program or the graphviz package is missing: the graph is drawn by a simple "
    "layered layout (apt-get install graphviz and pip install 'minigrad-encoder[viz]' for the boxed picture)."
)


def encode_array(array: np.ndarray, dtype: Any) -> str:
    """``array`` as little-endian ``dtype`` bytes in base64 (row-major)."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode()


def _has_graphviz() -> bool:
    """Is the ``graphviz`` Python package (the viz extra) importable?"""
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return True


def _asset(name: str) -> str:
    return resources.files("minigrad.viz").joinpath(ASSETS, name).read_text(encoding="utf-8")


def _clean_svg(svg: str) -> str:
    """Graphviz's SVG as inline markup: no XML prolog, DOCTYPE (it names a URL) or comments."""
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    return svg.strip()


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: every "<" (in strings only, in JSON) written as
    \\u003c, so no "</script>" or "<!--" in a docstring can end or upset the element."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


class ExplorerPage:
    """What :func:`minigrad.viz.explore` returns: the data and the page built from it.

    ``data`` is the JSON-able record (nodes, leaves, backward order, gradient terms,
    attention maps); ``svgs`` the graph pictures by view; :meth:`html` the page,
    :meth:`save` writes it; in Jupyter it shows inline (:meth:`_repr_html_`).
    """

    def __init__(self, data: dict[str, Any], pictures: dict[str, Any], result: Any, module: Any) -> None:
        self.data = data
        self.svgs: dict[str, str] = {}
        self.used_dot = _find_dot() is not None and _has_graphviz()
        for view, picture in pictures.items():
            self.svgs[view] = self._draw(view, picture, result, module)
        data["layout"] = "dot" if self.used_dot else "simple"
        data["notice"] = "" if self.used_dot else NO_DOT

    def _draw(self, view: str, picture: Any, result: Any, module: Any) -> str:
        if self.used_dot:
            from .dot import draw_graph

            # the page has its own legend
            graph = draw_graph(result, module=module, depth=picture.depth, grads=True, legend=False)
            return _clean_svg(graph.pipe(format="svg").decode("utf-8"))
        from .explore_layout import simple_svg

        return simple_svg(picture)

    def html(self) -> str:
        """The whole page, one self-contained HTML document."""
        page = _asset("explorer.html")
        parts = {
            "/*CSS*/": _asset("explorer.css"),
            "/*JS*/": _asset("explorer.js"),
            "<!--TITLE-->": html.escape(self.data["title"]),
            "<!--SVG_COLLAPSED-->": self.svgs["collapsed"],
            "<!--SVG_EXPANDED-->": self.svgs["expanded"],
            "/*DATA*/": "window.EXPLORER = " + _script_json(self.data) + ";",
        }
        pattern = re.compile("|".join(re.escape(k) for k in parts))
        return pattern.sub(lambda m: parts[m.group(0)], page)  # one pass: inserted text is not rescanned

    def save(self, path: str | os.PathLike) -> Path:
        """Write the page to ``path`` (atomically); returns the path."""
        path = Path(path)
        write_atomic(path, self.html().encode("utf-8"))
        return path

    def _repr_html_(self) -> str:
        """Inline in Jupyter: the page in a sandboxed iframe (its script and style stay apart)."""
        return (
            f'<iframe srcdoc="{html.escape(self.html(), quote=True)}" '
            'style="width:100%;height:900px;border:1px solid #ccc" sandbox="allow-scripts"></iframe>'
        )
