"""Every op computes through its backend: nothing silently falls back to NumPy.

The "marked" backend (tests/marked_backend.py) runs on the CPU but makes arrays of type
``MarkedArray``. Each op runs forward and backward on device "marked" while a tracker
records every Tensor created, every graph node (its saved arrays), every gradient that
reaches a node (hooks) and every retained ``.grad``; all of them must hold arrays whose
type is exactly ``MarkedArray``. The same computation on "cpu" gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from marked_backend import MarkedArray

import minigrad
import minigrad.functional as F
from minigrad import autograd, nn
from minigrad.autograd import Function
from minigrad.ops.indexing import IndexAddZeros
from minigrad.tensor import Tensor


# ---- the tracker ------------------------------------------------------------------------------
def _foreign_arrays(value: Any, path: str, array_type: type, seen: set[int] | None = None) -> list[str]:
    """Paths of the arrays inside ``value`` that are not exactly of ``array_type``."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    if isinstance(value, (np.ndarray, array_type)):
        return [] if type(value) is array_type else [f"{path}: {type(value).__name__} {value.shape}"]
    if isinstance(value, Tensor):
        return _foreign_arrays(value.data, path + ".data", array_type, seen)
    if isinstance(value, (tuple, list)):
        out = []
        for i, v in enumerate(value):
            out += _foreign_arrays(v, f"{path}[{i}]", array_type, seen)
        return out
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += _foreign_arrays(v, f"{path}.{k}", array_type, seen)
        return out
    return []


