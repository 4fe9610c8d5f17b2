"""The configuration of a BERT model, read from (and written to) a Hugging Face ``config.json``.

Every key of a ``config.json`` falls in one of three groups, and a key in none of them is
an error (never silently ignored):

* the keys that shape the computation (``BertConfig``'s fields);
* keys that must have one particular value, because only that value is built here
  (``is_decoder`` false, ``position_embedding_type`` "absolute", tied word embeddings...);
* keys that do not change the numbers of BertModel / BertForMaskedLM at all: bookkeeping
  (``architectures``, ``transformers_version``), initialization (``initializer_range``),
  decoding (``use_cache``) or heads not built here (``classifier_dropout``, ``id2label``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .layers import ACTIVATIONS

# a Hugging Face BERT uses "gelu" (exact, erf) or "gelu_new" (tanh); both names of the tanh form
HF_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a != "gelu_tanh")

REQUIRED = {
    "is_decoder": False,
    "add_cross_attention": False,
    "position_embedding_type": "absolute",
    "tie_word_embeddings": True,
    "pruned_heads": {},
    "is_encoder_decoder": False,
    "cross_attention_hidden_size": None,
    "model_type": "bert",
}
WHY = {
    "is_decoder": "a causal decoder BERT is not built here",
    "add_cross_attention": "cross-attention is not built here",
    "position_embedding_type": "only learned absolute positions are built here",
    "tie_word_embeddings": "the masked-LM decoder here always shares the word embeddings",
    "pruned_heads": "pruned attention heads are not supported",
    "is_encoder_decoder": "encoder-decoder models are not built here",
    "cross_attention_hidden_size": "cross-attention is not built here",
    "model_type": "only BERT checkpoints are read",
}
# keys that leave the forward and backward numbers unchanged (see the module docstring)
NO_EFFECT = frozenset(
    {
        "architectures", "transformers_version", "_name_or_path", "dtype", "torch_dtype", "initializer_range",
        "use_cache", "gradient_checkpointing", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id",
        "mask_token_id", "classifier_dropout", "id2label", "label2id", "num_labels", "problem_type",
        "output_attentions", "output_hidden_states", "return_dict", "torchscript", "chunk_size_feed_forward",
        "tokenizer_class", "directionality", "finetuning_task", "_attn_implementation_autoset",
    }
)  # fmt: skip


class BertConfigError(ValueError):
    """A config.json that asks for something this BERT cannot do exactly."""


@dataclass
class BertConfig:
    """The fields of a Hugging Face ``BertConfig`` that shape the computation (same names, same defaults)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    initializer_range: float = 0.02  # random initialization only

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BertConfigError(f"BertConfig: {name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise BertConfigError(
                f"BertConfig: hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}"
            )
        if self.hidden_act not in HF_ACTIVATIONS:
            raise BertConfigError(f"BertConfig: hidden_act must be one of {HF_ACTIVATIONS}, got {self.hidden_act!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise BertConfigError(f"BertConfig: {name} must be in [0, 1], got {value!r}")
        if not isinstance(self.layer_norm_eps, (int, float)) or self.layer_norm_eps <= 0:
            raise BertConfigError(f"BertConfig: layer_norm_eps must be a positive number, got {self.layer_norm_eps!r}")
        pad = self.pad_token_id
        if pad is not None and (isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < self.vocab_size):
            raise BertConfigError(f"BertConfig: pad_token_id must be None or in [0, {self.vocab_size}), got {pad!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BertConfig:
        """A config from ``config.json``'s keys; a key that cannot be honoured is a BertConfigError."""
        if not isinstance(d, dict):
            raise BertConfigError(f"BertConfig: config must be a dict of config.json keys, got {type(d).__name__}")
        own = {f.name for f in fields(cls)}
        for key, value in d.items():
            if key in REQUIRED and value != REQUIRED[key] and not (key == "pruned_heads" and not value):
                raise BertConfigError(
                    f"BertConfig: {key}={value!r} is not supported ({WHY[key]}); it must be {REQUIRED[key]!r}"
                )
            if key not in own and key not in REQUIRED and key not in NO_EFFECT:
                raise BertConfigError(f"BertConfig: config key {key!r} (= {value!r}) is not supported")
        return cls(**{k: v for k, v in d.items() if k in own})

    def to_dict(self) -> dict[str, Any]:
        """The keys ``config.json`` holds for this config (``transformers.BertConfig`` reads them back)."""
        d = asdict(self)
        d.update(model_type="bert", is_decoder=False, add_cross_attention=False, tie_word_embeddings=True)
        return d
