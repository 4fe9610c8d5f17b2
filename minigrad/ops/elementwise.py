"""Elementwise ops: arithmetic, nonlinearities, selection.

Notation in the docstrings: ``g`` is the upstream gradient dL/d(out), and every
derivative is the vector-Jacobian product the op's backward returns. Binary ops
broadcast like NumPy; backward sums each gradient back to its input's shape
(``sum_to``), because a broadcast input was *used* once per copy.
"""

from __future__ import annotations

import math

from .. import functional as F
from ..autograd import Function
from .reduction import sum_to_array


def _reduce(grad, shape):
    return F.sum_to(grad, shape)


class Add(Function):
    """out = a + b.   dL/da = g,   dL/db = g   (each summed to its input's shape)."""

    saves_inputs = False

    def forward(self, a, b):
        if a.shape == b.shape and a.dtype == b.dtype:  # a residual connection: slices on threads
            xp = self.xp
            return self.elementwise(lambda out, a, b: xp.add(a, b, out=out), a, b)
        return a + b

    def backward(self, g):
        sa, sb = self.in_shapes
        return _reduce(g, sa), _reduce(g, sb)

    def backward_array(self, g):
        sa, sb = self.in_shapes
        return sum_to_array(g, sa), sum_to_array(g, sb)


class Sub(Function):
    """out = a - b.   dL/da = g,   dL/db = -g."""

    saves_inputs = False

    def forward(self, a, b):
        return a - b

    def backward(self, g):
        sa, sb = self.in_shapes
        return _reduce(g, sa), _reduce(-g, sb) if self.needs_input_grad[1] else None

    def backward_array(self, g):
        sa, sb = self.in_shapes
        return sum_to_array(g, sa), (sum_to_array(-g, sb) if self.needs_input_grad[1] else None)