class Tracker:
    """Records every tensor made, every node recorded, every gradient seen by a hook.

    ``check()`` then asserts that all of them live on ``device`` and hold arrays whose
    type is exactly ``array_type`` (MarkedArray here; cupy.ndarray in test_cupy.py).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, device: str = "marked", array_type: type = MarkedArray) -> None:
        self.device, self.array_type = device, array_type
        self.tensors: list[Tensor] = []
        self.nodes: list[Function] = []
        self.outputs: list[Tensor] = []
        self.hook_grads: list[tuple[str, Tensor]] = []
        self.problems: list[str] = []
        tracker = self
        make = Tensor._make.__func__
        init = Tensor.__init__

        def _make(cls, data, device, requires_grad, ctx):
            t = make(cls, data, device, requires_grad, ctx)
            tracker.tensors.append(t)
            return t

        def __init__(self, *args, **kwargs):
            init(self, *args, **kwargs)
            tracker.tensors.append(self)

        monkeypatch.setattr(Tensor, "_make", classmethod(_make))
        monkeypatch.setattr(Tensor, "__init__", __init__)
        monkeypatch.setattr(autograd, "node_observers", [self.observe])

    def observe(self, node: Function, out: Tensor) -> None:
        self.nodes.append(node)
        self.outputs.append(out)
        # what forward saved for backward, checked now (backward frees it)
        self.problems += _foreign_arrays(vars(node), f"{node.op_name} node saved", self.array_type)
        out.retain_grad()
        name = node.op_name
        out.register_hook(lambda g: self.hook_grads.append((name, g)))

    def check(self) -> None:
        device, array_type = self.device, self.array_type
        problems = list(self.problems)
        for t in self.tensors:
            if t.device != device:
                problems.append(f"a tensor of shape {t.shape} was made on device {t.device!r}")
            problems += _foreign_arrays(t.data, f"tensor {t.shape} (grad_fn={t.grad_fn})", array_type)
            if t.grad is not None:
                problems += _foreign_arrays(t.grad.data, f".grad of tensor {t.shape}", array_type)
        for name, g in self.hook_grads:
            problems += _foreign_arrays(g.data, f"gradient reaching {name}", array_type)
            if g.device != device:
                problems.append(f"gradient reaching {name} is on device {g.device!r}")
        assert not problems, "arrays that bypassed the backend:\n  " + "\n  ".join(problems)


# ---- inputs -----------------------------------------------------------------------------------
def f(*shape):
    return lambda rng: rng.standard_normal(shape)


def pos(*shape):
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def away(*shape):
    """Normal values kept away from 0 (abs, relu and clip have a kink there)."""
    return lambda rng: np.sign(rng.standard_normal(shape)) * rng.uniform(0.2, 2.0, shape)


def ints(high, *shape, low=0):
    return lambda rng: rng.integers(low, high, shape)


def mask(*shape):
    return lambda rng: rng.random(shape) < 0.5


def targets_with_ignored(high, *shape):
    def make(rng):
        t = rng.integers(0, high, shape)
        t.reshape(-1)[::3] = -100
        return t

    return make


def _scalar(t):
    return t.sum() if t.ndim else t


CASES: dict[str, tuple[Callable[..., Any], list[Callable]]] = {
    # arithmetic (broadcasting, Python scalars on either side)
    "add": (lambda a, b: a + b, [f(3, 4), f(4)]),
    "add_scalar": (lambda a: a + 2.0, [f(3)]),
    "radd_scalar": (lambda a: 2.0 + a, [f(3)]),
    "sub": (lambda a, b: a - b, [f(2, 3), f(2, 1)]),
    "rsub": (lambda a: 2 - a, [f(3)]),
    "mul": (lambda a, b: a * b, [f(3, 1), f(1, 4)]),
    "div": (lambda a, b: a / b, [f(3, 4), pos(3, 4)]),
    "rdiv": (lambda a: 2 / a, [pos(3)]),
    "neg": (lambda a: -a, [f(2, 3)]),
    "pow_scalar": (lambda a: a**3, [f(2, 3)]),
    "pow_scalar_2": (lambda a: a**2, [f(2, 3)]),
    "pow_scalar_1": (lambda a: a**1, [f(2, 3)]),
    "pow_scalar_half": (lambda a: a**0.5, [pos(2, 3)]),
    "pow_tensor": (lambda a, b: a**b, [pos(2, 3), f(3)]),
    "rpow": (lambda a: 2**a, [f(3)]),
    "int_plus_float": (lambda a, i: a + i, [f(2, 3), ints(5, 2, 3)]),
    # elementwise functions
    "exp": (F.exp, [f(2, 3)]),
    "log": (F.log, [pos(2, 3)]),
    "sqrt": (F.sqrt, [pos(2, 3)]),
    "abs": (F.abs, [away(2, 3)]),
    "tanh": (F.tanh, [f(2, 3)]),
    "sigmoid": (F.sigmoid, [f(2, 3)]),
    "relu": (F.relu, [away(2, 3)]),
    "gelu": (F.gelu, [f(2, 3)]),
    "gelu_tanh": (lambda a: F.gelu(a, approximate="tanh"), [f(2, 3)]),
    "erf": (F.erf, [f(2, 3)]),
    "erf_0d": (F.erf, [f()]),
    "maximum": (F.maximum, [f(3, 4), f(4)]),
    "maximum_scalar": (lambda a: F.maximum(a, 0.1), [f(3, 4)]),
    "minimum": (F.minimum, [f(3, 4), f(3, 1)]),
    "clip": (lambda a: a.clip(-0.5, 0.5), [f(3, 4)]),
    "clip_min": (lambda a: F.clip(a, min=0.1), [f(3, 4)]),
    "clip_max": (lambda a: F.clip(a, max=0.1), [f(3, 4)]),
    "where": (lambda c, a, b: F.where(c, a, b), [mask(3, 4), f(3, 4), f(4)]),
    "where_scalar": (lambda c, a: F.where(c, a, 0.0), [mask(3, 4), f(3, 4)]),
    "masked_fill": (lambda a, m: a.masked_fill(m, -3.0), [f(3, 4), mask(1, 4)]),
    # reductions
    "sum": (lambda a: a.sum(), [f(3, 4)]),
    "sum_axis": (lambda a: a.sum(axis=1), [f(3, 4)]),
    "sum_keepdims": (lambda a: a.sum(axis=(0, 2), keepdims=True), [f(2, 3, 4)]),
    "mean": (lambda a: a.mean(), [f(3, 4)]),
    "mean_axis": (lambda a: a.mean(axis=-1, keepdims=True), [f(3, 4)]),
    "var": (lambda a: a.var(), [f(3, 4)]),
    "var_axis_ddof": (lambda a: a.var(axis=0, ddof=1), [f(3, 4)]),
    "max": (lambda a: a.max(), [f(3, 4)]),
    "max_axis": (lambda a: a.max(axis=1, keepdims=True), [f(3, 4)]),
    "min": (lambda a: a.min(), [f(3, 4)]),
    "min_axis": (lambda a: a.min(axis=0), [f(3, 4)]),
    "argmax": (lambda a: [a.argmax(), a.argmax(axis=1), a.argmax(axis=0, keepdims=True)], [f(3, 4)]),
    "argmin": (lambda a: F.argmin(a, axis=1), [f(3, 4)]),
    "logsumexp": (lambda a: F.logsumexp(a, axis=-1), [f(3, 4)]),
    "logsumexp_keepdims": (lambda a: F.logsumexp(a, axis=0, keepdims=True), [f(3, 4)]),
    "softmax": (lambda a: F.softmax(a, axis=-1), [f(3, 4)]),
    "softmax_axis0": (lambda a: F.softmax(a, axis=0), [f(3, 4)]),
    "log_softmax": (lambda a: F.log_softmax(a, axis=-1), [f(3, 4)]),
    "softmax_composite": (lambda a: F.softmax_composite(a, axis=-1), [f(3, 4)]),
    "log_softmax_composite": (lambda a: F.log_softmax_composite(a, axis=-1), [f(3, 4)]),
    "sum_to": (lambda a: F.sum_to(a, (1, 4)), [f(2, 3, 4)]),
    # shapes
    "reshape": (lambda a: a.reshape(4, -1), [f(2, 3, 2)]),
    "flatten": (lambda a: a.flatten(1), [f(2, 3, 2)]),
    "transpose": (lambda a: a.transpose(), [f(2, 3, 4)]),
    "permute": (lambda a: a.permute(1, 2, 0), [f(2, 3, 4)]),
    "T": (lambda a: a.T, [f(2, 3)]),
    "swapaxes": (lambda a: a.swapaxes(0, 2), [f(2, 3, 4)]),
    "split_heads": (lambda a: F.split_heads(a, 2), [f(2, 3, 4)]),
    "merge_heads": (lambda a: F.merge_heads(a), [f(2, 2, 3, 2)]),
    "expand": (lambda a: a.expand(2, 3, 4), [f(3, 1)]),
    "squeeze": (lambda a: a.squeeze(), [f(1, 3, 1)]),
    "squeeze_axis": (lambda a: a.squeeze(0), [f(1, 3, 1)]),
    "unsqueeze": (lambda a: a.unsqueeze(-1), [f(2, 3)]),
    "getitem_slices": (lambda a: a[1:, ::2], [f(3, 4)]),
    "getitem_int": (lambda a: a[1], [f(3, 4)]),
    "getitem_none_ellipsis": (lambda a: a[None, ..., 1], [f(2, 3, 4)]),
    "getitem_int_list": (lambda a: a[[0, 2, 0]], [f(3, 4)]),
    "getitem_int_tensor": (lambda a, i: a[i], [f(4, 3), ints(4, 2, 5)]),
    "getitem_mixed": (lambda a, i: a[:, i], [f(3, 4), ints(4, 6)]),
    "getitem_bool_mask": (lambda a, m: a[m], [f(3, 4), mask(3, 4)]),
    "index_backward": (  # the op getitem's backward records, called directly
        lambda g, i: IndexAddZeros.apply(g, shape=(3, 4), index=(i.data,), advanced=True),
        [f(5, 4), ints(3, 5)],
    ),
    "concat": (lambda a, b: F.concat([a, b], axis=1), [f(2, 3), f(2, 2)]),
    "stack": (lambda a, b: F.stack([a, b], axis=-1), [f(2, 3), f(2, 3)]),
    "split": (lambda a: a.split(2, axis=1), [f(2, 5)]),
    "split_sections": (lambda a: F.split(a, [1, 3], axis=0), [f(4, 2)]),
    "chunk": (lambda a: F.chunk(a, 2, axis=-1), [f(2, 4)]),
    # linear algebra
    "matmul_1d_1d": (lambda a, b: a @ b, [f(4), f(4)]),
    "matmul_1d_2d": (lambda a, b: a @ b, [f(4), f(4, 3)]),
    "matmul_2d_1d": (lambda a, b: a @ b, [f(3, 4), f(4)]),
    "matmul_2d": (lambda a, b: a @ b, [f(3, 4), f(4, 2)]),
    "matmul_nd": (lambda a, b: a @ b, [f(2, 3, 4), f(4, 5)]),
    "matmul_batch_broadcast": (lambda a, b: F.matmul(a, b), [f(2, 1, 3, 4), f(3, 4, 2)]),
    "linear": (F.linear, [f(2, 3, 4), f(5, 4), f(5)]),
    "linear_no_bias": (F.linear, [f(3, 4), f(5, 4)]),
    "linear_relu": (F.linear_relu, [f(2, 3, 4), f(5, 4), f(5)]),
    "linear_relu_no_bias": (F.linear_relu, [f(3, 4), f(5, 4)]),
    # neural-network ops
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 4, w, b), [f(2, 3, 4), f(4), f(4)]),
    "layer_norm_no_affine": (lambda x: F.layer_norm(x, (3, 4)), [f(2, 3, 4)]),
    "layer_norm_composite": (lambda x, w, b: F.layer_norm_composite(x, 4, w, b), [f(3, 4), f(4), f(4)]),
    "dropout": (lambda x: F.dropout(x, 0.3), [f(4, 5)]),
    "dropout_p1": (lambda x: F.dropout(x, 1.0), [f(4, 5)]),
    "embedding": (lambda i, w: F.embedding(i, w), [ints(5, 2, 3), f(5, 4)]),
    "embedding_padding": (lambda i, w: F.embedding(i, w, padding_idx=0), [ints(5, 2, 3), f(5, 4)]),
    "cross_entropy": (lambda x, t: F.cross_entropy(x, t), [f(4, 5), ints(5, 4)]),
    "cross_entropy_ignore_smooth": (
        lambda x, t: F.cross_entropy(x, t, ignore_index=-100, label_smoothing=0.1),
        [f(2, 3, 5), targets_with_ignored(5, 2, 3)],
    ),
    "cross_entropy_sum": (lambda x, t: F.cross_entropy(x, t, reduction="sum"), [f(4, 5), ints(5, 4)]),
    "cross_entropy_none": (
        lambda x, t: F.cross_entropy(x, t, reduction="none", label_smoothing=0.2),
        [f(4, 5), targets_with_ignored(5, 4)],
    ),
    # class-probability targets (they carry a gradient) and class weights (they do not)
    "cross_entropy_probs": (lambda x, p: F.cross_entropy(x, p, label_smoothing=0.1), [f(4, 5), f(4, 5)]),
    "cross_entropy_weight": (
        lambda x, t, w: F.cross_entropy(x, t, label_smoothing=0.2, weight=w.detach().abs()),
        [f(2, 3, 5), targets_with_ignored(5, 2, 3), f(5)],
    ),
    "mse_loss": (lambda a, b: F.mse_loss(a, b), [f(3, 4), f(3, 4)]),
    "mse_loss_none": (lambda a, b: F.mse_loss(a, b, reduction="none"), [f(3, 4), f(3, 4)]),
    "cast": (lambda a: F.cast(a, "float32"), [f(3, 4)]),
    "to_dtype": (lambda a: a.to(dtype="float32").double() * a, [f(3, 4)]),
    "sin": (F.sin, [f(2, 3)]),
    "cos": (F.cos, [f(2, 3)]),
    "attention_weights": (lambda q, k: F.attention_weights(q, k), [f(2, 3, 4), f(2, 5, 4)]),
    "attention_weights_bool_mask": (
        lambda q, k, m: F.attention_weights(q, k, mask=m, scale=0.3),
        [f(2, 3, 4), f(5, 4), lambda rng: np.arange(5)[None, :] > np.array([[0], [2], [-1]])],  # row 2 all masked
    ),
    "attention_weights_float_mask": (
        lambda q, k, m: F.attention_weights(q, k, mask=m.detach()),
        [f(2, 3, 4), f(2, 5, 4), f(3, 5)],
    ),
    "flash_attention": (lambda q, k, v: F.flash_attention(q, k, v, block_size=2), [f(2, 5, 4), f(2, 3, 4), f(2, 3, 2)]),
    "flash_attention_masks": (  # a padding mask, causal, a dead row (query 0 sees only padded key 0)
        lambda q, k, v, m: F.flash_attention(q, k, v, m, causal=True, block_size=2),
        [f(1, 2, 5, 3), f(1, 2, 5, 3), f(1, 2, 5, 2), lambda rng: np.array([[[[True, False, True, False, False]]]])],
    ),
    "flash_attention_float_mask": (
        lambda q, k, v, m: F.flash_attention(q, k, v, m, block_size=2), [f(2, 3, 4), f(2, 5, 4), f(2, 5, 4), f(3, 5)]
    ),
    # no gradient: comparisons, logic, sign
    "compare_logic": (
        lambda a, b: [a < b, a <= b, a > 0.5, a >= b, a == b, a != 0.0, ~(a < b), (a < b) & (a > 0), (a < b) | (b > 0)],
        [f(3, 4), f(4)],
    ),
    "sign_any_all": (lambda a: [F.sign(a), (a > 0).any(), (a > 0).all(), F.ones_like(a), F.zeros_like(a)], [f(3, 4)]),
    # elementwise functions, activations, reductions, scans, sorting (tests/test_ops_math.py)
    "tan": (F.tan, [lambda rng: rng.uniform(-1.0, 1.0, (2, 3))]),
    "asin": (F.asin, [lambda rng: rng.uniform(-0.9, 0.9, (2, 3))]),
    "acos": (F.acos, [lambda rng: rng.uniform(-0.9, 0.9, (2, 3))]),
    "atan": (F.atan, [f(2, 3)]),
    "sinh": (F.sinh, [f(2, 3)]),
    "cosh": (F.cosh, [f(2, 3)]),
    "asinh": (F.asinh, [f(2, 3)]),
    "acosh": (F.acosh, [lambda rng: rng.uniform(1.2, 3.0, (2, 3))]),
    "atanh": (F.atanh, [lambda rng: rng.uniform(-0.9, 0.9, (2, 3))]),
    "log2": (F.log2, [pos(2, 3)]),
    "log10": (F.log10, [pos(2, 3)]),
    "exp2": (F.exp2, [f(2, 3)]),
    "expm1": (F.expm1, [f(2, 3)]),
    "log1p": (F.log1p, [pos(2, 3)]),
    "rsqrt": (F.rsqrt, [pos(2, 3)]),
    "lerp": (F.lerp, [f(3, 4), f(4), f(3, 1)]),
    "lerp_scalar": (lambda a, b: a.lerp(b, 0.25), [f(3, 4), f(3, 4)]),
    "rounding": (lambda a: [F.floor(a), a.ceil(), F.round(a), F.round(a, 1), a.trunc()], [f(3, 4)]),
    "rounding_times": (lambda a: F.floor(a) * a + a.ceil() * a + F.round(a) * a + a.trunc() * a, [f(3, 4)]),
    "isnan_isinf_isfinite": (lambda a: [F.isnan(a), a.isinf(), F.isfinite(a)], [f(3, 4)]),
    "silu": (F.silu, [f(2, 3)]),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.2), [away(2, 3)]),
    "elu": (F.elu, [away(2, 3)]),
    "selu": (F.selu, [away(2, 3)]),
    "softplus": (F.softplus, [f(2, 3)]),
    "softplus_threshold": (lambda a: F.softplus(a, beta=2.0, threshold=1.0), [f(2, 3)]),
    "softsign": (F.softsign, [away(2, 3)]),
    "logsigmoid": (F.logsigmoid, [f(2, 3)]),
    "hardtanh": (F.hardtanh, [f(2, 3)]),
    "relu6": (lambda a: F.relu6(4.0 * a), [away(2, 3)]),
    "hardswish": (lambda a: F.hardswish(3.0 * a), [f(2, 3)]),
    "mish": (F.mish, [f(2, 3)]),
    "amax_amin": (lambda a: [F.amax(a, 1), a.amin()], [f(3, 4)]),
    "std": (lambda a: a.std(), [f(3, 4)]),
    "std_axis_correction0": (lambda a: F.std(a, 0, correction=0), [f(3, 4)]),
    "prod": (lambda a: a.prod(), [away(2, 3)]),
    "prod_axis": (lambda a: F.prod(a, 1), [away(3, 4)]),
    "prod_zeros": (  # rows with one, two and no zeros
        lambda a: F.prod(a, 1), [lambda rng: np.array([[1.5, 0.0, -2.0], [0.0, 0.0, 1.3], [0.9, -1.1, 2.0]])]
    ),
    "cumsum": (lambda a: F.cumsum(a, 0), [f(3, 4)]),
    "cumprod": (lambda a: a.cumprod(1), [away(3, 4)]),
    "cumprod_zeros": (lambda a: F.cumprod(a, 1), [lambda rng: np.array([[1.5, 0.0, -2.0], [0.0, 0.0, 1.3]])]),
    "logcumsumexp": (lambda a: F.logcumsumexp(a, -1), [f(3, 4)]),
    "sort": (lambda a: F.sort(a, -1), [f(3, 4)]),
    "sort_values": (lambda a: a.sort(0, descending=True).values, [f(3, 4)]),
    "argsort": (lambda a: [F.argsort(a, 1), a.argsort(0, descending=True)], [f(3, 4)]),
    "topk": (lambda a: F.topk(a, 2, -1), [f(3, 4)]),
    "topk_values": (lambda a: a.topk(2, axis=0, largest=False).values, [f(3, 4)]),
    # ---- shape and indexing, einsum, losses, rms_norm ----
    "clone": (lambda a: a.clone(), [f(3, 4)]),
    "t": (lambda a: a.t(), [f(3, 4)]),
    "flip": (lambda a: a.flip(0, 1), [f(3, 4)]),
    "roll": (lambda a: a.roll((1, 2), (0, 1)), [f(3, 4)]),
    "roll_flat": (lambda a: a.roll(-3), [f(3, 4)]),
    "pad_constant": (lambda a: F.pad(a, (1, 2, 0, 1), value=0.5), [f(2, 3)]),
    "pad_constant_crop": (lambda a: F.pad(a, (-1, 2, 0, -1)), [f(2, 3)]),
    "pad_reflect": (lambda a: F.pad(a, (2, 1), mode="reflect"), [f(2, 3)]),
    "pad_replicate": (lambda a: F.pad(a, (1, 2, 2, 0), mode="replicate"), [f(2, 3)]),
    "tril": (lambda a: a.tril(1), [f(3, 4)]),
    "triu": (lambda a: a.triu(), [f(2, 3, 4)]),
    "repeat": (lambda a: a.repeat(2, 1, 2), [f(2, 3)]),
    "tile": (lambda a: a.tile((2,)), [f(2, 3)]),
    "repeat_interleave": (lambda a: a.repeat_interleave(2, dim=0), [f(2, 3)]),
    "repeat_interleave_counts": (lambda a, r: a.repeat_interleave(r, dim=1), [f(2, 3), ints(3, 3)]),
    "gather": (lambda a, i: a.gather(1, i), [f(3, 4), ints(4, 3, 5)]),
    "scatter": (lambda a, s: a.scatter(1, minigrad.tensor([[2, 0], [1, 3]], device=a.device), s), [f(2, 4), f(2, 2)]),
    "scatter_value": (lambda a: a.scatter(0, minigrad.tensor([[1, 0, 2]], device=a.device), value=2.0), [f(3, 3)]),
    "scatter_add": (lambda a, i, s: a.scatter_add(0, i, s), [f(3, 4), ints(3, 2, 4), f(2, 5)]),
    "masked_select": (lambda a, m: a.masked_select(m), [f(3, 4), mask(3, 4)]),
    "one_hot": (lambda i: F.one_hot(i, 6), [ints(6, 2, 3)]),
    "einsum": (lambda a, b: F.einsum("bij,bkj->bik", a, b), [f(2, 3, 4), f(2, 5, 4)]),
    "einsum_trace": (lambda a: F.einsum("ii", a), [f(3, 3)]),
    "einsum_diagonal_summed": (lambda a, b: F.einsum("ii,k->i", a, b), [f(3, 3), f(2)]),
    "l1_loss": (lambda a, b: F.l1_loss(a, b), [f(3, 4), f(3, 4)]),
    "smooth_l1_loss": (lambda a, b: F.smooth_l1_loss(a, b, "none", beta=0.5), [f(3, 4), f(3, 4)]),
    "huber_loss": (lambda a, b: F.huber_loss(a, b, "sum", delta=0.5), [f(3, 4), f(3, 4)]),
    "nll_loss": (lambda x, t: F.nll_loss(x, t), [f(4, 5), targets_with_ignored(5, 4)]),
    "nll_loss_weight": (
        lambda x, t: F.nll_loss(x, t, weight=minigrad.tensor([1.0, 2.0, 0.5], dtype="float64", device=x.device)),
        [f(2, 3, 4), ints(3, 2, 4)],
    ),
    "binary_cross_entropy": (lambda x, t: F.binary_cross_entropy(x, t), [lambda rng: rng.uniform(0.1, 0.9, (3, 4)),
                                                                          lambda rng: rng.uniform(0, 1, (3, 4))]),
    "bce_with_logits": (
        lambda x, t: F.binary_cross_entropy_with_logits(
            x, t, pos_weight=minigrad.tensor([1.0, 2.0, 3.0, 0.5], dtype="float64", device=x.device)),
        [f(3, 4), lambda rng: rng.uniform(0, 1, (3, 4))],
    ),
    "kl_div": (lambda x, t: F.kl_div(x, t, reduction="batchmean"), [f(3, 4), pos(3, 4)]),
    "kl_div_log_target": (lambda x, t: F.kl_div(x, t, log_target=True), [f(3, 4), f(3, 4)]),
    "rms_norm": (lambda x, w: F.rms_norm(x, 4, w), [f(2, 3, 4), f(4)]),
    "rms_norm_no_weight": (lambda x: F.rms_norm(x, (3, 4)), [f(2, 3, 4)]),
}


def _make_inputs(specs, device, seed):
    rng = np.random.default_rng(seed)
    inputs = []
    for spec in specs:
        value = spec(rng)
        if value.dtype.kind == "f":
            inputs.append(minigrad.tensor(value, dtype="float64", device=device, requires_grad=True))
        else:
            inputs.append(minigrad.tensor(value, device=device))
    return inputs


def _run(fn, specs, device, seed=0):
    """Forward and backward of ``fn`` on ``device``; returns (outputs, input grads) as NumPy."""
    minigrad.manual_seed(1234)  # dropout draws from the device's seeded generator
    inputs = _make_inputs(specs, device, seed)
    outs = fn(*inputs)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    diff = [o for o in outs if o.requires_grad]
    rng = np.random.default_rng(seed + 1)
    if len(diff) == 1:
        o = diff[0]
        o.backward(minigrad.tensor(rng.standard_normal(o.shape), dtype=o.dtype, device=device))
    elif diff:
        loss = None
        for o in diff:
            w = minigrad.tensor(rng.standard_normal(o.shape), dtype=o.dtype, device=device)
            term = (o * w).sum()
            loss = term if loss is None else loss + term
        loss.backward()
    values = [o.detach().numpy() for o in outs]
    grads = [None if t.grad is None else t.grad.numpy() for t in inputs]
    return inputs, outs, values, grads


@pytest.mark.parametrize("name", list(CASES))
def test_op_stays_on_backend(name, marked, monkeypatch):
    fn, specs = CASES[name]
    _, _, cpu_values, cpu_grads = _run(fn, specs, "cpu")

    tracker = Tracker(monkeypatch)
    inputs, outs, values, grads = _run(fn, specs, "marked")
    tracker.check()
    for t in inputs + outs:
        assert type(t.data) is MarkedArray
        assert t.device == "marked"
    if any(o.requires_grad for o in outs):
        assert tracker.nodes, "no graph node was recorded"
        assert tracker.hook_grads, "no gradient reached a node"
        float_inputs = [t for t in inputs if t.requires_grad]
        assert any(t.grad is not None for t in float_inputs)
        assert all(type(t.grad.data) is MarkedArray for t in float_inputs if t.grad is not None)

    # same numbers as on the CPU
    assert len(values) == len(cpu_values)
    for v, c in zip(values, cpu_values):
        assert type(v) is np.ndarray  # numpy() hands back host arrays
        assert v.dtype == c.dtype and v.shape == c.shape
        np.testing.assert_allclose(v, c, rtol=1e-12, atol=1e-12)
    for g, c in zip(grads, cpu_grads):
        assert (g is None) == (c is None)
        if g is not None:
            np.testing.assert_allclose(g, c, rtol=1e-12, atol=1e-12)


SECOND_ORDER = [
    "add", "mul", "div", "neg", "pow_scalar", "pow_tensor", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu",
    "gelu", "gelu_tanh", "erf", "maximum", "minimum", "clip", "where", "masked_fill", "sum_axis", "var", "max_axis",
    "min_axis", "sum_to", "logsumexp", "softmax", "log_softmax", "reshape", "transpose", "squeeze", "unsqueeze",
    "getitem_int_tensor", "getitem_slices", "index_backward", "concat", "matmul_batch_broadcast", "linear",
    "linear_relu", "layer_norm", "dropout", "embedding", "cross_entropy_ignore_smooth", "mse_loss", "cast", "expand",
    "sin", "cos", "attention_weights_bool_mask", "split_heads", "merge_heads",
    "flash_attention_masks", "flash_attention_float_mask",
]  # fmt: skip
SECOND_ORDER += [  # issue 22
    "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log2", "log10", "exp2", "expm1",
    "log1p", "rsqrt", "lerp", "rounding_times", "silu", "leaky_relu", "elu", "selu", "softplus", "softplus_threshold",
    "softsign", "logsigmoid", "hardtanh", "relu6", "hardswish", "mish", "std", "prod_axis", "prod_zeros", "cumsum",
    "cumprod", "cumprod_zeros", "logcumsumexp", "sort_values", "topk_values",
    # shape and indexing, einsum, losses, rms_norm (issue 22)
    "clone", "flip", "roll", "pad_constant", "pad_constant_crop", "pad_reflect", "pad_replicate", "tril", "triu",
    "repeat", "repeat_interleave_counts", "gather", "scatter", "scatter_value", "scatter_add", "masked_select",
    "einsum", "einsum_diagonal_summed", "l1_loss", "smooth_l1_loss", "huber_loss", "nll_loss", "nll_loss_weight",
    "binary_cross_entropy", "bce_with_logits", "kl_div", "kl_div_log_target", "rms_norm",
]  # fmt: skip


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_double_backward_stays_on_backend(name, marked, monkeypatch):
    """create_graph=True runs the backward formulas as recorded ops; those stay marked too.

    The upstream gradient u requires grad (as in gradgradcheck), so even an op whose
    gradient does not depend on its input (sum, reshape...) records a backward graph,
    and the second backward runs through it."""
    fn, specs = CASES[name]
    tracker = Tracker(monkeypatch)
    minigrad.manual_seed(0)
    inputs = _make_inputs(specs, "marked", 0)
    xs = [t for t in inputs if t.requires_grad]
    out = fn(*inputs)
    u = minigrad.randn(*out.shape, dtype=out.dtype, device="marked", requires_grad=True)
    grads = minigrad.grad(out, xs, u, create_graph=True, allow_unused=True)
    total = None
    for g in grads:
        if g is not None and g.requires_grad:
            term = (g * g).sum()
            total = term if total is None else total + term
    assert total is not None, "no gradient of the inputs depends on u: nothing second order to run"
    total.backward()
    tracker.check()
    assert u.grad is not None and type(u.grad.data) is MarkedArray


def test_gradcheck_runs_on_marked_device(marked, monkeypatch):
    tracker = Tracker(monkeypatch)
    x = minigrad.randn(3, 4, dtype="float64", device="marked", requires_grad=True)
    w = minigrad.randn(4, dtype="float64", device="marked", requires_grad=True)
    assert minigrad.gradcheck(lambda x, w: F.softmax(x * w, -1), [x, w])
    assert minigrad.gradcheck(lambda x, w: F.layer_norm(x, 4, w), [x, w], mode="directional")
    assert minigrad.gradgradcheck(lambda x: F.tanh(x), [x])
    # gradcheck makes its random upstream gradients on the host and moves them: only those
    # host-side helpers are allowed off the device
    tracker.tensors = [t for t in tracker.tensors if t.device == "marked"]
    tracker.check()


class _Model(nn.Module):
    def __init__(self, device=None):
        super().__init__()
        self.emb = nn.Embedding(7, 8, padding_idx=0, device=device, dtype="float64")
        self.norm = nn.LayerNorm(8, device=device, dtype="float64")
        self.mlp = nn.Sequential(
            nn.Linear(8, 16, device=device, dtype="float64"),
            nn.GELU(),
            nn.Dropout(0.2),
            nn.Linear(16, 8, device=device, dtype="float64"),
            nn.Tanh(),
        )
        self.head = nn.Linear(8, 5, device=device, dtype="float64")

    def forward(self, idx):
        h = self.norm(self.emb(idx))
        h = h + self.mlp(h)
        return self.head(F.relu(h))


def _train_step(model, device):
    minigrad.manual_seed(7)
    idx = minigrad.tensor([[1, 2, 3, 0], [4, 5, 6, 0]], device=device)
    target = minigrad.tensor([[1, 2, 3, -100], [4, 0, 1, -100]], device=device)
    logits = model(idx)
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)(logits, target)
    loss = loss + 0.01 * F.mse_loss(logits, F.zeros_like(logits))
    loss.backward()
    return loss


def test_nn_model_stays_on_backend(marked, monkeypatch):
    minigrad.manual_seed(3)
    cpu_model = _Model()
    cpu_loss = _train_step(cpu_model, "cpu")

    tracker = Tracker(monkeypatch)
    minigrad.manual_seed(3)
    model = _Model(device="marked")
    loss = _train_step(model, "marked")
    tracker.check()
    for name, p in model.named_parameters():
        assert type(p.data) is MarkedArray, name
        assert p.grad is not None and type(p.grad.data) is MarkedArray, name
    assert tracker.nodes
    np.testing.assert_allclose(loss.item(), cpu_loss.item(), rtol=1e-12)
    for (name, p), q in zip(model.named_parameters(), cpu_model.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_module_to_marked_and_back(marked):
    minigrad.manual_seed(3)
    model = _Model()
    _train_step(model, "cpu")
    model.to("marked")
    for name, p in model.named_parameters():
        assert p.device == "marked" and type(p.data) is MarkedArray, name
        assert p.grad.device == "marked" and type(p.grad.data) is MarkedArray, name
    model.zero_grad()
    _train_step(model, "marked")
    model.to("cpu")
    for name, p in model.named_parameters():
        assert p.device == "cpu" and type(p.data) is np.ndarray, name
        assert type(p.grad.data) is np.ndarray, name


def test_tensor_to_marked_and_back(marked):
    x = minigrad.tensor([[1.0, -2.0, 3.0]], dtype="float64", requires_grad=True)
    y = x.to("marked")
    assert y.device == "marked" and type(y.data) is MarkedArray
    assert y.grad_fn is not None  # the move is differentiable
    z = (y * y).sum()
    assert type(z.data) is MarkedArray
    back = z.to("cpu")
    assert back.device == "cpu" and type(back.data) is np.ndarray
    back.backward()
    assert x.grad.device == "cpu" and type(x.grad.data) is np.ndarray
    np.testing.assert_allclose(x.grad.numpy(), [[2.0, -4.0, 6.0]])

    # moving copies: changing the marked copy leaves the original alone
    y2 = x.detach().to("marked")
    y2.data[...] = 0
    assert x.detach().numpy().tolist() == [[1.0, -2.0, 3.0]]
    # the device= argument of creation functions and tensor()
    t = minigrad.tensor(np.arange(3), device="marked")
    assert t.device == "marked" and type(t.data) is MarkedArray and t.dtype == minigrad.int64
    assert type(minigrad.zeros(2, device="marked").data) is MarkedArray
    assert type(minigrad.randint(0, 3, (4,), device="marked").data) is MarkedArray
    assert type(minigrad.tensor(t).data) is MarkedArray  # copies stay on the device
    assert type(minigrad.tensor(t, device="cpu").data) is np.ndarray


def test_creation_functions_on_marked(marked, monkeypatch):
    tracker = Tracker(monkeypatch)
    a = minigrad.zeros(2, 3, device="marked")
    made = [
        a,
        minigrad.ones(2, device="marked"),
        minigrad.full((2,), 3.0, device="marked"),
        minigrad.arange(5, device="marked"),
        minigrad.randn(2, device="marked"),
        minigrad.rand(2, device="marked"),
        minigrad.randint(0, 4, (3,), device="marked"),
        minigrad.zeros_like(a),
        minigrad.ones_like(a),
        minigrad.full_like(a, 2.0),
        minigrad.randn_like(a),
        minigrad.rand_like(a),
        minigrad.tensor(1.5, device="marked"),
        minigrad.tensor([[1, 2]], device="marked"),
        nn.Parameter(minigrad.zeros(2, device="marked")),
    ]
    for t in made:
        assert t.device == "marked"
    tracker.check()


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: a * b,
        lambda a, b: F.matmul(a, b),
        lambda a, b: F.where(a > 0, a, b),
        lambda a, b: F.concat([a, b]),
        lambda a, b: F.maximum(a, b),
    ],
    ids=["add", "mul", "matmul", "where", "concat", "maximum"],
)
def test_mixing_devices_raises(marked, op):
    a = minigrad.randn(3, 3, dtype="float64")
    b = minigrad.randn(3, 3, dtype="float64", device="marked")
    with pytest.raises(RuntimeError) as info:
        op(a, b)
    assert "cpu" in str(info.value) and "marked" in str(info.value)
    with pytest.raises(RuntimeError) as info:
        op(b, a)
    assert "cpu" in str(info.value) and "marked" in str(info.value)


# ---- the tracker itself ----------------------------------------------------------------------
class _LeakyForward(Function):
    """A deliberately broken op: forward calls NumPy directly."""

    def forward(self, a):
        return np.where(a > 0, a, 0.0)

    def backward(self, g):
        return g


class _LeakyBackward(Function):
    """A deliberately broken op: backward builds its gradient with NumPy directly."""

    saves_inputs = False

    def forward(self, a):
        return a * 2.0

    def backward(self, g):
        return Tensor._make(np.full(g.shape, 2.0) * np.asarray(g.data), g.device, False, None)


@pytest.mark.parametrize("op", [_LeakyForward, _LeakyBackward])
def test_tracker_catches_leaks(marked, monkeypatch, op):
    tracker = Tracker(monkeypatch)
    x = minigrad.randn(3, device="marked", requires_grad=True)
    y = op.apply(x)
    (y * 1.0).sum().backward()
    with pytest.raises(AssertionError, match="bypassed the backend"):
        tracker.check()


def test_marked_backend_keeps_plain_arrays_plain(marked):
    """normalize() must not hide a leak by converting a plain ndarray."""
    plain = np.zeros(3)
    assert marked.normalize(plain) is plain
    assert type(marked.normalize(np.float64(1.0))) is MarkedArray
    assert type(marked.xp.where(marked.xp.asarray([True]), 1.0, 0.0)) is MarkedArray
    assert type(np.where(np.asarray([True]), marked.xp.ones(1), 0.0)) is np.ndarray
