"""02 - Write your own op: SiLU (a.k.a. swish), checked by gradcheck.

An op is a ``minigrad.Function`` subclass with two halves:

* ``forward(self, x)`` works on raw backend arrays (NumPy on the CPU, CuPy on the GPU,
  reached through ``self.xp``) and builds no graph;
* ``backward(self, g)`` gets the upstream gradient g = dL/d(out) as a Tensor and returns
  dL/dx, written with Tensor ops (so it is itself differentiable).

``minigrad.gradcheck`` compares backward with central finite differences of
L = sum(u * f(x)) for a random u. A backward with a missing term is caught, and the
error names the input, the worst element and both values.

Run:  python examples/02_custom_op.py [--out DIR]
Reads: docs/guide.md, section 1 (vector-Jacobian products) and the gradcheck notes.
"""

from __future__ import annotations

import argparse
import os

import minigrad
import minigrad.functional as F
from minigrad import Function, GradcheckError, gradcheck, gradgradcheck


class SiLU(Function):
    """out = x * sigmoid(x)   (SiLU / swish).

    With s = sigmoid(x) and s' = s (1 - s):

        d out / dx = s + x s (1 - s) = s (1 + x (1 - s))
        dL/dx = g * s * (1 + x * (1 - s))
    """

    name = "silu"  # the name shown in errors and graph pictures

    def forward(self, x):
        # raw arrays: self.xp is numpy (CPU) or cupy (GPU); self.inputs keeps the input Tensor
        s = 1.0 / (1.0 + self.xp.exp(-x))
        return x * s

    def backward(self, g):
        (x,) = self.inputs  # the input Tensor, saved by Function.apply (saves_inputs=True)
        s = F.sigmoid(x)  # Tensor ops: when create_graph=True this builds a graph too
        return g * s * (1.0 + x * (1.0 - s))


class SiLUWrongBackward(SiLU):
    """The same forward, but backward forgets the product rule: dL/dx = g * s (wrong!)."""

    name = "silu_wrong"

    def backward(self, g):
        (x,) = self.inputs
        return g * F.sigmoid(x)  # the x * s * (1 - s) term is missing


def silu(x: minigrad.Tensor) -> minigrad.Tensor:
    """The user-facing function: ``Function.apply`` runs forward and records the node."""
    return SiLU.apply(x)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="examples_out", help="folder for pictures (unused here)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    parse_args(argv)
    quick = os.environ.get("MINIGRAD_EXAMPLES_QUICK") == "1"
    minigrad.manual_seed(0)
    shape = (3, 4) if quick else (5, 6)
    # gradcheck needs float64: central differences have error O(eps^2) + rounding / eps
    x = minigrad.randn(*shape, dtype="float64", requires_grad=True)

    # ---- 1. forward and backward ----------------------------------------------------------
    y = silu(x)
    composite = x * F.sigmoid(x)  # the same function from built-in ops (3 nodes instead of 1)
    value_diff = (y - composite).abs().max().item()
    (dx_ours,) = minigrad.grad(y.sum(), x)
    (dx_composite,) = minigrad.grad(composite.sum(), x)
    grad_diff = (dx_ours - dx_composite).abs().max().item()
    print(f"SiLU on a {shape} float64 input: node {y.grad_fn}")
    print(f"  max |silu(x) - x*sigmoid(x)|           = {value_diff:.1e}")
    print(f"  max |d silu - d (x*sigmoid(x))| (ones) = {grad_diff:.1e}")

    # ---- 2. gradcheck: the good backward passes ----------------------------------------------
    good = gradcheck(silu, [x])
    print(f"gradcheck(SiLU): {'passed' if good else 'FAILED'}")
    # backward is written with Tensor ops, so second derivatives come for free
    good2 = gradgradcheck(silu, [x])
    print(f"gradgradcheck(SiLU): {'passed' if good2 else 'FAILED'}  (the backward is differentiable too)")

    # ---- 3. a wrong backward is caught ---------------------------------------------------------
    report = ""
    try:
        gradcheck(SiLUWrongBackward.apply, [x])
        caught = False
        print("gradcheck(SiLUWrongBackward): passed?! (it should not)")
    except GradcheckError as exc:
        caught = True
        report = str(exc)
        print("gradcheck(SiLUWrongBackward) raised GradcheckError, as it should:")
        print(f"  {report}")

    return {
        "shape": shape,
        "node": y.grad_fn.op_name,
        "node_shape": y.shape,
        "x": x.detach().tolist(),  # the test recomputes the report's worst element from x
        "value_diff": value_diff,
        "grad_diff": grad_diff,
        "good_passed": bool(good),
        "gradgrad_passed": bool(good2),
        "bad_caught": caught,
        "report": report,
    }


if __name__ == "__main__":
    main()
