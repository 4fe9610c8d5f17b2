"""The accelerated ops: each a subclass of its reference op that runs a device's kernels.

A device's kernels (``minigrad.accel.cpu`` for numba, ``minigrad.accel.cuda`` for CuPy)
implement one small interface; each kernel returns None (or False) when it does not
apply to its arrays (a dtype, a layout), and the op then runs the reference's code. The
derivative is the reference's: a subclass computes the same formulas faster, and with
``create_graph=True`` it calls the reference's Tensor-op ``backward``, so higher-order
gradients never depend on a kernel. ``tests/test_accel.py`` checks every subclass
against its reference op, values and every gradient.
"""

from __future__ import annotations

import math
from typing import Any

from .. import registry
from ..autograd import is_grad_enabled
from ..ops.arithmetic import Add
from ..ops.attention import AttentionWeights
from ..ops.flash_attention import FlashAttention
from ..ops.indexing import IndexAddZeros
from ..ops.layernorm import LayerNorm
from ..ops.linalg import Linear, LinearReLU, MatMul
from ..ops.reduction import sum_to_array
from ..ops.softmax import Softmax
from ..optim.adam import adam_update
from . import threads

_KERNELS: dict[str, Any] = {}  # device -> its kernel set, while registered


def _kernels(device: str) -> Any:
    return _KERNELS[device]


def _mm(device: str, a: Any, b: Any) -> Any:
    """a @ b for 2-D arrays: the device's product where it has one, else the array module's."""
    out = _kernels(device).matmul(a, b)
    return a @ b if out is None else out


def _mm_pair(device: str, a: Any, b: Any, a2: Any, b2: Any) -> tuple[Any, Any]:
    """(a @ b, a2 @ b2), two products of one cost: the device's pair where it has one (run
    at once, on half of the threads each), else one after the other."""
    out = _kernels(device).matmul_pair(a, b, a2, b2)
    return (_mm(device, a, b), _mm(device, a2, b2)) if out is None else out


def _linear_grads(op: Any, g2: Any, need: Any) -> tuple[Any, Any]:
    """(dL/dx, dL/dweight) of a Linear op from g2 = dL/dout as (rows, out), as constants,
    each None where it is not needed: dx = g2 @ weight, dweight = g2^T @ x."""
    x, weight = op.inputs[0].data, op.inputs[1].data
    x2 = x.reshape(-1, x.shape[-1])
    if need[0] and need[1]:
        gx, gw = _mm_pair(op.device, g2, weight, g2.T, x2)
    else:
        gx = _mm(op.device, g2, weight) if need[0] else None
        gw = _mm(op.device, g2.T, x2) if need[1] else None
    return (None if gx is None else op.const(gx.reshape(x.shape))), (None if gw is None else op.const(gw))


def _mm_stack(device: str, a: Any, b: Any, heads_layout: bool = False) -> Any:
    """a @ b for stacks of matrices with the same leading axes (``heads_layout``: see
    ``minigrad.accel.numba_gemm.matmul_stack``)."""
    out = _kernels(device).matmul_stack(a, b, heads_layout)
    return a @ b if out is None else out


class FastLayerNorm(LayerNorm):
    """Layer norm's forward and backward as one kernel call each (rows of the normalized axes)."""

    def forward(self, x, *affine, naxes=1, eps=1e-5, has_weight=True, has_bias=True):
        n = math.prod(x.shape[x.ndim - naxes :])
        weight = affine[0].reshape(-1) if has_weight else None
        bias = affine[-1].reshape(-1) if has_bias else None
        done = _kernels(self.device).layer_norm_forward(x.reshape(-1, n), weight, bias, eps)
        if done is None:
            return super().forward(x, *affine, naxes=naxes, eps=eps, has_weight=has_weight, has_bias=has_bias)
        out, mu, rstd = done
        self.axes = tuple(range(x.ndim - naxes, x.ndim))
        self.eps, self.has_weight, self.has_bias = eps, has_weight, has_bias
        stats = x.shape[: x.ndim - naxes] + (1,) * naxes
        self.mu, self.rstd = mu.reshape(stats), rstd.reshape(stats)
        return out.reshape(x.shape)

    def backward(self, g):
        if is_grad_enabled():
            return super().backward(g)
        need = self.needs_input_grad
        x = self.inputs[0].data
        n = math.prod(x.shape[x.ndim - len(self.axes) :])
        weight = self.inputs[1].data.reshape(-1) if self.has_weight else None
        want_w, want_b = self.has_weight and need[1], self.has_bias and need[-1]
        done = _kernels(self.device).layer_norm_backward(
            g.data.reshape(-1, n), x.reshape(-1, n), self.mu.reshape(-1, 1), self.rstd.reshape(-1, 1),
            weight, need[0], want_w, want_b,
        )  # fmt: skip
        if done is None:
            return super().backward(g)
        dx, dw, db = done
        grads = [self.const(dx.reshape(x.shape)) if need[0] else None]
        if self.has_weight:
            grads.append(self.const(dw.reshape(self.in_shapes[1])) if want_w else None)
        if self.has_bias:
            grads.append(self.const(db.reshape(self.in_shapes[-1])) if want_b else None)
        return tuple(grads)


