"""Matrix multiplication.

For 2-D a (n, k) and b (k, m), out = a @ b has out[i, j] = sum_p a[i, p] b[p, j], so

    dL/da = g @ b^T      (n, m) @ (m, k) -> (n, k)
    dL/db = a^T @ g      (k, n) @ (n, m) -> (k, m)

N-D inputs are stacks of matrices whose leading (batch) axes broadcast; their
gradients are summed back over broadcast batch axes. 1-D inputs are handled in
``minigrad.functional.matmul`` by adding and removing a size-1 axis, as NumPy does.
"""

from __future__ import annotations

from .. import functional as F
from ..autograd import Function


class MatMul(Function):
    """out = a @ b for a, b with ndim >= 2.

    dL/da = g @ swapaxes(b, -1, -2),   dL/db = swapaxes(a, -1, -2) @ g
    (each summed to its input's shape when batch axes were broadcast).
    """

    def forward(self, a, b):
        return a @ b

    def backward(self, g):
        a, b = self.inputs
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = F.sum_to(F.matmul(g, F.swapaxes(b, -1, -2)), a.shape)
        if self.needs_input_grad[1]:
            gb = F.sum_to(F.matmul(F.swapaxes(a, -1, -2), g), b.shape)
        return ga, gb
