"""Scaled dot-product attention and multi-head self-attention.

Shapes are batch-first: x is (batch, seq, d_model). For one head with queries Q,
keys K and values V (seq, d_head):

    weights = softmax(Q K^T / sqrt(d_head) + mask)      (seq_q, seq_k), rows sum to 1
    output  = weights @ V                                (seq_q, d_head)

Masks follow PyTorch's conventions:

* ``key_padding_mask`` (batch, seq_k) bool, True = padding: that key is ignored.
* ``attn_mask`` (seq_q, seq_k), (batch * nhead, seq_q, seq_k) (MultiheadAttention's
  layout), (batch, nhead, seq_q, seq_k), or any shape that broadcasts to the scores:
  bool (True = not allowed) or float (added to the scores, e.g. -inf above the diagonal
  for causal; it may require grad). ``is_causal=True`` forbids key j > query i.

``impl="flash"`` computes the same output with FlashAttention
(``minigrad.ops.flash_attention``): blocks of ``block_size`` keys and queries, the
weights never stored (so none are returned), no dropout on them.

Fully masked rows (a query that may attend to no key at all): the softmax would be 0/0.
Our policy: such a row gets attention weights exactly 0, so its attention output is 0
(the output projection then adds only its bias) -- finite, never NaN, and no gradient
flows through it. PyTorch returns NaN there; tests compare with PyTorch only on rows
that have at least one allowed key.
"""

from __future__ import annotations

import math

import minigrad
import minigrad.functional as F
from minigrad import Tensor, nn


def combine_masks(
    attn_mask: Tensor | None,
    key_padding_mask: Tensor | None,
    batch: int,
    nhead: int | None,
    seq_q: int,
    seq_k: int,
    dtype: object,
) -> Tensor | None:
    """One mask broadcastable to the scores (batch, nhead, seq_q, seq_k) (or (batch, seq_q, seq_k)).

    Boolean masks stay boolean (True = masked); if either mask is float, the result is a
    float mask with -inf at padded keys.
    """
    mask = None
    if attn_mask is not None:
        if attn_mask.dtype != minigrad.bool_ and attn_mask.dtype != dtype:
            raise TypeError(f"attention: attn_mask must be bool or {dtype}, got {attn_mask.dtype}")
        scores = (batch,) + ((nhead,) if nhead is not None else ()) + (seq_q, seq_k)
        if nhead is not None and attn_mask.shape == (batch * nhead, seq_q, seq_k):
            mask = attn_mask.reshape(batch, nhead, seq_q, seq_k)  # PyTorch's (batch * nhead, ...) layout
        elif attn_mask.ndim >= 2 and _broadcasts(attn_mask.shape, scores):
            mask = attn_mask  # (seq_q, seq_k), a 4-D (batch, nhead, seq_q, seq_k), or anything that broadcasts
        else:
            expected = f"({seq_q}, {seq_k})" + (f", ({batch * nhead}, {seq_q}, {seq_k})" if nhead else "")
            expected += f" or a shape that broadcasts to {scores}"
            raise ValueError(f"attention: attn_mask has shape {attn_mask.shape}, expected {expected}")
    if key_padding_mask is not None:
        if key_padding_mask.shape != (batch, seq_k):
            raise ValueError(
                f"attention: key_padding_mask has shape {key_padding_mask.shape}, expected ({batch}, {seq_k})"
            )
        if key_padding_mask.dtype != minigrad.bool_:
            raise TypeError(f"attention: key_padding_mask must be bool (True = padding), got {key_padding_mask.dtype}")
        kpm = key_padding_mask.reshape((batch,) + ((1,) if nhead is not None else ()) + (1, seq_k))
        if mask is None:
            mask = kpm
        elif mask.dtype == minigrad.bool_:
            mask = mask | kpm
        else:
            mask = mask + F.where(kpm, -math.inf, 0.0).to(dtype=dtype)
    return mask


def _broadcasts(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """True when ``shape`` broadcasts to ``target`` (without growing it)."""
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(shape[::-1], target[::-1]))


