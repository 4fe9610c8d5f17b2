"""BERT as minigrad modules: embeddings, the encoder layers of :mod:`encoder.layers`, pooler, MLM head.

    x = dropout(LayerNorm(word[ids] + token_type[types] + position[0..seq-1]))   # BertEmbeddings
    x = layer(x)   for each post-LN TransformerEncoderLayer (eps = layer_norm_eps)
    pooled = tanh(dense(x[:, 0]))                                                 # BertPooler
    logits = LayerNorm(act(dense(x))) @ word.T + bias                            # BertMLMHead (tied)

A BERT layer is exactly our post-LN encoder layer (Hugging Face's names in
``encoder.interop.hf_bert``) with two differences in the dropouts: BERT has none inside
the feed-forward network, and its attention-probability dropout has its own rate.

Masks follow Hugging Face: ``attention_mask`` is (batch, seq) with 1 = keep, 0 = padding
(integers, bools or floats), or a 4-D float mask added to the scores, of shape
(batch or 1, 1 or nhead, seq or 1, seq) (0 = keep, a large negative number = blocked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import minigrad
import minigrad.functional as F
from minigrad import Tensor, nn

from .bert_config import BertConfig
from .layers import TransformerEncoder, activation_fn


@dataclass
class BertOutput:
    """What one BERT forward pass gives, by name (``None`` where the model has no such head)."""

    last_hidden_state: Tensor
    pooler_output: Tensor | None = None
    logits: Tensor | None = None  # masked-LM logits (batch, seq, vocab_size)
    next_sentence_logits: Tensor | None = None  # (batch, 2), BertForPreTraining checkpoints


def _normal(module: nn.Module, std: float) -> None:
    """Hugging Face's initialization: weights N(0, std), biases 0, LayerNorm 1 and 0."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                m.weight.data[m.padding_idx] = 0


class BertEmbeddings(nn.Module):
    """Word + learned position + token type embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        c = config
        self.max_len = c.max_position_embeddings
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        batch, seq = input_ids.shape
        if seq > self.max_len:
            raise ValueError(f"BertEmbeddings: sequence length {seq} exceeds max_position_embeddings={self.max_len}")
        device = self.word_embeddings.weight.device
        if token_type_ids is None:
            token_type_ids = minigrad.zeros(batch, seq, dtype="int64", device=device)
        elif tuple(token_type_ids.shape) != (batch, seq):
            raise ValueError(
                f"BertEmbeddings: token_type_ids has shape {token_type_ids.shape}, expected {(batch, seq)}"
            )
        positions = minigrad.arange(seq, device=device).reshape(1, seq)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(positions)
        return self.dropout(self.norm(x))


class BertPooler(nn.Module):
    """tanh(dense(hidden state of the first token, [CLS]))."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return F.tanh(self.dense(hidden[:, 0]))


