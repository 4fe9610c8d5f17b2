"""``TensorMath``: the operators and methods of :class:`~minigrad.tensor.Tensor` that run ops.

Each one only forwards to an op of :mod:`minigrad.functional` (``x + y`` is
``F.add(x, y)``, ``x < y`` is ``F.compare(x, y, "lt")``, ``x.sum(0)`` is ``F.sum(x, 0)``),
so the forward and backward of every operator live in one place, the op. ``Tensor``
subclasses ``TensorMath``; this module holds no data of its own and never imports
:mod:`minigrad.tensor` (which builds on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import functional as F
from .ops.checks import torch_names

if TYPE_CHECKING:
    from .tensor import Tensor


class TensorMath:
    """Operators (``+ - * / ** @``, comparisons, indexing) and op methods (``exp``, ``sum``, ``reshape``...).

    A mixin: it has no state (``__slots__ = ()``) and works on any ``Tensor``.
    """

    __slots__ = ()

    # ---- operators ------------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return F.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return F.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return F.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return F.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return F.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return F.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return F.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return F.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return F.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return F.pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return F.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return F.matmul(other, self)

    def __neg__(self) -> Tensor:
        return F.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return F.abs(self)

    def __getitem__(self, index: Any) -> Tensor:
        return F.getitem(self, index)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # comparisons: elementwise, boolean results, no gradient (as in PyTorch)
    def __lt__(self, other: Any) -> Tensor:
        return F.compare(self, other, "lt")

    def __le__(self, other: Any) -> Tensor:
        return F.compare(self, other, "le")

    def __gt__(self, other: Any) -> Tensor:
        return F.compare(self, other, "gt")

    def __ge__(self, other: Any) -> Tensor:
        return F.compare(self, other, "ge")

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return F.compare(self, other, "eq")

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return F.compare(self, other, "ne")

    __hash__ = object.__hash__

    # bitwise on integers, logical on booleans (as PyTorch); floats are refused
    def __invert__(self) -> Tensor:
        return F.bitwise_not(self)

    def __and__(self, other: Any) -> Tensor:
        return F.bitwise_and(self, other)

    def __rand__(self, other: Any) -> Tensor:
        return F.bitwise_and(other, self)

    def __or__(self, other: Any) -> Tensor:
        return F.bitwise_or(self, other)

    def __ror__(self, other: Any) -> Tensor:
        return F.bitwise_or(other, self)

    def __xor__(self, other: Any) -> Tensor:
        return F.bitwise_xor(self, other)

    def __rxor__(self, other: Any) -> Tensor:
        return F.bitwise_xor(other, self)

    # ---- methods ----------------------------------------------------------------------------
    def exp(self) -> Tensor:
        return F.exp(self)

    def log(self) -> Tensor:
        return F.log(self)

    def sqrt(self) -> Tensor:
        return F.sqrt(self)

    def abs(self) -> Tensor:
        return F.abs(self)

    def sign(self) -> Tensor:
        return F.sign(self)

    def sin(self) -> Tensor:
        return F.sin(self)

    def cos(self) -> Tensor:
        return F.cos(self)

    def erf(self) -> Tensor:
        return F.erf(self)

    def tanh(self) -> Tensor:
        return F.tanh(self)

    def sigmoid(self) -> Tensor:
        return F.sigmoid(self)

    def relu(self) -> Tensor:
        return F.relu(self)

    def pow(self, exponent: Any) -> Tensor:
        return F.pow(self, exponent)

    def maximum(self, other: Any) -> Tensor:
        return F.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        return F.minimum(self, other)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:
        return F.clip(self, min, max)

    clamp = clip

    @torch_names
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.sum(self, axis, keepdims)

    def sum_to_size(self, *shape: Any) -> Tensor:
        """This tensor summed down to ``shape`` (the reverse of broadcasting to ``self.shape``)."""
        return F.sum_to(self, _shape_arg(shape))

    @torch_names
    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.mean(self, axis, keepdims)

    @torch_names
    def var(self, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        return F.var(self, axis, keepdims, ddof)

    @torch_names
    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.max(self, axis, keepdims)

    @torch_names
    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.min(self, axis, keepdims)

    @torch_names
    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return F.argmax(self, axis, keepdims)

    @torch_names
    def argmin(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return F.argmin(self, axis, keepdims)

    @torch_names
    def any(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Whether any element (over ``axis``; None: all) is nonzero, as a boolean tensor (no gradient)."""
        return F.any(self, axis, keepdims)

    @torch_names
    def all(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Whether every element (over ``axis``; None: all) is nonzero, as a boolean tensor (no gradient)."""
        return F.all(self, axis, keepdims)

    @torch_names
    def logsumexp(self, axis: int = -1, keepdims: bool = False) -> Tensor:
        return F.logsumexp(self, axis, keepdims)

    @torch_names
    def softmax(self, axis: int = -1) -> Tensor:
        return F.softmax(self, axis)

    @torch_names
    def log_softmax(self, axis: int = -1) -> Tensor:
        return F.log_softmax(self, axis)

    def reshape(self, *shape: Any) -> Tensor:
        return F.reshape(self, _shape_arg(shape))

    view = reshape

    @torch_names
    def flatten(self, start_axis: int = 0, end_axis: int = -1) -> Tensor:
        return F.flatten(self, start_axis, end_axis)

    def transpose(self, *axes: Any) -> Tensor:
        """``x.transpose(a, b)`` swaps two axes (PyTorch); ``x.transpose()`` reverses all."""
        if len(axes) == 2 and all(isinstance(a, int) for a in axes):
            return F.swapaxes(self, axes[0], axes[1])
        return F.transpose(self, _shape_arg(axes) if axes else None)

    def permute(self, *axes: Any) -> Tensor:
        return F.transpose(self, _shape_arg(axes))

    @torch_names
    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        return F.swapaxes(self, axis1, axis2)

    @property
    def T(self) -> Tensor:
        return F.transpose(self, None)

    def expand(self, *shape: Any) -> Tensor:
        return F.expand(self, _shape_arg(shape))

    @torch_names
    def squeeze(self, axis: Any = None) -> Tensor:
        return F.squeeze(self, axis)

    @torch_names
    def unsqueeze(self, axis: int) -> Tensor:
        return F.unsqueeze(self, axis)

    @torch_names
    def split(self, split_size_or_sections: Any, axis: int = 0) -> list[Tensor]:
        return F.split(self, split_size_or_sections, axis)

    def matmul(self, other: Tensor) -> Tensor:
        return F.matmul(self, other)

    def masked_fill(self, mask: Tensor, value: float) -> Tensor:
        return F.masked_fill(self, mask, value)


def _shape_arg(shape: Sequence[Any]) -> tuple[int, ...]:
    """Accept both ``x.reshape(2, 3)`` and ``x.reshape((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)
