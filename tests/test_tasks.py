"""The toy data sets of encoder.tasks: shapes, padding, labels, splits and determinism."""

from __future__ import annotations

import ast
import math
import random
from collections import Counter
from pathlib import Path

import pytest

from encoder import tasks as T
from encoder.tasks import TASKS, Batch, Task, get_task, register_task

ALL = ["sort", "reverse", "count", "majority", "parity", "brackets", "mlm"]
SEQUENCE = ["majority", "parity"]


def rows(batch: Batch) -> list[tuple[list[int], list[int] | int, list[bool], int]]:
    """(tokens, targets, padding mask, length) of every sequence, as Python lists."""
    return list(
        zip(batch.tokens.tolist(), batch.targets.tolist(), batch.padding_mask.tolist(), batch.lengths, strict=True)
    )


def digits_of(ids: list[int], offset: int = 1) -> list[int]:
    return [i - offset for i in ids]


@pytest.fixture(scope="module")
def mlm() -> T.MaskedLMTask:
    return get_task("mlm")  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------
def test_registry_has_all_tasks():
    for name in ALL:
        assert name in TASKS
        task = get_task(name)
        assert isinstance(task, TASKS[name])
        assert task.name == name
        assert task.target_kind in ("token", "sequence")
        assert task.vocab[0] == "<pad>" and task.pad_id == 0 and task.ignore_index == -100
        assert task.vocab_size == len(task.vocab) == len(set(task.vocab))
        assert (task.cls_id is not None) == (name in SEQUENCE)
        assert task.target_kind == ("sequence" if name in SEQUENCE else "token")
        assert type(task).__doc__ and len(type(task).__doc__) > 100
        assert get_task(name, **task.config).config == task.config  # config rebuilds the task


def test_unknown_task_lists_known_ones():
    with pytest.raises(ValueError) as err:
        get_task("no-such-task")
    for name in ALL:
        assert name in str(err.value)


def test_register_task_adds_a_small_class():
    @register_task
    class Copy(Task):
        """Copy: the input digits out unchanged."""

        name = "_test_copy"

        def __init__(self, max_len: int = 5):
            self._setup(["<pad>", "a", "b"], ["a", "b"], max_len, {"max_len": max_len})

        def generate(self, rng: random.Random):
            ids = [rng.randrange(1, 3) for _ in range(rng.randrange(1, self.max_len + 1))]
            return ids, [i - 1 for i in ids]

    try:
        task = get_task("_test_copy", max_len=4)
        batch = next(task.batches("train", 16))
        for tok, tgt, _, n in rows(batch):
            assert [t - 1 for t in tok[:n]] == tgt[:n]
        with pytest.raises(ValueError):
            register_task(Copy)
    finally:
        TASKS.pop("_test_copy")


def test_library_imports_neither_numpy_nor_cupy():
    files = sorted(Path(T.__file__).parent.glob("*.py"))  # the encoder.tasks package
    assert {"__init__.py", "batching.py", "masked_lm.py"} <= {f.name for f in files}
    modules = set()
    for node in (n for f in files for n in ast.walk(ast.parse(f.read_text()))):
        if isinstance(node, ast.Import):
            modules |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    assert not modules & {"numpy", "cupy"}


# ---------------------------------------------------------------------------------------
# batches: shapes, padding, masks
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_batch_shapes_and_padding(name):
    task = get_task(name)
    batch = next(task.batches("train", 64, seed=3))
    assert batch.size == 64 == len(batch.lengths)
    width = max(batch.lengths)
    assert width <= task.max_len
    assert batch.tokens.shape == (64, width) and batch.padding_mask.shape == (64, width)
    assert str(batch.tokens.dtype) == "int64" and str(batch.targets.dtype) == "int64"
    assert str(batch.padding_mask.dtype) == "bool"
    if task.target_kind == "token":
        assert batch.targets.shape == (64, width)
    else:
        assert batch.targets.shape == (64,)
    for tok, tgt, pad, n in rows(batch):
        assert pad == [i >= n for i in range(width)]
        assert all(t == task.pad_id for t in tok[n:])
        assert all(0 < t < task.vocab_size for t in tok[:n])  # no padding inside a sequence
        if task.target_kind == "token":
            assert all(t == task.ignore_index for t in tgt[n:])
            assert all(t == task.ignore_index or 0 <= t < task.num_classes for t in tgt[:n])
        else:
            assert 0 <= tgt < task.num_classes


