"""07 - Post-LN versus pre-LN, with and without learning-rate warmup.

Where the LayerNorm sits in a residual block changes how gradients flow:

    post-LN (Vaswani et al. 2017):  x = LN(x + F(x))     every gradient passes through
                                                         every LN on its way down
    pre-LN:                         x = x + F(LN(x))     the residual path is an identity,
                                                         from the loss down to the input

Xiong et al. (2020), "On Layer Normalization in the Transformer Architecture", show that at
initialization post-LN's gradients near the output are large, so a large learning rate
right away makes the first updates too big: post-LN needs a warmup; pre-LN trains well
without one. Here: four short runs of the same 6-layer model on the same task with the
same seed and a high learning rate (2e-2, no gradient clipping), then

* the gradient norm of each layer at initialization, post-LN and pre-LN;
* the loss curves side by side (PNG), a table of final losses, and the lesson: post-LN
  without warmup stays at chance level (the loss of a uniform guess over the 10 digits,
  ln 10 = 2.30), while with warmup it learns, as pre-LN does either way (the 60 steps of
  the quick mode already show it).

Run:  python examples/07_postln_vs_preln.py [--out DIR]      (about 30 s on a laptop CPU)
Reads: docs/guide.md, section 8.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import minigrad
from encoder.tasks import get_task
from encoder.training import TrainConfig, Trainer, model_config_for

RUNS = (("post-LN", False, True), ("post-LN", False, False), ("pre-LN", True, True), ("pre-LN", True, False))
CHANCE = math.log(10)  # the loss of a uniform guess over the 10 digits
STUCK = 2.0  # a final loss above this: the run did not learn (near chance)
LEARNING = 1.5  # a final loss below this: the run is learning


def run_name(ln: str, warmup: bool) -> str:
    return f"{ln}, {'warmup' if warmup else 'no warmup'}"


def verdict(final_loss: float) -> str:
    """What a run's final loss says: learning, stuck near chance, or in between."""
    if not math.isfinite(final_loss):
        return "diverged"
    if final_loss > STUCK:
        return "stuck near chance"
    return "learning" if final_loss < LEARNING else "learning slowly"


def layer_grad_norms(trainer: Trainer) -> list[float]:
    """Gradient norm of each encoder layer's parameters for the first training batch (no update)."""
    batch = trainer.train_batch(0)
    model = trainer.model
    model.zero_grad()
    trainer.loss(model(batch.tokens, batch.padding_mask), batch).backward()
    norms = [
        math.sqrt(sum((p.grad * p.grad).sum().item() for p in layer.parameters() if p.grad is not None))
        for layer in model.encoder.layers
    ]
    model.zero_grad()
    return norms


