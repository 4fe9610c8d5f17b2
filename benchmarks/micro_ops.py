"""The ops of ``micro.py``: each one's inputs and its minigrad, NumPy-floor and PyTorch forward+backward.

Each :class:`OpBench` subclass holds one op at the sizes of a benchmark config and three
implementations that return (output, [input gradients]): ``minigrad`` (the op through
``minigrad.functional``, then ``out.backward(g)`` with a fixed upstream gradient),
``floor`` (the same forward and backward written by hand in NumPy: as few passes over
memory as we could manage, in place where possible) and ``pytorch``. ``reference`` names
the minigrad op class that ``minigrad.accel`` may replace with a kernel (None: the op
has no accelerated implementation, it runs NumPy calls either way).
"""

from __future__ import annotations

import math
from typing import Any

import bench_utils as bu
import numpy as np

import minigrad
import minigrad.functional as F
from minigrad.ops import attention, layernorm, linalg, softmax

EPS = 1e-5


# ---- one op, three implementations -------------------------------------------------------------------
class OpBench:
    """Inputs, upstream gradient and the minigrad / floor / torch forward+backward of one op.

    Each implementation returns (output, [input gradients]) in its own array type; the
    check converts them to NumPy, timing ignores them.
    """

    name = ""
    reference: type | None = None  # the minigrad op an accelerated implementation may replace
    inputs: dict[str, np.ndarray]  # float inputs that get gradients, in order
    consts: dict[str, np.ndarray]  # other inputs (targets, masks)
    grad_out: np.ndarray | None  # upstream gradient (None: the op returns a scalar loss)

    def describe(self) -> str:
        return " ".join(f"{k}{tuple(v.shape)}" for k, v in self.inputs.items())

    # minigrad: leaves are made once; each call clears their .grad first
    def setup_minigrad(self) -> None:
        self.mg_leaves = [minigrad.tensor(v, requires_grad=True) for v in self.inputs.values()]
        self.mg_consts = {k: minigrad.tensor(v) for k, v in self.consts.items()}
        self.mg_g = minigrad.tensor(self.grad_out) if self.grad_out is not None else None

    def minigrad(self) -> tuple[Any, list[Any]]:
        for t in self.mg_leaves:
            t.grad = None
        out = self.mg_forward(*self.mg_leaves, **self.mg_consts)
        out.backward(self.mg_g)
        return out.data, [t.grad.data for t in self.mg_leaves]

    def setup_torch(self, torch: Any) -> None:
        self.torch = torch
        self.th_leaves = [torch.from_numpy(v.copy()).requires_grad_(True) for v in self.inputs.values()]
        self.th_consts = {k: torch.from_numpy(v.copy()) for k, v in self.consts.items()}
        self.th_g = torch.from_numpy(self.grad_out.copy()) if self.grad_out is not None else None

    def pytorch(self) -> tuple[Any, list[Any]]:
        for t in self.th_leaves:
            t.grad = None
        out = self.th_forward(*self.th_leaves, **self.th_consts)
        out.backward(self.th_g)
        return out.detach(), [t.grad for t in self.th_leaves]

    def mg_forward(self, *leaves: Any, **consts: Any) -> Any:  # pragma: no cover - defined per op
        raise NotImplementedError(f"{type(self).__name__} must define mg_forward")

    def th_forward(self, *leaves: Any, **consts: Any) -> Any:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must define th_forward")

    def floor(self) -> tuple[np.ndarray, list[np.ndarray]]:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must define floor")


class MatMul(OpBench):
    """out = a @ b: the feed-forward's first product (tokens x d_model) @ (d_model x d_ff)."""

    name = "matmul"

    def __init__(self, cfg: bu.BenchConfig, rng: np.random.Generator) -> None:
        n = cfg.batch * cfg.seq
        self.inputs = {"a": _randn(rng, n, cfg.d_model), "b": _randn(rng, cfg.d_model, cfg.d_ff)}
        self.consts = {}
        self.grad_out = _randn(rng, n, cfg.d_ff)

    def mg_forward(self, a: Any, b: Any) -> Any:
        return F.matmul(a, b)

    def th_forward(self, a: Any, b: Any) -> Any:
        return a @ b

    def floor(self) -> tuple[np.ndarray, list[np.ndarray]]:
        a, b, g = self.inputs["a"], self.inputs["b"], self.grad_out
        out = a @ b
        return out, [g @ b.T, a.T @ g]  # BLAS reads the transposed views without copying


