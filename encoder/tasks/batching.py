"""Examples and batches: what a task makes and how a list of examples becomes tensors.

An example is a pair (token ids without padding, target). :func:`collate` pads a list
of them to the longest one and returns a :class:`Batch` of minigrad tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import minigrad
from minigrad import Tensor

Target = list[int] | int
Example = tuple[list[int], Target]


@dataclass
class Batch:
    """A padded batch of examples.

    tokens:       (B, S) int64 token ids, padded with the task's ``pad_id``.
    targets:      (B, S) int64 for "token" tasks (``ignore_index`` where there is no label),
                  (B,) int64 for "sequence" tasks.
    padding_mask: (B, S) bool, True at padded positions (PyTorch's ``src_key_padding_mask``).
    lengths:      the true length of every sequence (special tokens included).
    """

    tokens: Tensor
    targets: Tensor
    padding_mask: Tensor
    lengths: list[int]

    def to(self, device: str) -> Batch:
        """The same batch with its tensors on ``device`` ("cpu" or "cuda")."""
        return Batch(
            tokens=self.tokens.to(device),
            targets=self.targets.to(device),
            padding_mask=self.padding_mask.to(device),
            lengths=list(self.lengths),
        )

    @property
    def size(self) -> int:
        """The number of sequences in the batch."""
        return len(self.lengths)

    def split(self, parts: int) -> list[Batch]:
        """The batch cut into ``parts`` batches of consecutive sequences (sizes differ by at most 1)."""
        if not 1 <= parts <= self.size:
            raise ValueError(f"Batch.split: cannot cut a batch of {self.size} sequences into {parts} parts")
        return [
            Batch(
                tokens=self.tokens[lo:hi],
                targets=self.targets[lo:hi],
                padding_mask=self.padding_mask[lo:hi],
                lengths=self.lengths[lo:hi],
            )
            for lo, hi in _even_slices(self.size, parts)
        ]


def _even_slices(count: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` consecutive ``(lo, hi)`` ranges covering ``[0, count)``, sizes differing by at most 1."""
    bounds = [count * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def collate(
    examples: Sequence[Example],
    *,
    pad_id: int,
    ignore_index: int,
    target_kind: str,
    device: str | None = None,
) -> Batch:
    """Pad a list of examples to the longest one and make tensors.

    Tokens are padded with ``pad_id``; for ``target_kind == "token"`` the per-position
    targets are padded with ``ignore_index``, for "sequence" there is one target each.
    """
    if not examples:
        raise ValueError("collate() needs at least one example")
    lengths = [len(ids) for ids, _ in examples]
    width = max(lengths)
    tokens = [list(ids) + [pad_id] * (width - len(ids)) for ids, _ in examples]
    mask = [[False] * n + [True] * (width - n) for n in lengths]
    if target_kind == "token":
        targets: list[Any] = []
        for (_ids, tgt), n in zip(examples, lengths):
            assert isinstance(tgt, list) and len(tgt) == n, "token targets must have one entry per token"
            targets.append(list(tgt) + [ignore_index] * (width - n))
    else:
        targets = [int(tgt) for _, tgt in examples]  # type: ignore[arg-type]
    return Batch(
        tokens=minigrad.tensor(tokens, dtype="int64", device=device),
        targets=minigrad.tensor(targets, dtype="int64", device=device),
        padding_mask=minigrad.tensor(mask, dtype="bool", device=device),
        lengths=lengths,
    )
