"""Toy data sets for the encoder: everything is generated here, nothing is downloaded.

Each task is one small class registered with :func:`register_task`; :func:`get_task`
builds one by name. A task makes examples (token ids without padding, and a target)
with Python's ``random.Random`` and :meth:`Task.collate` turns a list of them into a
:class:`Batch` of minigrad tensors, padded with ``pad_id`` (always 0, ``"<pad>"``).

Targets are *class indices* of the output layer (``num_classes`` of them), not token
ids. ``target_kind`` says what they label:

* ``"token"``: one class per position, ``targets`` is ``(B, S)`` with ``ignore_index``
  (-100) where there is no label (padding, unmasked positions for ``mlm``);
* ``"sequence"``: one class per sequence, ``targets`` is ``(B,)``.

Determinism and train/valid separation
--------------------------------------
The examples of a split come from ``random.Random("<task>/<split>/<seed>")`` (a string
seed is hashed with SHA-512 by ``random``, so this is the same on every run and machine),
so the same seed gives the same data and the two splits use different streams.

For the synthetic tasks the two splits are also disjoint *by construction*: every input
sequence belongs to exactly one split, chosen by a CRC-32 hash of its token ids
(``valid_fraction`` = 10% of all possible inputs belong to "valid"). A split's stream
draws candidates and keeps only those of its own part, so no input seen in training is
ever in the validation set, however long training runs, even for small input spaces
where random streams would collide. (The hash is computed on the content tokens, before
a ``<cls>`` token is prepended.) The ``mlm`` task splits its text instead: the help
topics of ``pydoc_data.topics`` are divided into train and valid topics.
"""

from __future__ import annotations

import math
import random
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, TypeVar

import minigrad
from minigrad import Tensor
from minigrad.parallel import even_slices

Target = list[int] | int
Example = tuple[list[int], Target]

PAD = "<pad>"
CLS = "<cls>"
MASK = "<mask>"
UNK = "<unk>"


# ---------------------------------------------------------------------------------------
# Batch
# ---------------------------------------------------------------------------------------
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
            for lo, hi in even_slices(self.size, parts)
        ]