@pytest.mark.parametrize("name", ["sort", "reverse", "count", "majority", "parity", "brackets"])
def test_variable_lengths_use_padding(name):
    task = get_task(name)
    lengths = [len(ids) for ids, _ in task.examples("train", 400)]
    assert min(lengths) < task.max_len and max(lengths) == task.max_len
    assert lengths.count(task.max_len) / len(lengths) > 0.3  # the full length is common
    batch = next(task.batches("train", 64))
    assert any(any(row) for row in batch.padding_mask.tolist())


def test_batch_to_cpu_and_size():
    batch = next(get_task("sort").batches("train", 5))
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and moved.size == 5
    assert moved.tokens.device == "cpu" and moved.padding_mask.device == "cpu"
    assert moved.tokens.tolist() == batch.tokens.tolist()
    assert moved.targets.tolist() == batch.targets.tolist()
    assert moved.padding_mask.tolist() == batch.padding_mask.tolist()
    assert moved.lengths == batch.lengths


def test_collate_pads_to_longest():
    task = get_task("sort")
    batch = task.collate([([3, 1, 2], [0, 1, 2]), ([5, 4], [3, 4])])
    assert batch.tokens.tolist() == [[3, 1, 2], [5, 4, 0]]
    assert batch.targets.tolist() == [[0, 1, 2], [3, 4, -100]]
    assert batch.padding_mask.tolist() == [[False, False, False], [False, False, True]]
    assert batch.lengths == [3, 2]
    seq = get_task("parity").collate([([2, 3], 1), ([3], 1), ([2, 2, 2], 0)])
    assert seq.targets.tolist() == [1, 1, 0] and seq.targets.shape == (3,)


# ---------------------------------------------------------------------------------------
# labels, recomputed independently
# ---------------------------------------------------------------------------------------
def test_sort_targets_are_sorted_inputs():
    task = get_task("sort")
    assert (task.max_len, task.num_classes, task.vocab_size) == (8, 10, 11)
    for split in ("train", "valid"):
        for tok, tgt, _, n in rows(next(task.batches(split, 128))):
            digits = digits_of(tok[:n])
            assert all(0 <= d <= 9 for d in digits)
            assert tgt[:n] == sorted(digits)
            assert all(tgt[i] <= tgt[i + 1] for i in range(n - 1))


def test_sort_parameters():
    task = get_task("sort", max_len=5, min_len=3, num_digits=4)
    assert task.num_classes == 4 and task.max_len == 5
    for ids, tgt in task.examples("train", 200):
        assert 3 <= len(ids) <= 5 and all(1 <= i <= 4 for i in ids)
        assert tgt == sorted(i - 1 for i in ids)
    with pytest.raises(ValueError):
        get_task("sort", max_len=3, min_len=4)


def test_reverse_targets():
    task = get_task("reverse")
    for tok, tgt, _, n in rows(next(task.batches("train", 128))):
        digits = digits_of(tok[:n])
        assert tgt[:n] == [digits[n - 1 - i] for i in range(n)]


def test_count_targets():
    task = get_task("count")
    assert task.num_classes == task.max_len + 1
    seen = set()
    for tok, tgt, _, n in rows(next(task.batches("train", 256))):
        for i in range(n):
            expected = sum(1 for j in range(n) if tok[j] == tok[i])
            assert tgt[i] == expected
            seen.add(expected)
    assert {1, 2, 3} <= seen


def test_brackets_balanced_and_depths():
    task = get_task("brackets")
    assert task.num_classes == task.max_len // 2 + 1
    open_id, close_id = task.vocab.index("("), task.vocab.index(")")
    depths_seen = set()
    for tok, tgt, _, n in rows(next(task.batches("train", 256))):
        assert n % 2 == 0
        s = task.decode(tok[:n])
        assert set(s) <= {"(", ")"} and len(s) == n
        stack: list[str] = []
        for ch in s:  # balanced: every ")" closes an open "("
            if ch == "(":
                stack.append(ch)
            else:
                assert stack
                stack.pop()
        assert not stack
        expected = [tok[: i + 1].count(open_id) - tok[: i + 1].count(close_id) for i in range(n)]
        assert tgt[:n] == expected
        depths_seen.update(expected)
    assert max(depths_seen) >= 3


