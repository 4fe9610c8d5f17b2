"""Matrix multiplication, and the Linear layer's op (x @ W^T + b, optionally then ReLU).

For 2-D a (n, k) and b (k, m), out = a @ b has out[i, j] = sum_p a[i, p] b[p, j], so

    dL/da = g @ b^T      (n, m) @ (m, k) -> (n, k)
    dL/db = a^T @ g      (k, n) @ (n, m) -> (k, m)

N-D inputs are stacks of matrices whose leading (batch) axes broadcast; their
gradients are summed back over broadcast batch axes. 1-D inputs are handled in
:func:`matmul` by adding and removing a size-1 axis, as NumPy does.
"""

from __future__ import annotations

from typing import Any

from ..autograd import Function
from .checks import broadcast_shapes, require_tensor
from .shape import squeeze, unsqueeze


class MatMul(Function):
    """out = a @ b for a, b with ndim >= 2.

    dL/da = g @ swapaxes(b, -1, -2),   dL/db = swapaxes(a, -1, -2) @ g
    (each summed to its input's shape when batch axes were broadcast).
    """

    def forward(self, a, b):
        return a @ b

    def backward(self, g):
        a, b = self.inputs
        ga = (g @ b.swapaxes(-1, -2)).sum_to_size(a.shape) if self.needs_input_grad[0] else None
        gb = (a.swapaxes(-1, -2) @ g).sum_to_size(b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Linear(Function):
    """out = x @ W^T + b for x (..., in), W (out, in), b (out,): one node instead of five.

    With x2 = x reshaped to (N, in) and g2 = g reshaped to (N, out):

        dL/dx = g2 @ W          reshaped back to x's shape
        dL/dW = g2^T @ x2       (out, in): every row of the batch adds its outer product
        dL/db = sum of g2 over the N rows
    """

    name = "linear"

    def forward(self, x, weight, *bias):
        out = x.reshape(-1, x.shape[-1]) @ weight.T
        if bias:
            out += bias[0]
        return out.reshape(x.shape[:-1] + weight.shape[:1])

    def backward(self, g):
        x, weight = self.inputs[0], self.inputs[1]
        g2 = g.reshape(-1, g.shape[-1])
        need = self.needs_input_grad
        gx = (g2 @ weight).reshape(x.shape) if need[0] else None
        gw = g2.T @ x.reshape(-1, x.shape[-1]) if need[1] else None
        if len(need) == 2:
            return gx, gw
        return gx, gw, (g2.sum(0) if need[2] else None)


class LinearReLU(Linear):
    """out = max(x @ W^T + b, 0): a Linear and the ReLU after it, as one node.

    The same derivatives as ReLU then Linear: with the mask m = [out > 0],

        dL/d(pre-activation) = g * m,   then Linear's dL/dx, dL/dW, dL/db of that.
    """

    name = "linear_relu"

    def forward(self, x, weight, *bias):
        out = super().forward(x, weight, *bias)
        self.out = self.xp.maximum(out, 0, out=out)
        return self.out

    def backward(self, g):
        return super().backward(g * self.const((self.out > 0).astype(g.dtype)))


def matmul(a: Any, b: Any) -> Any:
    """Matrix product with NumPy's rules: 1-D, 2-D and batched N-D (batch axes broadcast)."""
    require_tensor(a, "matmul", "the first operand")
    require_tensor(b, "matmul", "the second operand")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: scalars are not allowed, got shapes {a.shape} and {b.shape}; use mul")
    k_a = a.shape[-1]
    k_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
            f"{k_a} (last dim of the first) != {k_b} ({'second-to-last' if b.ndim > 1 else 'only'} dim of the second)"
        )
    if a.ndim > 2 or b.ndim > 2:
        try:
            broadcast_shapes("matmul", a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of shapes {a.shape} and {b.shape} cannot be broadcast together"
            ) from None
    if a.ndim == 1:
        return squeeze(matmul(unsqueeze(a, 0), b), -2 if b.ndim > 1 else -1)
    if b.ndim == 1:
        return squeeze(matmul(a, unsqueeze(b, -1)), -1)
    return MatMul.apply(a, b)


def _check_linear(op: str, x: Any, weight: Any, bias: Any) -> None:
    for what, t in (("input", x), ("weight", weight), ("bias", bias)):
        if t is not None:
            require_tensor(t, op, what)
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if x.ndim == 0:
        raise ValueError(f"{op}: the input must have at least one dimension")
    if x.shape[-1:] != weight.shape[1:]:
        raise ValueError(
            f"{op}: input of shape {x.shape} does not match weight of shape {weight.shape} "
            f"(expected last dim {weight.shape[1]})"
        )
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"{op}: bias of shape {bias.shape} does not match weight of shape {weight.shape}")


def linear(x: Any, weight: Any, bias: Any = None) -> Any:
    """x @ weight^T + bias for x of shape (..., in_features) and weight (out_features, in_features)."""
    _check_linear("linear", x, weight, bias)
    return Linear.apply(x, weight, *([bias] if bias is not None else []))


def linear_relu(x: Any, weight: Any, bias: Any = None) -> Any:
    """relu(linear(x, weight, bias)) as one fused node (fewer passes over the output)."""
    _check_linear("linear_relu", x, weight, bias)
    return LinearReLU.apply(x, weight, *([bias] if bias is not None else []))
