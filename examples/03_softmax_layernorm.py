"""03 - Fused ops with hand-derived backward versus the same math op by op.

``F.softmax`` and ``F.layer_norm`` are single graph nodes whose backward is a formula
derived on paper (see docs/guide.md, sections 4 and 5):

    softmax:     dL/dx = y * (g - sum(g * y))
    layer norm:  dL/dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = g * w

``F.softmax_composite`` and ``F.layer_norm_composite`` compute the same functions from
primitive ops (exp, sum, div, mean, sqrt...), so autograd derives their backward by
chaining the primitives' derivatives. Both must give the same values and gradients;
the fused versions just need far fewer nodes (less memory, fewer passes).

Run:  python examples/03_softmax_layernorm.py [--out DIR]
"""

from __future__ import annotations

import argparse
import os

import minigrad
import minigrad.functional as F
from minigrad.viz import count_ops


def max_diff(a: minigrad.Tensor, b: minigrad.Tensor) -> float:
    return (a.detach() - b.detach()).abs().max().item()


def op_names(output: minigrad.Tensor) -> list[str]:
    """The names of the op nodes behind ``output`` (each node once), sorted."""
    names, seen, stack = [], set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if not isinstance(node, minigrad.Function) or id(node) in seen:
            continue  # a leaf tensor, a constant (None) or a node already counted
        seen.add(id(node))
        names.append(node.op_name)
        stack.extend(node.next)
    return sorted(names)


def compare(name: str, fused, composite, inputs: list[minigrad.Tensor], upstream: minigrad.Tensor) -> dict:
    """Values, gradients (of L = sum(upstream * f(inputs))) and node counts of two implementations."""
    y_fused, y_comp = fused(*inputs), composite(*inputs)
    # a random upstream gradient: with all ones, sum(softmax(x)) = 1 would make every gradient 0
    g_fused = minigrad.grad((y_fused * upstream).sum(), inputs)
    g_comp = minigrad.grad((y_comp * upstream).sum(), inputs)
    row = {
        "value_diff": max_diff(y_fused, y_comp),
        "grad_diff": max(max_diff(a, b) for a, b in zip(g_fused, g_comp)),
        # nodes that compute y itself (the `* upstream` and `.sum()` are not counted)
        "nodes_fused": count_ops(fused(*inputs)),
        "nodes_composite": count_ops(composite(*inputs)),
        "ops_fused": op_names(fused(*inputs)),
        "ops_composite": op_names(composite(*inputs)),
    }
    print(
        f"{name:11}{row['value_diff']:>14.1e}{row['grad_diff']:>14.1e}"
        f"{row['nodes_fused']:>10}{row['nodes_composite']:>12}"
    )
    return row


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="examples_out", help="folder for pictures (unused here)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    parse_args(argv)
    quick = os.environ.get("MINIGRAD_EXAMPLES_QUICK") == "1"
    minigrad.manual_seed(0)
    shape = (2, 3, 5) if quick else (4, 8, 16)  # (batch, seq, features): normalize the last axis
    x = minigrad.randn(*shape, dtype="float64", requires_grad=True)
    w = (1.0 + 0.1 * minigrad.randn(shape[-1], dtype="float64")).detach().requires_grad_()
    b = (0.1 * minigrad.randn(shape[-1], dtype="float64")).detach().requires_grad_()
    upstream = minigrad.randn(*shape, dtype="float64")

    print(f"input {shape}, float64; max differences fused vs composite, and graph nodes of each:\n")
    print(f"{'op':11}{'values':>14}{'gradients':>14}{'fused':>10}{'composite':>12}")
    results = {
        "softmax": compare("softmax", F.softmax, F.softmax_composite, [x], upstream),
        "layer_norm": compare(
            "layer_norm",
            lambda x, w, b: F.layer_norm(x, shape[-1], w, b),
            lambda x, w, b: F.layer_norm_composite(x, shape[-1], w, b),
            [x, w, b],
            upstream,
        ),
    }
    for name, row in results.items():
        print(f"  {name} composite: {', '.join(row['ops_composite'])}")

    # the layer-norm weight and bias are broadcast over the B * S positions, so their
    # gradients are sums over the positions: d bias = sum(upstream), d weight = sum(upstream * xhat)
    with minigrad.no_grad():
        xhat = F.layer_norm_composite(x, shape[-1])  # no weight, no bias: the normalized x
        positions = tuple(range(len(shape) - 1))
        expected = {"weight": (upstream * xhat).sum(positions), "bias": upstream.sum(positions)}
    (dw, db) = minigrad.grad((F.layer_norm(x, shape[-1], w, b) * upstream).sum(), [w, b])
    sums = {"weight": max_diff(dw, expected["weight"]), "bias": max_diff(db, expected["bias"])}
    results["layer_norm"]["param_grad_shape"] = db.shape
    results["layer_norm"]["param_grad_vs_sums"] = sums
    print(
        f"\nlayer norm's weight and bias gradients {db.shape}: sums over the {x.numel() // shape[-1]} positions of "
        f"upstream * xhat and of upstream (max differences {sums['weight']:.1e}, {sums['bias']:.1e})"
    )
    print(
        "\nSame numbers (to rounding: about 1e-16 for softmax, 1e-15 for layer norm), but one node"
        "\ninstead of many: the fused backward is the composite graph's chain rule, simplified by hand."
    )
    return results


if __name__ == "__main__":
    main()
