"""The ``explore`` command: one self-contained HTML page for studying backprop through the encoder.

    python -m encoder explore --out page.html                       # a small untrained model
    python -m encoder explore --checkpoint runs/demo --example 3 --out page.html
    python -m encoder explore --view expanded --out page.html       # the graph shows every op first

The page (:func:`minigrad.viz.explore`) holds one validation example's forward pass and the
backward pass of its cross-entropy loss: the graph with every node clickable, the backward
replay, the attention maps with their gradients and the parameters' gradients. It works
offline (open the file in a browser). ``make demo`` writes ``runs/demo/explore.html`` with
:func:`write_explore_page`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import minigrad

from .errors import CLIError

# the collapsed view keeps model -> encoder -> layers.N open: one node per sublayer of each layer
COLLAPSE_DEPTH = 3
SMALL = dict(d_model=32, nhead=2, num_layers=2, dim_feedforward=64, dropout=0.0)  # the model without --checkpoint


def register(subparsers: Any) -> None:
    """Add the ``explore`` command to the ``python -m encoder`` parser."""
    p = subparsers.add_parser(
        "explore",
        help="write one offline HTML page to explore the forward and backward pass of one example",
        description="Run one validation example through a model, backpropagate its loss and write an "
        "offline HTML page: the clickable graph, the backward replay, attention maps and their gradients.",
    )
    p.add_argument("--checkpoint", default=None, help="run folder or checkpoint (default: a small untrained model)")
    p.add_argument("--example", type=int, default=0, help="which validation example (default 0)")
    p.add_argument("--view", choices=("collapsed", "expanded"), default="collapsed", help="the graph shown first")
    p.add_argument("--out", default="explore.html", help="the page to write, .html (default explore.html)")
    p.set_defaults(func=run_explore)


def _small_trainer() -> Any:
    from ..tasks import get_task
    from ..training import TrainConfig, Trainer, model_config_for

    task = get_task("sort")
    minigrad.manual_seed(0)
    return Trainer(TrainConfig(task=task.name, progress=False), model_config_for(task, **SMALL), task)


def _load(path: str) -> Any:
    from ..checkpoint import CheckpointError
    from ..training import Trainer

    try:
        return Trainer.from_checkpoint(path, progress=False)
    except CheckpointError as exc:
        raise CLIError(str(exc)) from None


def explore_trainer(trainer: Any, example: int = 0, view: str = "collapsed", title: str | None = None) -> Any:
    """:func:`minigrad.viz.explore` of ``trainer``'s model on validation example ``example``.

    The loss is the trainer's (cross-entropy over the labelled positions); the model runs in
    eval mode (no dropout) and is left in the mode it was in.
    """
    from minigrad import viz

    task = trainer.task
    if example < 0:
        raise CLIError(f"--example must be >= 0, got {example}")
    examples = task.examples("valid", example + 1, seed=0)
    if example >= len(examples):
        raise CLIError(f"--example must be below {len(examples)} (the validation examples), got {example}")
    batch = task.collate([examples[example]], device=trainer.device)
    labels = [str(task.vocab[i]) for i in batch.tokens.tolist()[0]]
    model = trainer.model
    was_training = model.training
    model.eval()
    try:
        return viz.explore(
            model,
            batch.tokens,
            batch.padding_mask,
            loss=lambda logits: trainer.loss(logits, batch),
            tokens=labels,
            view=view,
            depth=COLLAPSE_DEPTH,
            title=title or f"{task.name} example {example}: {' '.join(labels)}",
        )
    finally:
        model.train(was_training)


def write_explore_page(trainer: Any, path: str | Path, example: int = 0, view: str = "collapsed") -> Path:
    """Write the explorer page of ``trainer``'s model on one validation example; returns the path."""
    return explore_trainer(trainer, example, view).save(path)


def run_explore(args: argparse.Namespace) -> int:
    """Write the page as the parsed arguments say and print where it went."""
    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise CLIError(f"--out must end in .html; got {args.out!r}")
    if args.example < 0:
        raise CLIError(f"--example must be >= 0, got {args.example}")
    if args.checkpoint is None:
        trainer = _small_trainer()
        print("no --checkpoint: exploring a small untrained model on the sort task")
    else:
        trainer = _load(args.checkpoint)
    try:
        written = write_explore_page(trainer, out, args.example, args.view)
    except OSError as exc:
        raise CLIError(f"cannot write {args.out}: {exc}") from exc
    print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB); open it in a browser")
    return 0


def demo_page(trainer: Any, out: str | Path) -> str:
    """``make demo``'s explorer page, ``OUT/explore.html``; returns the line to print."""
    path = write_explore_page(trainer, Path(out) / "explore.html")
    return f"wrote the explorer page {path}: open it in a browser to click through forward and backward"
