"""The task base class and the registry of tasks by name.

Each task is one small subclass of :class:`Task` registered with :func:`register_task`;
:func:`get_task` builds one by name. A task makes examples (token ids without padding,
and a target) with Python's ``random.Random``, and :meth:`Task.collate` turns a list of
them into a :class:`~encoder.tasks.batching.Batch`.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from .batching import Batch, Example, Target, collate

PAD = "<pad>"
CLS = "<cls>"
MASK = "<mask>"
UNK = "<unk>"


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
        check_split(split)
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
        check_split(split)
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
        check_split(split)
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
        return collate(
            examples, pad_id=self.pad_id, ignore_index=self.ignore_index, target_kind=self.target_kind, device=device
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


def check_split(split: str) -> None:
    """Raise ValueError unless ``split`` is "train" or "valid"."""
    if split not in ("train", "valid"):
        raise ValueError(f"split must be 'train' or 'valid', got {split!r}")


# ---------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------
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
