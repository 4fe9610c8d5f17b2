"""``TensorElementwise``: more op methods of :class:`~minigrad.tensor.Tensor`, as PyTorch names them.

Elementwise functions (``x.tan()``, ``x.log1p()``, ``x.floor()``, ``x.isnan()``, ``x.lerp(end, w)``),
reductions (``x.amax()``, ``x.std()``, ``x.prod()``), scans (``x.cumsum(axis)``) and sorting
(``x.sort()``, ``x.topk(k)``). Each method only forwards to an op of :mod:`minigrad.functional`,
where its forward and backward live. A mixin with no state, like
:class:`~minigrad.tensor_math.TensorMath`; it never imports :mod:`minigrad.tensor`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import functional as F
from .ops.checks import torch_names

if TYPE_CHECKING:
    from .ops.sorting import SortResult
    from .tensor import Tensor


class TensorElementwise:
    """More op methods (trigonometry, rounding, amax/std/prod, scans, sorting)."""

    __slots__ = ()

    # ---- elementwise ------------------------------------------------------------------------
    def tan(self) -> Tensor:
        return F.tan(self)

    def asin(self) -> Tensor:
        return F.asin(self)

    def acos(self) -> Tensor:
        return F.acos(self)

    def atan(self) -> Tensor:
        return F.atan(self)

    def sinh(self) -> Tensor:
        return F.sinh(self)

    def cosh(self) -> Tensor:
        return F.cosh(self)

    def asinh(self) -> Tensor:
        return F.asinh(self)

    def acosh(self) -> Tensor:
        return F.acosh(self)

    def atanh(self) -> Tensor:
        return F.atanh(self)

    def log2(self) -> Tensor:
        return F.log2(self)

    def log10(self) -> Tensor:
        return F.log10(self)

    def exp2(self) -> Tensor:
        return F.exp2(self)

    def expm1(self) -> Tensor:
        return F.expm1(self)

    def log1p(self) -> Tensor:
        return F.log1p(self)

    def rsqrt(self) -> Tensor:
        return F.rsqrt(self)

    def lerp(self, end: Tensor, weight: Any) -> Tensor:
        return F.lerp(self, end, weight)

    def floor(self) -> Tensor:
        return F.floor(self)

    def ceil(self) -> Tensor:
        return F.ceil(self)

    def round(self, decimals: int = 0) -> Tensor:
        return F.round(self, decimals)

    def trunc(self) -> Tensor:
        return F.trunc(self)

    def isnan(self) -> Tensor:
        return F.isnan(self)

    def isinf(self) -> Tensor:
        return F.isinf(self)

    def isfinite(self) -> Tensor:
        return F.isfinite(self)

    # ---- reductions and scans -------------------------------------------------------------
    @torch_names
    def amax(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.amax(self, axis, keepdims)

    @torch_names
    def amin(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.amin(self, axis, keepdims)

    @torch_names
    def std(self, axis: Any = None, *, correction: Any = None, keepdims: bool = False, unbiased: Any = None) -> Tensor:
        return F.std(self, axis, correction=correction, keepdims=keepdims, unbiased=unbiased)

    @torch_names
    def prod(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return F.prod(self, axis, keepdims)

    @torch_names
    def cumsum(self, axis: int) -> Tensor:
        return F.cumsum(self, axis)

    @torch_names
    def cumprod(self, axis: int) -> Tensor:
        return F.cumprod(self, axis)

    @torch_names
    def logcumsumexp(self, axis: int) -> Tensor:
        return F.logcumsumexp(self, axis)

    # ---- sorting ----------------------------------------------------------------------------
    @torch_names
    def sort(self, axis: int = -1, descending: bool = False) -> SortResult:
        return F.sort(self, axis, descending)

    @torch_names
    def argsort(self, axis: int = -1, descending: bool = False) -> Tensor:
        return F.argsort(self, axis, descending)

    @torch_names
    def topk(self, k: int, axis: int = -1, largest: bool = True, sorted: bool = True) -> SortResult:
        return F.topk(self, k, axis, largest, sorted)