class BertMLMHead(nn.Module):
    """dense -> activation -> LayerNorm, then the tied decoder: logits = h @ word_embeddings.T + bias."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.hidden_act = config.hidden_act
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(minigrad.zeros(config.vocab_size))

    def forward(self, hidden: Tensor, decoder_weight: Tensor) -> Tensor:
        h = self.norm(activation_fn(self.hidden_act)(self.dense(hidden)))
        return F.linear(h, decoder_weight, self.bias)


def _as_tensor(value: Any, device: str, what: str, differentiable: bool = False) -> Tensor:
    if isinstance(value, Tensor):
        if value.requires_grad and not differentiable:
            raise ValueError(f"BertModel: {what} must not require grad (it cannot carry a gradient)")
        return value if value.device == device else value.to(device=device)
    return minigrad.tensor(value, device=device)


def hf_attention_mask(
    attention_mask: Any, batch: int, seq: int, nhead: int, dtype: Any, device: str
) -> tuple[Tensor | None, Tensor | None]:
    """A Hugging Face attention mask as ``(attn_mask, key_padding_mask)`` for our layers.

    2-D (batch, seq) 1 = keep / 0 = padding becomes a bool key padding mask (True = padding);
    4-D additive float masks become a (batch * nhead, seq, seq) float ``attn_mask`` (one that
    requires grad gets its gradient through the attention, as PyTorch's float masks do).
    """
    if attention_mask is None:
        return None, None
    m = _as_tensor(attention_mask, device, "attention_mask", differentiable=True)
    if m.ndim == 2:
        if m.requires_grad:
            raise ValueError("BertModel: a 2-D (1 keep / 0 padding) attention_mask cannot carry a gradient")
        if tuple(m.shape) != (batch, seq):
            raise ValueError(f"BertModel: attention_mask has shape {m.shape}, expected ({batch}, {seq})")
        host = m.numpy()
        if not ((host == 0) | (host == 1)).all():
            raise ValueError("BertModel: a 2-D attention_mask must hold 1 (keep) and 0 (padding) only")
        return None, m == 0
    if m.ndim == 4:
        if m.dtype.kind != "f":
            raise TypeError(
                f"BertModel: a 4-D attention_mask must be float (added to the scores), got {m.dtype}; "
                "for padding pass the 2-D 1/0 mask"
            )
        mb, mh, mq, mk = m.shape
        if mb not in (1, batch) or mh not in (1, nhead) or mq not in (1, seq) or mk != seq:
            raise ValueError(
                f"BertModel: a 4-D attention_mask must be (batch or 1, 1 or {nhead}, {seq} or 1, {seq}), got {m.shape}"
            )
        full = m.to(dtype=dtype).expand(batch, nhead, seq, seq)
        return full.reshape(batch * nhead, seq, seq), None
    raise ValueError(f"BertModel: attention_mask must be 2-D (batch, seq) or 4-D, got shape {m.shape}")


class BertModel(nn.Module):
    """BERT: embeddings -> ``num_hidden_layers`` post-LN encoder layers (-> pooler, MLM head).

    ``forward(input_ids, token_type_ids=None, attention_mask=None)`` returns the last hidden
    state (batch, seq, hidden); :meth:`outputs` returns every output by name (:class:`BertOutput`).
    """

    def __init__(
        self, config: BertConfig, add_pooling_layer: bool = True, mlm_head: bool = False, nsp_head: bool = False
    ) -> None:
        super().__init__()
        if nsp_head and not add_pooling_layer:
            raise ValueError("BertModel: the next-sentence head reads the pooled output; it needs add_pooling_layer")
        self.config = c = config
        self.embeddings = BertEmbeddings(c)
        layer = dict(
            d_model=c.hidden_size,
            nhead=c.num_attention_heads,
            dim_feedforward=c.intermediate_size,
            dropout=c.hidden_dropout_prob,
            activation=c.hidden_act,
            layer_norm_eps=c.layer_norm_eps,
            norm_first=False,
        )
        self.encoder = TransformerEncoder(layer, c.num_hidden_layers)
        for lay in self.encoder.layers:
            lay.self_attn.dropout = c.attention_probs_dropout_prob  # BERT: its own rate on the probabilities
            lay.ff.dropout.p = 0.0  # and no dropout between the two feed-forward Linears
        self.pooler = BertPooler(c) if add_pooling_layer else None
        self.mlm = BertMLMHead(c) if mlm_head else None
        self.nsp = nn.Linear(c.hidden_size, 2) if nsp_head else None
        _normal(self, c.initializer_range)

    @property
    def device(self) -> str:
        """The device the parameters live on."""
        return self.embeddings.word_embeddings.weight.device

    @property
    def layers(self) -> list[Any]:
        """The encoder layers, in the order they run."""
        return list(self.encoder.layers)

    def outputs(self, input_ids: Any, token_type_ids: Any = None, attention_mask: Any = None) -> BertOutput:
        """Every output of one forward pass: hidden states, pooled output, MLM and NSP logits."""
        device = self.embeddings.word_embeddings.weight.device
        ids = _as_tensor(input_ids, device, "input_ids")
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"BertModel: input_ids must be integer (batch, seq), got {ids.dtype} {ids.shape}")
        types = None if token_type_ids is None else _as_tensor(token_type_ids, device, "token_type_ids")
        batch, seq = ids.shape
        dtype = self.embeddings.word_embeddings.weight.dtype
        attn_mask, padding = hf_attention_mask(
            attention_mask, batch, seq, self.config.num_attention_heads, dtype, device
        )
        hidden = self.encoder(self.embeddings(ids, types), mask=attn_mask, src_key_padding_mask=padding)
        out = BertOutput(hidden)
        if self.pooler is not None:
            out.pooler_output = self.pooler(hidden)
        if self.mlm is not None:
            out.logits = self.mlm(hidden, self.embeddings.word_embeddings.weight)
        if self.nsp is not None:
            out.next_sentence_logits = self.nsp(out.pooler_output)
        return out

    def forward(self, input_ids: Any, token_type_ids: Any = None, attention_mask: Any = None) -> Tensor:
        return self.outputs(input_ids, token_type_ids, attention_mask).last_hidden_state

    def extra_repr(self) -> str:
        c = self.config
        heads = [n for n, m in (("pooler", self.pooler), ("mlm", self.mlm), ("nsp", self.nsp)) if m is not None]
        return (
            f"layers={c.num_hidden_layers}, hidden={c.hidden_size}, heads={c.num_attention_heads}, "
            f"act={c.hidden_act!r}, with={heads}"
        )


class BertForMaskedLM(BertModel):
    """BERT with the masked-LM head (no pooler, as Hugging Face's): :meth:`logits` gives (batch, seq, vocab).

    ``add_pooling_layer=True, nsp_head=True`` is Hugging Face's BertForPreTraining (both heads).
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = False, nsp_head: bool = False) -> None:
        super().__init__(config, add_pooling_layer=add_pooling_layer, mlm_head=True, nsp_head=nsp_head)

    def logits(self, input_ids: Any, token_type_ids: Any = None, attention_mask: Any = None) -> Tensor:
        return self.outputs(input_ids, token_type_ids, attention_mask).logits
