"""encoder: a Transformer encoder built from minigrad."""

from .attention import MultiHeadAttention, scaled_dot_product_attention
from .bert import BertForMaskedLM, BertModel
from .bert_config import BertConfig
from .embeddings import PositionalEncoding, TokenEmbedding, sinusoidal_table
from .layers import PositionwiseFeedForward, TransformerEncoder, TransformerEncoderLayer
from .models import (
    EncoderModel,
    MaskedLanguageModel,
    ModelConfig,
    SequenceClassifier,
    TokenClassifier,
    build_model,
)

__all__ = [
    "BertConfig",
    "BertForMaskedLM",
    "BertModel",
    "EncoderModel",
    "MaskedLanguageModel",
    "ModelConfig",
    "MultiHeadAttention",
    "PositionalEncoding",
    "PositionwiseFeedForward",
    "SequenceClassifier",
    "TokenClassifier",
    "TokenEmbedding",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "build_model",
    "scaled_dot_product_attention",
    "sinusoidal_table",
]
