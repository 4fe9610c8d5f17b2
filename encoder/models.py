"""Complete models: embeddings -> encoder stack -> a task head.

* :class:`TokenClassifier`: logits for every position (sort, reverse, count, brackets).
* :class:`SequenceClassifier`: one prediction per sequence, pooled by the mean over
  non-padding positions or taken from a leading CLS token (majority, parity).
* :class:`MaskedLanguageModel`: logits over the vocabulary at every position, the output
  projection optionally tied to the token embedding (mlm).

All take ``tokens`` (batch, seq) int64 and ``padding_mask`` (batch, seq) bool (True =
padding) and return logits; :func:`build_model` makes the right one from a config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import minigrad.functional as F
from minigrad import Tensor, nn

from .embeddings import PositionalEncoding, TokenEmbedding
from .layers import TransformerEncoder

HEADS = ("token", "sequence", "mlm")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model (saved with checkpoints)."""

    vocab_size: int
    num_classes: int
    head: str = "token"
    d_model: int = 64
    nhead: int = 4
    num_layers: int = 2
    dim_feedforward: int | None = None  # default 4 * d_model
    dropout: float = 0.1
    max_len: int = 128
    norm_first: bool = False
    activation: str = "relu"
    pooling: str = "mean"  # sequence head: "mean" or "cls"
    tie_weights: bool = True  # mlm head
    learned_positions: bool = False
    padding_idx: int | None = 0
    attention: str = "naive"  # "flash": FlashAttention in blocks of block_size (no attention dropout)
    block_size: int = 128
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "num_classes", "d_model", "nhead", "num_layers", "max_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelConfig: {name} must be a positive integer, got {value!r}")
        if self.dim_feedforward is not None and (not isinstance(self.dim_feedforward, int) or self.dim_feedforward < 1):
            raise ValueError(f"ModelConfig: dim_feedforward must be a positive integer, got {self.dim_feedforward!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig: dropout must be in [0, 1), got {self.dropout}")
        if self.activation not in ("relu", "gelu"):
            raise ValueError(f"ModelConfig: activation must be 'relu' or 'gelu', got {self.activation!r}")
        if self.head not in HEADS:
            raise ValueError(f"ModelConfig: head must be one of {HEADS}, got {self.head!r}")
        if self.d_model % self.nhead:
            raise ValueError(f"ModelConfig: d_model={self.d_model} is not divisible by nhead={self.nhead}")
        if self.pooling not in ("mean", "cls"):
            raise ValueError(f"ModelConfig: pooling must be 'mean' or 'cls', got {self.pooling!r}")
        if self.attention not in ("naive", "flash"):
            raise ValueError(f"ModelConfig: attention must be 'naive' or 'flash', got {self.attention!r}")
        if isinstance(self.block_size, bool) or not isinstance(self.block_size, int) or self.block_size < 1:
            raise ValueError(f"ModelConfig: block_size must be a positive integer, got {self.block_size!r}")
        if self.dim_feedforward is None:
            self.dim_feedforward = 4 * self.d_model

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return cls(**d)


def check_tokens(model: str, tokens: Any, vocab_size: int) -> None:
    """Token ids must be a non-empty (batch, seq) integer Tensor of ids below ``vocab_size``."""
    if not isinstance(tokens, Tensor):
        raise TypeError(
            f"{model}: tokens must be a minigrad Tensor of int ids, shape (batch, seq), got "
            f"{type(tokens).__name__} (wrap it: minigrad.tensor(ids, dtype='int64'))"
        )
    if tokens.ndim != 2:
        raise ValueError(f"{model}: tokens must be (batch, seq), got shape {tokens.shape}")
    if tokens.dtype.kind not in "iu":
        raise TypeError(f"{model}: tokens must hold integer ids, got dtype {tokens.dtype}")
    if 0 in tokens.shape:
        raise ValueError(f"{model}: tokens must have at least one sequence of at least one token, got shape "
                         f"{tuple(tokens.shape)}")
    low, high = int(tokens.data.min()), int(tokens.data.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(f"{model}: token ids must be in [0, {vocab_size}), got ids from {low} to {high}")


class EncoderModel(nn.Module):
    """Token embedding + positional encoding + encoder stack (+ final norm for pre-LN)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = TokenEmbedding(c.vocab_size, c.d_model, padding_idx=c.padding_idx)
        self.pos = PositionalEncoding(c.d_model, c.max_len, c.dropout, learned=c.learned_positions)
        layer = dict(
            d_model=c.d_model,
            nhead=c.nhead,
            dim_feedforward=c.dim_feedforward,
            dropout=c.dropout,
            activation=c.activation,
            norm_first=c.norm_first,
            impl=c.attention,
            block_size=c.block_size,
        )
        # pre-LN leaves the residual stream un-normalized, so a final norm follows the stack
        self.encoder = TransformerEncoder(layer, c.num_layers, norm=nn.LayerNorm(c.d_model) if c.norm_first else None)

    def encode(self, tokens: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """(batch, seq) token ids -> (batch, seq, d_model) contextual vectors."""
        check_tokens(type(self).__name__, tokens, self.config.vocab_size)
        if padding_mask is not None:
            if not isinstance(padding_mask, Tensor):
                raise TypeError(
                    f"{type(self).__name__}: padding_mask must be a bool Tensor (batch, seq), got "
                    f"{type(padding_mask).__name__} (wrap it: minigrad.tensor(mask, dtype='bool'))"
                )
            if tuple(padding_mask.shape) != tuple(tokens.shape):
                raise ValueError(
                    f"{type(self).__name__}: padding_mask has shape {tuple(padding_mask.shape)}, "
                    f"tokens {tuple(tokens.shape)}: they must match"
                )
        x = self.pos(self.embed(tokens))
        return self.encoder(x, src_key_padding_mask=padding_mask)


class TokenClassifier(EncoderModel):
    """Per-position classification: (batch, seq) -> (batch, seq, num_classes)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.head = nn.Linear(config.d_model, config.num_classes)

    def forward(self, tokens: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        return self.head(self.encode(tokens, padding_mask))


class SequenceClassifier(EncoderModel):
    """One label per sequence: (batch, seq) -> (batch, num_classes).

    ``pooling="mean"`` averages the vectors of non-padding positions; ``"cls"`` uses
    position 0 (the task puts a CLS token there).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.head = nn.Linear(config.d_model, config.num_classes)

    def forward(self, tokens: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        h = self.encode(tokens, padding_mask)
        if self.config.pooling == "cls":
            pooled = h[:, 0]
        elif padding_mask is None:
            pooled = F.mean(h, 1)
        else:
            keep = F.cast(~padding_mask, h.dtype).unsqueeze(-1)  # (batch, seq, 1)
            pooled = F.sum(h * keep, 1) / F.sum(keep, 1)
        return self.head(pooled)


class MaskedLanguageModel(EncoderModel):
    """Vocabulary logits at every position; the output projection may share the embedding."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.head = nn.Linear(config.d_model, config.vocab_size)
        if config.tie_weights:
            self.head.weight = self.embed.embedding.weight  # one Parameter, listed once

    def forward(self, tokens: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        return self.head(self.encode(tokens, padding_mask))


MODELS = {"token": TokenClassifier, "sequence": SequenceClassifier, "mlm": MaskedLanguageModel}


def build_model(config: ModelConfig) -> EncoderModel:
    """The model class for ``config.head`` built from ``config``."""
    return MODELS[config.head](config)
