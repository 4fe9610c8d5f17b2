"""Run folders on the command line: never overwrite a run by accident, resume only the same run.

* A folder *holds a run* when it has one of :data:`RUN_FILES`. ``train --out DIR`` refuses
  such a folder unless ``--overwrite`` (which deletes the old run's files first) or
  ``--resume``.
* Without ``--out`` a new run goes to the first free ``runs/<task>-<n>``.
* On ``--resume`` the flags that define the model, the task or the optimization
  (:data:`FIXED_ON_RESUME`) must agree with the checkpoint: a flag given with another
  value is an error naming the flag and both values. The others (:data:`CHANGEABLE_ON_RESUME`:
  how long, when to stop, how to log) are applied and saved with the run.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .errors import CLIError

RUN_FILES = ("checkpoint.safetensors", "metrics.jsonl", "summary.json", "metrics.png")

# flag destination -> (where the checkpoint's metadata keeps it, key)
FIXED_ON_RESUME: dict[str, tuple[str, str]] = {
    "task": ("task", "name"),
    "layers": ("model_config", "num_layers"),
    "d_model": ("model_config", "d_model"),
    "heads": ("model_config", "nhead"),
    "ff": ("model_config", "dim_feedforward"),
    "dropout": ("model_config", "dropout"),
    "norm_first": ("model_config", "norm_first"),
    "activation": ("model_config", "activation"),
    "attention": ("model_config", "attention"),
    "block_size": ("model_config", "block_size"),
    "batch_size": ("train_config", "batch_size"),
    "lr": ("train_config", "lr"),
    "optimizer": ("train_config", "optimizer"),
    "schedule": ("train_config", "schedule"),
    "warmup": ("train_config", "warmup"),
    "weight_decay": ("train_config", "weight_decay"),
    "label_smoothing": ("train_config", "label_smoothing"),
    "seed": ("train_config", "seed"),
}
# flag destination -> TrainConfig field
CHANGEABLE_ON_RESUME = {
    "steps": "steps",
    "target_acc": "target_accuracy",
    "eval_every": "eval_every",
    "checkpoint_every": "checkpoint_every",
    "data_parallel": "data_parallel",
}


def flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def holds_run(folder: Path) -> list[str]:
    """The run files in ``folder`` (empty when it holds no run)."""
    return [name for name in RUN_FILES if (folder / name).exists()]


def clear_run(folder: Path) -> None:
    """Delete the files of the run in ``folder`` (``--overwrite``); other files stay."""
    for name in RUN_FILES:
        (folder / name).unlink(missing_ok=True)


def new_run_folder(task: str, root: Path = Path("runs")) -> Path:
    """The first ``runs/<task>-<n>`` (n = 1, 2, ...) that does not exist yet."""
    n = 1
    while (root / f"{task}-{n}").exists():
        n += 1
    return root / f"{task}-{n}"


def check_out_folder(out: Path, args: argparse.Namespace, resumed_from: Path | None = None) -> None:
    """Refuse an ``--out`` that holds another run, unless ``--overwrite`` (then clear it)."""
    if resumed_from is not None and out.resolve() == resumed_from.resolve():
        return
    found = holds_run(out)
    if not found:
        return
    if args.overwrite:
        clear_run(out)
        print(f"--overwrite: deleted the previous run in {out} ({', '.join(found)})")
        return
    resume = f"--resume {out} to continue it, " if resumed_from is None else ""
    raise CLIError(
        f"--out {out} already holds a run ({', '.join(found)}); use {resume}--overwrite to replace it, "
        "or another --out"
    )


def checkpoint_value(meta: dict[str, Any], dest: str) -> Any:
    section, key = FIXED_ON_RESUME[dest]
    return meta.get(section, {}).get(key)


def check_resume_flags(args: argparse.Namespace, meta: dict[str, Any], source: str) -> None:
    """A fixed flag given with a value other than the checkpoint's is one error naming them all."""
    clashes = []
    for dest in FIXED_ON_RESUME:
        given = getattr(args, dest, None)
        if given is None:
            continue
        saved = checkpoint_value(meta, dest)
        if given != saved:
            clashes.append(f"{flag(dest)} {given} (the checkpoint has {saved})")
    if clashes:
        allowed = ", ".join(flag(d) for d in CHANGEABLE_ON_RESUME)
        raise CLIError(
            f"--resume {source}: {'; '.join(clashes)}: a resumed run keeps its model, task and optimizer "
            f"settings; only {allowed}, --device, --out and --no-progress may change (start a new run to "
            "change the others)"
        )


def resume_overrides(args: argparse.Namespace, meta: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The TrainConfig fields the changeable flags set, and one ``name old -> new`` per change."""
    saved = meta.get("train_config", {})
    overrides: dict[str, Any] = {}
    changes: list[str] = []
    for dest, field in CHANGEABLE_ON_RESUME.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        overrides[field] = value
        if saved.get(field) != value:
            changes.append(f"{flag(dest)} {saved.get(field)} -> {value}")
    return overrides, changes
