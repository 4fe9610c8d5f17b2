"""The ``train``, ``eval``, ``predict`` and ``demo`` commands (``attention``: :mod:`.attention`)."""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import minigrad

from ..checkpoint import CheckpointError, load_checkpoint
from ..tasks import TASKS, get_task
from ..training import OPTIMIZERS, SCHEDULES, TrainConfig, Trainer, TrainingInterrupted, model_config_for
from . import attention, runs
from .common import PREDICT_SEED, load_trainer, missing_extra, parse_device, validation_examples
from .errors import CLIError
from .flags import accuracy, below_one, count, nonnegative_float, positive, positive_float

DEMO_MARK = ".demo-run"  # the demo's folders hold this file: a demo replaces only a demo
DEMO = dict(task="sort", d_model=64, nhead=4, num_layers=2, dim_feedforward=128, dropout=0.0)

# The train command's defaults. Its flags default to None, so that a resumed run can tell
# the flags given from those left out (see encoder.cli.runs); these fill in the rest.
DEFAULTS: dict[str, Any] = dict(
    task="sort", layers=2, d_model=64, heads=4, ff=None, dropout=0.0, norm_first=False, activation="relu",
    attention="naive", block_size=128,
    steps=3000, batch_size=64, lr=2e-3, optimizer="adamw", schedule="cosine", warmup=200, weight_decay=0.01,
    label_smoothing=0.0, eval_every=250, target_acc=None, seed=0, data_parallel=1, checkpoint_every=None,
)


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (fixed once a run has started)")
    g.add_argument("--layers", type=positive, help="encoder layers (default 2)")
    g.add_argument("--d-model", type=positive, help="model width (default 64)")
    g.add_argument("--heads", type=positive, help="attention heads; must divide d-model (default 4)")
    g.add_argument("--ff", type=positive, help="feed-forward width (default 2 * d-model)")
    g.add_argument("--dropout", type=below_one, help="dropout probability in [0, 1) (default 0)")
    g.add_argument("--norm-first", action="store_true", default=None, help="pre-LN instead of the original post-LN")
    g.add_argument("--activation", choices=("relu", "gelu"), help="relu (default) or gelu")
    g.add_argument("--attention", choices=("naive", "flash"), help="naive (default) or flash: FlashAttention")
    g.add_argument("--block-size", type=positive, help="FlashAttention's block of queries and keys (default 128)")


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimization (fixed once a run has started)")
    g.add_argument("--batch-size", type=positive, help="examples per step (default 64)")
    g.add_argument("--lr", type=positive_float, help="peak learning rate (default 2e-3)")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help="default adamw")
    g.add_argument("--schedule", choices=SCHEDULES, help="lr schedule (default cosine)")
    g.add_argument("--warmup", type=count, help="warmup steps (default 200)")
    g.add_argument("--weight-decay", type=nonnegative_float, help="default 0.01")
    g.add_argument("--label-smoothing", type=below_one, help="in [0, 1) (default 0)")
    g.add_argument("--seed", type=count, help="seed of the weights, batches and dropout, >= 0 (default 0)")
    g = p.add_argument_group("how long and how to log (may change on --resume)")
    g.add_argument("--steps", type=positive, help="train up to this step (default 3000; on --resume: the run's)")
    g.add_argument("--target-acc", type=accuracy, help="stop once validation sequence accuracy reaches this")
    g.add_argument("--eval-every", type=positive, help="validate every N steps (default 250)")
    g.add_argument("--checkpoint-every", type=positive, metavar="N", help="also save a checkpoint every N steps")
    g.add_argument(
        "--data-parallel",
        type=positive,
        metavar="N",
        help="cut each batch into N chunks run on CPU threads, N <= batch size (default 1: off)",
    )
    g.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    g.add_argument("--out", default=None, help="run folder (default: a new runs/TASK-N); metrics, plot, checkpoint")
    g.add_argument("--overwrite", action="store_true", help="replace the run that --out holds")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument(
        "--detect-anomaly", action="store_true", help="find the first op that makes a NaN/inf (slower; for debugging)"
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on a toy task", description="Train a model on a toy task.")
    p.add_argument("--task", help=f"one of {', '.join(sorted(TASKS))} (default sort)")
    _add_model_flags(p)
    _add_train_flags(p)
    p.add_argument("--resume", default=None, help="continue the run in this folder (or checkpoint file)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint on validation data")
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or run folder")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="show inputs, targets and predictions side by side")
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or run folder")
    p.add_argument("--n", type=positive, default=5, help="how many examples (default 5)")
    p.add_argument("--seed", type=count, default=PREDICT_SEED, help=f"which examples (default {PREDICT_SEED})")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_predict)

    attention.register(sub)

    p = sub.add_parser(
        "demo",
        help="train the default model on sort, show predictions, draw one layer's graph",
        description="The main job: train a small encoder on `sort` on the CPU, print progress and the result, "
        "and write the graph of one encoder layer (the demo replaces its previous run in --out).",
    )
    p.add_argument("--steps", type=positive, default=6000, help="at most this many steps (default 6000)")
    p.add_argument("--target-acc", type=accuracy, default=0.99, help="stop at this validation accuracy (default 0.99)")
    p.add_argument("--eval-every", type=positive, default=250, help="validate every N steps (default 250)")
    p.add_argument("--out", default="runs/demo", help="run folder (default runs/demo)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)


# ---- helpers ---------------------------------------------------------------------------------
def _value(args: argparse.Namespace, name: str) -> Any:
    given = getattr(args, name, None)
    return DEFAULTS[name] if given is None else given


def _train_config(args: argparse.Namespace, task: str, device: str, out: str) -> TrainConfig:
    v = lambda name: _value(args, name)  # noqa: E731
    return TrainConfig(
        task=task,
        steps=v("steps"),
        batch_size=v("batch_size"),
        optimizer=v("optimizer"),
        lr=v("lr"),
        schedule=v("schedule"),
        warmup=v("warmup"),
        weight_decay=v("weight_decay"),
        label_smoothing=v("label_smoothing"),
        eval_every=v("eval_every"),
        target_accuracy=v("target_acc"),
        seed=v("seed"),
        device=device,
        out=out,
        checkpoint_every=v("checkpoint_every"),
        progress=not args.no_progress,
        data_parallel=v("data_parallel"),
    )


def _print_summary(summary: dict[str, Any]) -> None:
    print(
        f"step {summary['step']}: validation loss {summary['val_loss']:.4f}, "
        f"token accuracy {summary['val_token_acc']:.4f}, sequence accuracy {summary['val_seq_acc']:.4f}"
    )


def show_predictions(trainer: Trainer, n: int, seed: int = PREDICT_SEED) -> None:
    """Print inputs, targets and predictions of ``n`` validation examples side by side, numbered
    as ``attention --example N`` takes them."""
    task = trainer.task
    examples = validation_examples(task, n, seed)
    batch = task.collate(examples, device=trainer.device)
    pred = trainer.predict(batch).tolist()
    width = max(len(task.decode(ex[0])) for ex in examples) + 2
    print(f"{'#':>3}  {'input':<{width}}  {'target':<{width}}  prediction")
    for i, (ids, target) in enumerate(examples):
        if isinstance(target, int):
            shown, mark = task.decode_target(pred[i]), pred[i] == target
        else:
            length = len(target)
            p = [pred[i][j] if target[j] != task.ignore_index else task.ignore_index for j in range(length)]
            shown, mark = task.decode_target(p), p == list(target)
        verdict = "ok" if mark else "WRONG"
        print(f"{i:>3}  {task.decode(ids):<{width}}  {task.decode_target(target):<{width}}  {shown}  {verdict}")


# ---- commands ---------------------------------------------------------------------------------
def acceleration_line() -> str:
    """One line: what minigrad runs (the acceleration's parts, or the reference ops)."""
    if minigrad.accel.is_enabled():
        return f"minigrad: {minigrad.accel.summary()} (--no-accel for the reference ops)"
    return "minigrad: the reference ops (--no-accel)"


def _check_batch_split(data_parallel: int, batch_size: int) -> None:
    if data_parallel > batch_size:
        raise CLIError(
            f"--data-parallel {data_parallel} is more than --batch-size {batch_size}: each chunk needs at least "
            f"one example; allowed 1 to {batch_size}"
        )


def _resumed_trainer(args: argparse.Namespace, device: str) -> Trainer:
    resume = Path(args.resume)
    folder = resume if resume.is_dir() else resume.parent
    try:
        meta = load_checkpoint(resume).meta
    except CheckpointError as exc:
        raise CLIError(str(exc)) from None
    runs.check_resume_flags(args, meta, args.resume)
    overrides, changes = runs.resume_overrides(args, meta)
    saved = meta.get("train_config", {})
    _check_batch_split(overrides.get("data_parallel", saved.get("data_parallel", 1)), saved.get("batch_size", 1))
    step, steps = int(meta.get("step", 0)), overrides.get("steps", saved.get("steps", 0))
    if step >= steps:
        raise CLIError(
            f"--resume {args.resume}: the run is at step {step} and its --steps is {steps}; "
            f"pass --steps N with N > {step} to train longer"
        )
    out = Path(args.out) if args.out else folder  # by default the same run folder
    runs.check_out_folder(out, args, resumed_from=folder)
    trainer = load_trainer(args.resume, out=str(out), progress=not args.no_progress, device=device, **overrides)
    print(f"resuming {trainer.task.name} from step {trainer.step} in {out}")
    if changes:
        print(f"changed on resume (saved with the run): {', '.join(changes)}")
    return trainer


def _new_trainer(args: argparse.Namespace, device: str) -> Trainer:
    try:
        task = get_task(_value(args, "task"))
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    d_model, heads = _value(args, "d_model"), _value(args, "heads")
    if d_model % heads:
        raise CLIError(f"--d-model {d_model} is not divisible by --heads {heads}")
    _check_batch_split(_value(args, "data_parallel"), _value(args, "batch_size"))
    if _value(args, "attention") == "flash" and _value(args, "dropout") > 0:
        raise CLIError(f"--attention flash does not support --dropout {_value(args, 'dropout')}; "
                       "use --attention naive, or --dropout 0")
    if args.out:
        out = Path(args.out)
        runs.check_out_folder(out, args)
    else:
        out = runs.new_run_folder(task.name)
        print(f"run folder: {out} (choose one with --out)")
    try:
        model_config = model_config_for(
            task,
            d_model=d_model,
            nhead=heads,
            num_layers=_value(args, "layers"),
            dim_feedforward=_value(args, "ff") or 2 * d_model,
            dropout=_value(args, "dropout"),
            norm_first=bool(args.norm_first),
            activation=_value(args, "activation"),
            attention=_value(args, "attention"),
            block_size=_value(args, "block_size"),
        )
        return Trainer(_train_config(args, task.name, device, str(out)), model_config, task)
    except ValueError as exc:  # a combination of flags the model or the run cannot have
        raise CLIError(str(exc)) from None


def cmd_train(args: argparse.Namespace) -> int:
    device = parse_device(args.device)
    trainer = _resumed_trainer(args, device) if args.resume else _new_trainer(args, device)
    print(f"{trainer.task.name}: {trainer.model.num_parameters():,} parameters on {trainer.device}")
    print(acceleration_line())
    try:
        with minigrad.detect_anomaly() if args.detect_anomaly else nullcontext():
            summary = trainer.train()
    except TrainingInterrupted as stop:
        print(f"\n{stop.signal}: stopped at step {stop.step}; saved {stop.checkpoint}")
        print(f"resume with: python -m encoder train --resume {trainer.out}")
        raise
    if summary["reached_target"] and summary["step"] < trainer.config.steps:
        print(f"stopped at step {summary['step']}: validation sequence accuracy reached --target-acc "
              f"{trainer.config.target_accuracy}")
    _print_summary(summary)
    print(f"wrote {trainer.out}/checkpoint.safetensors, metrics.jsonl, summary.json"
          + (", metrics.png" if (trainer.out / "metrics.png").exists() else ""))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    overrides = {"device": parse_device(args.device)} if args.device else {}
    trainer = load_trainer(args.checkpoint, **overrides)
    result = trainer.evaluate()
    print(json.dumps({"task": trainer.task.name, "step": trainer.step, **result}, indent=2))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    overrides = {"device": parse_device(args.device)} if args.device else {}
    trainer = load_trainer(args.checkpoint, **overrides)
    show_predictions(trainer, args.n, args.seed)
    return 0


def _demo_graph(out: Path, trainer: Trainer) -> tuple[list[Path], list[str]]:
    """The graph of the demo's first layer: SVG with Graphviz's ``dot``, else the .dot source
    and how to turn it into SVG. Returns (files written, notes)."""
    import shutil

    try:
        from ..graphs import write_layer_graph

        layer = trainer.model.encoder.layers[0]
        if shutil.which("dot") is not None:
            return [write_layer_graph(out / "layer0_collapsed.svg", layer=layer)], []
        dot = write_layer_graph(out / "layer0_collapsed.dot", layer=layer)
    except ImportError:
        return [], [f"graph not drawn: {missing_extra('viz', 'graphviz')}"]
    svg = dot.with_suffix(".svg")
    return [dot], [f"for the SVG, install Graphviz (apt-get install graphviz, brew install graphviz) and run: "
                   f"dot -Tsvg {dot} -o {svg}"]


def cmd_demo(args: argparse.Namespace) -> int:
    task = get_task(DEMO["task"])
    out = Path(args.out)
    print("minigrad demo: a 2-layer Transformer encoder learns to sort digits, on the CPU.")
    print("Every op, and every gradient, is computed by minigrad (NumPy underneath).")
    print(acceleration_line() + "\n")
    if runs.holds_run(out):  # a demo replaces the previous demo, and no other run
        if not (out / DEMO_MARK).exists():
            raise CLIError(f"--out {out} holds a run that the demo did not make; choose another --out")
        runs.clear_run(out)
        print(f"(replacing the previous demo in {out})")
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARK).write_text("this folder holds the run of `python -m encoder demo`, which replaces it\n")
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
        eval_every=args.eval_every,
        target_accuracy=args.target_acc,
        out=str(out),
        progress=not args.no_progress,
    )
    trainer = Trainer(config, model_config, task)
    print(f"model: {trainer.model.num_parameters():,} parameters; task: {task.name} "
          f"(lengths {task.config.get('min_len')}-{task.config.get('max_len')}, digits 0-9)")
    try:
        summary = trainer.train()
    except TrainingInterrupted as stop:
        print(f"\n{stop.signal}: stopped at step {stop.step}; saved {stop.checkpoint}")
        print(f"resume with: python -m encoder train --resume {out}")
        raise
    print()
    if summary["reached_target"] and summary["step"] < args.steps:
        print(f"stopped at step {summary['step']} of {args.steps}: validation sequence accuracy "
              f"{summary['val_seq_acc']:.4f} reached the target {args.target_acc}")
    _print_summary(summary)
    print(f"(whole-sequence accuracy on held-out data; trained for {summary['train_seconds']:.0f} s)\n")
    show_predictions(trainer, 5)
    files = [out / name for name in ("checkpoint.safetensors", "metrics.jsonl", "summary.json", "metrics.png")]
    notes = [] if files[-1].exists() else [f"no loss curve (metrics.png): {missing_extra('plot', 'matplotlib')}"]
    graph, graph_notes = _demo_graph(out, trainer)
    files += graph
    notes += graph_notes
    from .explore import demo_page

    demo_page(trainer, out)
    files.append(out / "explore.html")
    notes.append(f"open {out / 'explore.html'} in a browser to click through the forward and backward pass")
    # (more pictures of the run go here, each appended to `files`)
    print(f"\nwrote {', '.join(str(f) for f in files if f.exists())}")
    for note in notes:
        print(note)
    return 0
