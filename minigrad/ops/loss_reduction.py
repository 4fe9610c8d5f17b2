"""The ``reduction`` argument every loss shares: "mean", "sum" or "none" (PyTorch's).

A loss computes one value per element, then reduces. Its backward needs the upstream
gradient per element: g itself for "none", g broadcast for "sum", g / count for "mean".
"""

from __future__ import annotations

from typing import Any

from .checks import require_float, require_tensor

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(opname: str, reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    if reduction not in allowed:
        names = ", ".join(repr(r) for r in allowed)
        raise ValueError(f"{opname}: reduction must be one of {names}, got {reduction!r}")


def check_pair(opname: str, input: Any, target: Any, reduction: str) -> None:
    """A loss between two float tensors of one shape (input, target), and its reduction."""
    require_tensor(input, opname, "input")
    require_tensor(target, opname, "target")
    require_float(input, opname)
    require_float(target, opname)
    if input.shape != target.shape:
        raise ValueError(f"{opname}: input has shape {input.shape} but target has shape {target.shape}")
    check_reduction(opname, reduction)


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
