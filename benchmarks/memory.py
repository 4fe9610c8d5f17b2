"""Memory of a training step: the peak of each framework, and a leak check over many steps.

    PYTHONPATH=. $TORCH_PYTHON benchmarks/memory.py [--configs small,medium] [--leak-steps 1000] [--accel off]

Part 1, peak memory: for each config, each framework runs ``--steps`` training steps in
its own fresh interpreter (``encoder_step.py --memory-child``). We print the peak RSS
minus the RSS after the imports, one throw-away step of the tiny model (which triggers
lazy imports) and the batch (the kernel's peak mark, VmHWM, is reset right there
through /proc/self/clear_refs), and the RSS still held after the steps. It
covers parameters, gradients, Adam's moments, activations kept for backward,
temporaries and whatever the allocators keep cached. "step" is the peak of the
steps after the first minus the RSS just before them: a steady-state step's activations
and temporaries.
For reference we also print the analytic size of parameters + gradients + Adam state
(4 copies of the parameters in float32). minigrad runs with its acceleration on
(``--accel on``, the default) or on the reference path (``--accel off``); glibc's malloc
setting (``--malloc-tuning``) is the same in every subprocess, PyTorch's included.

Part 2, leak check: ``--leak-steps`` minigrad training steps of ``--leak-config`` (tiny by
default) in this process; RSS at steps 100, 500 and the last, the growth from step 100
to the end, and the number of live minigrad Tensors and graph nodes (Function objects)
the garbage collector can see, which must not grow either. Exit status 1 when RSS grows
by more than ``--max-growth`` (10%) or the live objects grow.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import sys

import bench_env as be
import bench_measure as bm
import bench_utils as bu


def peak_memory(
    configs: list[str], steps: int, threads: int, device: str, with_torch: bool, accel_argv: list[str]
) -> None:
    frameworks = ["minigrad"] + (["pytorch"] if with_torch else [])
    print(f"peak memory of {steps} training steps, each framework in a fresh process (MiB above the baseline)")
    head = f"{'config':<8} {'framework':<10} {'params':>10} {'4x params':>10} {'peak':>9} {'step':>9} {'held':>9}"
    print(head + (f" {'GPU':>8}" if device == "cuda" else ""))
    for name in configs:
        peaks = {}
        for fw in frameworks:
            mem = bm.measure_memory(name, device, fw, threads, steps, accel_argv=accel_argv)
            if mem is None:
                continue
            peaks[fw] = mem["peak_increase"]
            state = 4 * 4 * mem["params"]  # params, grads, exp_avg, exp_avg_sq in float32
            row = f"{name:<8} {fw:<10} {mem['params']:>10,d} {state / bm.MiB:>10.1f}"
            row += f" {mem['peak_increase'] / bm.MiB:>9.1f} {mem['step_peak'] / bm.MiB:>9.1f}"
            row += f" {mem['held_increase'] / bm.MiB:>9.1f}"
            if device == "cuda":
                row += f" {mem.get('gpu_held', 0) / bm.MiB:>8.1f}"
            print(row)
        if len(peaks) == 2 and min(peaks.values()) >= bm.MiB:  # below 1 MiB the ratio is noise
            ratio = peaks["minigrad"] / max(peaks["pytorch"], 1)
            print(f"{name:<8} {'ratio':<10} {'':>10} {'':>10} {ratio:>8.2f}x")
    print(
        "peak = peak RSS minus the RSS after imports + batch; step = peak of steps 2.. minus the RSS before them\n"
        "(activations + temporaries of a steady-state step); held = RSS increase still held at the end;\n"
        "4x params = parameters + gradients + Adam's two moments in float32, for reference"
    )


def live_objects() -> tuple[int, int]:
    """Live minigrad Tensors and graph nodes, as the garbage collector sees them."""
    from minigrad import Function, Tensor

    gc.collect()
    objects = gc.get_objects()
    return sum(isinstance(o, Tensor) for o in objects), sum(isinstance(o, Function) for o in objects)


def leak_check(config: str, steps: int, max_growth: float) -> bool:
    cfg = bu.CONFIGS[config]
    model, opt = bu.build_minigrad(cfg)
    inputs = bu.minigrad_inputs(bu.make_batch(cfg))
    checkpoints = sorted({min(100, steps), min(500, steps), steps})
    print(f"\nleak check: {steps} minigrad training steps of {cfg.describe()}")
    print(f"{'step':>6} {'RSS MiB':>9} {'tensors':>8} {'nodes':>6}")
    rss, objs = {}, {}
    for step in range(1, steps + 1):
        bu.minigrad_step(model, opt, inputs)
        if step in checkpoints:
            objs[step] = live_objects()
            rss[step] = bm.rss_bytes()
            print(f"{step:>6} {rss[step] / bm.MiB:>9.1f} {objs[step][0]:>8} {objs[step][1]:>6}")
    first, last = checkpoints[0], checkpoints[-1]
    growth = (rss[last] - rss[first]) / rss[first]
    per_step = (rss[last] - rss[first]) / max(last - first, 1)
    objects_grew = objs[last][0] > objs[first][0] or objs[last][1] > objs[first][1]
    ok = growth <= max_growth and not objects_grew
    print(
        f"RSS growth from step {first} to {last}: {growth * 100:+.2f}% ({per_step / 1024:+.2f} KiB/step); "
        f"live tensors {objs[first][0]} -> {objs[last][0]}, nodes {objs[first][1]} -> {objs[last][1]}: "
        + ("OK" if ok else f"FAIL (limit {max_growth * 100:.0f}% and no growth of live objects)")
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="small,medium", help="configs for the peak measurement ('' to skip)")
    p.add_argument("--steps", type=int, default=3, help="training steps per peak measurement")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--leak-config", choices=sorted(bu.CONFIGS), default="tiny")
    p.add_argument("--leak-steps", type=int, default=1000, help="0 skips the leak check")
    p.add_argument("--max-growth", type=float, default=0.10)
    be.add_accel_flags(p)
    args = p.parse_args(argv)
    be.reexec_with_env(be.env_flag_changes(False, args.threads))

    # torch is only looked for here, never imported: the leak check's RSS must not include it
    with_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    threads, how = be.resolve_threads(args.threads)
    be.apply_accel(args)  # for the leak check, which runs in this process
    for line in be.environment_lines():
        print(line)
    print(f"threads: {threads} [{how}]; PyTorch " + ("found" if with_torch else "comparison skipped"))
    configs = [c for c in args.configs.split(",") if c]
    if configs:
        peak_memory(configs, args.steps, threads, args.device, with_torch, be.accel_argv(args))
    ok = True
    if args.leak_steps > 0:
        ok = leak_check(args.leak_config, args.leak_steps, args.max_growth)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