class FastAttentionWeights(AttentionWeights):
    """The scores' scale, mask and softmax in one kernel pass over each row, and the
    softmax's vector-Jacobian product in another."""

    def forward(self, q, k, *float_mask, bool_mask=None, scale=1.0):
        w = _mm_stack(self.device, q, k.swapaxes(-1, -2))
        if not _kernels(self.device).attention_softmax(w, scale, bool_mask, float_mask[0] if float_mask else None):
            return super().forward(q, k, *float_mask, bool_mask=bool_mask, scale=scale)
        self.scale, self.out = scale, w
        return w

    def backward(self, g):
        need = self.needs_input_grad
        if is_grad_enabled() or len(need) > 2:  # a float mask's gradient: the reference computes dS itself
            return super().backward(g)
        ds = _kernels(self.device).softmax_backward(g.data, self.out, self.scale)  # dS * scale
        if ds is None:
            return super().backward(g)
        q, k = self.inputs[0].data, self.inputs[1].data
        dev = self.device  # dq and dk in the layout where split_heads's backward is a view
        dq = self.const(sum_to_array(_mm_stack(dev, ds, k, True), q.shape)) if need[0] else None
        dk = self.const(sum_to_array(_mm_stack(dev, ds.swapaxes(-1, -2), q, True), k.shape)) if need[1] else None
        return dq, dk


class FastFlashAttention(FlashAttention):
    """Each block's products as one matmul over the stack of heads, the passes between them
    (online softmax, P = exp(S - L), dS) as numba loops, the heads split over the threads."""

    def forward(self, q, k, v, *float_mask, bool_mask=None, scale=1.0, causal=False, block_size=128):
        fmask = float_mask[0] if float_mask else None
        done = _kernels(self.device).flash_forward(q, k, v, fmask, bool_mask, scale, causal, block_size)
        if done is None:
            return super().forward(q, k, v, *float_mask, bool_mask=bool_mask, scale=scale, causal=causal,
                                   block_size=block_size)  # fmt: skip
        self.scale, self.causal, self.block_size, self.bool_mask = scale, causal, block_size, bool_mask
        self.out, self.lse = done
        return self.out

    def backward(self, g):
        need = self.needs_input_grad
        if is_grad_enabled() or (len(need) > 3 and need[3]):  # a float mask's gradient: the reference's dS
            return super().backward(g)
        q, k, v = (t.data for t in self.inputs[:3])
        fmask = self.inputs[3].data if len(need) > 3 else None
        done = _kernels(self.device).flash_backward(
            q, k, v, self.out, self.lse, g.data, fmask, self.bool_mask, self.scale, self.causal, self.block_size
        )
        if done is None:
            return super().backward(g)
        grads = tuple(self.const(d) if n else None for d, n in zip(done, need))
        return grads + ((None,) if len(need) > 3 else ())


class FastSoftmax(Softmax):
    """Softmax along the last axis, forward and backward one kernel pass each."""

    def forward(self, x, axis=-1):
        y = _kernels(self.device).softmax_forward(x) if axis == x.ndim - 1 else None
        if y is None:
            return super().forward(x, axis=axis)
        self.axis, self.out = axis, y
        return y

    def backward(self, g):
        if is_grad_enabled() or self.axis != self.out.ndim - 1:
            return super().backward(g)
        dx = _kernels(self.device).softmax_backward(g.data, self.out, 1.0)
        return super().backward(g) if dx is None else self.const(dx)


class FastLinearReLU(LinearReLU):
    """The bias and the clamp in one pass after the product; in backward, the ReLU's mask
    and the bias's gradient in one pass before the two products."""

    def forward(self, x, weight, *bias):
        out = _mm(self.device, x.reshape(-1, x.shape[-1]), weight.T)
        if not _kernels(self.device).bias_relu(out, bias[0] if bias else None):
            return super().forward(x, weight, *bias)
        self.out = out.reshape(x.shape[:-1] + weight.shape[:1])
        return self.out

    def backward(self, g):
        if is_grad_enabled():
            return super().backward(g)
        need = self.needs_input_grad
        want_bias = len(need) == 3 and need[2]
        n = g.shape[-1]
        done = _kernels(self.device).relu_backward(g.data.reshape(-1, n), self.out.reshape(-1, n), want_bias)
        if done is None:
            return super().backward(g)
        kept, dbias = done
        gx, gw = _linear_grads(self, kept, need)
        if len(need) == 2:
            return gx, gw
        return gx, gw, (self.const(dbias) if want_bias else None)


class FastIndexAddZeros(IndexAddZeros):
    """The backward of indexing (an embedding's gradient) as one loop over the rows."""

    def forward(self, g, shape=(), index=None, advanced=False):
        rows = index[0] if isinstance(index, tuple) and len(index) == 1 else index  # one integer array
        if advanced and not isinstance(rows, tuple):
            out = self.xp.zeros(shape, dtype=g.dtype)
            if _kernels(self.device).scatter_add(out, rows, g):
                self.index, self.advanced = index, advanced
                return out
        return super().forward(g, shape=shape, index=index, advanced=advanced)


