"""09 - Gradients add up over examples: data parallelism on CPU threads.

A mean loss over a batch of N examples is L = (1/N) sum_n l_n, and differentiation is
linear, so dL/dW = (1/N) sum_n dl_n/dW: every example adds its own gradient. Cut the batch
into chunks c_1..c_k with mean losses L_c and

    dL/dW = sum_c (|c| / N) * dL_c/dW

Each chunk's forward and backward is a separate graph that only *reads* the weights, so
the chunks can run at the same time, on different threads (or devices, or machines:
that is data parallelism). This script checks the identity on an encoder classifier in
float64, three ways (two chunks, one chunk per example, and
``minigrad.data_parallel_backward``, which runs the chunks on threads), then times one
training step with and without it.

What the timing teaches: minigrad's own threads split the rows of each op, and each split
costs a thread hand-off; splitting the batch costs one hand-off per step. But the Python
part of every op (graph bookkeeping, module calls) runs under Python's global lock, so
two chunks on two threads take turns at it: the speed-up is below 2x, and for a model
whose step is mostly Python (tiny arrays) there is none.

Run:  python examples/09_data_parallel.py [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import time

import minigrad
import minigrad.functional as F
from encoder.layers import TransformerEncoderLayer
from minigrad import nn


class Classifier(nn.Module):
    """Embedding, encoder layers, mean pooling over real tokens, a linear head."""

    def __init__(self, vocab: int, d_model: int, heads: int, layers: int, classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.layers = nn.ModuleList(
            [TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.0) for _ in range(layers)]
        )
        self.head = nn.Linear(d_model, classes)

    def forward(self, tokens: minigrad.Tensor, padding: minigrad.Tensor) -> minigrad.Tensor:
        h = self.embed(tokens)
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=padding)
        keep = F.cast(~padding, h.dtype).unsqueeze(-1)  # 1 at real tokens, 0 at padding
        return self.head((h * keep).sum(1) / keep.sum(1))


def make_batch(n: int, seq: int, vocab: int, classes: int) -> tuple[minigrad.Tensor, ...]:
    """Random token ids, padding after a random length (at least 2), random labels."""
    tokens = minigrad.randint(1, vocab, (n, seq))
    lengths = minigrad.randint(2, seq + 1, (n, 1))
    padding = minigrad.arange(seq).unsqueeze(0) >= lengths
    tokens = minigrad.where(padding, minigrad.zeros_like(tokens), tokens)
    return tokens, padding, minigrad.randint(0, classes, (n,))


def loss_on(model: Classifier, chunk: tuple[minigrad.Tensor, ...]) -> minigrad.Tensor:
    tokens, padding, labels = chunk
    return F.cross_entropy(model(tokens, padding), labels)  # the mean over the chunk


def cut(batch: tuple[minigrad.Tensor, ...], bounds: list[int]) -> list[tuple[minigrad.Tensor, ...]]:
    return [tuple(t[lo:hi] for t in batch) for lo, hi in zip(bounds[:-1], bounds[1:])]


def max_diff(a: list[minigrad.Tensor], b: list[minigrad.Tensor]) -> float:
    return max(float((x - y).abs().max().item()) for x, y in zip(a, b))


def check_the_identity() -> dict:
    """The batch gradient three ways, against one backward over the whole batch (float64)."""
    minigrad.manual_seed(0)
    model = Classifier(vocab=20, d_model=16, heads=2, layers=2, classes=3).to(dtype="float64")
    params = list(model.parameters())
    batch = make_batch(12, 7, vocab=20, classes=3)
    whole = minigrad.grad(loss_on(model, batch), params)

    # two chunks of 5 and 7 examples, weighted by their share of the batch
    chunks = cut(batch, [0, 5, 12])
    parts = [minigrad.grad(loss_on(model, c), params) for c in chunks]
    two = [5 / 12 * a + 7 / 12 * b for a, b in zip(*parts)]

    # one chunk per example: the batch gradient is the mean of the per-example gradients
    singles = [minigrad.grad(loss_on(model, c), params) for c in cut(batch, list(range(13)))]
    per_example = [sum(gs[1:], gs[0]) / 12 for gs in zip(*singles)]

    # the same two chunks, run on threads, accumulated into .grad
    model.zero_grad()
    loss = minigrad.data_parallel_backward(lambda c: loss_on(model, c), chunks, params, [5 / 12, 7 / 12])
    threaded = [p.grad for p in params]
    return {
        "loss": loss.item(),
        "max_diff_two_chunks": max_diff(whole, two),
        "max_diff_per_example": max_diff(whole, per_example),
        "max_diff_data_parallel": max_diff(whole, threaded),
        "largest_gradient": max(float(g.abs().max().item()) for g in whole),
    }


def time_steps(parts: int, steps: int, threads: int) -> float:
    """ms per training step (forward, backward, Adam) of a float32 model, batch in ``parts`` chunks."""
    minigrad.manual_seed(1)
    model = Classifier(vocab=64, d_model=128, heads=4, layers=2, classes=4)
    opt = minigrad.optim.Adam(model.parameters(), lr=1e-3)
    batch = make_batch(32, 32, vocab=64, classes=4)
    chunks = cut(batch, [32 * i // parts for i in range(parts + 1)])
    previous = minigrad.get_num_threads()
    minigrad.set_num_threads(threads)
    try:
        times = []
        for i in range(steps + 2):  # two warm-up steps
            started = time.perf_counter()
            opt.zero_grad()
            if parts == 1:
                loss_on(model, batch).backward()
            else:
                minigrad.data_parallel_backward(lambda c: loss_on(model, c), chunks, list(model.parameters()))
            opt.step()
            if i >= 2:
                times.append(time.perf_counter() - started)
    finally:
        minigrad.set_num_threads(previous)
    return sorted(times)[len(times) // 2] * 1e3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="examples_out", help="folder for pictures (unused here)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 30; 3 in quick mode)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    quick = os.environ.get("MINIGRAD_EXAMPLES_QUICK") == "1"
    steps = args.steps if args.steps is not None else (3 if quick else 30)

    result = check_the_identity()
    print("The gradient of the mean loss over 12 sequences (float64), against one backward:")
    print(f"  5/12 * grad(first 5) + 7/12 * grad(last 7):  max difference {result['max_diff_two_chunks']:.1e}")
    print(f"  mean of the 12 per-example gradients:        max difference {result['max_diff_per_example']:.1e}")
    print(f"  minigrad.data_parallel_backward (threads):   max difference {result['max_diff_data_parallel']:.1e}")
    print(f"  (the largest gradient entry is {result['largest_gradient']:.2f})")

    threads = min(2, os.cpu_count() or 1)
    result["threads"] = threads
    result["ms_one_graph"] = time_steps(1, steps, threads)
    result["ms_two_chunks"] = time_steps(2, steps, threads)
    print(f"\nOne training step, batch 32 x 32 tokens, d_model 128, 2 layers, float32, {threads} thread(s):")
    print(f"  the whole batch in one graph:   {result['ms_one_graph']:.1f} ms")
    print(f"  two chunks on threads:          {result['ms_two_chunks']:.1f} ms")
    if threads < 2:
        print("  (one CPU here: the chunks ran one after the other)")
    return result


if __name__ == "__main__":
    main()
