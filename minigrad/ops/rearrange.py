"""Rearranging ops: clone, flip, roll, pad, tril/triu, repeat/tile, repeat_interleave.

Each one builds its output from the input's values (copied, moved, repeated or masked),
so each backward sends every output gradient back to the element it came from: the
same move run backwards (flip, roll the other way, a slice for constant padding), or
a sum where one element fed many outputs (repeat, reflect padding: a scatter-add).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..autograd import Function
from .checks import axes_arg, axis_arg, is_tensor, refuse_grad, require_tensor
from .indexing import GetItem, IndexAddZeros
from .shape import transpose


class Clone(Function):
    """out = a copy of a (new memory).   dL/da = g."""

    saves_inputs = False

    def forward(self, a):
        return a.copy()

    def backward(self, g):
        return g


class Flip(Function):
    """out = a with the order of ``axes`` reversed.   dL/da = g flipped along the same axes."""

    saves_inputs = False

    def forward(self, a, axes=()):
        self.axes = axes
        return self.xp.flip(a, axis=axes)

    def backward(self, g):
        return Flip.apply(g, axes=self.axes)


class Roll(Function):
    """out = a shifted cyclically by ``shifts`` along ``axes`` (None: the flattened tensor).

    dL/da = g rolled back: shifted by -shifts along the same axes.
    """

    saves_inputs = False

    def forward(self, a, shifts=(), axes=None):
        self.shifts, self.axes = shifts, axes
        if axes is None:
            return self.xp.roll(a.reshape(-1), shifts[0]).reshape(a.shape)
        return self.xp.roll(a, shifts, axis=axes)

    def backward(self, g):
        return Roll.apply(g, shifts=tuple(-s for s in self.shifts), axes=self.axes)


_NUMPY_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


class Pad(Function):
    """out = a padded by ``widths`` ((before, after) per axis), as ``torch.nn.functional.pad``.

    constant: the new border holds ``value``, and a negative width crops instead (as PyTorch);
    dL/da = g without the border (a slice), put back into zeros where a was cropped.
    reflect / replicate / circular: each border element is a copy of an element of a
    (mirrored without the edge, the edge repeated, wrapped around), so out = a[i_0, i_1, ...]
    for index arrays i_k, and dL/da = zeros with g added at those indices (a scatter-add:
    an element copied to the border gets its own gradient plus its copies').
    """

    saves_inputs = False

    def forward(self, a, widths=(), mode="constant", value=0.0):
        xp = self.xp
        self.widths, self.mode = widths, mode
        if mode == "constant":
            crop = _crop(a.shape, widths)
            grow = tuple((max(lo, 0), max(hi, 0)) for lo, hi in widths)
            return xp.pad(a[crop], grow, mode="constant", constant_values=value)
        # the source index of every output position, per axis (an open mesh, as np.ix_)
        sources = [xp.pad(xp.arange(n), w, mode=_NUMPY_MODE[mode]) for n, w in zip(a.shape, widths)]
        self.index = xp.ix_(*sources)
        return a[self.index]

    def backward(self, g):
        if self.mode == "constant":
            inner = tuple(slice(max(lo, 0), g.shape[k] - max(hi, 0)) for k, (lo, hi) in enumerate(self.widths))
            kept = GetItem.apply(g, index=inner, advanced=False)
            if all(lo >= 0 and hi >= 0 for lo, hi in self.widths):
                return kept
            crop = _crop(self.in_shapes[0], self.widths)
            return IndexAddZeros.apply(kept, shape=self.in_shapes[0], index=crop, advanced=False)
        return IndexAddZeros.apply(g, shape=self.in_shapes[0], index=self.index, advanced=True)


def _crop(shape: tuple[int, ...], widths: Sequence[tuple[int, int]]) -> tuple[slice, ...]:
    """The part of an input that negative widths (cropping) leave."""
    return tuple(slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in zip(shape, widths))


class Tril(Function):
    """out = the lower triangle of the last two axes (on and below ``diagonal``), zeros above.

    The op multiplies by a constant 0/1 mask, so dL/da = tril(g) with the same diagonal.
    """

    saves_inputs = False

    def forward(self, a, diagonal=0):
        self.diagonal = diagonal
        return self.xp.tril(a, diagonal)

    def backward(self, g):
        return type(self).apply(g, diagonal=self.diagonal)


class Triu(Tril):
    """out = the upper triangle (on and above ``diagonal``), zeros below.   dL/da = triu(g)."""

    def forward(self, a, diagonal=0):
        self.diagonal = diagonal
        return self.xp.triu(a, diagonal)


class Repeat(Function):
    """out = a tiled ``reps[k]`` times along each axis k (as ``Tensor.repeat``; leading axes
    of size 1 are added to a first when ``reps`` is longer than a.ndim).

    Output element (r_0, i_0, r_1, i_1, ...) is a[i_0, i_1, ...] for every copy r, so
    dL/da = g reshaped to (reps_0, n_0, reps_1, n_1, ...) and summed over the copy axes.
    """

    saves_inputs = False

    def forward(self, a, reps=()):
        self.reps = reps
        return self.xp.tile(a, reps)

    def backward(self, g):
        shape = (1,) * (len(self.reps) - len(self.in_shapes[0])) + self.in_shapes[0]
        split = tuple(x for r, n in zip(self.reps, shape) for x in (r, n))
        summed = g.reshape(split).sum(tuple(range(0, len(split), 2)))
        return summed.reshape(self.in_shapes[0])


class RepeatInterleave(Function):
    """out = each element of a along ``axis`` repeated (``repeats`` times, or repeats[i]
    times for element i), as ``torch.repeat_interleave``.

    out = a[..., source, ...] with source = [0]*r_0 + [1]*r_1 + ..., so
    dL/da = zeros with g added at ``source`` along ``axis`` (each element gets the sum of
    its copies' gradients).
    """

    name = "repeat_interleave"
    saves_inputs = False

    def forward(self, a, repeats=1, axis=0):
        xp = self.xp
        self.index = (slice(None),) * axis + (xp.repeat(xp.arange(a.shape[axis]), repeats),)
        return a[self.index]

    def backward(self, g):
        return IndexAddZeros.apply(g, shape=self.in_shapes[0], index=self.index, advanced=True)


# ---- the functions ----------------------------------------------------------------------------
def _ints(value: Any, opname: str, what: str) -> tuple[int, ...]:
    items = (value,) if isinstance(value, int) else tuple(value)
    for v in items:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{opname}: {what} must be integers, got {value!r}")
    return items


def clone(a: Any) -> Any:
    """A copy with its own memory; the gradient flows through unchanged (``torch.clone``)."""
    require_tensor(a, "clone")
    return Clone.apply(a)


def t(a: Any) -> Any:
    """Transpose a 2-D tensor; 0-D and 1-D tensors come back as they are (``torch.t``)."""
    require_tensor(a, "t")
    if a.ndim > 2:
        raise ValueError(f"t: expects a tensor of at most 2 dimensions, got shape {a.shape}; use transpose or permute")
    return transpose(a) if a.ndim == 2 else a


def flip(a: Any, dims: int | Sequence[int]) -> Any:
    """Reverse the order of elements along ``dims`` (``torch.flip``)."""
    require_tensor(a, "flip")
    axes = axes_arg(_ints(dims, "flip", "dims"), a.ndim, "flip")
    return Flip.apply(a, axes=axes) if axes else a


def roll(a: Any, shifts: int | Sequence[int], dims: int | Sequence[int] | None = None) -> Any:
    """Shift elements cyclically along ``dims``; with dims=None the tensor is flattened,
    rolled and given its shape back (``torch.roll``)."""
    require_tensor(a, "roll")
    shifts = _ints(shifts, "roll", "shifts")
    if dims is None:
        if len(shifts) != 1:
            raise ValueError(f"roll: with dims=None, shifts must be a single integer, got {shifts}")
        return Roll.apply(a, shifts=shifts, axes=None)
    dims = _ints(dims, "roll", "dims")
    if len(dims) != len(shifts):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    axes = tuple(axis_arg(d, a.ndim, "roll") for d in dims)
    return Roll.apply(a, shifts=shifts, axes=axes)


def pad(a: Any, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Any:
    """Pad the last len(pad)//2 axes, as ``torch.nn.functional.pad``: ``pad`` lists
    (before, after) for the last axis first, then the one before it, and so on.

    mode: "constant" (``value``, default 0; a negative width crops), "reflect" (mirror, edge
    not repeated), "replicate" (edge repeated) or "circular" (wrap around; widths >= 0).
    """
    require_tensor(a, "pad")
    pad = _ints(pad, "pad", "pad")
    if mode not in _NUMPY_MODE:
        raise ValueError(f"pad: mode must be one of {', '.join(map(repr, _NUMPY_MODE))}, got {mode!r}")
    if len(pad) % 2 or len(pad) // 2 > a.ndim:
        raise ValueError(f"pad: pad must hold (before, after) pairs for at most {a.ndim} axes, got {pad}")
    if mode != "constant" and any(p < 0 for p in pad):
        raise ValueError(f"pad: widths must be >= 0 for mode {mode!r} (only 'constant' crops), got {pad}")
    if mode != "constant" and value is not None:
        raise ValueError(f"pad: value is only for mode 'constant', got value={value!r} with mode {mode!r}")
    if is_tensor(value):
        refuse_grad(value, "pad", "value")
        value = value.item()
    widths = [(0, 0)] * a.ndim
    for k in range(len(pad) // 2):
        widths[a.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    for n, (lo, hi) in zip(a.shape, widths):
        if n + min(lo, 0) + min(hi, 0) < 0:
            raise ValueError(f"pad: padding {(lo, hi)} crops more than the axis size {n} (shape {a.shape})")
        if mode == "reflect" and (lo or hi) and max(lo, hi) >= n:
            raise ValueError(f"pad: reflect padding {(lo, hi)} must be below the axis size {n} (shape {a.shape})")
        if mode in ("replicate", "circular") and (lo or hi) and (n == 0 or mode == "circular" and max(lo, hi) > n):
            raise ValueError(f"pad: {mode} padding {(lo, hi)} does not fit an axis of size {n} (shape {a.shape})")
    if all(w == (0, 0) for w in widths):
        return a
    return Pad.apply(a, widths=tuple(widths), mode=mode, value=0.0 if value is None else float(value))


def _triangle(op: type, name: str, a: Any, diagonal: int) -> Any:
    require_tensor(a, name)
    if a.ndim < 2:
        raise ValueError(f"{name}: expects a tensor of at least 2 dimensions, got shape {a.shape}")
    if isinstance(diagonal, bool) or not isinstance(diagonal, int):
        raise TypeError(f"{name}: diagonal must be an integer, got {diagonal!r}")
    return op.apply(a, diagonal=diagonal)


def tril(a: Any, diagonal: int = 0) -> Any:
    """Keep the lower triangle of the last two axes (``torch.tril``)."""
    return _triangle(Tril, "tril", a, diagonal)


def triu(a: Any, diagonal: int = 0) -> Any:
    """Keep the upper triangle of the last two axes (``torch.triu``)."""
    return _triangle(Triu, "triu", a, diagonal)


def repeat(a: Any, *sizes: Any) -> Any:
    """Tile the tensor ``sizes[k]`` times along axis k (``Tensor.repeat``: needs at least
    a.ndim sizes; extra ones add leading axes)."""
    require_tensor(a, "repeat")
    reps = _ints(sizes[0] if len(sizes) == 1 and not isinstance(sizes[0], int) else sizes, "repeat", "sizes")
    if len(reps) < a.ndim:
        raise ValueError(f"repeat: needs at least {a.ndim} sizes for a tensor of shape {a.shape}, got {reps}")
    if any(r < 0 for r in reps):
        raise ValueError(f"repeat: sizes must be >= 0, got {reps}")
    return Repeat.apply(a, reps=reps)


def tile(a: Any, dims: Sequence[int]) -> Any:
    """``torch.tile``: as :func:`repeat`, but fewer dims than axes are padded with leading 1s."""
    require_tensor(a, "tile")
    reps = _ints(dims, "tile", "dims")
    return repeat(a, (1,) * (a.ndim - len(reps)) + reps)


def repeat_interleave(a: Any, repeats: Any, dim: int | None = None) -> Any:
    """Repeat each element along ``dim`` (``torch.repeat_interleave``); ``repeats`` is an
    integer or a 1-D integer tensor with one count per element; dim=None flattens first."""
    require_tensor(a, "repeat_interleave")
    if dim is None:
        a, dim = a.reshape(-1), 0
    axis = axis_arg(dim, a.ndim, "repeat_interleave")
    n = a.shape[axis]
    if is_tensor(repeats):
        refuse_grad(repeats, "repeat_interleave", "repeats")
        if repeats.device != a.device:
            raise RuntimeError(f"repeat_interleave: repeats on device {repeats.device}, input on device {a.device}")
        if repeats.dtype.kind not in "iu" or repeats.ndim > 1 or repeats.ndim == 1 and repeats.shape[0] not in (1, n):
            raise ValueError(
                f"repeat_interleave: repeats must be an integer tensor of shape ({n},) or (1,), "
                f"got dtype {repeats.dtype} shape {repeats.shape}"
            )
        if repeats.size and int(repeats.data.min()) < 0:
            raise ValueError("repeat_interleave: repeats must be >= 0")
        counts = [int(r) for r in repeats.backend.to_host(repeats.data).reshape(-1)]  # CuPy's repeat takes a list
        counts = counts if len(counts) == n else counts[0]
    else:
        (counts,) = _ints(repeats, "repeat_interleave", "repeats")
        if counts < 0:
            raise ValueError(f"repeat_interleave: repeats must be >= 0, got {counts}")
    return RepeatInterleave.apply(a, repeats=counts, axis=axis)
