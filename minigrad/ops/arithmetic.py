"""Arithmetic: + - * / ** and negation, with NumPy's broadcasting.

Notation in the docstrings: ``g`` is the upstream gradient dL/d(out), and every
derivative is the vector-Jacobian product the op's backward returns. Backward sums each
gradient back to its input's shape (``sum_to_size``), because a broadcast input was
*used* once per copy.
"""

from __future__ import annotations

from typing import Any

from .. import backend as B
from ..autograd import Function
from .checks import constant, is_tensor
from .conversion import cast, promote
from .selection import where


class Add(Function):
    """out = a + b.   dL/da = g,   dL/db = g   (each summed to its input's shape)."""

    saves_inputs = False

    def forward(self, a, b):
        return a + b

    def backward(self, g):
        sa, sb = self.in_shapes
        return g.sum_to_size(sa), g.sum_to_size(sb)


class Sub(Function):
    """out = a - b.   dL/da = g,   dL/db = -g."""

    saves_inputs = False

    def forward(self, a, b):
        return a - b

    def backward(self, g):
        sa, sb = self.in_shapes
        return g.sum_to_size(sa), (-g).sum_to_size(sb) if self.needs_input_grad[1] else None


class Mul(Function):
    """out = a * b.   dL/da = g * b,   dL/db = g * a."""

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        ga = (g * b).sum_to_size(a.shape) if self.needs_input_grad[0] else None
        gb = (g * a).sum_to_size(b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """out = a / b.   dL/da = g / b,   dL/db = -g * a / b**2."""

    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.inputs
        ga = (g / b).sum_to_size(a.shape) if self.needs_input_grad[0] else None
        gb = (-g * a / (b * b)).sum_to_size(b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    """out = -a.   dL/da = -g."""

    saves_inputs = False

    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class PowScalar(Function):
    """out = a ** p for a Python number p.   dL/da = g * p * a**(p-1)   (0 for p = 0, even at
    a = 0, where the formula would be 0 * inf: a**0 is the constant 1, as PyTorch)."""

    name = "pow"

    def forward(self, a, p):
        self.p = p
        return a**p

    def backward(self, g):
        (a,) = self.inputs
        p = self.p
        if p == 0:
            return g * 0.0
        if p == 1:
            return g
        if p == 2:
            return g * (2.0 * a)
        return g * (p * a ** (p - 1))


class Pow(Function):
    """out = a ** b (both tensors).

    dL/da = g * b * a**(b-1),   dL/db = g * out * log(a)   (defined for a > 0).

    At the edges, as PyTorch: dL/da = 0 where b = 0 (a**0 is constant; the formula gives
    0 * inf at a = 0, so only there it is replaced), and dL/db = 0 where a = 0 and b >= 0
    (there out * log(a) would be 0 * -inf or 1 * -inf).
    """

    def forward(self, a, b):
        self.out = a**b
        return self.out

    def backward(self, g):
        a, b = self.inputs
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = g * b * a ** (b - 1.0)
            ga = where((b == 0.0) & (a == 0.0), 0.0, ga).sum_to_size(a.shape)  # 0 * inf there
        if self.needs_input_grad[1]:
            gb = g * self.saved_output() * a.log()
            gb = where((a == 0.0) & (b >= 0.0), 0.0, gb).sum_to_size(b.shape)
        return ga, gb


def add(a: Any, b: Any) -> Any:
    """a + b with broadcasting."""
    return Add.apply(*promote("add", a, b))


def sub(a: Any, b: Any) -> Any:
    """a - b with broadcasting."""
    return Sub.apply(*promote("sub", a, b))


def mul(a: Any, b: Any) -> Any:
    """a * b with broadcasting."""
    return Mul.apply(*promote("mul", a, b))


def div(a: Any, b: Any) -> Any:
    """a / b with broadcasting; true division, so integers give the default float dtype (PyTorch)."""
    a, b = promote("div", a, b)
    if a.dtype.kind != "f" and b.dtype.kind != "f":
        a, b = cast(a, B.get_default_dtype()), cast(b, B.get_default_dtype())
    return Div.apply(a, b)


def neg(a: Any) -> Any:
    return Neg.apply(a)


def pow(a: Any, b: Any) -> Any:
    """a ** b: a Python-number exponent uses the simpler op ``tensor ** scalar``.

    Integer tensors follow PyTorch: int ** int stays an integer (no gradient; a negative
    integer exponent is an error), int ** float is a float of the default dtype.
    """
    if is_tensor(a) and isinstance(b, (int, float)) and not isinstance(b, bool):
        if a.dtype.kind != "f":
            if isinstance(b, int):
                if b < 0:
                    raise ValueError(f"pow: integers to negative integer powers are not allowed, got exponent {b}")
                return constant(a.data**b, a)
            a = cast(a, B.get_default_dtype())
        return PowScalar.apply(a, p=b)
    a, b = promote("pow", a, b)
    if a.dtype.kind != "f" and b.dtype.kind != "f":
        if bool((b.data < 0).any()):
            raise ValueError("pow: integers to negative integer powers are not allowed")
        return constant(a.data**b.data, a)
    return Pow.apply(a, b)
