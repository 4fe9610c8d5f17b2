"""Command line: ``python -m encoder <command> ...`` (``--help`` on each).

Commands are registered by small modules, each with ``register(subparsers)``:
``encoder.cli.train`` (train, eval, predict, attention, demo) and
``encoder.cli.viz`` (graph), ``encoder.cli.explore`` (explore), ``encoder.cli.bert`` (bert).
A bad flag value raises :class:`CLIError`
(``encoder.cli.errors``), which is printed as one clear line (exit status 2), never a
traceback.

The commands turn minigrad's acceleration on (``minigrad.accel.enable()``: numba kernels
on the CPU, CuPy kernels on a GPU) and say so in one line; ``--no-accel`` keeps every
command on the reference path, the code the guide explains.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import minigrad

from . import bert, explore, train, viz
from .errors import CLIError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m encoder",
        description="Train, inspect and draw small Transformer encoders built with minigrad.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train.register(sub)
    viz.register(sub)
    explore.register(sub)
    bert.register(sub)
    for command in sub.choices.values():
        command.add_argument(
            "--no-accel", action="store_true", help="run minigrad's reference ops only (no numba or CuPy kernels)"
        )
    return parser


def start_acceleration(args: argparse.Namespace) -> None:
    """Turn the acceleration on unless ``--no-accel`` (the training commands say which, in
    one line: :func:`encoder.cli.train.acceleration_line`)."""
    if getattr(args, "no_accel", False):
        minigrad.accel.disable()
    else:
        minigrad.accel.enable()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        start_acceleration(args)
        result = args.func(args)
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


__all__ = ["CLIError", "build_parser", "main"]
