"""04 - Backprop through one attention head, checked against the closed-form gradients.

For one head with queries Q (n, d), keys K (m, d) and values V (m, dv):

    S = Q K^T / sqrt(d)        scores            (n, m)
    W = softmax(S)             weights, by row   (n, m)
    O = W V                    output            (n, dv)
    L = sum(G * O)             so that dL/dO = G, a random "upstream gradient"

The gradients derived in docs/guide.md (section 6) are

    dV = W^T G
    dW = G V^T
    dS = W * (dW - rowsum(dW * W))          (softmax's vector-Jacobian product)
    dQ = dS K / sqrt(d)
    dK = dS^T Q / sqrt(d)

Autograd computes the same numbers by walking the graph; hooks let us catch the
gradients of the intermediate tensors S and W as they flow past.

Run:  python examples/04_attention_head_backprop.py [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import os

import minigrad
import minigrad.functional as F
from encoder.attention import scaled_dot_product_attention


def max_diff(a: minigrad.Tensor, b: minigrad.Tensor) -> float:
    return (a.detach() - b.detach()).abs().max().item()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="examples_out", help="folder for pictures (unused here)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    parse_args(argv)
    quick = os.environ.get("MINIGRAD_EXAMPLES_QUICK") == "1"
    minigrad.manual_seed(0)
    n, m, d, dv = (3, 4, 4, 2) if quick else (5, 6, 8, 3)
    Q = minigrad.randn(n, d, dtype="float64", requires_grad=True)
    K = minigrad.randn(m, d, dtype="float64", requires_grad=True)
    V = minigrad.randn(m, dv, dtype="float64", requires_grad=True)
    G = minigrad.randn(n, dv, dtype="float64")  # the upstream gradient dL/dO

    # ---- forward, op by op, with hooks on the intermediate tensors --------------------------
    S = Q @ K.T / math.sqrt(d)
    W = F.softmax(S, -1)
    O = W @ V
    L = (G * O).sum()

    caught: dict[str, minigrad.Tensor] = {}
    # a hook sees the gradient of its tensor when backward reaches it (it could also replace it)
    S.register_hook(lambda g: caught.__setitem__("S", g.detach()))
    # retain_grad() keeps the gradient of a non-leaf in .grad (leaves Q, K, V keep theirs anyway)
    W.retain_grad()

    L.backward()
    auto = {"Q": Q.grad, "K": K.grad, "V": V.grad, "W": W.grad, "S": caught["S"]}

    # ---- the closed-form expressions (no graph needed) ---------------------------------------------
    with minigrad.no_grad():
        Wd, Vd, Qd, Kd = W.detach(), V.detach(), Q.detach(), K.detach()
        dV = Wd.T @ G
        dW = G @ Vd.T
        dS = Wd * (dW - (dW * Wd).sum(-1, keepdims=True))
        dQ = dS @ Kd / math.sqrt(d)
        dK = dS.T @ Qd / math.sqrt(d)
    closed = {"Q": dQ, "K": dK, "V": dV, "W": dW, "S": dS}

    print(f"one head: Q {Q.shape}, K {K.shape}, V {V.shape}, float64; L = sum(G * O) with random G\n")
    print(f"{'grad':6}{'formula':28}{'max |autograd - formula|':>26}")
    formulas = {
        "V": "W^T G",
        "W": "G V^T",
        "S": "W * (dW - rowsum(dW * W))",
        "Q": "dS K / sqrt(d)",
        "K": "dS^T Q / sqrt(d)",
    }
    diffs = {}
    for k in ("V", "W", "S", "Q", "K"):
        diffs[k] = max_diff(auto[k], closed[k])
        print(f"d{k:5}{formulas[k]:28}{diffs[k]:>26.1e}")

    # rows of W sum to 1, so the softmax's VJP has rowsum(dS) = 0: moving every score of a
    # row by the same amount changes nothing
    row_sums = dS.sum(-1).abs().max().item()
    print(f"\nmax |rowsum(dS)| = {row_sums:.1e}  (softmax is shift-invariant along a row)")

    # ---- the same head through the encoder's fused attention, with a padding mask -----------------
    # encoder.attention uses one node for softmax(QK^T/sqrt(d) + mask) (minigrad.ops.attention);
    # a masked key gets weight 0 and so receives no gradient at all.
    q, k, v = (t.detach().reshape(1, *t.shape).requires_grad_() for t in (Q, K, V))
    pad = minigrad.tensor([[False] * (m - 1) + [True]])  # the last key is padding
    out, weights = scaled_dot_product_attention(q, k, v, key_padding_mask=pad)
    (out * G.reshape(1, n, dv)).sum().backward()
    masked_key_grad = k.grad[0, m - 1].abs().max().item()
    masked_value_grad = v.grad[0, m - 1].abs().max().item()
    masked_weight = weights[0, :, m - 1].abs().max().item()
    # the other keys do get gradients (so the zeros above are not just an empty graph)
    smallest_real_key_grad = min(k.grad[0, j].abs().max().item() for j in range(m - 1))
    smallest_real_value_grad = min(v.grad[0, j].abs().max().item() for j in range(m - 1))
    real_weight_rowsum = (weights[0, :, : m - 1].sum(-1) - 1.0).abs().max().item()
    print(
        f"with the last key padded: weight on it {masked_weight:.1f}, "
        f"its dK row {masked_key_grad:.1f}, its dV row {masked_value_grad:.1f} "
        f"(each real key's dK and dV rows are nonzero; the real weights of each query sum to 1)"
    )

    return {
        "diffs": diffs,
        "max_diff": max(diffs.values()),
        "rowsum_dS": row_sums,
        "masked_key_grad": masked_key_grad,
        "masked_value_grad": masked_value_grad,
        "masked_weight": masked_weight,
        "smallest_real_key_grad": smallest_real_key_grad,
        "smallest_real_value_grad": smallest_real_value_grad,
        "real_weight_rowsum_error": real_weight_rowsum,
    }


if __name__ == "__main__":
    main()
