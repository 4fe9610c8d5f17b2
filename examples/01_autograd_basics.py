"""01 - Autograd basics: a scalar expression, its gradients, and the graph behind them.

    L = tanh(a * b + c) ** 2        with a = 2, b = -1, c = 1.5

minigrad records every op as a node of a graph while it computes L; ``L.backward()``
walks that graph from L back to a, b and c, multiplying local derivatives (the chain
rule). Here we check its three gradients against the same derivatives worked out by
hand (in the comments) and from the closed-form formulas (in code).

Run:  python examples/01_autograd_basics.py [--out DIR]
Reads: docs/guide.md, section 1 (chain rule and vector-Jacobian products).
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import minigrad


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="examples_out", help="folder for pictures (default examples_out/)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    _quick = os.environ.get("MINIGRAD_EXAMPLES_QUICK") == "1"  # nothing to shrink here: it is instant

    # ---- 1. the forward pass records a graph -------------------------------------------
    # float64 so that the comparison below is exact to ~1e-16
    a = minigrad.tensor(2.0, dtype="float64", requires_grad=True)
    b = minigrad.tensor(-1.0, dtype="float64", requires_grad=True)
    c = minigrad.tensor(1.5, dtype="float64", requires_grad=True)
    a.name, b.name, c.name = "a", "b", "c"  # names show up in the picture

    from minigrad import viz

    # viz.record() keeps each op's value statistics and (after backward) gradient norm,
    # so the picture can show them; it is not needed for backward itself.
    with viz.record(grads=True, values=True):
        ab = a * b  # ab = 2 * (-1) = -2
        u = ab + c  # u = -2 + 1.5 = -0.5
        t = u.tanh()  # t = tanh(-0.5) = -0.46211715726
        L = t**2  # L = t^2 = 0.21355226703

    # ---- 2. backward: the chain rule, from L back to the leaves ----------------------------
    # keep the gradients of the intermediate tensors too, and note the order in which
    # backward reaches each tensor (a hook runs when that tensor's gradient is computed)
    t.retain_grad()
    u.retain_grad()
    reached: list[str] = []
    for name, tensor in (("t", t), ("u", u), ("a*b", ab), ("a", a)):
        tensor.register_hook(lambda g, name=name: reached.append(name))
    L.backward()
    # By hand, from the top of the graph down:
    #   dL/dt = 2 t                      = 2 * (-0.46211715726)       = -0.92423431452
    #   dt/du = 1 - t^2                  = 1 - 0.21355226703          =  0.78644773297
    #   dL/du = dL/dt * dt/du            = -0.92423431452 * 0.786447733 = -0.72686198138
    #   du/da = b, du/db = a, du/dc = 1, so
    #   dL/da = dL/du * b = -0.72686198138 * (-1)  =  0.72686198138
    #   dL/db = dL/du * a = -0.72686198138 * 2     = -1.45372396277
    #   dL/dc = dL/du * 1                          = -0.72686198138
    by_hand = {"a": 0.72686198138, "b": -1.45372396277, "c": -0.72686198138}
    by_hand_steps = {
        "u": -0.5, "t": -0.46211715726, "L": 0.21355226703,
        "dL/dt": -0.92423431452, "dt/du": 0.78644773297, "dL/du": -0.72686198138,
    }

    # the same, from the closed-form formula dL/du = 2 tanh(u) (1 - tanh(u)^2), in plain Python
    av, bv, cv = 2.0, -1.0, 1.5
    tv = math.tanh(av * bv + cv)
    dL_du = 2.0 * tv * (1.0 - tv * tv)
    closed_form = {"a": dL_du * bv, "b": dL_du * av, "c": dL_du}

    autograd = {"a": a.grad.item(), "b": b.grad.item(), "c": c.grad.item()}
    # the intermediate numbers of the comments above, as autograd computed them
    steps = {
        "u": u.item(),
        "t": t.item(),
        "L": L.item(),
        "dL/dt": t.grad.item(),
        "dt/du": u.grad.item() / t.grad.item(),
        "dL/du": u.grad.item(),
    }

    print(f"L = tanh(a*b + c)**2 with a={av}, b={bv}, c={cv}:  L = {L.item():.11f}  (closed form {tv * tv:.11f})")
    print()
    print(f"{'':6}{'autograd':>18}{'closed form':>18}{'by hand':>16}{'|autograd - closed|':>22}")
    max_diff = 0.0
    for k in ("a", "b", "c"):
        diff = abs(autograd[k] - closed_form[k])
        max_diff = max(max_diff, diff)
        print(f"dL/d{k}{autograd[k]:18.12f}{closed_form[k]:18.12f}{by_hand[k]:16.11f}{diff:22.2e}")
    print("on the way (autograd): " + ", ".join(f"{k} = {v:.11f}" for k, v in steps.items()))
    print()
    # the graph: each node (an op) points to where its inputs came from (node.next):
    # another node, a leaf tensor that requires grad, or None for a constant
    chain, node = [], L.grad_fn
    while isinstance(node, minigrad.Function):
        chain.append(node.op_name)
        node = node.next[0]  # follow the first input
    leaf = node.name  # the chain ends at a leaf: a
    print("graph, from L back along first inputs: " + " <- ".join(chain) + f" <- {leaf}")
    print("backward walks it in this order: the gradient reached " + ", then ".join(reached))

    # ---- 3. the picture ---------------------------------------------------------------------
    picture, dot_source = None, None
    try:
        graph = viz.draw_graph(L, grads=True, values=True, title="L = tanh(a*b + c)**2")
    except ImportError as exc:  # the graphviz Python package is optional
        print(f"(no picture: {exc})")
    else:
        dot_source = graph.source  # the DOT text of the picture (the test reads it)
        picture = viz.render(graph, out / "01_autograd_graph.svg")
        print(f"wrote {picture}  (ellipses are ops, boxes are tensors with their value and grad norm)")

    return {
        "loss": L.item(),
        "loss_closed_form": tv * tv,
        "grads": autograd,
        "closed_form": closed_form,
        "by_hand": by_hand,
        "steps": steps,
        "by_hand_steps": by_hand_steps,
        "max_diff": max_diff,
        "chain": chain,
        "leaf": leaf,
        "reached": reached,
        "picture": picture,
        "dot_source": dot_source,
    }


if __name__ == "__main__":
    main()
