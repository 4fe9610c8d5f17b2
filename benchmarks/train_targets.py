"""Measure the training targets of the README: how well each toy task trains on this CPU.

    PYTHONPATH=. python benchmarks/train_targets.py                 # every run below, one after another
    PYTHONPATH=. python benchmarks/train_targets.py --only sort     # one of: sort, reverse, count, mlm, ln

Prints one line per run: task, settings, steps, seconds, validation token and sequence
accuracy (and for mlm, the unigram baseline). The settings are the `make demo` defaults
(2 layers, d_model 64, 4 heads, d_ff 128, AdamW, cosine schedule with 200 warmup steps),
with minigrad's acceleration on as in `make demo` (``--accel off``: the reference path;
the accuracies are the same up to float rounding, the seconds are not).
"""

from __future__ import annotations

import argparse
import sys
import time

import bench_env as be

from encoder.tasks import get_task
from encoder.training import TrainConfig, Trainer, model_config_for

MODEL = dict(d_model=64, nhead=4, num_layers=2, dim_feedforward=128, dropout=0.0)


def run(task_name: str, steps: int, target: float | None, metric: str = "seq_acc", **overrides) -> dict:
    task_kwargs = overrides.pop("task_kwargs", {})
    model = dict(MODEL)
    model.update(overrides.pop("model", {}))
    task = get_task(task_name, **task_kwargs)
    config = TrainConfig(
        task=task_name,
        task_kwargs=task_kwargs,
        steps=steps,
        lr=overrides.pop("lr", 2e-3),
        warmup=overrides.pop("warmup", 200),
        eval_every=250,
        target_accuracy=target,
        target_metric=metric,
        progress=False,
        **overrides,
    )
    trainer = Trainer(config, model_config_for(task, **model), task)
    start = time.perf_counter()
    summary = trainer.train()
    summary["seconds"] = time.perf_counter() - start
    if task_name == "mlm":
        summary["unigram"] = task.unigram_baseline()
    return summary


def report(name: str, summary: dict) -> None:
    line = (
        f"{name:<34} steps {summary['step']:>5}  {summary['seconds']:6.0f} s  "
        f"val loss {summary['val_loss']:.4f}  token acc {summary['val_token_acc']:.4f}  "
        f"seq acc {summary['val_seq_acc']:.4f}"
    )
    if "unigram" in summary:
        u = summary["unigram"]
        line += f"  (unigram baseline: loss {u['cross_entropy']:.3f}, acc {u['accuracy']:.3f})"
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("sort", "reverse", "count", "mlm", "ln"), default=None)
    parser.add_argument("--threads", type=int, default=None, help="threads for BLAS and minigrad's kernels")
    be.add_accel_flags(parser)
    args = parser.parse_args(argv)
    be.reexec_with_env(be.env_flag_changes(False, args.threads))
    threads, how = be.resolve_threads(args.threads)
    be.apply_accel(args)
    for line in be.environment_lines():
        print(line)
    print(f"threads: {threads} [{how}]", flush=True)
    runs = {
        "sort": lambda: report("sort (demo defaults)", run("sort", 6000, 0.99)),
        "reverse": lambda: report("reverse", run("reverse", 6000, 0.99, "token_acc")),
        "count": lambda: report("count", run("count", 6000, 0.99, "token_acc")),
        "mlm": lambda: report("mlm (d_model 128, 3000 steps)", run("mlm", 3000, None, model=dict(d_model=128))),
        "ln": lambda: [
            report(
                f"sort {'pre' if pre else 'post'}-LN, {'warmup 200' if warm else 'no warmup'}",
                run("sort", 1500, None, warmup=200 if warm else 0, lr=3e-3, model=dict(norm_first=pre, num_layers=4)),
            )
            for pre in (False, True)
            for warm in (True, False)
        ],
    }
    for name, fn in runs.items():
        if args.only in (None, name):
            fn()
    return 0


if __name__ == "__main__":
    sys.exit(main())
