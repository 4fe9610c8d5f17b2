"""Token embeddings and positional encodings: how tokens enter the encoder.

Attention itself is blind to order (permuting the keys permutes nothing in the output),
so each position adds a vector that says where it is:

    sinusoidal: PE[pos, 2i] = sin(pos / 10000^(2i/d)),  PE[pos, 2i+1] = cos(pos / 10000^(2i/d))
    learned:    PE is a trained (max_len, d) table.

Token embeddings are multiplied by sqrt(d_model) (as in the original paper). They are
initialized with standard deviation d_model^-0.5, so after the scaling their entries have
magnitude ~1, like the positional encodings': neither drowns the other (with N(0, 1)
init the tokens would be sqrt(d_model) times louder than the positions).
"""

from __future__ import annotations

import math
from typing import Any

import minigrad
from minigrad import Tensor, nn


class TokenEmbedding(nn.Module):
    """Embedding lookup scaled by sqrt(d_model) (weights initialized N(0, 1/d_model))."""

    def __init__(self, vocab_size: int, d_model: int, padding_idx: int | None = None) -> None:
        super().__init__()
        self.d_model = d_model
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
        if padding_idx is not None:
            self.embedding.weight.data[padding_idx] = 0
        self.scale = math.sqrt(d_model)

    @property
    def weight(self) -> nn.Parameter:
        return self.embedding.weight

    def forward(self, tokens: Tensor) -> Tensor:
        return self.embedding(tokens) * self.scale


def sinusoidal_table(max_len: int, d_model: int, dtype: Any = None, device: str | None = None) -> Tensor:
    """The (max_len, d_model) sinusoidal table: even dims sin, odd dims cos."""
    with minigrad.no_grad():
        pos = minigrad.arange(max_len, dtype="float64", device=device).reshape(max_len, 1)
        i2 = minigrad.arange(0, d_model, 2, dtype="float64", device=device)
        angle = pos * minigrad.functional.exp(i2 * (-math.log(10000.0) / d_model))
        table = minigrad.stack([minigrad.functional.sin(angle), minigrad.functional.cos(angle)], axis=-1)
        table = table.reshape(max_len, -1)[:, :d_model]
        return table.to(dtype=dtype or minigrad.get_default_dtype()).detach()


class PositionalEncoding(nn.Module):
    """Adds position information (sinusoidal by default, or ``learned=True``), then dropout."""

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.1, learned: bool = False) -> None:
        super().__init__()
        self.d_model, self.max_len, self.learned = d_model, max_len, learned
        self.dropout = nn.Dropout(dropout)
        if learned:
            self.table = nn.init.normal_(nn.Parameter(minigrad.zeros(max_len, d_model)), std=0.02)
        else:
            self.register_buffer("table", sinusoidal_table(max_len, d_model), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        seq = x.shape[1]
        if seq > self.max_len:
            raise ValueError(f"PositionalEncoding: sequence length {seq} exceeds max_len={self.max_len}")
        return self.dropout(x + self.table[:seq])

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}, learned={self.learned}"
