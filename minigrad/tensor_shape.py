"""``TensorShape``: the shape and indexing methods of :class:`~minigrad.tensor.Tensor`
added for PyTorch users (``x.flip(0)``, ``x.gather(1, idx)``, ``x[0] = 1``...).

Like :class:`~minigrad.tensor_math.TensorMath`, each method only forwards to an op of
:mod:`minigrad.functional`; this mixin holds no data and never imports
:mod:`minigrad.tensor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import functional as F
from .ops.assign import setitem

if TYPE_CHECKING:
    from .tensor import Tensor


class TensorShape:
    """clone, t, flip, roll, tril, triu, repeat, tile, repeat_interleave, chunk, gather,
    scatter, scatter_add, masked_select and ``x[index] = value``. A mixin without state."""

    __slots__ = ()

    def __setitem__(self, index: Any, value: Any) -> None:
        """In-place write, for tensors outside autograd (see :mod:`minigrad.ops.assign`)."""
        setitem(self, index, value)

    def clone(self) -> Tensor:
        return F.clone(self)

    def t(self) -> Tensor:
        return F.t(self)

    def flip(self, *dims: Any) -> Tensor:
        return F.flip(self, dims[0] if len(dims) == 1 else dims)

    def roll(self, shifts: int | Sequence[int], dims: int | Sequence[int] | None = None) -> Tensor:
        return F.roll(self, shifts, dims)

    def tril(self, diagonal: int = 0) -> Tensor:
        return F.tril(self, diagonal)

    def triu(self, diagonal: int = 0) -> Tensor:
        return F.triu(self, diagonal)

    def repeat(self, *sizes: Any) -> Tensor:
        return F.repeat(self, *sizes)

    def tile(self, *dims: Any) -> Tensor:
        return F.tile(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims)

    def repeat_interleave(self, repeats: Any, dim: int | None = None) -> Tensor:
        return F.repeat_interleave(self, repeats, dim)

    def chunk(self, chunks: int, axis: int = 0) -> list[Tensor]:
        return F.chunk(self, chunks, axis)

    def gather(self, dim: int, index: Any) -> Tensor:
        return F.gather(self, dim, index)

    def scatter(self, dim: int, index: Any, src: Any = None, value: Any = None) -> Tensor:
        return F.scatter(self, dim, index, src, value)

    def scatter_add(self, dim: int, index: Any, src: Any) -> Tensor:
        return F.scatter_add(self, dim, index, src)

    def masked_select(self, mask: Any) -> Tensor:
        return F.masked_select(self, mask)