class Mul(Function):
    """out = a * b.   dL/da = g * b,   dL/db = g * a."""

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        ga = _reduce(g * b, a.shape) if self.needs_input_grad[0] else None
        gb = _reduce(g * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb

    def backward_array(self, g):
        a, b = self.inputs
        ga = sum_to_array(g * b.data, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to_array(g * a.data, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """out = a / b.   dL/da = g / b,   dL/db = -g * a / b**2."""

    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.inputs
        ga = _reduce(g / b, a.shape) if self.needs_input_grad[0] else None
        gb = _reduce(-g * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb

    def backward_array(self, g):
        a, b = self.inputs[0].data, self.inputs[1].data
        ga = sum_to_array(g / b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to_array(-g * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    """out = -a.   dL/da = -g."""

    saves_inputs = False

    def forward(self, a):
        return -a

    def backward(self, g):
        return -g

    def backward_array(self, g):
        return -g


class PowScalar(Function):
    """out = a ** p for a Python number p.   dL/da = g * p * a**(p-1)."""

    name = "pow"

    def forward(self, a, p):
        self.p = p
        return a**p

    def backward(self, g):
        (a,) = self.inputs
        p = self.p
        if p == 2:
            return g * 2.0 * a
        if p == 1:
            return g
        return g * p * a ** (p - 1)

    def backward_array(self, g):
        a, p = self.inputs[0].data, self.p
        return g * (p * a ** (p - 1))


class Pow(Function):
    """out = a ** b (both tensors).

    dL/da = g * b * a**(b-1),   dL/db = g * out * log(a)   (defined for a > 0).
    """

    def forward(self, a, b):
        self.out = a**b
        return self.out

    def backward(self, g):
        a, b = self.inputs
        ga = _reduce(g * b * a ** (b - 1.0), a.shape) if self.needs_input_grad[0] else None
        gb = _reduce(g * self.saved_output() * F.log(a), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Exp(Function):
    """out = exp(a).   dL/da = g * out."""

    saves_inputs = False

    def forward(self, a):
        self.out = self.xp.exp(a)
        return self.out

    def backward(self, g):
        return g * self.saved_output()

    def backward_array(self, g):
        return g * self.out


class Log(Function):
    """out = log(a).   dL/da = g / a."""

    def forward(self, a):
        return self.xp.log(a)

    def backward(self, g):
        return g / self.inputs[0]

    def backward_array(self, g):
        return g / self.inputs[0].data


class Sqrt(Function):
    """out = sqrt(a).   dL/da = g / (2 * out)."""

    saves_inputs = False

    def forward(self, a):
        self.out = self.xp.sqrt(a)
        return self.out

    def backward(self, g):
        return g / (2.0 * self.saved_output())

    def backward_array(self, g):
        return g / (2.0 * self.out)


class Abs(Function):
    """out = |a|.   dL/da = g * sign(a)   (0 at a = 0, as PyTorch)."""

    def forward(self, a):
        return self.xp.abs(a)

    def backward(self, g):
        return g * F.sign(self.inputs[0])


class Tanh(Function):
    """out = tanh(a).   dL/da = g * (1 - out**2)."""

    saves_inputs = False

    def forward(self, a):
        self.out = self.xp.tanh(a)
        return self.out

    def backward(self, g):
        y = self.saved_output()
        return g * (1.0 - y * y)

    def backward_array(self, g):
        y = self.out
        return g * (1.0 - y * y)


class Sigmoid(Function):
    """out = 1 / (1 + exp(-a)).   dL/da = g * out * (1 - out)."""

    saves_inputs = False

    def forward(self, a):
        xp = self.xp
        # numerically stable: exp of a non-positive number only
        e = xp.exp(-xp.abs(a))
        self.out = xp.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)
        return self.out

    def backward(self, g):
        y = self.saved_output()
        return g * y * (1.0 - y)

    def backward_array(self, g):
        y = self.out
        return g * y * (1.0 - y)


class ReLU(Function):
    """out = max(a, 0).   dL/da = g * [a > 0]   (0 at a = 0, as PyTorch)."""

    saves_inputs = False

    def forward(self, a):
        xp = self.xp
        self.out = self.elementwise(lambda out, a: xp.maximum(a, 0, out=out), a)
        return self.out

    def backward(self, g):
        return F.where(self.const(self.out > 0), g, F.zeros_like(g))

    def backward_array(self, g):
        y = self.out
        fused = self.backend.relu_backward(g, y, False)  # one C pass, where the backend has one
        if fused is not None:
            return fused[0]
        xp = self.xp
        return self.elementwise(lambda out, g, y: xp.multiply(g, y > 0, out=out), g, y)


class Erf(Function):
    """out = erf(a).   dL/da = g * 2/sqrt(pi) * exp(-a**2)."""

    def forward(self, a):
        return self.backend.erf(a)

    def backward(self, g):
        a = self.inputs[0]
        return g * (2.0 / math.sqrt(math.pi)) * F.exp(-(a * a))


class GELU(Function):
    """Gaussian error linear unit, out = a * Phi(a) with Phi the normal CDF.

    exact: Phi(a) = (1 + erf(a / sqrt 2)) / 2,
        dL/da = g * (Phi(a) + a * phi(a)),  phi(a) = exp(-a**2 / 2) / sqrt(2 pi).
    tanh:  out = a/2 * (1 + t),  t = tanh(k (a + c a**3)),  k = sqrt(2/pi), c = 0.044715,
        dL/da = g * (  (1 + t)/2 + a/2 * (1 - t**2) * k * (1 + 3 c a**2)  ).
    """

    name = "gelu"

    def forward(self, a, approximate="none"):
        xp = self.xp
        self.approximate = approximate
        if approximate == "tanh":
            k = math.sqrt(2.0 / math.pi)
            return 0.5 * a * (1.0 + xp.tanh(k * (a + 0.044715 * a * a * a)))
        return 0.5 * a * (1.0 + self.backend.erf(a * (1.0 / math.sqrt(2.0))))

    def backward(self, g):
        a = self.inputs[0]
        if self.approximate == "tanh":
            k = math.sqrt(2.0 / math.pi)
            t = F.tanh(k * (a + 0.044715 * a * a * a))
            return g * (0.5 * (1.0 + t) + 0.5 * a * (1.0 - t * t) * k * (1.0 + 3 * 0.044715 * a * a))
        cdf = 0.5 * (1.0 + F.erf(a * (1.0 / math.sqrt(2.0))))
        pdf = F.exp(-0.5 * a * a) * (1.0 / math.sqrt(2.0 * math.pi))
        return g * (cdf + a * pdf)


class Maximum(Function):
    """out = max(a, b) elementwise.

    dL/da = g * ([a > b] + [a == b] / 2),  dL/db = g * ([b > a] + [a == b] / 2):
    a tie splits the gradient equally, as PyTorch does.
    """

    saves_inputs = False

    def forward(self, a, b):
        self.wa = (a > b) + 0.5 * (a == b)
        self.wa = self.wa.astype(a.dtype, copy=False)
        return self.xp.maximum(a, b)

    def backward(self, g):
        sa, sb = self.in_shapes
        wa = self.const(self.wa)
        return _reduce(g * wa, sa), _reduce(g * (1.0 - wa), sb)


class Minimum(Maximum):
    """out = min(a, b) elementwise; the gradient goes to the smaller input (ties split)."""

    name = "minimum"

    def forward(self, a, b):
        self.wa = ((a < b) + 0.5 * (a == b)).astype(a.dtype, copy=False)
        return self.xp.minimum(a, b)


class Clip(Function):
    """out = min(max(a, lo), hi).   dL/da = g * [lo <= a <= hi]   (as torch.clamp)."""

    saves_inputs = False

    def forward(self, a, lo=None, hi=None):
        inside = None
        if lo is not None:
            inside = a >= lo
        if hi is not None:
            inside = (a <= hi) if inside is None else inside & (a <= hi)
        self.inside = inside
        return self.xp.clip(a, lo, hi)

    def backward(self, g):
        if self.inside is None:
            return g
        return g * self.const(self.inside)

    def backward_array(self, g):
        return g if self.inside is None else g * self.inside


class Where(Function):
    """out = cond ? a : b   (cond is boolean, no gradient).

    dL/da = g * cond,   dL/db = g * (1 - cond).
    """

    saves_inputs = False

    def forward(self, cond, a, b):
        self.cond = cond
        return self.xp.where(cond, a, b)

    def backward(self, g):
        _, sa, sb = self.in_shapes
        zero = F.zeros_like(g)
        cond = self.const(self.cond)
        ga = _reduce(F.where(cond, g, zero), sa) if self.needs_input_grad[1] else None
        gb = _reduce(F.where(cond, zero, g), sb) if self.needs_input_grad[2] else None
        return None, ga, gb

    def backward_array(self, g):
        _, sa, sb = self.in_shapes
        xp, zero = self.xp, g.dtype.type(0)
        ga = sum_to_array(xp.where(self.cond, g, zero), sa) if self.needs_input_grad[1] else None
        gb = sum_to_array(xp.where(self.cond, zero, g), sb) if self.needs_input_grad[2] else None
        return None, ga, gb


class MaskedFill(Function):
    """out = a with ``value`` where mask is True.   dL/da = g * (1 - mask)."""

    name = "masked_fill"
    saves_inputs = False

    def forward(self, a, mask, value=0.0):
        self.mask = mask
        return self.xp.where(mask, self.xp.asarray(value, dtype=a.dtype), a)

    def backward(self, g):
        return F.where(self.const(self.mask), F.zeros_like(g), g), None

    def backward_array(self, g):
        return self.xp.where(self.mask, g.dtype.type(0), g), None


class Cast(Function):
    """out = a converted to another dtype.   dL/da = g converted back."""

    saves_inputs = False
    check_dtypes = False

    def forward(self, a, dtype=None):
        self.src = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return F.cast(g, self.src)

    def backward_array(self, g):
        return g.astype(self.src)


class ToDevice(Function):
    """out = a copied to another device.   dL/da = g copied back."""

    name = "to_device"
    saves_inputs = False

    @classmethod
    def apply(cls, a, device=None):
        from .. import backend as B
        from ..tensor import Tensor

        target = B.get_backend(device)
        data = target.from_host(a.backend.to_host(a.data))
        out = Tensor._make(data, target.device, False, None)
        if not (a.requires_grad and F.is_grad_enabled()):
            return out
        # record the node by hand: forward ran on the source device, output lives on the target
        node = super().apply(a, device=None)._ctx
        node.src_device = a.device
        node.out_device = target.device
        out._ctx = node
        out.requires_grad = True
        return out

    def forward(self, a, device=None):
        return a

    def backward(self, g):
        return F.to_device(g, self.src_device)


class Sin(Function):
    """out = sin(a).   dL/da = g * cos(a)."""

    def forward(self, a):
        return self.xp.sin(a)

    def backward(self, g):
        return g * F.cos(self.inputs[0])


class Cos(Function):
    """out = cos(a).   dL/da = -g * sin(a)."""

    def forward(self, a):
        return self.xp.cos(a)

    def backward(self, g):
        return -g * F.sin(self.inputs[0])