def test_brackets_uniform_over_balanced_strings():
    task = get_task("brackets", max_len=6, min_len=6)
    counts = Counter(task.decode(ids) for ids, _ in task.examples("train", 3000))
    # the 5 balanced strings of length 6, minus those reserved for validation
    assert all(task.split_of(task.token_to_id.get(c) for c in s) == "train" for s in counts)
    assert 3 <= len(counts) <= 5
    expected = 3000 / len(counts)
    assert all(abs(c - expected) < 0.15 * expected for c in counts.values())


def test_majority_labels():
    task = get_task("majority")
    for tok, tgt, _, n in rows(next(task.batches("train", 256))):
        counts = Counter(digits_of(tok[:n], offset=2))
        top = max(counts.values())
        winners = [d for d, c in counts.items() if c == top]
        assert winners == [tgt]  # unique most frequent digit


def test_parity_labels():
    task = get_task("parity")
    assert task.num_classes == 2
    labels = []
    for tok, tgt, _, n in rows(next(task.batches("train", 256))):
        bits = task.decode(tok[:n])
        assert set(bits) <= {"0", "1"}
        assert tgt == bits.count("1") % 2
        labels.append(tgt)
    assert 0.3 < sum(labels) / len(labels) < 0.7


@pytest.mark.parametrize("name", SEQUENCE)
def test_use_cls_prepends_cls(name):
    plain = get_task(name)
    cls = get_task(name, use_cls=True)
    assert cls.cls_id == plain.cls_id == plain.vocab.index("<cls>")
    assert cls.max_len == plain.max_len + 1
    a = plain.examples("train", 50, seed=1)
    b = cls.examples("train", 50, seed=1)
    assert b == [([cls.cls_id, *ids], tgt) for ids, tgt in a]
    batch = next(cls.batches("valid", 32))
    assert all(row[0] == cls.cls_id for row in batch.tokens.tolist())
    assert max(batch.lengths) <= cls.max_len
    assert cls.decode(b[0][0]).startswith("<cls>")


# ---------------------------------------------------------------------------------------
# determinism and splits
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_deterministic(name):
    task = get_task(name)

    def take(split, seed, n=3):
        out = []
        for b in task.batches(split, 16, seed=seed, num_batches=n):
            out.append((b.tokens.tolist(), b.targets.tolist(), b.padding_mask.tolist(), b.lengths))
        return out

    assert take("train", 0) == take("train", 0)
    assert take("train", 0) != take("train", 1)
    assert take("valid", 0) == take("valid", 0)
    assert take("valid", 0) != take("train", 0)
    assert get_task(name).examples("train", 20, seed=7) == task.examples("train", 20, seed=7)


def test_train_batches_are_endless_or_counted():
    task = get_task("sort")
    assert len(list(task.batches("train", 8, num_batches=5))) == 5
    it = task.batches("train", 8)
    for _ in range(100):
        next(it)
    # consecutive train batches are consecutive examples of the stream
    first = [tok for b in task.batches("train", 4, seed=2, num_batches=2) for tok in b.tokens.tolist()]
    ex = task.examples("train", 8, seed=2)
    assert [t[: len(ids)] for t, (ids, _) in zip(first, ex)] == [ids for ids, _ in ex]


def test_valid_set_is_fixed():
    task = get_task("sort")
    batches = list(task.batches("valid", 100))
    assert sum(b.size for b in batches) == task.valid_size
    assert len(batches) == math.ceil(task.valid_size / 100)
    again = list(task.batches("valid", 100))
    assert [b.tokens.tolist() for b in batches] == [b.tokens.tolist() for b in again]
    assert sum(b.size for b in task.batches("valid", 10, num_batches=3)) == 30