def causal_mask(seq_q: int, seq_k: int, device: str = "cpu") -> Tensor:
    """(seq_q, seq_k) bool, True above the diagonal: key j > query i is not allowed
    (top-left aligned, as PyTorch's ``is_causal``)."""
    keys = minigrad.arange(seq_k, device=device).reshape(1, seq_k)
    return keys > minigrad.arange(seq_q, device=device).reshape(seq_q, 1)


def attention_weights_composite(q: Tensor, k: Tensor, mask: Tensor | None, scale: float) -> Tensor:
    """The attention weights op by op (every step is a node of the graph):
    matmul -> scale -> mask -> softmax, with fully masked rows set to 0."""
    scores = (q @ k.transpose(-1, -2)) * scale
    if mask is None:
        return F.softmax_composite(scores, -1)
    if mask.dtype == minigrad.bool_:
        blocked = mask
    else:
        scores = scores + mask
        blocked = mask == -math.inf
    dead = _all_last(blocked, scores.shape)  # rows where every key is blocked, (..., 1)
    if mask.dtype == minigrad.bool_:
        scores = scores.masked_fill(blocked & ~dead, -math.inf)
    else:
        scores = scores.masked_fill(dead, 0.0)  # keep dead rows finite; they are zeroed below
    return F.softmax_composite(scores, -1).masked_fill(dead, 0.0)


def _all_last(blocked: Tensor, shape: tuple[int, ...]) -> Tensor:
    """True for rows (last axis) where every entry is blocked, shaped (..., 1)."""
    full = blocked.expand(shape) if blocked.shape != shape else blocked
    allowed = F.sum(F.cast(~full, "int64"), -1, keepdims=True)
    return allowed == 0


