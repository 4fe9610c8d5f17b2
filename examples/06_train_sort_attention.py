"""06 - Train a small encoder to sort digits, then look at what its attention does.

Sorting needs every position to compare itself with every other one (how many digits are
smaller than mine?) and to fetch a digit from wherever it sits: all-pairs, content-based
routing, which is what attention is for. ``encoder.training.Trainer`` runs the loop
(AdamW, warmup + cosine schedule, gradient clipping, validation on held-out sequences).

Afterwards ``encoder.attention_maps.collect_attention`` runs one validation example with
each layer's attention weights kept, and backpropagates the loss to them, so the
pictures show both what each head looks at and d loss / d weight: where the loss would
like more (blue, negative) or less (red, positive) attention.

Run:  python examples/06_train_sort_attention.py [--out DIR]      (about 10 s on a laptop CPU)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import minigrad
from encoder.tasks import get_task
from encoder.training import TrainConfig, Trainer, model_config_for


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="examples_out", help="folder for the attention maps (default examples_out/)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default 600; 60 in quick mode)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    quick = os.environ.get("MINIGRAD_EXAMPLES_QUICK") == "1"
    steps = args.steps if args.steps is not None else (60 if quick else 600)

    # ---- 1. the task and the model ------------------------------------------------------------
    task = get_task("sort", max_len=8, min_len=4)  # 4 to 8 digits 0-9, padded to the longest
    model_config = model_config_for(
        task, d_model=32, nhead=4, num_layers=2, dim_feedforward=64, dropout=0.0, norm_first=True
    )  # pre-LN: it tolerates a high learning rate (see example 07)
    config = TrainConfig(
        task="sort",
        task_kwargs=task.config,
        steps=steps,
        batch_size=32,
        lr=1e-2,
        warmup=max(steps // 10, 1),
        eval_every=max(steps // 4, 1),
        eval_batches=4,  # 128 held-out sequences
        progress=False,
        seed=0,
    )
    trainer = Trainer(config, model_config, task)
    print(f"sort: {task}; model: {trainer.model.num_parameters():,} parameters, {steps} steps")

    evals: list[dict] = []

    def report(row: dict) -> None:
        if "val_token_acc" in row:
            evals.append(row)
            print(f"  step {row['step']:4d}  loss {row['loss']:.3f}  valid token acc {row['val_token_acc']:.3f}  "
                  f"sequence acc {row['val_seq_acc']:.3f}")

    summary = trainer.train(callback=report)
    chance = 1.0 / task.num_classes  # guessing one of the 10 digits
    print(f"final: valid token accuracy {summary['val_token_acc']:.3f} (chance {chance:.2f}), "
          f"whole sequences right {summary['val_seq_acc']:.3f}")

    # ---- 2. one held-out example --------------------------------------------------------------------
    from encoder.attention_maps import collect_attention, plot_attention

    # a few validation sequences padded to a common length; show the first shorter one, so
    # the padded keys (weight exactly 0) are visible too
    batch = task.collate(task.examples("valid", 8, seed=0))
    row = next((i for i, n in enumerate(batch.lengths) if n < task.max_len), 0)
    ids = batch.tokens.tolist()[row]
    prediction = trainer.predict(batch).tolist()[row]
    n = batch.lengths[row]
    shown = {
        "input": task.decode(ids),
        "target": task.decode_target(batch.targets.tolist()[row][:n]),
        "prediction": task.decode_target(prediction[:n]),
        "digits": n,
        "padding": len(ids) - n,
    }
    print(f"\ninput      {shown['input']}   ({n} digits, {shown['padding']} padding)")
    print(f"target     {shown['target']}")
    print(f"prediction {shown['prediction']}")

    trainer.model.eval()
    maps = collect_attention(trainer.model, batch.tokens, batch.padding_mask, targets=batch.targets)
    labels = [task.vocab[i] for i in ids]
    pictures = []
    for i, (weights, grads) in enumerate(maps):
        try:
            path = plot_attention(
                weights[row], tokens=labels, grads=grads[row], path=out / f"06_attention_layer{i}.png",
                title=f"sort, layer {i}: attention weights (top), d loss / d weight (bottom)",
            )
        except ImportError as exc:  # matplotlib is optional
            print(f"(no picture: {exc})")
            break
        pictures.append(path)
        print(f"wrote {path}")
    w = maps[0][0][row]  # (heads, queries, keys) of layer 0, a NumPy array
    row_sums = w[:, :n].sum(-1)  # the rows of the real queries
    padded_max = float(w[:, :, n:].max()) if n < len(ids) else None  # None: no padded key to look at
    print(f"layer 0 weights {w.shape} (heads, queries, keys): rows sum to {float(row_sums.min()):.3f} "
          f"to {float(row_sums.max()):.3f}; largest weight on a padded key: "
          + ("(no padding)" if padded_max is None else f"{padded_max:.1f}"))

    return {
        "num_parameters": trainer.model.num_parameters(),
        "vocab_size": task.vocab_size,
        "evals": [
            {k: r[k] for k in ("step", "loss", "val_token_acc", "val_seq_acc")} for r in evals
        ],
        "shown": shown,
        "layer0_weights_shape": tuple(w.shape),
        "layer0_row_sums": (float(row_sums.min()), float(row_sums.max())),
        "layer0_padded_max_weight": padded_max,
        "token_acc": summary["val_token_acc"],
        "seq_acc": summary["val_seq_acc"],
        "chance": chance,
        "steps": summary["step"],
        "pictures": pictures,
        "num_layers": len(maps),
        "device": minigrad.get_default_device(),
    }


if __name__ == "__main__":
    main()