@pytest.mark.parametrize("name", ["sort", "parity", "majority", "brackets", "count", "reverse"])
def test_train_and_valid_do_not_overlap(name):
    task = get_task(name)
    train = {tuple(ids) for ids, _ in task.examples("train", 500)}
    valid = {tuple(ids) for ids, _ in task.examples("valid", 500)}
    assert not train & valid
    assert all(task.split_of(ids) == "valid" for ids in valid)


def test_bad_split_raises():
    task = get_task("sort")
    with pytest.raises(ValueError):
        task.examples("test", 3)
    with pytest.raises(ValueError):
        next(task.batches("test", 3))


def test_decode():
    sort = get_task("sort")
    ids, tgt = [4, 2, 3, 0], [1, 2, 3, -100]
    assert sort.decode(ids) == "312"
    assert sort.decode_target(tgt) == "123_"
    assert get_task("count", max_len=12).decode_target([1, 12]) == "1 12"
    assert get_task("parity").decode_target(1) == "odd"
    assert get_task("majority").decode_target(3) == "3"


# ---------------------------------------------------------------------------------------
# masked language modeling
# ---------------------------------------------------------------------------------------
def test_mlm_vocab_deterministic(mlm):
    other = T.MaskedLMTask()
    assert other.vocab == mlm.vocab
    assert mlm.vocab[:3] == ["<pad>", "<unk>", "<mask>"]
    chars = mlm.vocab[3:]
    assert chars == sorted(chars) and all(len(c) == 1 for c in chars)
    assert " " in chars and "e" in chars and "\n" not in chars
    assert mlm.num_classes == mlm.vocab_size
    assert mlm.vocab[mlm.mask_id] == "<mask>" and mlm.cls_id is None


def test_mlm_decode_round_trip(mlm):
    text = "def f(x): return x + 1  # sum"
    assert mlm.decode(mlm.encode(text)) == text
    assert mlm.encode("\x00") == [mlm.unk_id]
    ids, tgt = mlm.examples("train", 1)[0]
    original = [t if t != mlm.ignore_index else i for i, t in zip(ids, tgt)]
    assert len(mlm.decode(original)) >= mlm.max_len


def test_mlm_train_valid_text_disjoint(mlm):
    train, valid = set(mlm.topics["train"]), set(mlm.topics["valid"])
    assert train and valid and not train & valid
    assert 0.03 < len(mlm.texts["valid"]) / len(mlm.texts["train"]) < 0.3
    from pydoc_data.topics import topics

    train_texts = {topics[k] for k in train}
    valid_texts = {topics[k] for k in valid}
    assert not train_texts & valid_texts  # no topic text (some topics share one) is in both
    assert train_texts | valid_texts == set(topics.values())  # every text is used


def test_mlm_masking(mlm):
    chosen = total = masked = unchanged = 0
    for split in ("train", "valid"):
        text = mlm.decode(mlm.encode(mlm.texts[split]))
        for ids, tgt in mlm.examples(split, 1000, seed=5):
            assert len(ids) == len(tgt) == mlm.max_len
            original = [t if t != mlm.ignore_index else i for i, t in zip(ids, tgt)]
            assert mlm.decode(original) in text  # windows come from the split's own text
            assert any(t != mlm.ignore_index for t in tgt)
            for i, t in zip(ids, tgt):
                total += 1
                if t == mlm.ignore_index:
                    assert i != mlm.mask_id  # unchosen positions are untouched
                    continue
                chosen += 1
                masked += i == mlm.mask_id
                unchanged += i == t
    assert abs(chosen / total - 0.15) < 0.01
    assert abs(masked / chosen - 0.8) < 0.02
    assert abs(unchanged / chosen - 0.1) < 0.02
    batch = next(mlm.batches("train", 8))
    assert batch.tokens.shape == (8, mlm.max_len)


def test_mlm_unigram_baseline(mlm):
    base = mlm.unigram_baseline()
    assert 0.05 < base["accuracy"] < 0.5
    assert 1.0 < base["cross_entropy"] < math.log(mlm.vocab_size)
    assert base["positions"] > 1000
    assert mlm.unigram_baseline() == base
