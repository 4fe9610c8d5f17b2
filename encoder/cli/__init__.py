"""Command line: ``python -m encoder <command> ...`` (``--help`` on each).

Commands are registered by small modules, each with ``register(subparsers)``:
``encoder.cli.train`` (train, eval, predict, demo), ``encoder.cli.attention``,
``encoder.cli.viz`` (graph), ``encoder.cli.explore`` (explore) and ``encoder.cli.bert``
(bert); ``encoder.cli.runs`` keeps runs from being overwritten. A bad
flag value raises :class:`CLIError` (``encoder.cli.errors``), which is printed as one clear
line (exit status 2), never a traceback; so are argparse's own errors, a missing extra,
and a training run that diverges (exit status 1). SIGINT and SIGTERM during training save
a checkpoint and print the command that resumes it (exit status 130 and 143).

The commands turn minigrad's acceleration on (``minigrad.accel.enable()``: numba kernels
on the CPU, CuPy kernels on a GPU) and say so in one line; ``--no-accel`` keeps every
command on the reference path, the code the guide explains.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

import minigrad

from ..training import NonFiniteLossError, TrainingInterrupted
from . import bert, explore, train, viz
from .common import missing_extra
from .errors import CLIError


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line: ``error: argument --lr: must be ..., got nan``."""

    def error(self, message: str) -> NoReturn:
        if "required: COMMAND" in message:  # no command at all: show what there is
            self.print_usage(sys.stderr)
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


# the extras' import names -> (extra, package); see pyproject.toml
EXTRAS = {"matplotlib": ("plot", "matplotlib"), "graphviz": ("viz", "graphviz"), "numba": ("fast", "numba"),
          "cupy": ("gpu", "cupy-cuda12x")}


BASE = ("numpy", "safetensors", "tqdm")  # the project's own dependencies


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    except TrainingInterrupted as stop:  # the command printed what was saved and how to resume
        return 128 + signal.Signals[stop.signal].value
    except (NonFiniteLossError, minigrad.AnomalyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        root = (exc.name or "").split(".")[0]
        if root in BASE:
            print(f"error: {root} is not installed for {sys.executable}: run the project's Python, "
                  ".venv/bin/python -m encoder ... (`make demo` creates .venv), or pip install -e . here",
                  file=sys.stderr)
            return 2
        if root not in EXTRAS:
            raise
        print(f"error: {missing_extra(*EXTRAS[root])}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


__all__ = ["CLIError", "build_parser", "main"]