def plot(curves: dict[str, list[float]], norms: dict[str, list[float]], path: Path, title: str) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        print(f"(no picture: matplotlib is missing: {exc})")
        return None
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, ln in zip(axes[:2], ("post-LN", "pre-LN")):
        for warmup, style in ((True, "-"), (False, "--")):
            name = run_name(ln, warmup)
            ax.plot(range(1, len(curves[name]) + 1), curves[name], style, lw=1, label=name)
        ax.set_title(ln)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.set_yscale("log")
        ax.legend()
    finite = [x for c in curves.values() for x in c if math.isfinite(x)]
    if finite:  # the same loss scale on both panels
        for ax in axes[:2]:
            ax.set_ylim(min(finite) * 0.9, max(finite) * 1.1)
    for ln, marker in (("post-LN", "o-"), ("pre-LN", "s-")):
        axes[2].plot(range(len(norms[ln])), norms[ln], marker, label=ln)
    axes[2].set_title("gradient norm per layer at init")
    axes[2].set_xlabel("layer")
    axes[2].set_ylim(bottom=0)
    axes[2].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="examples_out", help="folder for the plot (default examples_out/)")
    p.add_argument("--steps", type=int, default=None, help="steps per run (default 200; 60 in quick mode)")
    p.add_argument("--lr", type=float, default=2e-2, help="peak learning rate (default 2e-2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and batches (default 0)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    quick = os.environ.get("MINIGRAD_EXAMPLES_QUICK") == "1"
    steps = args.steps if args.steps is not None else (60 if quick else 200)
    warmup_steps = max(steps // 5, 1)
    task = get_task("sort")  # 4-8 digits 0-9

    curves: dict[str, list[float]] = {}
    finals: dict[str, dict[str, float]] = {}
    norms: dict[str, list[float]] = {}
    for ln, norm_first, warmup in RUNS:
        name = run_name(ln, warmup)
        model_config = model_config_for(
            task, d_model=32, nhead=4, num_layers=6, dim_feedforward=64, dropout=0.0, norm_first=norm_first
        )
        config = TrainConfig(
            task="sort",
            steps=steps,
            batch_size=32,
            optimizer="adamw",
            lr=args.lr,
            schedule="cosine",  # warmup 0: the cosine decay starts at the peak lr right away
            warmup=warmup_steps if warmup else 0,
            clip_norm=None,  # clipping would hide part of the effect
            eval_every=10**9,  # evaluate once, at the end
            eval_batches=4,
            progress=False,
            seed=args.seed,  # same initial weights and the same batches for the runs of one architecture
        )
        trainer = Trainer(config, model_config, task)
        if ln not in norms:
            norms[ln] = layer_grad_norms(trainer)
        losses: list[float] = []
        try:
            summary = trainer.train(callback=lambda row, losses=losses: losses.append(row["loss"]))
            accuracy = summary["val_token_acc"]
        except FloatingPointError as exc:  # diverged: keep the curve so far, NaN afterwards
            print(f"  {name}: {exc}")
            accuracy = float("nan")
        curves[name] = losses + [math.nan] * (steps - len(losses))
        tail = [x for x in curves[name][-max(steps // 10, 1) :] if math.isfinite(x)]
        finals[name] = {
            "final_loss": sum(tail) / len(tail) if tail else math.nan,
            "token_acc": accuracy,
        }
        print(f"  ran {name:22} final loss {finals[name]['final_loss']:.3f}")

    print(f"\ngradient norm of each layer's parameters at initialization (first batch, {task.name}):")
    for ln in ("post-LN", "pre-LN"):
        print(f"  {ln:8}" + "".join(f"{n:8.3f}" for n in norms[ln]))

    print(f"\nsort, 6 layers, d_model 32, AdamW lr {args.lr:g}, no clipping, {steps} steps "
          f"(warmup: {warmup_steps} steps):")
    print(f"  {'run':24}{'final loss':>12}{'valid token acc':>17}")
    for name, row in finals.items():
        print(f"  {name:24}{row['final_loss']:>12.3f}{row['token_acc']:>17.3f}")
    ratios = [p / q for p, q in zip(norms["post-LN"], norms["pre-LN"])]
    print(f"\npost-LN's gradient norms at initialization are {min(ratios):.1f}x to {max(ratios):.1f}x pre-LN's.")
    lesson = {name: verdict(row["final_loss"]) for name, row in finals.items()}
    print(f"chance level is ln 10 = {CHANCE:.2f}; a final loss above {STUCK} is stuck, below {LEARNING} learning:")
    for name, what in lesson.items():
        print(f"  {name:24}{what}")

    picture = plot(curves, norms, out / "07_postln_vs_preln.png",
                   f"sort, 6 layers, AdamW lr {args.lr:g}, no clipping, {steps} steps")
    if picture is not None:
        print(f"\nwrote {picture}")
    return {
        "curves": curves,
        "final": finals,
        "grad_norms_at_init": norms,
        "grad_ratio": (min(ratios), max(ratios)),
        "lesson": lesson,
        "picture": picture,
        "steps": steps,
        "warmup_steps": warmup_steps,
        "device": minigrad.get_default_device(),
    }


if __name__ == "__main__":
    main()
