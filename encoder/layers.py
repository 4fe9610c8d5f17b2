"""The encoder layer and the stack of layers.

One layer has two sub-layers, each wrapped in a residual connection and LayerNorm
("Add & Norm"):

    post-LN (the original design, norm_first=False):
        x = norm1(x + dropout1(self_attn(x)))
        x = norm2(x + dropout2(ff(x)))
    pre-LN (norm_first=True, trains without warmup; Xiong et al. 2020):
        x = x + dropout1(self_attn(norm1(x)))
        x = x + dropout2(ff(norm2(x)))

Submodule names follow ``torch.nn.TransformerEncoderLayer`` except that the feed-forward
network is its own module ``ff`` (``ff.linear1``, ``ff.linear2``); ``encoder.interop``
maps the names both ways.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import minigrad.functional as F
from minigrad import Tensor, nn, scope
from minigrad.autograd import pop_scope, push_scope

from .attention import MultiHeadAttention

# the activation names a layer takes: PyTorch's two, and the names Hugging Face configs use
# for the tanh form of GELU (BERT's "gelu_new"); "gelu" is the exact (erf) GELU, as in both
ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "gelu_new", "gelu_pytorch_tanh")
TANH_GELU_NAMES = ("gelu_tanh", "gelu_new", "gelu_pytorch_tanh")


def activation_fn(activation: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """The function an activation name stands for (a callable Tensor -> Tensor is kept as is)."""
    if callable(activation):
        return activation
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    if activation in TANH_GELU_NAMES:
        return _gelu_tanh
    raise ValueError(f"activation must be one of {ACTIVATIONS} or a callable Tensor -> Tensor, got {activation!r}")


def _gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


@contextmanager
def module_scope(module: nn.Module) -> Iterator[None]:
    """Record the ops made inside as made by ``module`` (for graph pictures), as calling it would."""
    push_scope(module)
    try:
        yield
    finally:
        pop_scope()


class PositionwiseFeedForward(nn.Module):
    """Linear -> activation -> dropout -> Linear, applied to every position alike.

    With ``fused=True`` (the default) and ReLU, the first Linear and the ReLU run as one
    node, ``F.linear_relu``, recorded in ``linear1``'s scope: the same numbers with fewer
    passes over the (batch, seq, dim_feedforward) hidden activations. ``fused=False``
    records them as two nodes.
    """

    def __init__(
        self,
        d_model: int,
        dim_feedforward: int,
        dropout: float = 0.0,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        bias: bool = True,
        fused: bool = True,
    ) -> None:
        super().__init__()
        if not callable(activation) and activation not in ACTIVATIONS:
            raise ValueError(
                f"PositionwiseFeedForward: activation must be one of {ACTIVATIONS} or a callable "
                f"Tensor -> Tensor, got {activation!r}"
            )
        self.activation, self.fused = activation, fused
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.activation == "relu" and self.fused:
            with module_scope(self.linear1):
                h = F.linear_relu(x, self.linear1.weight, self.linear1.bias)
        else:
            h = activation_fn(self.activation)(self.linear1(x))
        return self.linear2(self.dropout(h))

    def extra_repr(self) -> str:
        name = self.activation if isinstance(self.activation, str) else getattr(self.activation, "__name__", "callable")
        return f"activation={name!r}"


class TransformerEncoderLayer(nn.Module):
    """Self-attention and feed-forward sub-layers, each followed (or preceded) by Add & Norm.

    Same arguments and defaults as ``torch.nn.TransformerEncoderLayer(batch_first=True)``;
    ``activation`` is a name of ACTIVATIONS or any callable Tensor -> Tensor.
    ``fused=False`` computes attention weights and layer norms op by op (for pictures).
    ``impl="flash"`` runs the self-attention as FlashAttention in blocks of ``block_size``
    (no attention dropout in training: it refuses dropout > 0 there).
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        layer_norm_eps: float = 1e-5,
        norm_first: bool = False,
        bias: bool = True,
        fused: bool = True,
        impl: str = "naive",
        block_size: int = 128,
    ) -> None:
        super().__init__()
        self.d_model, self.nhead, self.norm_first = d_model, nhead, norm_first
        self.self_attn = MultiHeadAttention(
            d_model, nhead, dropout=dropout, bias=bias, fused=fused, impl=impl, block_size=block_size
        )
        self.ff = PositionwiseFeedForward(d_model, dim_feedforward, dropout, activation, bias, fused)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.fused = fused

    def _norm(self, norm: nn.LayerNorm, x: Tensor) -> Tensor:
        if self.fused:
            return norm(x)
        with module_scope(norm):
            return F.layer_norm_composite(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)

    def _attend(self, x: Tensor, src_mask: Tensor | None, src_key_padding_mask: Tensor | None) -> Tensor:
        out, _ = self.self_attn(x, attn_mask=src_mask, key_padding_mask=src_key_padding_mask)
        return self.dropout1(out)

    def forward(
        self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None
    ) -> Tensor:
        x = src
        if self.norm_first:
            a = self._attend(self._norm(self.norm1, x), src_mask, src_key_padding_mask)
            with scope("residual1"):
                x = x + a
            f = self.dropout2(self.ff(self._norm(self.norm2, x)))
            with scope("residual2"):
                x = x + f
            return x
        a = self._attend(x, src_mask, src_key_padding_mask)
        with scope("residual1"):
            x = x + a
        x = self._norm(self.norm1, x)
        f = self.dropout2(self.ff(x))
        with scope("residual2"):
            x = x + f
        return self._norm(self.norm2, x)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, nhead={self.nhead}, norm_first={self.norm_first}"


class TransformerEncoder(nn.Module):
    """``num_layers`` independent copies of a layer, applied in turn, then an optional norm.

    ``encoder_layer`` is a TransformerEncoderLayer (deep-copied, as PyTorch does) or a dict
    of its keyword arguments (each copy then gets its own fresh initialization).
    """

    def __init__(
        self, encoder_layer: TransformerEncoderLayer | dict[str, Any], num_layers: int, norm: nn.Module | None = None
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"TransformerEncoder: num_layers must be >= 1, got {num_layers}")
        if isinstance(encoder_layer, dict):
            layers = [TransformerEncoderLayer(**encoder_layer) for _ in range(num_layers)]
        else:
            layers = [copy.deepcopy(encoder_layer) for _ in range(num_layers)]
        self.layers = nn.ModuleList(layers)
        self.norm = norm

    def forward(
        self, src: Tensor, mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None
    ) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask)
        if self.norm is not None:
            x = self.norm(x)
        return x
