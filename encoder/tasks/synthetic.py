"""The synthetic tasks: digit sequences, bit strings and brackets, made up on the fly.

Per-position targets: ``sort``, ``reverse``, ``count`` and ``brackets``; one label per
sequence: ``majority`` and ``parity`` (optionally with a ``<cls>`` token). Every input
sequence belongs to exactly one split by a hash of its tokens (:meth:`Task.split_of`),
so the train and valid sets never share an input.
"""

from __future__ import annotations

import random
from collections import Counter
from functools import cache

from .base import CLS, PAD, Task, register_task
from .batching import Example


def _check_lengths(min_len: int, max_len: int, full_length_prob: float) -> None:
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    if not 0.0 <= full_length_prob <= 1.0:
        raise ValueError(f"full_length_prob must be in [0, 1], got {full_length_prob}")


def _sample_length(rng: random.Random, min_len: int, max_len: int, full_length_prob: float, step: int = 1) -> int:
    """``max_len`` with probability ``full_length_prob``, else uniform over min_len..max_len."""
    if rng.random() < full_length_prob:
        return max_len
    return rng.randrange(min_len, max_len + 1, step)


# ---------------------------------------------------------------------------------------
# Digit-sequence tasks (per-position targets)
# ---------------------------------------------------------------------------------------
class _DigitTask(Task):
    """Shared set-up: digits 0..num_digits-1 as tokens 1..num_digits, variable lengths."""

    target_kind = "token"

    def __init__(self, max_len: int = 8, min_len: int = 4, num_digits: int = 10, full_length_prob: float = 0.5):
        _check_lengths(min_len, max_len, full_length_prob)
        if num_digits < 2:
            raise ValueError(f"num_digits must be at least 2, got {num_digits}")
        self.num_digits = num_digits
        self.min_len = min_len
        self.full_length_prob = full_length_prob
        self._setup(
            [PAD] + [str(d) for d in range(num_digits)],
            self._classes(max_len, num_digits),
            max_len,
            dict(
                max_len=max_len,
                min_len=min_len,
                num_digits=num_digits,
                full_length_prob=full_length_prob,
            ),
        )

    def _classes(self, max_len: int, num_digits: int) -> list[str]:
        return [str(d) for d in range(num_digits)]

    def _digits(self, rng: random.Random) -> list[int]:
        n = _sample_length(rng, self.min_len, self.max_len, self.full_length_prob)
        return [rng.randrange(self.num_digits) for _ in range(n)]

    def generate(self, rng: random.Random) -> Example:
        digits = self._digits(rng)
        return [d + 1 for d in digits], self.label(digits)

    def label(self, digits: list[int]) -> list[int]:
        raise NotImplementedError(f"{type(self).__name__} must define label")


@register_task
class SortTask(_DigitTask):
    """Sort: digits in, the same digits in ascending order out (one class per position).

    Output position i must hold the i-th smallest input digit, which can be anywhere in
    the input: the model has to compare every token with every other one (how many
    tokens are smaller than this one, i.e. its rank) and route the digit of rank i to
    position i. That all-pairs comparison and content-based routing is what attention
    does. Lengths vary between ``min_len`` and ``max_len`` (half of the examples have
    ``max_len``), so the padding mask matters. Default: sort (length 8, digits 0-9).
    """

    name = "sort"

    def label(self, digits: list[int]) -> list[int]:
        return sorted(digits)


@register_task
class ReverseTask(_DigitTask):
    """Reverse: output position i holds input digit ``length - 1 - i``.

    The source position depends on the true length of the sequence, which only the
    padding mask tells, so the model must attend from position i to a position found
    from its own index and the length: purely positional routing via attention.
    """

    name = "reverse"

    def label(self, digits: list[int]) -> list[int]:
        return digits[::-1]


@register_task
class CountTask(_DigitTask):
    """Count: each position outputs how many times its digit occurs in the whole sequence.

    Classes are 0..max_len. A position must find all positions holding the same token,
    wherever they are: attention with "same token" queries and keys, then counting what
    it attended to. Fewer digits (default 5) than sort so counts above 1 are common.
    """

    name = "count"

    def __init__(self, max_len: int = 8, min_len: int = 4, num_digits: int = 5, full_length_prob: float = 0.5):
        super().__init__(max_len=max_len, min_len=min_len, num_digits=num_digits, full_length_prob=full_length_prob)

    def _classes(self, max_len: int, num_digits: int) -> list[str]:
        return [str(c) for c in range(max_len + 1)]

    def label(self, digits: list[int]) -> list[int]:
        counts = Counter(digits)
        return [counts[d] for d in digits]


