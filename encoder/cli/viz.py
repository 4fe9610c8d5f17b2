"""The ``graph`` command: draw the autograd graph of one small encoder layer.

    python -m encoder graph --out layer.svg                     # collapsed: one node per submodule
    python -m encoder graph --view expanded --out layer.png     # every op, boxed by module
    python -m encoder graph --grads --out layer_grads.svg       # with gradient norms
    python -m encoder graph --norm-first --composite --out pre_ln.svg

SVG, PNG and PDF need Graphviz's ``dot`` program; without it the ``.dot`` source is
written instead (and ``--out x.dot`` always writes the source).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import missing_extra
from .errors import CLIError

SUFFIXES = (".svg", ".png", ".pdf", ".dot")


def register(subparsers: Any) -> None:
    """Add the ``graph`` command to the ``python -m encoder`` parser."""
    p = subparsers.add_parser(
        "graph",
        help="draw the autograd graph of one encoder layer (SVG/PNG/PDF/DOT)",
        description="Run a small TransformerEncoderLayer on random input and draw its autograd graph.",
    )
    p.add_argument("--out", default="layer.svg", help="output file: .svg, .png, .pdf or .dot (default: layer.svg)")
    p.add_argument("--view", choices=("collapsed", "expanded"), default="collapsed", help="level of detail")
    p.add_argument("--grads", action="store_true", help="backpropagate and show gradient norms")
    p.add_argument("--norm-first", action="store_true", help="pre-LN layer (default: post-LN)")
    p.add_argument("--composite", action="store_true", help="attention weights and layer norms op by op (fused=False)")
    p.add_argument("--d-model", type=int, default=16, help="model width (default 16)")
    p.add_argument("--nhead", type=int, default=2, help="attention heads (default 2)")
    p.add_argument("--dim-feedforward", type=int, default=32, help="feed-forward width (default 32)")
    p.add_argument("--seq", type=int, default=5, help="sequence length of the random input (default 5)")
    p.add_argument("--batch", type=int, default=2, help="batch size of the random input (default 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=run_graph)


def run_graph(args: argparse.Namespace) -> int:
    """Draw the layer as the parsed arguments say and print where the picture went."""
    out = Path(args.out)
    if out.suffix.lower() not in SUFFIXES:
        raise CLIError(f"--out must end in {', '.join(SUFFIXES)}; got {args.out!r}")
    for flag in ("d_model", "nhead", "dim_feedforward", "seq", "batch"):
        if getattr(args, flag) < 1:
            raise CLIError(f"--{flag.replace('_', '-')} must be a positive integer, got {getattr(args, flag)}")
    if args.d_model % args.nhead:
        raise CLIError(f"--d-model ({args.d_model}) must be divisible by --nhead ({args.nhead})")
    try:
        from ..graphs import write_layer_graph

        written = write_layer_graph(
            out,
            view=args.view,
            grads=args.grads,
            norm_first=args.norm_first,
            fused=not args.composite,
            d_model=args.d_model,
            nhead=args.nhead,
            dim_feedforward=args.dim_feedforward,
            seq=args.seq,
            batch=args.batch,
            seed=args.seed,
        )
    except ImportError:
        raise CLIError(f"graph draws with the graphviz package: {missing_extra('viz', 'graphviz')}") from None
    except OSError as exc:
        raise CLIError(f"cannot write {args.out}: {exc}") from exc
    print(f"wrote {written}")
    return 0
