"""05 - One Transformer encoder layer: its graph, its gradient check, its gradients.

    post-LN layer (the default, norm_first=False):
        x = norm1(x + self_attn(x))
        x = norm2(x + ff(x))

1. The autograd graph of the layer, drawn twice: collapsed (one box per sub-module, the
   shapes on the edges) and expanded (every op inside its module's box).
2. ``minigrad.gradcheck`` on the whole layer in float64, with a padding mask, checking
   the gradient of the input and of every parameter. "directional" mode compares one
   random directional derivative per tensor (two forward passes each) instead of every
   element, which is what makes it fast enough for ~2,000 parameters.
3. After one backward pass, the gradient norm of each sub-layer's parameters.

Run:  python examples/05_encoder_layer.py [--out DIR]
Reads: docs/guide.md, sections 6 and 8.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import minigrad
from encoder.layers import TransformerEncoderLayer

SUBLAYERS = ("self_attn", "ff", "norm1", "norm2")


def padding_mask(batch: int, seq: int) -> minigrad.Tensor:
    """(batch, seq) bool, True = padding: sequence b ends with b padded positions."""
    return minigrad.tensor([[j >= seq - b for j in range(seq)] for b in range(batch)], dtype="bool")


def grad_norm(params) -> float:
    return math.sqrt(sum((p.grad * p.grad).sum().item() for p in params if p.grad is not None))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="examples_out", help="folder for the graph pictures (default examples_out/)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    quick = os.environ.get("MINIGRAD_EXAMPLES_QUICK") == "1"
    d_model, nhead, d_ff, batch, seq = (8, 2, 16, 2, 4) if quick else (16, 2, 32, 3, 5)

    minigrad.manual_seed(0)
    layer = TransformerEncoderLayer(d_model, nhead, d_ff, dropout=0.0)  # no dropout: deterministic
    n_params = layer.num_parameters()
    print(f"{layer}\n{n_params:,} parameters\n")

    # ---- 1. pictures of the graph ------------------------------------------------------------
    pictures = {}
    try:
        from encoder.graphs import write_layer_graph

        for view in ("collapsed", "expanded"):
            pictures[view] = write_layer_graph(
                out / f"05_layer_{view}.svg", layer=layer, view=view, seq=seq, batch=batch
            )
            print(f"wrote {pictures[view]}")
    except ImportError as exc:  # the graphviz Python package is optional
        print(f"(no pictures: {exc})")

    # ---- 2. gradcheck of the whole layer in float64 ----------------------------------------------
    layer.double()
    x = minigrad.randn(batch, seq, d_model, dtype="float64", requires_grad=True)
    mask = padding_mask(batch, seq)
    params = list(layer.parameters())

    def f(x, *params):
        # the parameters are inputs of gradcheck so that it perturbs and checks them too;
        # the layer reads them itself (they are the very same Parameter objects)
        return layer(x, src_key_padding_mask=mask)

    passed = minigrad.gradcheck(f, [x, *params], mode="directional", atol=1e-6, rtol=1e-4)
    print(f"\ngradcheck (directional, float64; sequence b has its last b positions padded): "
          f"the input and {len(params)} parameter tensors: {'passed' if passed else 'FAILED'}")

    # ---- 3. gradient norms of each sub-layer -------------------------------------------------------
    layer.zero_grad()
    upstream = minigrad.randn(batch, seq, d_model, dtype="float64")
    (layer(x, src_key_padding_mask=mask) * upstream).sum().backward()
    norms = {name: grad_norm(getattr(layer, name).parameters()) for name in SUBLAYERS}
    upstream_norm = math.sqrt((upstream * upstream).sum().item())
    print(f"\ngradient norms after backward of L = sum(upstream * layer(x)), |upstream| = {upstream_norm:.2f}:")
    sizes = {}
    for name in SUBLAYERS:
        ps = list(getattr(layer, name).parameters())
        sizes[name] = {"tensors": len(ps), "values": sum(p.numel() for p in ps)}
        print(f"  {name:10}{norms[name]:10.4f}   ({len(ps)} tensors, {sizes[name]['values']:,} values)")
    norms["input"] = grad_norm([x])
    print(f"  {'input x':10}{norms['input']:10.4f}")

    return {
        "gradcheck_passed": bool(passed),
        "gradcheck_tensors": 1 + len(params),  # the input and every parameter tensor
        "padded_per_sequence": [sum(row) for row in mask.tolist()],
        "grad_norms": norms,
        "upstream_norm": upstream_norm,
        "sizes": sizes,
        "pictures": pictures,
        "num_parameters": n_params,
        "dims": {"d_model": d_model, "nhead": nhead, "d_ff": d_ff, "batch": batch, "seq": seq},
    }


if __name__ == "__main__":
    main()
