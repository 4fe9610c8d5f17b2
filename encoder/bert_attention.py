"""What a BERT predicts at a [MASK], and how each attention weight pushes that prediction.

:func:`logit_attention` runs a masked-LM BERT on one sequence with every layer's attention
weights kept, picks the top prediction at a position (or a token you name), and
backpropagates that one logit to the attention weights of every layer::

    result = logit_attention(model, ids, position=6)
    result.token_id                 # the predicted token
    result.weights[0]               # layer 0: (nhead, seq, seq) attention weights
    result.grads[0]                 # layer 0: d logit / d weight, same shape

Reading a gradient: ``grads[l][h, q, k] > 0`` means that if head h of layer l put a
little more weight on key k when computing query q (taking it from nowhere: the row is
not renormalized), the logit would rise. Only query rows that reach the predicted
position matter: in the last layer that is the [MASK] row alone (every other row's
gradient is 0), in earlier layers every row can matter.

The gradient is taken with ``minigrad.grad``: the model's parameters' ``.grad`` are left as
they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import minigrad
import minigrad.functional as F

from .bert import BertModel


@dataclass
class LogitAttention:
    """One sequence's prediction at ``position`` and every layer's attention (host arrays)."""

    position: int
    token_id: int
    probs: Any  # (vocab,) softmax of the logits at ``position``
    weights: list[Any]  # per layer, (nhead, seq, seq)
    grads: list[Any] | None  # per layer, d logit[position, token_id] / d weights, or None

    def top(self, k: int = 5) -> list[tuple[int, float]]:
        """The ``k`` most probable token ids at the position, with their probabilities."""
        order = (-self.probs).argsort(kind="stable")[:k]
        return [(int(i), float(self.probs[i])) for i in order]


def predictions(model: BertModel, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Any:
    """Softmax probabilities (seq, vocab) of the masked-LM head for one sequence (1, seq)."""
    ids = _check(model, input_ids)
    with minigrad.no_grad():
        logits = model.outputs(ids, token_type_ids, attention_mask).logits
        return F.softmax(logits[0], -1).numpy()


def _check(model: BertModel, input_ids: Any) -> minigrad.Tensor:
    """``input_ids`` as a tensor, after checking that there is one sequence and an MLM head."""
    if not isinstance(model, BertModel) or model.mlm is None:
        raise ValueError("logit_attention: the model has no masked-LM head (load a BertForMaskedLM checkpoint)")
    ids = input_ids if isinstance(input_ids, minigrad.Tensor) else minigrad.tensor(input_ids)
    if ids.ndim != 2 or ids.shape[0] != 1:
        raise ValueError(f"logit_attention: input_ids must be one sequence (1, seq), got shape {ids.shape}")
    return ids


def logit_attention(
    model: BertModel,
    input_ids: Any,
    position: int,
    token_id: int | None = None,
    grads: bool = True,
    attention_mask: Any = None,
    token_type_ids: Any = None,
) -> LogitAttention:
    """The prediction at ``position`` and, with ``grads``, d logit / d attention weights of every layer.

    ``token_id`` defaults to the top prediction there. Dropout is off (``model.eval()``) for
    the duration, so the weights are the ones inference uses.
    """
    ids = _check(model, input_ids)
    seq = ids.shape[1]
    if not -seq <= position < seq:
        raise IndexError(f"logit_attention: position {position} out of range for a sequence of {seq} tokens")
    layers = model.layers
    was_training = model.training
    previous = [layer.self_attn.keep_attention for layer in layers]
    model.eval()
    for layer in layers:
        layer.self_attn.keep_attention = True
    try:
        with minigrad.set_grad_enabled(grads):
            hidden = model(ids, token_type_ids, attention_mask)
            # the head works position by position: run it at ``position`` only
            logits = model.mlm(hidden[:, position], model.embeddings.word_embeddings.weight)[0]
        probs = F.softmax(logits.detach(), -1).numpy()
        token = int(probs.argmax()) if token_id is None else int(token_id)
        if not 0 <= token < probs.shape[0]:
            raise IndexError(f"logit_attention: token_id {token} out of range for a vocabulary of {probs.shape[0]}")
        kept = [layer.self_attn.last_attention for layer in layers]
        weights = [w.detach().numpy()[0] for w in kept]
        result = LogitAttention(position % seq, token, probs, weights, None)
        if grads:
            found = minigrad.grad(logits[token], kept, allow_unused=True)
            result.grads = [0.0 * w if g is None else g.detach().numpy()[0] for w, g in zip(weights, found)]
        return result
    finally:
        model.train(was_training)
        for layer, keep in zip(layers, previous):
            layer.self_attn.keep_attention = keep
            if not keep:
                layer.self_attn.last_attention = None
