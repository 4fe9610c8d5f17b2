"""The ``reduction`` argument every loss shares: "mean", "sum" or "none" (PyTorch's).

A loss computes one value per element, then reduces. Its backward needs the upstream
gradient per element: g itself for "none", g broadcast for "sum", g / count for "mean".
"""

from __future__ import annotations

from typing import Any

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(opname: str, reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    if reduction not in allowed:
        names = ", ".join(repr(r) for r in allowed)
        raise ValueError(f"{opname}: reduction must be one of {names}, got {reduction!r}")


def reduce_array(loss: Any, reduction: str, count: float | None = None) -> Any:
    """Reduce per-element losses (an array); ``count`` divides the sum for "mean" (default:
    the number of elements)."""
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    count = loss.size if count is None else count
    return total / loss.dtype.type(count) if count else total * loss.dtype.type("nan")


def per_element(g: Any, shape: tuple[int, ...], reduction: str, count: float | None = None) -> Any:
    """The upstream gradient ``g`` of a reduced loss, spread over the per-element losses."""
    if reduction == "none":
        return g
    if reduction == "mean":
        n = 1
        for s in shape:
            n *= s
        count = n if count is None else count
        g = g / (count if count else float("nan"))
    return g.expand(*shape)
