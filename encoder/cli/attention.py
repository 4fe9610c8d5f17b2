"""The ``attention`` command: draw each head's attention weights for one example, in one picture.

    python -m encoder attention --checkpoint runs/sort --example 0 --grads --out attn.png

``--example N`` is the N-th example that ``predict`` shows (same seed). The picture has a
row of heads per layer (and one of d loss / d weights per layer with ``--grads``), a title
naming the checkpoint, its task and step, the layers and the example, a colour scale per
map (``--scale fixed`` for 0-1 everywhere), and at most ``--max-tokens`` tokens.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..tasks import Batch
from ..training import Trainer
from .common import PREDICT_SEED, load_trainer, missing_extra, validation_examples
from .errors import CLIError


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {value!r}") from None


def register(sub: Any) -> None:
    p = sub.add_parser(
        "attention",
        help="draw each head's attention weights for one validation example",
        description="Draw each head's attention weights (and with --grads d loss / d weights) for one example, "
        "every layer in one picture.",
    )
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or run folder")
    p.add_argument("--example", type=_int, default=0, help="the N-th example that `predict` shows (default 0)")
    p.add_argument("--text", default=None, help="mlm only: a text to encode instead of an example")
    p.add_argument("--layer", type=_int, default=None, help="only this layer (default: every layer)")
    p.add_argument("--grads", action="store_true", help="also draw dLoss/dweights")
    p.add_argument("--scale", choices=("per-map", "fixed"), default="per-map",
                   help="colour scale: per-map (0 to each map's largest weight, default) or fixed (0-1)")
    p.add_argument("--max-tokens", type=_int, default=32, help="draw at most the first N tokens (default 32)")
    p.add_argument("--out", default="attn.png", help="picture file, .png, .svg or .pdf (default attn.png)")
    p.set_defaults(func=cmd_attention)


def _batch(trainer: Trainer, args: argparse.Namespace) -> tuple[Batch, str]:
    task = trainer.task
    if args.text is not None:
        if task.name != "mlm":
            raise CLIError(f"--text works with mlm checkpoints only (this one is {task.name}); use --example N")
        ids = task.encode(args.text)[: task.max_len]
        return task.collate([(ids, [task.ignore_index] * len(ids))], device=trainer.device), f"text {args.text!r}"
    if args.example < 0:
        raise CLIError(f"--example must be >= 0 (the N-th example `predict` shows), got {args.example}")
    example = validation_examples(task, args.example + 1, PREDICT_SEED)[args.example]
    shown = task.decode(example[0])
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return task.collate([example], device=trainer.device), f"example {args.example} ({shown})"


def cmd_attention(args: argparse.Namespace) -> int:
    from ..attention_maps import collect_attention, plot_attention_layers

    if args.max_tokens < 1:
        raise CLIError(f"--max-tokens must be >= 1, got {args.max_tokens}")
    if not args.out.lower().endswith((".png", ".svg", ".pdf")):
        raise CLIError(f"--out must end in .png, .svg or .pdf, got {args.out!r}")
    trainer = load_trainer(args.checkpoint)
    layers = len(trainer.model.encoder.layers)
    if args.layer is not None and not 0 <= args.layer < layers:
        raise CLIError(f"--layer must be in [0, {layers}) for this {layers}-layer model, got {args.layer}")
    batch, what = _batch(trainer, args)
    targets = batch.targets if args.grads else None
    maps = collect_attention(trainer.model, batch.tokens, batch.padding_mask, targets=targets, layer=args.layer)
    chosen = list(range(layers)) if args.layer is None else [args.layer]
    labels = [trainer.task.vocab[i] for i in batch.tokens.tolist()[0]]
    which = f"layer {chosen[0]}" if len(chosen) == 1 else f"layers 0-{layers - 1}"
    title = f"{args.checkpoint}: {trainer.task.name}, step {trainer.step}, {which}, {what}"
    try:
        written = plot_attention_layers(
            [(w[0], None if g is None else g[0]) for w, g in maps],
            tokens=labels,
            path=args.out,
            title=title,
            layer_names=[f"layer {i}" for i in chosen],
            scale=args.scale,
            max_tokens=args.max_tokens,
        )
    except ImportError:
        raise CLIError(f"attention draws with matplotlib: {missing_extra('plot', 'matplotlib')}") from None
    print(f"wrote {written}: {what}, {which}{', with d loss / d weights' if args.grads else ''}")
    return 0