class Linear(OpBench):
    """out = x @ W^T + bias on (batch, seq, d_model): how the model calls its projections."""

    name = "linear"

    def __init__(self, cfg: bu.BenchConfig, rng: np.random.Generator) -> None:
        self.inputs = {
            "x": _randn(rng, cfg.batch, cfg.seq, cfg.d_model),
            "w": _randn(rng, cfg.d_ff, cfg.d_model) / math.sqrt(cfg.d_model),
            "bias": _randn(rng, cfg.d_ff),
        }
        self.consts = {}
        self.grad_out = _randn(rng, cfg.batch, cfg.seq, cfg.d_ff)

    def mg_forward(self, x: Any, w: Any, bias: Any) -> Any:
        return F.linear(x, w, bias)

    def th_forward(self, x: Any, w: Any, bias: Any) -> Any:
        return self.torch.nn.functional.linear(x, w, bias)

    def floor(self) -> tuple[np.ndarray, list[np.ndarray]]:
        x, w, bias = self.inputs.values()
        x2 = x.reshape(-1, x.shape[-1])  # views, no copies
        g2 = self.grad_out.reshape(-1, w.shape[0])
        out = x2 @ w.T
        out += bias
        gx = g2 @ w
        gw = g2.T @ x2
        gb = np.ones(g2.shape[0], dtype=g2.dtype) @ g2  # the rows' sum as a BLAS product, on every core
        return out.reshape(x.shape[:-1] + (w.shape[0],)), [gx.reshape(x.shape), gw, gb]


class LinearReLU(Linear):
    """out = max(x @ W^T + bias, 0): the feed-forward network's first layer, fused (F.linear_relu)."""

    name = "linear_relu"
    reference = linalg.LinearReLU

    def mg_forward(self, x: Any, w: Any, bias: Any) -> Any:
        return F.linear_relu(x, w, bias)

    def th_forward(self, x: Any, w: Any, bias: Any) -> Any:
        return self.torch.relu(self.torch.nn.functional.linear(x, w, bias))

    def floor(self) -> tuple[np.ndarray, list[np.ndarray]]:
        x, w, bias = self.inputs.values()
        x2 = x.reshape(-1, x.shape[-1])
        g2 = self.grad_out.reshape(-1, w.shape[0])
        out = x2 @ w.T
        out += bias
        np.maximum(out, 0.0, out=out)  # in place: the pre-activation is not needed afterwards
        gp = g2 * (out > 0)  # the gradient of the pre-activation
        gx = gp @ w
        gw = gp.T @ x2
        gb = np.ones(gp.shape[0], dtype=gp.dtype) @ gp
        return out.reshape(x.shape[:-1] + (w.shape[0],)), [gx.reshape(x.shape), gw, gb]


class ReLU(OpBench):
    """y = max(x, 0) on the feed-forward's hidden activations (tokens x d_ff)."""

    name = "relu"

    def __init__(self, cfg: bu.BenchConfig, rng: np.random.Generator) -> None:
        self.inputs = {"x": _randn(rng, cfg.batch * cfg.seq, cfg.d_ff)}
        self.consts = {}
        self.grad_out = _randn(rng, cfg.batch * cfg.seq, cfg.d_ff)

    def mg_forward(self, x: Any) -> Any:
        return F.relu(x)

    def th_forward(self, x: Any) -> Any:
        return self.torch.relu(x)

    def floor(self) -> tuple[np.ndarray, list[np.ndarray]]:
        y = np.maximum(self.inputs["x"], 0.0)
        dx = self.grad_out * (y > 0)  # bool * float32: one pass, no float copy of the mask
        return y, [dx]


