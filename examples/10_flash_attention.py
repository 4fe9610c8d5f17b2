"""10 - FlashAttention: the same attention, a block at a time, without storing the weights.

The plain attention stores its weights W = softmax(S), (seq_q, seq_k) per head, for
backward. FlashAttention walks the keys in blocks with an *online softmax*: it keeps a
running row max m, a running sum l and an unnormalized output, rescaling them by
exp(m_old - m_new) whenever a block raises the max. That rescaling is exact, so the result
is the plain softmax. Only O and L = m + log(l) are saved; backward recomputes each block
of W as exp(S - L) and needs the row sums rowsum(dW * W) only as D = rowsum(dO * O).

This script checks, in float64:

1. the online softmax of one row, block by block, against the plain softmax;
2. FlashAttention against the plain attention (values and dq, dk, dv) with key padding,
   causal masking, a sequence that is not a multiple of the block, and a dead row;
3. the identity D = rowsum(dO * O) = rowsum(dW * W) (docs/guide.md, section 13);

then measures the peak memory (tracemalloc: it sees NumPy's allocations) of one float32
forward + backward of each, and how much of the plain one is the weights.

Run:  python examples/10_flash_attention.py [--out DIR] [--seq N]
"""

from __future__ import annotations

import argparse
import math
import os
import tracemalloc

import minigrad
import minigrad.functional as F
from encoder.attention import scaled_dot_product_attention


def online_softmax(scores: minigrad.Tensor, block: int) -> minigrad.Tensor:
    """softmax of a 1-D row, folding in ``block`` scores at a time (the forward's loop, on one row)."""
    m, l, terms = -math.inf, 0.0, []
    for j0 in range(0, scores.shape[0], block):
        s = scores[j0 : j0 + block]
        m_new = max(m, s.max().item())
        alpha = math.exp(m - m_new)  # what was summed under the old max, rescaled to the new one
        l = l * alpha + (s - m_new).exp().sum().item()
        terms = [t * alpha for t in terms] + [(s - m_new).exp()]
        m = m_new
    return F.concat(terms) / l


def check_online_softmax() -> float:
    minigrad.manual_seed(0)
    row = minigrad.randn(23, dtype="float64") * 4.0
    return (online_softmax(row, 5) - F.softmax(row, -1)).abs().max().item()


def check_agreement() -> dict:
    """flash vs naive (float64), key padding + causal, seq 11 with blocks of 4; batch 0 pads key 0."""
    minigrad.manual_seed(1)
    q, k, v = (minigrad.randn(2, 3, 11, 8, dtype="float64", requires_grad=True) for _ in range(3))
    padding = minigrad.tensor([[True] + [False] * 8 + [True, True], [False] * 11])  # batch 0: keys 0, 9, 10
    upstream = minigrad.randn(2, 3, 11, 8, dtype="float64")
    results = {}
    for impl in ("naive", "flash"):
        out, _ = scaled_dot_product_attention(
            q, k, v, key_padding_mask=padding, impl=impl, block_size=4, is_causal=True
        )
        results[impl] = [out.detach()] + list(minigrad.grad(out, [q, k, v], upstream))
    diffs = [(a - b).abs().max().item() for a, b in zip(results["flash"], results["naive"])]
    # query 0 of batch 0 may see only key 0 (causal), which is padding: a dead row, output 0
    dead = results["flash"][0][0, :, 0].abs().max().item()
    return {"max_diff_output": diffs[0], "max_diff_grads": max(diffs[1:]), "dead_row_output": dead}


def check_d_identity() -> float:
    """D = rowsum(dO * O) against rowsum(dW * W), with the weights formed (float64)."""
    minigrad.manual_seed(2)
    q, k, v, g = (minigrad.randn(1, 2, 9, 4, dtype="float64") for _ in range(4))
    w = F.attention_weights(q, k)
    o = w @ v
    dw = g @ v.swapaxes(-1, -2)
    return ((g * o).sum(-1) - (dw * w).sum(-1)).abs().max().item()


def peak_mb(impl: str, seq: int, block: int) -> float:
    """tracemalloc's peak (MB) over one float32 forward + backward, heads 8, d_head 64."""
    minigrad.manual_seed(3)
    q, k, v = (minigrad.randn(1, 8, seq, 64, requires_grad=True) for _ in range(3))
    upstream = minigrad.randn(1, 8, seq, 64)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out, _ = scaled_dot_product_attention(q, k, v, impl=impl, block_size=block)
        minigrad.grad(out, [q, k, v], upstream)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return peak / 2**20


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="examples_out", help="folder for pictures (unused here)")
    p.add_argument("--seq", type=int, default=None, help="tokens for the memory part (default 1024; 256 quick)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    quick = os.environ.get("MINIGRAD_EXAMPLES_QUICK") == "1"
    seq = args.seq if args.seq is not None else (256 if quick else 1024)
    block = 64

    result = {"online_softmax_max_diff": check_online_softmax()}
    diff = result["online_softmax_max_diff"]
    print(f"1. online softmax of 23 scores in blocks of 5 vs softmax: max difference {diff:.1e}")
    result.update(check_agreement())
    print("2. FlashAttention vs the plain attention (float64, padding + causal, seq 11, blocks of 4):")
    print(f"   output max difference {result['max_diff_output']:.1e}, dq/dk/dv {result['max_diff_grads']:.1e}")
    print(f"   a query whose only allowed key is padding gets output {result['dead_row_output']:.1f}")
    result["d_identity_max_diff"] = check_d_identity()
    print(f"3. rowsum(dO * O) vs rowsum(dW * W): max difference {result['d_identity_max_diff']:.1e}")

    result["seq"] = seq
    result["weights_mb"] = 8 * seq * seq * 4 / 2**20
    result["plain_mb"] = peak_mb("naive", seq, block)
    result["flash_mb"] = peak_mb("flash", seq, block)
    print(f"4. peak memory of one float32 forward + backward, 8 heads x {seq} tokens, d_head 64:")
    print(f"   plain {result['plain_mb']:.1f} MB (its weights alone: {result['weights_mb']:.1f} MB)")
    less = result["plain_mb"] / result["flash_mb"]
    print(f"   flash {result['flash_mb']:.1f} MB (blocks of {block}): {less:.1f}x less")
    return result


if __name__ == "__main__":
    main()
