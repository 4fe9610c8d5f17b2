"""Command line: ``python -m encoder <command> ...`` (``--help`` on each).

Commands are registered by small modules, each with ``register(subparsers)``:
``encoder.commands_train`` (train, eval, predict, attention, demo) and
``encoder.commands_viz`` (graph). A bad flag value raises :class:`CLIError`, which is
printed as one clear line (exit status 2), never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


class CLIError(Exception):
    """A user error on the command line: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    from . import commands_train, commands_viz

    parser = argparse.ArgumentParser(
        prog="python -m encoder",
        description="Train, inspect and draw small Transformer encoders built with minigrad.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands_train.register(sub)
    commands_viz.register(sub)
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