class Softmax(OpBench):
    """y = softmax(x) along the last axis, on attention-score-shaped input (batch, heads, seq, seq)."""

    name = "softmax"
    reference = softmax.Softmax

    def __init__(self, cfg: bu.BenchConfig, rng: np.random.Generator) -> None:
        self.inputs = {"x": _randn(rng, cfg.batch, cfg.nhead, cfg.seq, cfg.seq)}
        self.consts = {}
        self.grad_out = _randn(rng, cfg.batch, cfg.nhead, cfg.seq, cfg.seq)

    def mg_forward(self, x: Any) -> Any:
        return F.softmax(x, -1)

    def th_forward(self, x: Any) -> Any:
        return self.torch.softmax(x, -1)

    def floor(self) -> tuple[np.ndarray, list[np.ndarray]]:
        x, g = self.inputs["x"], self.grad_out
        # forward: y = exp(x - max) / sum, one new array, the rest in place
        y = x - x.max(axis=-1, keepdims=True)
        np.exp(y, out=y)
        y *= 1.0 / y.sum(axis=-1, keepdims=True)  # one division per row, a multiply per element
        # backward: dx = y * (g - sum(g * y)), one new array
        dx = g * y
        s = dx.sum(axis=-1, keepdims=True)
        np.subtract(g, s, out=dx)
        dx *= y
        return y, [dx]


class LayerNorm(OpBench):
    """y = (x - mean) / sqrt(var + eps) * w + b over d_model, on (batch, seq, d_model)."""

    name = "layer_norm"
    reference = layernorm.LayerNorm

    def __init__(self, cfg: bu.BenchConfig, rng: np.random.Generator) -> None:
        self.d = cfg.d_model
        self.inputs = {
            "x": _randn(rng, cfg.batch, cfg.seq, cfg.d_model),
            "w": 1.0 + 0.1 * _randn(rng, cfg.d_model),
            "b": 0.1 * _randn(rng, cfg.d_model),
        }
        self.consts = {}
        self.grad_out = _randn(rng, cfg.batch, cfg.seq, cfg.d_model)

    def mg_forward(self, x: Any, w: Any, b: Any) -> Any:
        return F.layer_norm(x, self.d, w, b, EPS)

    def th_forward(self, x: Any, w: Any, b: Any) -> Any:
        return self.torch.nn.functional.layer_norm(x, (self.d,), w, b, EPS)

    def floor(self) -> tuple[np.ndarray, list[np.ndarray]]:
        x, w, b = self.inputs.values()
        d = x.shape[-1]
        x2 = x.reshape(-1, d)
        g = self.grad_out.reshape(-1, d)
        # forward
        xhat = x2 - x2.mean(axis=1, keepdims=True)  # centred, normalized in place below
        var = np.einsum("ij,ij->i", xhat, xhat)[:, None]  # row dot products: no temporary
        var *= 1.0 / d
        rstd = 1.0 / np.sqrt(var + EPS)
        xhat *= rstd
        y = xhat * w
        y += b
        # backward: dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = g * w
        gb = g.sum(axis=0)
        tmp = g * xhat
        gw = tmp.sum(axis=0)
        dxhat = g * w
        m2 = np.einsum("ij,ij->i", dxhat, xhat)[:, None] * (1.0 / d)
        m1 = dxhat.mean(axis=1, keepdims=True)
        dxhat -= m1
        np.multiply(xhat, m2, out=tmp)
        dxhat -= tmp
        dxhat *= rstd
        return y.reshape(x.shape), [dxhat.reshape(x.shape), gw, gb]


