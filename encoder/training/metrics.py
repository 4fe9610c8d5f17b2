"""What the training loop measures and logs: accuracy counts per batch, the JSONL metrics log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import minigrad.functional as F
from minigrad import Tensor
from minigrad.files import write_atomic

from ..tasks import Batch


def batch_metrics(logits: Tensor, batch: Batch, ignore_index: int) -> dict[str, float]:
    """Accuracy counts for one batch: correct/total labelled tokens and whole sequences."""
    pred = F.argmax(logits, -1)
    target = batch.targets
    if target.ndim == 1:  # one label per sequence
        correct = float(F.sum(F.cast(pred == target, "int64")).item())
        n = float(target.shape[0])
        return {"tok_correct": correct, "tok_total": n, "seq_correct": correct, "seq_total": n}
    labelled = target != ignore_index
    hit = (pred == target) & labelled
    ok_positions = F.sum(F.cast(hit | ~labelled, "int64"), -1)  # per sequence
    return {
        "tok_correct": float(F.sum(F.cast(hit, "int64")).item()),
        "tok_total": float(F.sum(F.cast(labelled, "int64")).item()),
        "seq_correct": float(F.sum(F.cast(ok_positions == target.shape[1], "int64")).item()),
        "seq_total": float(target.shape[0]),
    }


class MetricsLog:
    """Appends one JSON object per line (JSONL) and flushes, so a crash loses nothing written."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def start(self, step: int) -> None:
        """Keep the rows of steps <= ``step`` (a resumed run) and drop the rest (a fresh run keeps none)."""
        kept: list[dict[str, Any]] = []
        if self.path is not None and self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash
                if row.get("step", 0) <= step:
                    kept.append(row)
            write_atomic(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
        self.rows = kept

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(row, sort_keys=True) + "\n")
