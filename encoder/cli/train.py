"""The ``train``, ``eval``, ``predict``, ``attention`` and ``demo`` commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import minigrad

from ..checkpoint import CheckpointError
from ..tasks import TASKS, Batch, get_task
from ..training import OPTIMIZERS, SCHEDULES, TrainConfig, Trainer, model_config_for
from .errors import CLIError

DEMO = dict(task="sort", d_model=64, nhead=4, num_layers=2, dim_feedforward=128, dropout=0.0)


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return n


def _device(name: str) -> str:
    """Check a device flag early: `--device cuda` without a GPU is a one-line error."""
    try:
        minigrad.backend.get_backend(name)
    except minigrad.BackendError as exc:
        raise CLIError(str(exc)) from None
    return minigrad.backend.normalize_device(name)


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--layers", type=_positive, default=2, help="encoder layers (default 2)")
    g.add_argument("--d-model", type=_positive, default=64, help="model width (default 64)")
    g.add_argument("--heads", type=_positive, default=4, help="attention heads; must divide d-model (default 4)")
    g.add_argument("--ff", type=_positive, default=None, help="feed-forward width (default 2 * d-model)")
    g.add_argument("--dropout", type=float, default=0.0, help="dropout probability (default 0)")
    g.add_argument("--norm-first", action="store_true", help="pre-LN instead of the original post-LN")
    g.add_argument("--activation", choices=("relu", "gelu"), default="relu")
    g.add_argument("--attention", choices=("naive", "flash"), default="naive", help="flash: FlashAttention")
    g.add_argument("--block-size", type=_positive, default=128, help="flash attention's block size (default 128)")


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--steps", type=_positive, default=3000, help="optimizer steps (default 3000)")
    g.add_argument("--batch-size", type=_positive, default=64)
    g.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default 2e-3)")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw")
    g.add_argument("--schedule", choices=SCHEDULES, default="cosine", help="lr schedule (default cosine)")
    g.add_argument("--warmup", type=int, default=200, help="warmup steps (default 200)")
    g.add_argument("--weight-decay", type=float, default=0.01)
    g.add_argument("--label-smoothing", type=float, default=0.0)
    g.add_argument("--eval-every", type=_positive, default=250)
    g.add_argument("--target-acc", type=float, default=None, help="stop when validation accuracy reaches this")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    g.add_argument(
        "--data-parallel",
        type=_positive,
        default=1,
        metavar="N",
        help="cut each batch into N chunks run on CPU threads (default 1: off)",
    )
    g.add_argument("--out", default=None, help="run folder, e.g. runs/NAME (metrics, plot, checkpoint)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on a toy task", description="Train a model on a toy task.")
    p.add_argument("--task", default="sort", help=f"one of {', '.join(sorted(TASKS))} (default sort)")
    _add_model_flags(p)
    _add_train_flags(p)
    p.add_argument("--resume", default=None, help="continue from this checkpoint (same run, more --steps)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint on validation data")
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or run folder")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="show inputs, targets and predictions side by side")
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or run folder")
    p.add_argument("--n", type=_positive, default=5, help="how many examples (default 5)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("attention", help="draw each head's attention weights for one validation example")
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or run folder")
    p.add_argument("--example", type=int, default=0, help="index of the validation example (default 0)")
    p.add_argument("--text", default=None, help="mlm only: a text to encode instead of an example")
    p.add_argument("--layer", type=int, default=None, help="only this layer (default: all)")
    p.add_argument("--grads", action="store_true", help="also draw dLoss/dweights")
    p.add_argument("--out", default="attn.png", help="PNG path (default attn.png; one file per layer)")
    p.set_defaults(func=cmd_attention)

    p = sub.add_parser(
        "demo",
        help="train the default model on sort, show predictions, draw one layer's graph",
        description="The main job: train a small encoder on `sort` on the CPU, print progress and the result, "
        "and write the graph of one encoder layer.",
    )
    p.add_argument("--steps", type=_positive, default=6000, help="at most this many steps (default 6000)")
    p.add_argument("--target-acc", type=float, default=0.99, help="stop at this validation accuracy (default 0.99)")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)


# ---- helpers ---------------------------------------------------------------------------------
def _train_config(args: argparse.Namespace, task: str, device: str) -> TrainConfig:
    return TrainConfig(
        task=task,
        steps=args.steps,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        schedule=args.schedule,
        warmup=args.warmup,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        eval_every=args.eval_every,
        target_accuracy=args.target_acc,
        seed=args.seed,
        device=device,
        out=args.out,
        progress=not args.no_progress,
        data_parallel=args.data_parallel,
    )


def _load(path: str, **overrides: Any) -> Trainer:
    overrides = {"progress": False, **overrides}
    try:
        return Trainer.from_checkpoint(path, **overrides)
    except CheckpointError as exc:
        raise CLIError(str(exc)) from None


def _print_summary(summary: dict[str, Any]) -> None:
    print(
        f"step {summary['step']}: validation loss {summary['val_loss']:.4f}, "
        f"token accuracy {summary['val_token_acc']:.4f}, sequence accuracy {summary['val_seq_acc']:.4f}"
    )


def show_predictions(trainer: Trainer, n: int, seed: int = 1) -> None:
    """Print inputs, targets and predictions of ``n`` validation examples side by side."""
    task = trainer.task
    examples = task.examples("valid", n, seed=seed)
    batch = task.collate(examples, device=trainer.device)
    pred = trainer.predict(batch).tolist()
    width = max(len(task.decode(ex[0])) for ex in examples) + 2
    print(f"{'input':<{width}}  {'target':<{width}}  prediction")
    for i, (ids, target) in enumerate(examples):
        if isinstance(target, int):
            shown, mark = task.decode_target(pred[i]), pred[i] == target
        else:
            length = len(target)
            p = [pred[i][j] if target[j] != task.ignore_index else task.ignore_index for j in range(length)]
            shown, mark = task.decode_target(p), p == list(target)
        verdict = "ok" if mark else "WRONG"
        print(f"{task.decode(ids):<{width}}  {task.decode_target(target):<{width}}  {shown}  {verdict}")


# ---- commands ---------------------------------------------------------------------------------
def acceleration_line() -> str:
    """One line: what minigrad runs (the acceleration's parts, or the reference ops)."""
    if minigrad.accel.is_enabled():
        return f"minigrad: {minigrad.accel.summary()} (--no-accel for the reference ops)"
    return "minigrad: the reference ops (--no-accel)"


def cmd_train(args: argparse.Namespace) -> int:
    device = _device(args.device)
    if args.resume:
        resume = Path(args.resume)
        out = args.out or str(resume if resume.is_dir() else resume.parent)  # by default the same run folder
        trainer = _load(args.resume, steps=args.steps, out=out, progress=not args.no_progress, device=device)
        print(f"resuming {trainer.task.name} from step {trainer.step}")
    else:
        try:
            task = get_task(args.task)
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        if args.d_model % args.heads:
            raise CLIError(f"--d-model {args.d_model} is not divisible by --heads {args.heads}")
        if not 0.0 <= args.dropout < 1.0:
            raise CLIError(f"--dropout must be in [0, 1), got {args.dropout}")
        if args.lr <= 0:
            raise CLIError(f"--lr must be positive, got {args.lr}")
        if args.attention == "flash" and args.dropout > 0:
            raise CLIError(f"--attention flash does not support --dropout {args.dropout}; use --attention naive")
        model_config = model_config_for(
            task,
            d_model=args.d_model,
            nhead=args.heads,
            num_layers=args.layers,
            dim_feedforward=args.ff or 2 * args.d_model,
            dropout=args.dropout,
            norm_first=args.norm_first,
            activation=args.activation,
            attention=args.attention,
            block_size=args.block_size,
        )
        trainer = Trainer(_train_config(args, task.name, device), model_config, task)
    print(f"{trainer.task.name}: {trainer.model.num_parameters():,} parameters on {trainer.device}")
    print(acceleration_line())
    summary = trainer.train()
    _print_summary(summary)
    if trainer.out is not None:
        print(f"wrote {trainer.out}/checkpoint.safetensors, metrics.jsonl, summary.json")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    overrides = {"device": _device(args.device)} if args.device else {}
    trainer = _load(args.checkpoint, **overrides)
    result = trainer.evaluate()
    print(json.dumps({"task": trainer.task.name, "step": trainer.step, **result}, indent=2))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    overrides = {"device": _device(args.device)} if args.device else {}
    trainer = _load(args.checkpoint, **overrides)
    show_predictions(trainer, args.n, args.seed)
    return 0


def _attention_batch(trainer: Trainer, args: argparse.Namespace) -> Batch:
    task = trainer.task
    if args.text is not None:
        if task.name != "mlm":
            raise CLIError("--text works with mlm checkpoints only; use --example N")
        ids = task.encode(args.text)[: task.max_len]
        return task.collate([(ids, [task.ignore_index] * len(ids))], device=trainer.device)
    if args.example < 0:
        raise CLIError(f"--example must be >= 0, got {args.example}")
    examples = task.examples("valid", args.example + 1, seed=0)
    return task.collate([examples[args.example]], device=trainer.device)


def cmd_attention(args: argparse.Namespace) -> int:
    from ..attention_maps import collect_attention, plot_attention

    trainer = _load(args.checkpoint)
    batch = _attention_batch(trainer, args)
    layers = len(trainer.model.encoder.layers)
    if args.layer is not None and not 0 <= args.layer < layers:
        raise CLIError(f"--layer must be in [0, {layers}), got {args.layer}")
    targets = batch.targets if args.grads else None
    maps = collect_attention(trainer.model, batch.tokens, batch.padding_mask, targets=targets)
    labels = [trainer.task.vocab[i] for i in batch.tokens.tolist()[0]]
    out = Path(args.out)
    for i, (weights, grads) in enumerate(maps):
        if args.layer is not None and i != args.layer:
            continue
        path = out if layers == 1 or args.layer is not None else out.with_name(f"{out.stem}_layer{i}{out.suffix}")
        written = plot_attention(
            weights[0], tokens=labels, grads=None if grads is None else grads[0], path=path, title=f"layer {i}"
        )
        print(f"wrote {written}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    task = get_task(DEMO["task"])
    print("minigrad demo: a 2-layer Transformer encoder learns to sort digits, on the CPU.")
    print("Every op, and every gradient, is computed by minigrad (NumPy underneath).")
    print(acceleration_line() + "\n")
    model_config = model_config_for(
        task,
        d_model=DEMO["d_model"],
        nhead=DEMO["nhead"],
        num_layers=DEMO["num_layers"],
        dim_feedforward=DEMO["dim_feedforward"],
        dropout=DEMO["dropout"],
    )
    config = TrainConfig(
        task=task.name,
        steps=args.steps,
        lr=2e-3,
        warmup=200,
        schedule="cosine",
        eval_every=250,
        target_accuracy=args.target_acc,
        out=args.out,
        progress=not args.no_progress,
    )
    trainer = Trainer(config, model_config, task)
    print(f"model: {trainer.model.num_parameters():,} parameters; task: {task.name} "
          f"(lengths {task.config.get('min_len')}-{task.config.get('max_len')}, digits 0-9)")
    summary = trainer.train()
    print()
    _print_summary(summary)
    print(f"(whole-sequence accuracy on held-out data; trained for {summary['train_seconds']:.0f} s)\n")
    show_predictions(trainer, 5)
    from .explore import demo_page

    print(demo_page(trainer, args.out))
    from ..graphs import write_layer_graph

    try:
        graph = write_layer_graph(Path(args.out) / "layer0_collapsed.svg", layer=trainer.model.encoder.layers[0])
    except ImportError as exc:  # the viz extra is missing: the training result stands, say what to install
        print(f"\nwrote {args.out}/checkpoint.safetensors, metrics.jsonl and metrics.png; graph not drawn: {exc}")
        return 0
    print(f"\nwrote {args.out}/checkpoint.safetensors, metrics.jsonl, metrics.png and the graph of one layer: {graph}")
    return 0
