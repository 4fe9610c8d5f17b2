"""Masked language modeling (BERT style) on Python's own help texts: the ``mlm`` task.

The text comes with Python (``pydoc_data.topics``, what ``help("if")`` shows), so nothing
is downloaded. The two splits share no help topic.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from functools import lru_cache

from .base import MASK, PAD, UNK, Task, check_split, register_task
from .batching import Example


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
        check_split(split)
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
