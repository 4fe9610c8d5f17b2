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

The package, one concept a module: :mod:`.batching` (examples and the :class:`Batch`
they are padded into), :mod:`.base` (the :class:`Task` base class and the registry),
:mod:`.synthetic` (the made-up tasks) and :mod:`.masked_lm` (``mlm``).
"""

from .base import TASKS, Task, get_task, register_task
from .batching import Batch

# importing a task module registers its tasks: the synthetic ones first, as listed in TASKS
from .synthetic import BracketsTask, CountTask, MajorityTask, ParityTask, ReverseTask, SortTask  # isort: split

from .masked_lm import MaskedLMTask  # isort: split

# public before the split but not in __all__: the special tokens and the types of an example
from .base import CLS, MASK, PAD, UNK  # noqa: F401
from .batching import Example, Target  # noqa: F401

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