IMPLS = ("naive", "flash")


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None = None,
    key_padding_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    training: bool = True,
    fused: bool = True,
    impl: str = "naive",
    block_size: int = 128,
    is_causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Attention for q (batch, [heads,] seq_q, d), k and v (batch, [heads,] seq_k, d).

    Returns ``(output, weights)``; weights are (batch, [heads,] seq_q, seq_k) and are part
    of the graph (call ``weights.retain_grad()`` to inspect their gradient).
    ``fused=False`` builds the weights op by op (see the module docstring for masks).
    ``impl="flash"`` runs FlashAttention (``minigrad.ops.flash_attention``) in blocks of
    ``block_size`` keys and queries: the weights are never formed, so they are returned as
    None; it refuses dropout (use ``impl="naive"``). ``is_causal`` forbids key j > query i.
    """
    if q.ndim not in (3, 4) or k.ndim != q.ndim or v.ndim != q.ndim:
        raise ValueError(
            f"scaled_dot_product_attention: expected 3-D or 4-D q, k, v, got {q.shape}, {k.shape}, {v.shape}"
        )
    if impl not in IMPLS:
        raise ValueError(f"scaled_dot_product_attention: impl must be one of {', '.join(IMPLS)}, got {impl!r}")
    batch = q.shape[0]
    nhead = q.shape[1] if q.ndim == 4 else None
    seq_q, seq_k = q.shape[-2], k.shape[-2]
    mask = combine_masks(attn_mask, key_padding_mask, batch, nhead, seq_q, seq_k, q.dtype)
    scale = 1.0 / math.sqrt(q.shape[-1])
    if impl == "flash":
        if dropout_p > 0 and training:
            raise ValueError(
                f"scaled_dot_product_attention: impl='flash' does not support dropout (dropout_p={dropout_p}); "
                "use impl='naive', or dropout_p=0"
            )
        return F.flash_attention(q, k, v, mask, scale, causal=is_causal, block_size=block_size), None
    if is_causal:
        causal = causal_mask(seq_q, seq_k, q.device)
        if mask is None or mask.dtype == minigrad.bool_:
            mask = causal if mask is None else mask | causal
        else:
            mask = mask + F.where(causal, -math.inf, 0.0).to(dtype=mask.dtype)
    if fused:
        weights = F.attention_weights(q, k, mask, scale)
    else:
        weights = attention_weights_composite(q, k, mask, scale)
    dropped = F.dropout(weights, dropout_p, training) if dropout_p > 0 else weights
    return dropped @ v, weights


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate q/k/v/out projections (readable).

    Each of the ``nhead`` heads works in its own d_head = d_model / nhead subspace:
    the projections are split into heads, attended independently, concatenated and
    projected by ``out_proj``. Set ``keep_attention = True`` to keep the last weights
    (batch, nhead, seq_q, seq_k) in ``last_attention``, with their gradient after backward.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dropout: float = 0.0,
        bias: bool = True,
        fused: bool = True,
        impl: str = "naive",
        block_size: int = 128,
    ) -> None:
        super().__init__()
        for name, value in (("d_model", d_model), ("nhead", nhead)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MultiHeadAttention: {name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiHeadAttention: dropout must be in [0, 1), got {dropout}")
        if d_model % nhead:
            raise ValueError(f"MultiHeadAttention: d_model={d_model} is not divisible by nhead={nhead}")
        _check_impl("MultiHeadAttention", impl, block_size)
        self.d_model, self.nhead, self.d_head = d_model, nhead, d_model // nhead
        self.dropout, self.fused, self.impl, self.block_size = dropout, fused, impl, block_size
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            nn.init.xavier_uniform_(proj.weight)
            if proj.bias is not None:
                nn.init.zeros_(proj.bias)
        if self.out_proj.bias is not None:
            nn.init.zeros_(self.out_proj.bias)
        self.keep_attention = False
        self.last_attention: Tensor | None = None

    def _heads(self, x: Tensor) -> Tensor:
        """(batch, seq, d_model) -> (batch, nhead, seq, d_head): one node when fused, else
        the reshape and the transpose it is made of."""
        if self.fused:
            return F.split_heads(x, self.nhead)
        b, s, _ = x.shape
        return x.reshape(b, s, self.nhead, self.d_head).transpose(1, 2)

    def _merge(self, x: Tensor) -> Tensor:
        """(batch, nhead, seq, d_head) -> (batch, seq, d_model): the heads side by side."""
        if self.fused:
            return F.merge_heads(x)
        b, _, s, _ = x.shape
        return x.transpose(1, 2).reshape(b, s, self.d_model)

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        attn_mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        key = query if key is None else key
        value = key if value is None else value
        if query.ndim != 3 or query.shape[-1] != self.d_model:
            raise ValueError(
                f"MultiHeadAttention: expected input (batch, seq, {self.d_model}), got shape {query.shape}"
            )
        q = self._heads(self.q_proj(query))
        k = self._heads(self.k_proj(key))
        v = self._heads(self.v_proj(value))
        if self.impl == "flash" and (need_weights or self.keep_attention):
            raise ValueError(
                "MultiHeadAttention: impl='flash' never forms the attention weights "
                "(need_weights / keep_attention); use impl='naive' to see them"
            )
        out, weights = scaled_dot_product_attention(
            q, k, v, attn_mask, key_padding_mask, self.dropout, self.training, self.fused, self.impl, self.block_size
        )
        if self.keep_attention:
            if weights.requires_grad:
                weights.retain_grad()
            self.last_attention = weights
        return self.out_proj(self._merge(out)), (weights if need_weights else None)

    def extra_repr(self) -> str:
        flash = f", impl='flash', block_size={self.block_size}" if self.impl == "flash" else ""
        return f"d_model={self.d_model}, nhead={self.nhead}, dropout={self.dropout}, fused={self.fused}{flash}"


def _check_impl(owner: str, impl: str, block_size: int) -> None:
    """One-line errors for an attention implementation a layer cannot run."""
    if impl not in IMPLS:
        raise ValueError(f"{owner}: impl must be one of {', '.join(IMPLS)}, got {impl!r}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"{owner}: block_size must be a positive integer, got {block_size!r}")
