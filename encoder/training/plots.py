"""The training curves of a run as a picture (needs matplotlib, the ``viz`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minigrad.files import atomic_path


def plot_metrics(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Loss and validation accuracy curves as a PNG (skipped, returning None, without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    steps = [r["step"] for r in rows]
    evals = [r for r in rows if "val_seq_acc" in r]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(steps, [r["loss"] for r in rows], lw=0.8, label="train loss")
    if evals:
        ax1.plot([r["step"] for r in evals], [r["val_loss"] for r in evals], "o-", ms=3, label="valid loss")
        ax2.plot([r["step"] for r in evals], [r["val_token_acc"] for r in evals], "o-", ms=3, label="token acc")
        ax2.plot([r["step"] for r in evals], [r["val_seq_acc"] for r in evals], "s-", ms=3, label="sequence acc")
    ax1.set_xlabel("step")
    ax1.set_yscale("log")
    ax1.legend()
    ax2.set_xlabel("step")
    ax2.set_ylim(0, 1.02)
    if evals:
        ax2.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