class Attention(OpBench):
    """out = softmax(q k^T / sqrt(d_head) + key padding mask) @ v per head: weights + output.

    minigrad: ``F.attention_weights`` (the fused node) then ``@ v``, as the model does;
    pytorch: ``scaled_dot_product_attention``, which ``nn.TransformerEncoderLayer`` uses.
    """

    name = "attention"
    reference = attention.AttentionWeights

    def __init__(self, cfg: bu.BenchConfig, rng: np.random.Generator) -> None:
        b, h, s, dh = cfg.batch, cfg.nhead, cfg.seq, cfg.d_model // cfg.nhead
        self.inputs = {"q": _randn(rng, b, h, s, dh), "k": _randn(rng, b, h, s, dh), "v": _randn(rng, b, h, s, dh)}
        padding = bu.make_batch(cfg)["padding_mask"]  # (b, s), True = padding; every row keeps >= s/2 keys
        self.consts = {"mask": padding.reshape(b, 1, 1, s)}
        self.grad_out = _randn(rng, b, h, s, dh)
        self.scale = 1.0 / math.sqrt(dh)
        # the floor adds the mask as a float: 0 for keys, -inf for padding (an O(batch*seq) array)
        self.additive = np.where(self.consts["mask"], -np.inf, 0.0).astype(np.float32)

    def mg_forward(self, q: Any, k: Any, v: Any, mask: Any) -> Any:
        return F.attention_weights(q, k, mask, self.scale) @ v

    def th_forward(self, q: Any, k: Any, v: Any, mask: Any) -> Any:
        # SDPA's boolean mask means "may attend" (the opposite of ours)
        return self.torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=~mask)

    def floor(self) -> tuple[np.ndarray, list[np.ndarray]]:
        q, k, v = self.inputs.values()
        g = self.grad_out
        # forward
        w = q @ k.swapaxes(-1, -2)
        w *= self.scale
        w += self.additive
        w -= w.max(axis=-1, keepdims=True)
        np.exp(w, out=w)
        w *= 1.0 / w.sum(axis=-1, keepdims=True)
        out = w @ v
        # backward: gw = g v^T, gv = w^T g, ds = w * (gw - sum(gw * w)), gq = ds k * scale, gk = ds^T q * scale
        gw = g @ v.swapaxes(-1, -2)
        gv = w.swapaxes(-1, -2) @ g
        t = gw * w
        gw -= t.sum(axis=-1, keepdims=True)
        gw *= w  # gw is now ds (without the scale, applied to the smaller products below)
        gq = gw @ k
        gq *= self.scale
        gk = gw.swapaxes(-1, -2) @ q
        gk *= self.scale
        return out, [gq, gk, gv]


class CrossEntropy(OpBench):
    """Mean cross-entropy of (tokens, vocab) logits against integer targets (a language-model head)."""

    name = "cross_entropy"

    def __init__(self, cfg: bu.BenchConfig, rng: np.random.Generator) -> None:
        n = cfg.batch * cfg.seq
        self.inputs = {"x": _randn(rng, n, cfg.vocab)}
        self.consts = {"target": rng.integers(0, cfg.vocab, size=n, dtype=np.int64)}
        self.grad_out = None
        self.rows = np.arange(n)

    def mg_forward(self, x: Any, target: Any) -> Any:
        return F.cross_entropy(x, target)

    def th_forward(self, x: Any, target: Any) -> Any:
        return self.torch.nn.functional.cross_entropy(x, target)

    def floor(self) -> tuple[np.ndarray, list[np.ndarray]]:
        x, t = self.inputs["x"], self.consts["target"]
        n = x.shape[0]
        # forward: loss = mean(logsumexp(x) - x[target])
        z = x - x.max(axis=1, keepdims=True)
        e = np.exp(z)
        total = e.sum(axis=1)
        loss = (np.log(total) - z[self.rows, t]).mean()
        # backward: dx = (softmax(x) - onehot(target)) / n, in e's memory
        e *= (1.0 / n / total)[:, None]
        e[self.rows, t] -= 1.0 / n
        return np.float32(loss), [e]


class Overhead(OpBench):
    """out = a + b on 1-element tensors: the fixed cost of one op, forward + backward."""

    name = "overhead"

    def __init__(self, cfg: bu.BenchConfig, rng: np.random.Generator) -> None:
        self.inputs = {"a": _randn(rng, 1), "b": _randn(rng, 1)}
        self.consts = {}
        self.grad_out = _randn(rng, 1)

    def mg_forward(self, a: Any, b: Any) -> Any:
        return a + b

    def th_forward(self, a: Any, b: Any) -> Any:
        return a + b

    def floor(self) -> tuple[np.ndarray, list[np.ndarray]]:
        a, b = self.inputs.values()
        return a + b, [self.grad_out.copy(), self.grad_out.copy()]


OPS: dict[str, type[OpBench]] = {
    cls.name: cls for cls in (MatMul, Linear, LinearReLU, ReLU, Softmax, LayerNorm, Attention, CrossEntropy, Overhead)
}


def _randn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32)