# ---------------------------------------------------------------------------------------
# Task base class and registry
# ---------------------------------------------------------------------------------------
class Task:
    """A toy data set: a vocabulary, a generator of examples and how to batch them.

    Subclasses set the class attributes ``name`` and ``target_kind`` and, in ``__init__``,
    ``vocab``, ``classes`` (a display name per output class), ``max_len`` (longest
    sequence, special tokens included) and ``config`` (the keyword arguments that rebuild
    the task with :func:`get_task`); then they implement :meth:`generate`.
    """

    name: str = ""
    target_kind: str = "token"
    pad_id: int = 0
    ignore_index: int = -100
    valid_fraction: float = 0.1  # share of the input space reserved for validation
    valid_size: int = 512  # examples in the default validation set
    max_tries: int = 10_000  # draws before giving up on finding an example of a split

    vocab: list[str]
    classes: list[str]
    max_len: int
    use_cls: bool = False
    cls_id: int | None = None
    config: dict[str, Any]

    def _setup(self, vocab: list[str], classes: list[str], total_len: int, config: dict[str, Any]) -> None:
        if vocab[0] != PAD:
            raise ValueError(f"vocab[0] must be {PAD!r}")
        self.vocab = list(vocab)
        self.classes = list(classes)
        self.token_to_id = {tok: i for i, tok in enumerate(self.vocab)}
        self.cls_id = self.token_to_id.get(CLS)
        self.max_len = total_len
        self.config = dict(config)
        if self.use_cls and self.cls_id is None:
            raise ValueError(f"task {self.name!r} has no {CLS} token; use_cls=True is not possible")
        specials = {PAD, CLS, MASK, UNK}
        self._token_sep = "" if all(len(t) == 1 for t in self.vocab if t not in specials) else " "
        self._class_sep = "" if all(len(c) == 1 for c in self.classes if c not in specials) else " "

    # ---- sizes -----------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def num_classes(self) -> int:
        """The size of the output layer."""
        return len(self.classes)

    # ---- examples --------------------------------------------------------------------
    def generate(self, rng: random.Random) -> Example:
        """One raw example (content tokens, no ``<cls>``) from the whole input space."""
        raise NotImplementedError(f"{type(self).__name__} must define generate")

    def split_of(self, ids: Sequence[int]) -> str:
        """The split ("train" or "valid") that the input sequence ``ids`` belongs to."""
        h = zlib.crc32(",".join(map(str, ids)).encode("ascii"))
        return "valid" if h % 10_000 < self.valid_fraction * 10_000 else "train"

    def sample(self, rng: random.Random, split: str = "train") -> Example:
        """One example of ``split``: token ids (no padding) and its target(s)."""
        _check_split(split)
        for _ in range(self.max_tries):
            ids, target = self.generate(rng)
            if self.split_of(ids) == split:
                break
        else:
            raise RuntimeError(
                f"task {self.name!r}: no {split} example found in {self.max_tries} draws; "
                "the input space is too small for a train/valid split"
            )
        if self.use_cls:
            assert self.cls_id is not None
            ids = [self.cls_id, *ids]
        return ids, target

    def rng(self, split: str, seed: int = 0) -> random.Random:
        """The generator of ``split``'s example stream for ``seed``."""
        _check_split(split)
        return random.Random(f"{self.name}/{split}/{seed}")

    def examples(self, split: str, n: int, seed: int = 0) -> list[Example]:
        """The first ``n`` examples of ``split``'s stream for ``seed`` (deterministic)."""
        rng = self.rng(split, seed)
        return [self.sample(rng, split) for _ in range(n)]

    def batches(
        self,
        split: str,
        batch_size: int,
        seed: int = 0,
        num_batches: int | None = None,
        device: str | None = None,
    ) -> Iterator[Batch]:
        """Batches of ``split``.

        "train": fresh random batches from the seed's stream, endless unless
        ``num_batches`` is given. "valid": a fixed set, the first ``valid_size`` examples
        (or ``num_batches * batch_size`` of them) of the validation stream, in batches of
        ``batch_size`` (the last one may be smaller).
        """
        _check_split(split)
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if split == "valid":
            n = self.valid_size if num_batches is None else num_batches * batch_size
            examples = self.examples("valid", n, seed)
            for i in range(0, n, batch_size):
                yield self.collate(examples[i : i + batch_size], device=device)
            return
        rng = self.rng("train", seed)
        produced = 0
        while num_batches is None or produced < num_batches:
            yield self.collate([self.sample(rng, "train") for _ in range(batch_size)], device=device)
            produced += 1

    def collate(self, examples: Sequence[Example], device: str | None = None) -> Batch:
        """Pad a list of examples to the longest one and make tensors."""
        if not examples:
            raise ValueError("collate() needs at least one example")
        lengths = [len(ids) for ids, _ in examples]
        width = max(lengths)
        tokens = [list(ids) + [self.pad_id] * (width - len(ids)) for ids, _ in examples]
        mask = [[False] * n + [True] * (width - n) for n in lengths]
        if self.target_kind == "token":
            targets: list[Any] = []
            for (_ids, tgt), n in zip(examples, lengths):
                assert isinstance(tgt, list) and len(tgt) == n, "token targets must have one entry per token"
                targets.append(list(tgt) + [self.ignore_index] * (width - n))
        else:
            targets = [int(tgt) for _, tgt in examples]  # type: ignore[arg-type]
        return Batch(
            tokens=minigrad.tensor(tokens, dtype="int64", device=device),
            targets=minigrad.tensor(targets, dtype="int64", device=device),
            padding_mask=minigrad.tensor(mask, dtype="bool", device=device),
            lengths=lengths,
        )

    # ---- display ---------------------------------------------------------------------
    def decode(self, ids: Sequence[int]) -> str:
        """Token ids as text (padding left out)."""
        return self._token_sep.join(self.vocab[int(i)] for i in ids if int(i) != self.pad_id)

    def decode_target(self, target: Target | Sequence[int]) -> str:
        """A target (or a prediction) as text; positions without a label show as "_"."""
        if isinstance(target, int):
            return self.classes[target]
        return self._class_sep.join("_" if int(t) == self.ignore_index else self.classes[int(t)] for t in target)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


TASKS: dict[str, type[Task]] = {}

T = TypeVar("T", bound=type[Task])


