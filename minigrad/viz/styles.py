"""How each kind of node of a graph picture looks, and what the legend says about it.

The Graphviz attributes of ops, tensors, parameters, inputs, constants, the output,
collapsed modules and scopes, and of anything holding NaN or inf (``BAD``).

:mod:`minigrad.viz.picture` gives every node the style of its kind; :mod:`minigrad.viz.dot`
shades module boxes and draws the legend with the same styles, so the legend matches the nodes.
"""

BAD = {"color": "red", "fontcolor": "red", "fillcolor": "#f4cccc", "penwidth": "2"}
STYLES: dict[str, dict[str, str]] = {
    "op": {"shape": "ellipse", "style": "filled", "fillcolor": "#cfe2f3", "color": "#3d6fa8", "height": "0.3"},
    "tensor": {
        "shape": "box",
        "style": "filled",
        "fillcolor": "white",
        "color": "#999999",
        "fontsize": "9",
        "height": "0.2",
        "margin": "0.06,0.02",
    },
    "parameter": {"shape": "box", "style": "filled", "fillcolor": "#fce5cd", "color": "#b45f06"},
    "input": {"shape": "box", "style": "filled", "fillcolor": "#d9ead3", "color": "#38761d"},
    "constant": {
        "shape": "box",
        "style": "dashed",
        "color": "#999999",
        "fontcolor": "#666666",
        "fontsize": "9",
        "height": "0.2",
        "margin": "0.06,0.02",
    },
    "output": {"shape": "box", "style": "filled,bold", "fillcolor": "#d9d2e9", "color": "#674ea7", "peripheries": "2"},
    "module": {"shape": "box3d", "style": "filled", "fillcolor": "#cfe2f3", "color": "#3d6fa8"},
    "scope": {"shape": "box", "style": "filled,dashed,rounded", "fillcolor": "#fff2cc", "color": "#bf9000"},
    "nonfinite": {"shape": "box", "style": "filled", **BAD},
}
LEGEND_TEXT = {
    "op": "op",
    "tensor": "op output\\n(shape, dtype)",
    "parameter": "parameter\\n(module path)",
    "input": "input (leaf)",
    "constant": "constant\\n(needs no grad)",
    "output": "output",
    "module": "module\\n(collapsed)",
    "scope": "named scope\\n(collapsed)",
    "nonfinite": "NaN or inf\\n(value or grad)",
}
CLUSTER_FILLS = ("#f3f6fb", "#e6ecf6", "#d9e2f1", "#ccd8ec")
