"""11 - A BERT checkpoint: one sentence through its layers, and the gradients of its attention.

With ``--weights DIR`` (a folder as Hugging Face's ``save_pretrained`` writes it, with its
vocab.txt or tokenizer.json: bring your own, nothing is downloaded) the example reads that
BERT. Without it, it builds a small random BERT and writes it as such a folder first, so the
same path runs either way:

1. The folder is read by ``encoder.interop.load_hf_bert``; ``save_hf_bert`` writes it again
   and reading that back gives every tensor bit for bit.
2. One sentence walks through the embeddings (word + position + token type, then
   LayerNorm) and the first layer: every row of the attention weights sums to 1.
3. The top prediction at [MASK], and the gradient of its logit with respect to every
   layer's attention weights. In the last layer only the [MASK] row is non-zero (no other
   row reaches that logit); in earlier layers other rows are. What reaches the scores is
   ``dS = W * (dW - rowsum(dW * W))`` (guide, section 4), whose rows sum to 0.
4. After a backward pass the key projection's bias has gradient 0: it adds a constant to
   each row of scores, which softmax ignores (guide, section 6).

Run:  python examples/11_bert_attention.py [--weights DIR] [--text "... [MASK] ..."] [--out DIR]
Reads: docs/guide.md, section 12.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import minigrad
import minigrad.functional as F
from encoder.bert import BertConfig, BertForMaskedLM
from encoder.bert_attention import logit_attention
from encoder.interop import load_hf_bert, load_tokenizer, save_hf_bert

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "capital", "of", "france", "is", "paris", "a",
         "city", "river", "big", "small", "red", "blue", "cat", "dog", "sat", "on", "mat", "."]  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None, help="a save_pretrained BERT folder (default: a small random one)")
    p.add_argument("--text", default="The capital of France is [MASK] .", help="a sentence with one [MASK]")
    p.add_argument("--out", default="examples_out", help="folder for the random checkpoint (default examples_out/)")
    return p.parse_args(argv)


def random_checkpoint(folder: Path, quick: bool) -> Path:
    """A random BertForMaskedLM with a 24-word vocabulary, written as a save_pretrained folder."""
    hidden, layers, heads = (16, 2, 2) if quick else (32, 4, 4)
    minigrad.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=4 * hidden, max_position_embeddings=32, initializer_range=0.3)  # fmt: skip
    save_hf_bert(BertForMaskedLM(config), folder)
    (folder / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    return folder


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    quick = os.environ.get("MINIGRAD_EXAMPLES_QUICK") == "1"
    folder = Path(args.weights) if args.weights else random_checkpoint(Path(args.out) / "11_random_bert", quick)

    # ---- 1. read, write, read again -----------------------------------------------------------------
    bert = load_hf_bert(folder, dtype="float64")
    tokenizer = load_tokenizer(folder)
    c = bert.config
    print(f"{folder}: {type(bert).__name__}, {c.num_hidden_layers} layers x {c.num_attention_heads} heads, "
          f"hidden {c.hidden_size}, activation {c.hidden_act!r}, {bert.num_parameters():,} parameters")  # fmt: skip
    copy = Path(args.out) / "11_bert_copy"
    again = load_hf_bert(save_hf_bert(bert, copy), dtype="float64")
    mismatched = [
        name
        for (name, p), (_, q) in zip(bert.named_parameters(), again.named_parameters())
        if not bool((p.detach() == q.detach()).all().item())
    ]
    print(f"save_hf_bert -> load_hf_bert: {len(mismatched)} of {len(list(bert.parameters()))} tensors differ")

    # ---- 2. one sentence through the embeddings and the first layer -----------------------------------------
    encoding = tokenizer.encode(args.text)
    ids = [encoding.ids]
    tokens = encoding.tokens
    mask_id = tokenizer.token_to_id("[MASK]")
    if mask_id not in encoding.ids:
        raise SystemExit(f"--text needs a [MASK] token: {args.text!r}")
    position = encoding.ids.index(mask_id)
    print(f"\ntokens: {' '.join(tokens)}   ([MASK] at position {position})")
    with minigrad.no_grad():
        x = bert.embeddings(minigrad.tensor(ids))
        first = bert.layers[0]
        _, weights = first.self_attn(x, need_weights=True)
    row_error = float(abs(F.sum(weights, -1) - 1.0).max().item())
    print(f"embeddings: {x.shape} (word + position + token type, LayerNorm eps {c.layer_norm_eps:g})")
    print(f"layer 0 attention weights: {weights.shape} (batch, heads, query, key); "
          f"every row sums to 1 (largest error {row_error:.1e})")  # fmt: skip

    # ---- 3. the prediction at [MASK] and d logit / d attention weights ---------------------------------------------
    result = logit_attention(bert, ids, position)
    predicted = tokenizer.id_to_token(result.token_id)
    top = ", ".join(f"{tokenizer.id_to_token(i)} {p:.3f}" for i, p in result.top(3))
    print(f"\ntop predictions at [MASK]: {top}")
    live_rows = []
    for layer, g in enumerate(result.grads):
        rows = [q for q in range(g.shape[1]) if abs(g[:, q]).max() > 0]
        live_rows.append(rows)
        head, key = divmod(int(abs(g[:, position]).argmax()), g.shape[2])
        largest = f"head {head}, key {tokens[key]!r} ({g[head, position, key]:+.3g})"
        print(f"layer {layer}: d logit({predicted!r}) / d weight is non-zero in {len(rows)} of {g.shape[1]} query "
              f"rows; at [MASK] largest for {largest}")  # fmt: skip
    w, g = result.weights[-1], result.grads[-1]
    d_scores = w * (g - (w * g).sum(-1, keepdims=True))
    score_row_sum = float(abs(d_scores.sum(-1)).max())
    print(f"last layer: dS = W * (dW - rowsum(dW * W)) has rows summing to 0 (largest {score_row_sum:.1e})")

    # ---- 4. the key bias gets no gradient -------------------------------------------------------------------
    logits = bert.logits(ids)
    logits[0, position, result.token_id].backward()
    key_bias = max(float(abs(lay.self_attn.k_proj.bias.grad).max().item()) for lay in bert.layers)
    query_bias = min(float(abs(lay.self_attn.q_proj.bias.grad).max().item()) for lay in bert.layers)
    print(f"\nafter backward: largest |d logit / d key bias| = {key_bias:.1e}; "
          f"smallest layer's largest |d logit / d query bias| = {query_bias:.2e}")  # fmt: skip

    return {
        "folder": str(folder),
        "random": args.weights is None,
        "num_parameters": bert.num_parameters(),
        "layers": c.num_hidden_layers,
        "heads": c.num_attention_heads,
        "round_trip_mismatched": mismatched,
        "tokens": tokens,
        "position": position,
        "embedding_shape": x.shape,
        "weights_shape": weights.shape,
        "row_sum_error": row_error,
        "top": result.top(3),
        "predicted": predicted,
        "live_rows": live_rows,
        "score_row_sum": score_row_sum,
        "key_bias_grad": key_bias,
        "query_bias_grad": query_bias,
    }


if __name__ == "__main__":
    main()
