"""einsum: sums of products over named axes, written as subscripts ("ij,jk->ik").

The backward of an einsum is an einsum again. For out = einsum("ij,jk->ik", A, B):

    out[i,k] = sum_j A[i,j] B[j,k]
    dL/dA[i,j] = sum_k g[i,k] B[j,k]    = einsum("ik,jk->ij", g, B)
    dL/dB[j,k] = sum_i A[i,j] g[i,k]    = einsum("ij,ik->jk", A, g)

In general, the gradient for operand n swaps it with g: the subscripts of g (the
output's) join those of the other operands, and the result takes operand n's. Two
details complete the rule: a letter that appears only in operand n (summed away by the
forward) gets gradient 1 along it, so the result is broadcast along that letter; a letter
repeated in operand n ("ii->i", a diagonal) gets the gradient on the diagonal only, by
multiplying with an identity matrix (one more einsum operand). A size-1 axis broadcast
against a longer one is summed back. Since the backward is einsum, second order comes free.
"""

from __future__ import annotations

import string
from typing import Any

from ..autograd import Function
from .checks import require_tensor


class Einsum(Function):
    """out = einsum(subscripts, *operands) (NumPy's / PyTorch's einsum, explicit form).

    dL/d(operand n) = einsum(g's subscripts with the other operands' -> operand n's),
    broadcast along letters only operand n has, put on the diagonal for letters it repeats,
    summed over broadcast size-1 axes (see the module docstring).
    """

    def forward(self, *operands, inputs=(), output=""):
        self.subs_in, self.subs_out = inputs, output
        spec = ",".join(inputs) + "->" + output
        return self.xp.einsum(spec, *operands, optimize=len(operands) > 1)

    def backward(self, g):
        return tuple(self._grad(g, n) if need else None for n, need in enumerate(self.needs_input_grad))

    def _grad(self, g: Any, n: int) -> Any:
        shape = self.in_shapes[n]
        target = self.subs_in[n]
        others = [(s, t) for m, (s, t) in enumerate(zip(self.subs_in, self.inputs)) if m != n]
        known = set(self.subs_out).union(*[s for s, _ in others]) if others else set(self.subs_out)
        subs = [self.subs_out] + [s for s, _ in others]
        operands = [g] + [t for _, t in others]
        # letters repeated in the target: all but the first occurrence get fresh letters, tied to
        # the first by identity matrices (the gradient lands on the diagonal only)
        unused = iter(c for c in string.ascii_letters if c not in "".join(self.subs_in) + self.subs_out)
        letters = []
        for pos, c in enumerate(target):
            if c in target[:pos]:
                fresh = next(unused)
                size = shape[pos]
                subs.append(c + fresh)
                operands.append(self.const(self.xp.eye(size, dtype=g.dtype)))
                letters.append(fresh)
                known.update((c, fresh))
            else:
                letters.append(c)
        # letters only the target has were summed away: the result is broadcast along them
        kept = "".join(c for c in letters if c in known)
        grad = einsum(",".join(subs) + "->" + kept, *operands)
        if kept != "".join(letters):  # kept lists the known letters in the target's order
            grad = grad.reshape([grad.shape[kept.index(c)] if c in known else 1 for c in letters])
        # size-1 axes of the target broadcast in the forward: sum back; and the other way round
        # (a letter only a size-1 axis of another operand has, or one summed away): broadcast
        squeezed = tuple(1 if n == 1 else m for n, m in zip(shape, grad.shape))
        if squeezed != grad.shape:
            grad = grad.sum_to_size(squeezed)
        return grad.expand(*shape) if grad.shape != tuple(shape) else grad


def _parse(subscripts: str, operands: tuple) -> tuple[tuple[str, ...], str]:
    """Split "ij,jk->ik" into input and output subscripts, expanding '...' and the
    implicit form (no '->': the letters that appear once, in alphabetical order)."""
    spec = subscripts.replace(" ", "")
    lhs, arrow, rhs = spec.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(operands):
        raise ValueError(f"einsum: {subscripts!r} names {len(inputs)} operands, got {len(operands)}")
    used = set(spec) - set(".,->")
    spare = [c for c in string.ascii_letters if c not in used]
    ell_ndim = 0
    for s, t in zip(inputs, operands):
        if s.count("...") > 1 or "." in s.replace("...", ""):
            raise ValueError(f"einsum: bad ellipsis in {s!r} of {subscripts!r}")
        named = len(s.replace("...", ""))
        if ("..." in s and t.ndim < named) or ("..." not in s and t.ndim != named):
            raise ValueError(f"einsum: subscripts {s!r} do not match an operand of shape {t.shape}")
        if "..." in s:
            ell_ndim = max(ell_ndim, t.ndim - named)
    ell = "".join(spare[:ell_ndim])
    expanded = []
    for s, t in zip(inputs, operands):
        if "..." in s:
            k = t.ndim - len(s.replace("...", ""))
            s = s.replace("...", ell[ell_ndim - k :] if k else "")
        for c in s:
            if c not in string.ascii_letters:
                raise ValueError(f"einsum: subscripts must be letters, got {c!r} in {subscripts!r}")
        expanded.append(s)
    if arrow:
        if rhs.count("...") > 1:
            raise ValueError(f"einsum: bad ellipsis in the output of {subscripts!r}")
        out = rhs.replace("...", ell)
        for c in out:
            if c not in string.ascii_letters or not any(c in s for s in expanded):
                raise ValueError(f"einsum: output subscript {c!r} of {subscripts!r} appears in no input")
        if len(set(out)) != len(out):
            raise ValueError(f"einsum: output subscripts of {subscripts!r} repeat a letter")
    else:
        joined = "".join(s for s in expanded)
        out = ell + "".join(sorted(c for c in set(joined) - set(ell) if joined.count(c) == 1))
    sizes: dict[str, int] = {}
    for s, t in zip(expanded, operands):
        for c, n in zip(s, t.shape):
            if n != 1 and sizes.get(c, 1) not in (1, n):
                raise ValueError(f"einsum: subscript {c!r} of {subscripts!r} has sizes {sizes[c]} and {n}")
            sizes[c] = n if n != 1 else sizes.get(c, 1)
    return tuple(expanded), out


def einsum(subscripts: str, *operands: Any) -> Any:
    """``torch.einsum``: e.g. einsum("ij,jk->ik", a, b) is a @ b, einsum("ii->", a) the trace,
    einsum("bhqd,bhkd->bhqk", q, k) attention scores. '...' stands for leading axes;
    without '->' the output has the letters that appear once, sorted."""
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum: the first argument must be the subscripts string, got {type(subscripts).__name__}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: expected at least one operand")
    for t in operands:
        require_tensor(t, "einsum", "each operand")
    inputs, output = _parse(subscripts, operands)
    return Einsum.apply(*operands, inputs=inputs, output=output)
