"""Every minigrad op as a function (``import minigrad.functional as F``).

Each function checks its arguments (shapes, dtypes, devices, axes), with errors that
name the op, and applies the op's :class:`~minigrad.autograd.Function`. Both live side
by side in :mod:`minigrad.ops`, one module per family; this module gathers them.
"""

from __future__ import annotations

from typing import Any

from .ops.arithmetic import add, div, mul, neg, pow, sub
from .ops.assign import setitem
from .ops.attention import attention_weights
from .ops.checks import broadcast_shapes, constant
from .ops.conversion import cast, to_device
from .ops.dropout import dropout
from .ops.einsum import einsum
from .ops.flash_attention import flash_attention
from .ops.indexing import cat, chunk, concat, embedding, getitem, split, stack
from .ops.layernorm import layer_norm, layer_norm_composite
from .ops.linalg import linear, linear_relu, matmul
from .ops.loss import cross_entropy, cross_entropy_composite, mse_loss
from .ops.probability_loss import binary_cross_entropy, binary_cross_entropy_with_logits, kl_div, nll_loss
from .ops.rearrange import clone, flip, pad, repeat, repeat_interleave, roll, t, tile, tril, triu
from .ops.reduction import all, any, argmax, argmin, max, mean, min, sum, sum_to, var
from .ops.regression_loss import huber_loss, l1_loss, smooth_l1_loss
from .ops.rmsnorm import rms_norm
from .ops.scatter import gather, masked_select, one_hot, scatter, scatter_add
from .ops.selection import (
    bitwise_and,
    bitwise_not,
    bitwise_or,
    bitwise_xor,
    clamp,
    clip,
    compare,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    masked_fill,
    maximum,
    minimum,
    where,
)
from .ops.shape import (
    expand,
    flatten,
    merge_heads,
    permute,
    reshape,
    split_heads,
    squeeze,
    swapaxes,
    transpose,
    unsqueeze,
)
from .ops.softmax import log_softmax, log_softmax_composite, logsumexp, softmax, softmax_composite
from .ops.unary import abs, cos, erf, exp, gelu, log, relu, sigmoid, sign, sin, sqrt, tanh

# isort: split
# ---- more elementwise functions, activations, reductions, scans and sorting ----------
from .ops.activations import (
    elu,
    hardswish,
    hardtanh,
    leaky_relu,
    logsigmoid,
    mish,
    relu6,
    selu,
    silu,
    softplus,
    softsign,
)
from .ops.elementwise import (
    acos,
    acosh,
    asin,
    asinh,
    atan,
    atanh,
    cosh,
    exp2,
    expm1,
    lerp,
    log1p,
    log2,
    log10,
    rsqrt,
    sinh,
    tan,
)
from .ops.reduction import amax, amin, prod, std
from .ops.rounding import ceil, floor, isfinite, isinf, isnan, round, trunc
from .ops.scan import cumprod, cumsum, logcumsumexp
from .ops.sorting import argsort, sort, topk


def zeros_like(a: Any) -> Any:
    """Zeros of ``a``'s shape, dtype and device (no gradient)."""
    return constant(a.backend.xp.zeros_like(a.data), a)


def ones_like(a: Any) -> Any:
    """Ones of ``a``'s shape, dtype and device (no gradient)."""
    return constant(a.backend.xp.ones_like(a.data), a)


__all__ = [
    "abs", "add", "argmax", "argmin", "attention_weights", "broadcast_shapes", "cast", "cat", "chunk",
    "clamp", "clip", "compare", "concat", "cos", "cross_entropy", "cross_entropy_composite", "div",
    "dropout", "embedding", "erf", "exp", "expand", "flash_attention", "flatten", "gelu", "getitem", "layer_norm",
    "layer_norm_composite", "linear", "linear_relu", "log", "log_softmax", "log_softmax_composite",
    "logical_and", "logical_not", "logical_or", "logsumexp", "masked_fill", "matmul", "max",
    "maximum", "mean", "merge_heads", "min", "minimum", "mse_loss", "mul", "neg", "ones_like",
    "permute", "pow", "relu", "reshape", "sigmoid", "sign", "sin", "softmax", "softmax_composite",
    "split", "split_heads", "sqrt", "squeeze", "stack", "sub", "sum", "sum_to", "swapaxes", "tanh",
    "to_device", "transpose", "unsqueeze", "var", "where", "zeros_like",
    # the bitwise operators, logical_xor and the boolean reductions
    "all", "any", "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor", "logical_xor",
]  # fmt: skip
__all__ += [
    "acos", "acosh", "amax", "amin", "argsort", "asin", "asinh", "atan", "atanh", "ceil", "cosh", "cumprod",
    "cumsum", "elu", "exp2", "expm1", "floor", "hardswish", "hardtanh", "isfinite", "isinf", "isnan",
    "leaky_relu", "lerp", "log10", "log1p", "log2", "logcumsumexp", "logsigmoid", "mish", "prod", "relu6",
    "round", "rsqrt", "selu", "silu", "sinh", "softplus", "softsign", "sort", "std", "tan", "topk", "trunc",
]  # fmt: skip
__all__ += [  # shape and indexing, einsum, losses, rms_norm
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "clone", "einsum", "flip", "gather", "huber_loss",
    "kl_div", "l1_loss", "masked_select", "nll_loss", "one_hot", "pad", "repeat", "repeat_interleave", "rms_norm",
    "roll", "scatter", "scatter_add", "setitem", "smooth_l1_loss", "t", "tile", "tril", "triu",
]  # fmt: skip


def __dir__() -> list[str]:
    return sorted(__all__)