# ---------------------------------------------------------------------------------------
# Sequence-level tasks (one label per sequence, optional <cls>)
# ---------------------------------------------------------------------------------------
@register_task
class MajorityTask(Task):
    """Majority: the label is the most frequent digit of the sequence.

    Only sequences with a *unique* most frequent digit are generated (others are drawn
    again), so the label is never a tie. The answer depends on all tokens at once:
    the model must compare the counts of every digit, which attention does by pooling
    over positions (into a ``<cls>`` token when ``use_cls=True``, which prepends it to
    every example, or by mean pooling otherwise). ``max_len`` counts the ``<cls>``.
    """

    name = "majority"
    target_kind = "sequence"

    def __init__(
        self,
        max_len: int = 12,
        min_len: int = 4,
        num_digits: int = 5,
        full_length_prob: float = 0.5,
        use_cls: bool = False,
    ):
        _check_lengths(min_len, max_len, full_length_prob)
        if num_digits < 2:
            raise ValueError(f"num_digits must be at least 2, got {num_digits}")
        self.num_digits = num_digits
        self.min_len = min_len
        self.seq_len = max_len
        self.full_length_prob = full_length_prob
        self.use_cls = use_cls
        digits = [str(d) for d in range(num_digits)]
        self._setup(
            [PAD, CLS, *digits],
            digits,
            max_len + int(use_cls),
            dict(
                max_len=max_len,
                min_len=min_len,
                num_digits=num_digits,
                full_length_prob=full_length_prob,
                use_cls=use_cls,
            ),
        )

    def generate(self, rng: random.Random) -> Example:
        n = _sample_length(rng, self.min_len, self.seq_len, self.full_length_prob)
        while True:
            digits = [rng.randrange(self.num_digits) for _ in range(n)]
            top = Counter(digits).most_common(2)
            if len(top) == 1 or top[0][1] > top[1][1]:
                return [d + 2 for d in digits], top[0][0]


@register_task
class ParityTask(Task):
    """Parity: is the number of 1s in a bit string even (class 0) or odd (class 1)?

    Flipping any single bit flips the label, so no subset of positions suffices: the
    model must aggregate over all tokens (attention pooling, or a ``<cls>`` token with
    ``use_cls=True``) and then compute the count mod 2. Known to be hard for Transformers
    as lengths grow, hence the short default. ``max_len`` counts the ``<cls>``.
    """

    name = "parity"
    target_kind = "sequence"

    def __init__(self, max_len: int = 8, min_len: int = 2, full_length_prob: float = 0.5, use_cls: bool = False):
        _check_lengths(min_len, max_len, full_length_prob)
        self.min_len = min_len
        self.seq_len = max_len
        self.full_length_prob = full_length_prob
        self.use_cls = use_cls
        self._setup(
            [PAD, CLS, "0", "1"],
            ["even", "odd"],
            max_len + int(use_cls),
            dict(
                max_len=max_len,
                min_len=min_len,
                full_length_prob=full_length_prob,
                use_cls=use_cls,
            ),
        )

    def generate(self, rng: random.Random) -> Example:
        n = _sample_length(rng, self.min_len, self.seq_len, self.full_length_prob)
        bits = [rng.randrange(2) for _ in range(n)]
        return [b + 2 for b in bits], sum(bits) % 2


# ---------------------------------------------------------------------------------------
# Brackets
# ---------------------------------------------------------------------------------------
@cache
def _dyck_paths(depth: int, steps: int) -> int:
    """Number of bracket continuations of ``steps`` tokens from ``depth`` that end balanced."""
    if depth < 0 or depth > steps:
        return 0
    if steps == 0:
        return 1
    return _dyck_paths(depth + 1, steps - 1) + _dyck_paths(depth - 1, steps - 1)


@register_task
class BracketsTask(Task):
    """Brackets: per-position nesting depth of a balanced string of "(" and ")".

    Strings are complete balanced strings (never prefixes) of even length between
    ``min_len`` and ``max_len``, drawn uniformly among all balanced strings of that
    length. The target at position i is the depth *after* token i, i.e. the number of
    "(" minus the number of ")" among tokens 0..i ("(())" -> 1 2 1 0); classes
    0..max_len // 2. The model must count the brackets before each position, which
    needs attention over the whole prefix (position-aware, since the encoder sees both
    directions).
    """

    name = "brackets"
    target_kind = "token"

    def __init__(self, max_len: int = 16, min_len: int = 2, full_length_prob: float = 0.5):
        _check_lengths(min_len, max_len, full_length_prob)
        if max_len < 2:
            raise ValueError("brackets need max_len >= 2")
        self.min_len = max(2, min_len + min_len % 2)  # round up to even
        self.full_length_prob = full_length_prob
        self._max_even = max_len - max_len % 2
        if self.min_len > self._max_even:
            raise ValueError(f"no even length between min_len={min_len} and max_len={max_len}")
        self._setup(
            [PAD, "(", ")"],
            [str(d) for d in range(max_len // 2 + 1)],
            max_len,
            dict(
                max_len=max_len,
                min_len=min_len,
                full_length_prob=full_length_prob,
            ),
        )

    def generate(self, rng: random.Random) -> Example:
        n = _sample_length(rng, self.min_len, self._max_even, self.full_length_prob, step=2)
        ids: list[int] = []
        depths: list[int] = []
        depth = 0
        for i in range(n):
            left = n - i - 1
            p_open = _dyck_paths(depth + 1, left) / _dyck_paths(depth, left + 1)
            if rng.random() < p_open:
                depth += 1
                ids.append(1)
            else:
                depth -= 1
                ids.append(2)
            depths.append(depth)
        return ids, depths

