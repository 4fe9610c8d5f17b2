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
        if a.ndim < 3 or a.shape[:-2] != b.shape[:-2]:
            return a @ b  # one matrix (BLAS uses every core), or broadcast batch axes
        # a stack of small matrices (attention heads): NumPy multiplies them one by one on
        # one core, so slices of the batch go to threads
        shape, dtype = a.shape[:-1] + b.shape[-1:], self.xp.result_type(a, b)
        # laid out in memory like b when it can be (attention: weights @ v, with v a view of
        # (batch, seq, heads, d)), so that merging the heads back is a view, not a copy
        out = self.xp.empty_like(b, dtype=dtype) if shape == b.shape else self.xp.empty(shape, dtype=dtype)
        self.run_batch(lambda a, b, out: self.xp.matmul(a, b, out=out), (a, b, out), out.shape)
        return out

    def backward(self, g):
        a, b = self.inputs
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = F.sum_to(F.matmul(g, F.swapaxes(b, -1, -2)), a.shape)
        if self.needs_input_grad[1]:
            gb = F.sum_to(F.matmul(F.swapaxes(a, -1, -2), g), b.shape)
        return ga, gb

    def backward_array(self, g):
        from .reduction import sum_to_array

        a, b = self.inputs[0].data, self.inputs[1].data
        need = self.needs_input_grad
        if a.ndim >= 3 and a.shape[:-2] == b.shape[:-2]:  # equal stacks: no sums, slices on threads
            xp = self.xp
            # laid out in memory like a and b (see attention._grad_buffer: the heads' views)
            ga = xp.empty_like(a, dtype=g.dtype) if need[0] else None
            gb = xp.empty_like(b, dtype=g.dtype) if need[1] else None

            def grads(a, b, g, ga, gb):
                if ga is not None:
                    xp.matmul(g, b.swapaxes(-1, -2), out=ga)
                if gb is not None:
                    xp.matmul(a.swapaxes(-1, -2), g, out=gb)

            self.run_batch(grads, (a, b, g, ga, gb), g.shape)
            return ga, gb
        ga = sum_to_array(g @ b.swapaxes(-1, -2), a.shape) if need[0] else None
        gb = sum_to_array(a.swapaxes(-1, -2) @ g, b.shape) if need[1] else None
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
        x2 = x.reshape(-1, x.shape[-1])
        fused = self.backend.linear_forward(x2, weight, bias[0] if bias else None, relu=False)
        if fused is not None:  # the product and the bias in one C call, where the backend has one
            return fused.reshape(x.shape[:-1] + (weight.shape[0],))
        out = self.backend.matmul2d(x2, weight.T)  # BLAS uses every core here
        if bias:
            b = bias[0]

            def add_bias(lo, hi):  # and these slices of rows run on threads
                out[lo:hi] += b

            self.run_rows(add_bias, out.shape[0], 2 * out.size)
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(self, g):
        x, weight = self.inputs[0], self.inputs[1]
        g2 = F.reshape(g, (-1, g.shape[-1]))
        need = self.needs_input_grad
        gx = F.reshape(F.matmul(g2, weight), x.shape) if need[0] else None
        gw = F.matmul(F.swapaxes(g2, 0, 1), F.reshape(x, (-1, x.shape[-1]))) if need[1] else None
        if len(need) == 2:
            return gx, gw
        return gx, gw, (F.sum(g2, 0) if need[2] else None)

    def backward_array(self, g):
        g2 = g.reshape(-1, g.shape[-1])
        has_bias_grad = len(self.needs_input_grad) == 3 and self.needs_input_grad[2]
        fused = self._fused_grads(g2, None, has_bias_grad)
        if fused is not None:
            return fused
        return self._grads(g2, self.sum_rows(g2) if has_bias_grad else None)

    def _fused_grads(self, g2, y2, has_bias_grad):
        """All of backward in one backend call (y2: the ReLU's output, or None), or None."""
        x, weight = self.inputs[0].data, self.inputs[1].data
        need = self.needs_input_grad
        x2 = x.reshape(-1, x.shape[-1])
        grads = self.backend.linear_backward(g2, y2, x2, weight, need[0], need[1], has_bias_grad)
        if grads is None:
            return None
        gx, gw, gb = grads
        gx = gx.reshape(x.shape) if gx is not None else None
        return (gx, gw) if len(need) == 2 else (gx, gw, gb)

    def _grads(self, g2, bias_grad):
        """dL/dx and dL/dW from the gradient g2 as (N, out), and the bias's (given)."""
        x, weight = self.inputs[0].data, self.inputs[1].data
        need = self.needs_input_grad
        matmul2d = self.backend.matmul2d
        gx = matmul2d(g2, weight).reshape(x.shape) if need[0] else None
        gw = matmul2d(g2.T, x.reshape(-1, x.shape[-1])) if need[1] else None
        if len(need) == 2:
            return gx, gw
        return gx, gw, bias_grad


class LinearReLU(Linear):
    """out = max(x @ W^T + b, 0): a Linear and the ReLU after it, as one node.

    The same derivatives as ReLU then Linear: with the mask m = [out > 0],

        dL/d(pre-activation) = g * m,   then Linear's dL/dx, dL/dW, dL/db of that.

    Why fuse: the separate ops make three passes over the (N, out) hidden activations
    after the matrix product (add the bias, read it for the ReLU, write a new array);
    here the bias is added and the result clamped in place, with no new array. The
    feed-forward network of an encoder layer uses it.
    """

    name = "linear_relu"

    def forward(self, x, weight, *bias):
        x2 = x.reshape(-1, x.shape[-1])
        b = bias[0] if bias else None
        out = self.backend.linear_forward(x2, weight, b, relu=True)  # all in one C call, where it can
        if out is not None:
            self.out = out.reshape(x.shape[:-1] + (weight.shape[0],))
            return self.out
        out = self.backend.matmul2d(x2, weight.T)
        xp = self.xp

        def bias_relu(lo, hi):  # rows lo:hi, in place: add the bias, clamp at 0
            o = out[lo:hi]
            if b is not None:
                o += b
            xp.maximum(o, 0, out=o)

        if not self.backend.bias_relu(out, b):  # one C pass over each row, where the backend has one
            self.run_rows(bias_relu, out.shape[0], 2 * out.size)
        self.out = out.reshape(x.shape[:-1] + (weight.shape[0],))
        return self.out

    def backward(self, g):
        kept = F.where(self.const(self.out > 0), g, F.zeros_like(g))
        return super().backward(kept)

    def backward_array(self, g):
        has_bias_grad = len(self.needs_input_grad) == 3 and self.needs_input_grad[2]
        n = g.shape[-1]
        fused = self._fused_grads(g.reshape(-1, n), self.out.reshape(-1, n), has_bias_grad)
        if fused is not None:
            return fused
        # g * mask and the bias's gradient (its column sums) in one C pass, where the backend has one
        fused = self.backend.relu_backward(g, self.out, has_bias_grad)
        if fused is not None:
            kept, bias_grad = fused
            return self._grads(kept.reshape(-1, kept.shape[-1]), bias_grad)
        xp = self.xp
        kept = self.elementwise(lambda out, g, y: xp.multiply(g, y > 0, out=out), g, self.out)
        kept2 = kept.reshape(-1, n)
        return self._grads(kept2, self.sum_rows(kept2) if has_bias_grad else None)
