"""Command line: ``python -m encoder <command> ...`` (``--help`` on each).

Commands are registered by small modules, each with ``register(subparsers)``:
``encoder.cli.train`` (train, eval, predict, attention, demo) and
``encoder.cli.viz`` (graph). A bad flag value raises :class:`CLIError`
(``encoder.cli.errors``), which is printed as one clear line (exit status 2), never a
traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import train, viz
from .errors import CLIError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m encoder",
        description="Train, inspect and draw small Transformer encoders built with minigrad.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train.register(sub)
    viz.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


__all__ = ["CLIError", "build_parser", "main"]
