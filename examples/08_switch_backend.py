"""08 - The same training script on the CPU (NumPy) and on the GPU (CuPy).

minigrad keeps the math separate from the array library: every op's ``forward`` calls
``self.xp`` (``numpy`` for ``device="cpu"``, ``cupy`` for ``device="cuda"``), and every
``backward`` is written with Tensor ops, so nothing above the backend changes with the
device. Switching is one argument:

    x = minigrad.randn(4, 8, device="cuda")     # or x.to("cuda"), model.to("cuda")
    TrainConfig(..., device="cuda")             # the Trainer moves the model and batches

This script trains the same small model with the same seed on "cpu" and, when
``minigrad.is_available("cuda")``, on "cuda", and compares the two loss curves. Without a
GPU (or without CuPy) it says why, runs the CPU part only, and exits normally.

Run:  python examples/08_switch_backend.py [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import time

import minigrad
from encoder.tasks import get_task
from encoder.training import TrainConfig, Trainer, model_config_for
from minigrad.backend import BackendError, get_backend


def train(device: str, steps: int) -> dict:
    """One short training run; nothing in here depends on the device except the argument."""
    task = get_task("sort", max_len=6, min_len=3, num_digits=5)
    model_config = model_config_for(task, d_model=32, nhead=2, num_layers=2, dim_feedforward=64, dropout=0.0)
    config = TrainConfig(
        task="sort",
        task_kwargs=task.config,
        steps=steps,
        batch_size=32,
        lr=3e-3,
        warmup=max(steps // 10, 1),
        eval_every=10**9,  # evaluate once, at the end
        eval_batches=2,
        progress=False,
        seed=0,  # same initial weights (drawn on the CPU, then moved) and same batches
        device=device,
    )
    trainer = Trainer(config, model_config, task)
    losses: list[float] = []
    started = time.perf_counter()
    summary = trainer.train(callback=lambda row: losses.append(row["loss"]))
    seconds = time.perf_counter() - started
    param = next(trainer.model.parameters())
    array_type = type(param.data)
    return {
        "device": device,
        "losses": losses,
        "final_loss": losses[-1],
        "token_acc": summary["val_token_acc"],
        "seconds": seconds,
        "array_type": f"{array_type.__module__}.{array_type.__name__}",
    }


def describe(result: dict) -> None:
    print(f"  {result['device']:5} parameters are {result['array_type']}; first loss {result['losses'][0]:.4f}, "
          f"final loss {result['final_loss']:.4f}, valid token acc {result['token_acc']:.3f}, "
          f"{len(result['losses']) / result['seconds']:.0f} steps/s")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="examples_out", help="folder for pictures (unused here)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default 200; 20 in quick mode)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    quick = os.environ.get("MINIGRAD_EXAMPLES_QUICK") == "1"
    steps = args.steps if args.steps is not None else (20 if quick else 200)

    print(f"training the same model for {steps} steps on each available device:")
    cpu = train("cpu", steps)
    describe(cpu)

    result = {
        "steps": steps,
        "cpu": cpu,
        "cuda": None,
        "cuda_skipped": True,
        "reason": None,
        "max_loss_diff": None,
        "max_loss_diff_all": None,
    }
    if not minigrad.is_available("cuda"):
        try:
            get_backend("cuda")
            reason = "minigrad.is_available('cuda') is False"
        except BackendError as exc:  # the backend says what is missing: CuPy, a driver, a GPU
            reason = str(exc)
        result["reason"] = reason
        print(f"\nno GPU run: {reason}.")
        print("On a machine with an NVIDIA GPU and CuPy the very same train() call runs with "
              "device='cuda'; nothing else changes.")
        return result

    cuda = train("cuda", steps)
    describe(cuda)
    # float32 on two different libraries: the same math, rounded in a different order, so the
    # curves agree closely at first and drift apart slowly (not bit for bit)
    diffs = [abs(a - b) for a, b in zip(cpu["losses"], cuda["losses"])]
    first = min(len(diffs), 10)
    print(f"\nmax |loss_cpu - loss_cuda| over the first {first} steps: {max(diffs[:first]):.2e}; "
          f"over all {len(diffs)} steps: {max(diffs):.2e}")
    result.update(cuda=cuda, cuda_skipped=False, max_loss_diff=max(diffs[:first]), max_loss_diff_all=max(diffs))
    return result


if __name__ == "__main__":
    main()
