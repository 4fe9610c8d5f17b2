"""Argument types of the command line: each checks one flag's value, so a bad one is a
one-line error naming the flag, the value and what is allowed
(``error: argument --lr: must be a finite number > 0, got nan``)."""

from __future__ import annotations

import argparse
import math


def number(value: str, flag_kind: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {flag_kind}, got {value!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be {flag_kind}, got {value}")
    return x


def integer(value: str, least: int, flag_kind: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {flag_kind}, got {value!r}") from None
    if n < least:
        raise argparse.ArgumentTypeError(f"must be {flag_kind}, got {value}")
    return n


def positive(value: str) -> int:
    return integer(value, 1, "a positive integer")


def count(value: str) -> int:
    return integer(value, 0, "an integer >= 0")


def positive_float(value: str) -> float:
    x = number(value, "a finite number > 0")
    if x <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {value}")
    return x


def nonnegative_float(value: str) -> float:
    x = number(value, "a finite number >= 0")
    if x < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {value}")
    return x


def below_one(value: str) -> float:
    x = number(value, "a number in [0, 1)")
    if not 0.0 <= x < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {value}")
    return x


def accuracy(value: str) -> float:
    x = number(value, "an accuracy in (0, 1]")
    if not 0.0 < x <= 1.0:
        raise argparse.ArgumentTypeError(f"must be an accuracy in (0, 1], got {value}")
    return x