class FastAdd(Add):
    """Two large arrays of one shape added on the kernel threads (a residual connection, or
    the engine's first sum of two gradients); any other add is the reference's."""

    def forward(self, a, b):
        out = _kernels(self.device).add(a, b)
        return super().forward(a, b) if out is None else out


class FastLinear(Linear):
    """First-order backward on the arrays: the two products (side by side, where the kernels
    run them as a pair) and the bias's sum, without a node (and its bookkeeping) for each
    of the five ops the reference formula applies."""

    def forward(self, x, weight, *bias):
        out = _mm(self.device, x.reshape(-1, x.shape[-1]), weight.T)
        if bias and not _kernels(self.device).bias_add(out, bias[0]):
            out += bias[0]
        return out.reshape(x.shape[:-1] + weight.shape[:1])

    def backward(self, g):
        if is_grad_enabled():
            return super().backward(g)
        need = self.needs_input_grad
        g2 = g.data.reshape(-1, g.shape[-1])
        gx, gw = _linear_grads(self, g2, need)
        if len(need) == 2:
            return gx, gw
        if not need[2]:
            return gx, gw, None
        db = _kernels(self.device).column_sum(g2)
        return gx, gw, self.const(g2.sum(0) if db is None else db)


class FastMatMul(MatMul):
    """A large stack of small matrices (attention's heads), split over the threads along
    its first axis: NumPy multiplies the matrices of a stack one after the other. Backward's
    two products (first order, no broadcast batch axes) run the same way, on the arrays."""

    min_size = 1 << 18  # output elements; below this a hand-off to a thread costs more than it saves

    def forward(self, a, b):
        return self._product(a, b, heads_layout=True)  # attention's output: merging its heads is a view

    def backward(self, g):
        a, b = self.inputs[0].data, self.inputs[1].data
        if is_grad_enabled() or a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2]:
            return super().backward(g)
        need = self.needs_input_grad
        ga = self.const(self._product(g.data, b.swapaxes(-1, -2))) if need[0] else None
        gb = self.const(self._product(a.swapaxes(-1, -2), g.data, heads_layout=True)) if need[1] else None
        return ga, gb  # ga (attention's dL/dweights) stays C-contiguous, for the softmax's backward kernel

    def _product(self, a, b, heads_layout=False):
        kernels = _kernels(self.device)
        out = kernels.matmul_stack(a, b, heads_layout) if a.ndim >= 3 else kernels.matmul(a, b)
        if out is not None:
            return out
        parts = threads.get_num_threads()
        if a.ndim < 3 or a.shape[:-2] != b.shape[:-2] or parts < 2 or not threads.allowed():
            return a @ b
        out = self.xp.empty(a.shape[:-1] + b.shape[-1:], dtype=self.xp.result_type(a, b))
        if out.size < self.min_size or a.shape[0] < 2:
            return self.xp.matmul(a, b, out=out)

        def rows(lo, hi):  # each thread writes its own slice of out
            self.xp.matmul(a[lo:hi], b[lo:hi], out=out[lo:hi])

        threads.run_jobs(rows, a.shape[0])
        return out


OPS = (FastLayerNorm, FastAttentionWeights, FastSoftmax, FastLinear, FastLinearReLU, FastIndexAddZeros,
       FastMatMul, FastFlashAttention, FastAdd)  # fmt: skip
# the GPU runs a stack of matrices as one batched product already, and an add as one kernel;
# FlashAttention has no CuPy kernels yet (on a GPU the reference op runs, on CuPy arrays)
CPU_ONLY = (FastMatMul, FastFlashAttention, FastAdd)


def kernels_for(device: str) -> Any:
    """The kernel set registered for ``device`` while the acceleration is on, else None."""
    return _KERNELS.get(device) if registry.implementations else None


def _register(device: str, kernels: Any) -> None:
    _KERNELS[device] = kernels
    for op in OPS:
        if device == "cpu" or op not in CPU_ONLY:
            registry.register(op.__mro__[1], device, op)

    def fast_adam(updates, beta1, beta2, eps):
        if not kernels.adam_update(updates, beta1, beta2, eps):
            adam_update(updates, beta1, beta2, eps)

    registry.register(adam_update, device, fast_adam)


def register_cpu(kernel_threads: int = 1) -> str:
    """Register the numba kernels for the CPU; a line saying what is on, or why not."""
    try:
        from . import cpu
    except ImportError as exc:
        return f"off (numba is not installed: pip install -e '.[fast]'; {exc})"
    failures = cpu.check()
    if failures:
        return "off (a kernel failed its self-check: " + "; ".join(failures) + ")"
    cpu.set_threads(kernel_threads)
    _register("cpu", cpu)
    return f"on (numba {cpu.version()}, {cpu.get_threads()} kernel threads)"


def register_cuda() -> str:
    """Register the CuPy kernels for a GPU, when CuPy is installed (they compile on first use)."""
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "off (CuPy is not installed: the gpu extra)"
    from . import cuda

    _register("cuda", cuda)
    return "on (CuPy kernels, compiled on first use)"