def register_task(cls: T) -> T:
    """Class decorator: add a task to :data:`TASKS` under its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a `name`")
    if cls.name in TASKS:
        raise ValueError(f"task {cls.name!r} is already registered")
    TASKS[cls.name] = cls
    return cls


def get_task(name: str, **kwargs: Any) -> Task:
    """Build the task registered as ``name`` with its keyword arguments."""
    try:
        cls = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}") from None
    return cls(**kwargs)


def _check_split(split: str) -> None:
    if split not in ("train", "valid"):
        raise ValueError(f"split must be 'train' or 'valid', got {split!r}")


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


# ---------------------------------------------------------------------------------------
# Masked language modeling on Python's own help texts
# ---------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _pydoc_topics() -> dict[str, str]:
    """The help topics shipped with Python, whitespace collapsed to single spaces."""
    from pydoc_data.topics import topics

    return {key: " ".join(text.split()) for key, text in topics.items()}


@register_task
class MaskedLMTask(Task):
    """Character-level masked language modeling (BERT style) on ``pydoc_data.topics``.

    The text is Python's interactive help (``help("if")`` ...), shipped with Python. Each
    topic's whitespace is collapsed to single spaces. Topics with identical text are kept
    once; of the remaining topics in sorted key order, every ``valid_every``-th one
    (index % valid_every == valid_every // 2) is validation text, the others training
    text, so the two splits share no topic. Topics of a split are joined by a space.

    Vocabulary: ``<pad>``, ``<unk>``, ``<mask>``, then the sorted characters that occur
    at least ``min_count`` times in the training text; other characters become ``<unk>``.
    An example is a window of ``max_len`` consecutive characters at a random offset.
    Each position is chosen with probability ``mask_prob`` (at least one per window);
    a chosen position becomes ``<mask>`` 80% of the time, a random character 10%, and
    stays unchanged 10%. The targets are the original character ids (classes = vocab)
    at chosen positions and ``ignore_index`` elsewhere.

    To fill in a character the model must use its context on both sides (neighbouring
    letters, the rest of the word, words further away): bidirectional attention.
    """

    name = "mlm"
    target_kind = "token"
    valid_size = 1024

    def __init__(self, max_len: int = 32, mask_prob: float = 0.15, min_count: int = 10, valid_every: int = 10):
        if max_len < 1:
            raise ValueError(f"max_len must be positive, got {max_len}")
        if not 0.0 < mask_prob <= 1.0:
            raise ValueError(f"mask_prob must be in (0, 1], got {mask_prob}")
        if valid_every < 2:
            raise ValueError(f"valid_every must be at least 2, got {valid_every}")
        self.mask_prob = mask_prob
        topics = _pydoc_topics()
        seen: set[str] = set()
        unique = []
        for key in sorted(topics):
            if topics[key] not in seen:
                seen.add(topics[key])
                unique.append(key)
        self.topics: dict[str, list[str]] = {
            "train": [k for i, k in enumerate(unique) if i % valid_every != valid_every // 2],
            "valid": [k for i, k in enumerate(unique) if i % valid_every == valid_every // 2],
        }
        self.texts: dict[str, str] = {split: " ".join(topics[k] for k in keys) for split, keys in self.topics.items()}
        counts = Counter(self.texts["train"])
        chars = sorted(c for c, n in counts.items() if n >= min_count)
        self._setup(
            [PAD, UNK, MASK, *chars],
            [PAD, UNK, MASK, *chars],
            max_len,
            dict(
                max_len=max_len,
                mask_prob=mask_prob,
                min_count=min_count,
                valid_every=valid_every,
            ),
        )
        self.unk_id = self.token_to_id[UNK]
        self.mask_id = self.token_to_id[MASK]
        self._first_char = 3
        self._ids = {split: self.encode(text) for split, text in self.texts.items()}
        for split, ids in self._ids.items():
            if len(ids) < max_len:
                raise ValueError(f"the {split} text ({len(ids)} characters) is shorter than max_len={max_len}")

    def encode(self, text: str) -> list[int]:
        """Character ids of ``text`` (unknown characters -> ``<unk>``)."""
        get = self.token_to_id.get
        return [get(c, self.unk_id) for c in text]

    def generate(self, rng: random.Random) -> Example:
        return self.sample(rng, "train")

    def sample(self, rng: random.Random, split: str = "train") -> Example:
        """A masked window of ``split``'s text: (input ids, original ids or ignore_index)."""
        _check_split(split)
        text = self._ids[split]
        start = rng.randrange(len(text) - self.max_len + 1)
        original = text[start : start + self.max_len]
        chosen = [rng.random() < self.mask_prob for _ in original]
        if not any(chosen):
            chosen[rng.randrange(len(original))] = True
        ids = list(original)
        targets = [self.ignore_index] * len(original)
        for i, c in enumerate(chosen):
            if not c:
                continue
            targets[i] = original[i]
            r = rng.random()
            if r < 0.8:
                ids[i] = self.mask_id
            elif r < 0.9:
                ids[i] = rng.randrange(self._first_char, self.vocab_size)
        return ids, targets

    def unigram_baseline(self, seed: int = 0, n: int | None = None) -> dict[str, float]:
        """How well the training text's character frequencies alone predict masked characters.

        Measured on the masked positions of the validation set (the first ``n`` examples,
        default ``valid_size``, of the validation stream for ``seed``): "accuracy" of
        always predicting the most frequent training character, and "cross_entropy"
        (nats) of predicting the unigram distribution (add-one smoothed over the
        character classes so unseen ones get a little probability); "positions" is the
        number of masked positions scored.
        """
        counts = Counter(self._ids["train"])
        char_ids = range(self._first_char, self.vocab_size)
        if counts.get(self.unk_id, 0):
            char_ids = [self.unk_id, *char_ids]  # type: ignore[assignment]
        total = sum(counts[c] + 1 for c in char_ids)
        logp = {c: math.log((counts[c] + 1) / total) for c in char_ids}
        floor = math.log(1 / total)
        best = max(char_ids, key=lambda c: counts[c])
        hits, nll, positions = 0, 0.0, 0
        for _, targets in self.examples("valid", self.valid_size if n is None else n, seed):
            for t in targets:  # type: ignore[union-attr]
                if t == self.ignore_index:
                    continue
                positions += 1
                hits += t == best
                nll -= logp.get(t, floor)
        return {"accuracy": hits / positions, "cross_entropy": nll / positions, "positions": float(positions)}


__all__: list[str] = [
    "Batch",
    "BracketsTask",
    "CountTask",
    "MajorityTask",
    "MaskedLMTask",
    "ParityTask",
    "ReverseTask",
    "SortTask",
    "TASKS",
    "Task",
    "get_task",
    "register_task",
]
