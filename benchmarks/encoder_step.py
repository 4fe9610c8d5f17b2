"""Time one full training step of the encoder classifier in minigrad and in PyTorch.

    PYTHONPATH=. $TORCH_PYTHON benchmarks/encoder_step.py --config medium [--accel off]
    PYTHONPATH=. python benchmarks/encoder_step.py --config tiny --no-torch     # minigrad only

A step is: zero the gradients, forward (embedding, encoder stack, mean pooling over the
non-padding positions, linear head), cross-entropy, backward, Adam update. Both
frameworks run the *same* model with the *same* weights (ours copied into
``torch.nn.TransformerEncoder`` through ``encoder.interop``), on the same batch (tokens
with padding and a key padding mask), in float32, with the same number of threads. The
script first checks that both compute the same loss at step 0.

minigrad runs with its acceleration on (``--accel on``, the default:
``minigrad.accel.enable()``, numba kernels beneath the ops, threads, glibc keeping freed
memory) or on the reference path (``--accel off``); the header prints
``minigrad.accel.status()``. PyTorch runs in the same process either way, so the
printed ratio compares the two under the same machine state.

Timing: ``--warmup`` untimed steps each, then ``--repeats`` timed rounds in which the
two frameworks alternate (the order flips every round; with several threads each timed
step follows a ``--settle-ms`` pause, so the other framework's spinning threads are
asleep, then >= 50 ms of untimed steps that wake its own); we print the median ms/step,
the ratio of the medians, the achieved GFLOP/s of the matrix products (formula in
``bench_utils.matmul_flops``), the minor page faults per step and the kernel CPU time per
step ("sys ms": page faults, mmap/munmap -- where the allocator's behaviour shows).

Memory: each framework runs a few steps in its own fresh subprocess; we print the peak
RSS increase above the RSS measured after the imports and the batch (the kernel's peak
mark is reset there, see ``bench_measure.reset_peak_rss``), and the RSS increase that is
still held after the steps. On CUDA we print the GPU memory held by each framework's
allocator instead.

glibc's malloc setting (``--malloc-tuning``; by default on with ``--accel on``, glibc's
defaults with ``--accel off``) is process-wide: PyTorch's half runs under it too, and
the memory subprocesses get the same setting. ``--unset-openblas-env`` (and ``--threads``
when threadpoolctl is missing) re-execute the script with the new variables, because
BLAS reads them when it loads.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from typing import Any

import bench_env as be
import bench_measure as bm
import bench_utils as bu

DEFAULT_REPEATS = {"tiny": 100, "small": 30, "medium": 10}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", choices=sorted(bu.CONFIGS), default="small")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--repeats", type=int, default=None, help="timed steps per framework (default: by config)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per framework first (default 3)")
    p.add_argument("--threads", type=int, default=None, help="threads for both (default: what numpy's BLAS uses)")
    p.add_argument(
        "--settle-ms",
        type=float,
        default=None,
        help="pause before each timed step so the other framework's spinning threads sleep\n"
        "(default on the CPU: 250 with more than one thread, else 0; on CUDA: 0)",
    )
    p.add_argument(
        "--data-parallel",
        type=int,
        default=1,
        metavar="N",
        help="minigrad's step splits the batch into N chunks run on threads (minigrad.data_parallel_backward); "
        "default 1: the whole batch in one graph",
    )
    p.add_argument("--no-torch", action="store_true", help="time minigrad only")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--memory-steps", type=int, default=3, help="steps run by each memory subprocess (default 3)")
    be.add_accel_flags(p)
    p.add_argument(
        "--unset-openblas-env", action="store_true", help="unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (both)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    p.add_argument("--memory-child", choices=("minigrad", "pytorch"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---- memory: one framework in a fresh process --------------------------------------------------------
def memory_child(args: argparse.Namespace) -> None:
    """Run in a subprocess: peak memory of ``--memory-steps`` training steps of one framework.

    Prints one JSON line with two measurements:

    * ``peak_increase``: peak RSS during all the steps minus the RSS after importing the
      framework, one throw-away step of the tiny model (lazy imports) and making the
      batch. It covers the parameters, their gradients, Adam's two moment buffers, the
      activations kept for backward, the temporaries, whatever the allocators keep
      cached, and what remains of one-time costs of a first step at this size.
    * ``step_peak``: after the first step, the peak of the remaining steps minus the RSS
      just before them: what one steady-state step needs on top of what stays resident
      (activations and temporaries, as far as the allocator returned them in between).
    """
    cfg = bu.CONFIGS[args.config]
    framework, device = args.memory_child, args.device
    if args.threads is not None:
        be.set_threads(args.threads)
    torch = None
    if framework == "pytorch":
        torch = be.import_torch()
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        if be.malloc_wanted(args.accel, args.malloc_tuning):  # the parent ran PyTorch under it too
            import minigrad

            minigrad.accel.allocator.keep_freed_memory()
    else:
        import encoder.models  # noqa: F401

        be.apply_accel(args)
    # One step of the tiny model first, thrown away: it triggers the imports and one-time
    # set-up that happen lazily on a first step (torch.optim imports torch._dynamo, for
    # instance), so they count as imports, not as the step's memory.
    tiny = bu.CONFIGS["tiny"]
    if framework == "minigrad":
        bu.minigrad_step(*bu.build_minigrad(tiny, device), bu.minigrad_inputs(bu.make_batch(tiny), device))
    else:
        tiny_inputs = bu.torch_inputs(torch, bu.make_batch(tiny), device)
        bu.torch_step(torch, *bu.build_torch(torch, tiny, None, device), tiny_inputs)
    batch = bu.make_batch(cfg, args.seed)
    gc.collect()
    exact = bm.reset_peak_rss()
    base = bm.rss_bytes()
    if framework == "minigrad":
        model, opt = bu.build_minigrad(cfg, device, args.seed)
        inputs = (
            bu.minigrad_chunks(batch, args.data_parallel, device)
            if args.data_parallel > 1
            else bu.minigrad_inputs(batch, device)
        )
        params = sum(p.numel() for p in model.parameters())

        def step() -> None:
            bu.minigrad_step(model, opt, inputs)
    else:
        model, opt = bu.build_torch(torch, cfg, None, device)
        inputs = bu.torch_inputs(torch, batch, device)
        params = sum(p.numel() for p in model.parameters())

        def step() -> None:
            bu.torch_step(torch, model, opt, inputs)

    step()
    first_peak = bm.peak_rss_bytes()
    before = bm.rss_bytes()
    bm.reset_peak_rss()
    for _ in range(max(args.memory_steps - 1, 1)):
        step()
    steady_peak = bm.peak_rss_bytes()
    out: dict[str, Any] = {
        "framework": framework,
        "peak_increase": max(first_peak, steady_peak) - base,
        "step_peak": steady_peak - before,
        "held_increase": bm.rss_bytes() - base,
        "baseline": base,
        "exact_peak": exact,
        "params": int(params),
    }
    if device == "cuda":
        if framework == "minigrad":
            import cupy

            bu.cuda_synchronize_minigrad()
            out["gpu_held"] = int(cupy.get_default_memory_pool().total_bytes())  # the pool never shrinks by itself
        else:
            torch.cuda.synchronize()
            out["gpu_held"] = int(torch.cuda.max_memory_reserved())
    print("MEMORY " + json.dumps(out))


# ---- the comparison --------------------------------------------------------------------------------
def check_losses(args: argparse.Namespace, mg: tuple, th: tuple | None, torch: Any) -> tuple[list[str], bool]:
    """Step-0 loss of both frameworks (must agree to 1e-4 relative), and the loss after one Adam step."""
    import minigrad

    model, opt, inputs, step_inputs = mg
    with minigrad.no_grad():
        loss0 = bu.minigrad_loss(model, inputs).item()
    lines = [f"loss at step 0: minigrad {loss0:.7f}"]
    if th is None:
        return lines, True
    tmodel, topt, tinputs = th
    with torch.no_grad():
        tloss0 = bu.torch_loss(torch, tmodel, tinputs).item()
    rel0 = abs(loss0 - tloss0) / max(abs(tloss0), 1e-12)
    ok = rel0 <= 1e-4
    lines[0] += f", pytorch {tloss0:.7f}, relative difference {rel0:.1e} ({'OK' if ok else 'MISMATCH'}, tolerance 1e-4)"
    # one training step each, then the loss again: checks backward + Adam roughly agree too
    bu.minigrad_step(model, opt, step_inputs)  # the step timed below: with --data-parallel, on chunks
    bu.torch_step(torch, tmodel, topt, tinputs)
    with minigrad.no_grad():
        loss1 = bu.minigrad_loss(model, inputs).item()
    with torch.no_grad():
        tloss1 = bu.torch_loss(torch, tmodel, tinputs).item()
    rel1 = abs(loss1 - tloss1) / max(abs(tloss1), 1e-12)
    lines.append(
        f"loss after 1 Adam step: minigrad {loss1:.7f}, pytorch {tloss1:.7f}, relative difference {rel1:.1e} "
        "(information only: Adam's first step is ~lr*sign(grad), which amplifies float32 noise)"
    )
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args)
        return 0
    be.reexec_with_env(be.env_flag_changes(args.unset_openblas_env, args.threads))

    cfg = bu.CONFIGS[args.config]
    repeats = args.repeats if args.repeats is not None else DEFAULT_REPEATS[args.config]
    device = args.device
    torch = None if args.no_torch else be.import_torch()
    torch_note = "disabled by --no-torch" if args.no_torch else "torch is not installed"
    if torch is not None and device == "cuda" and not torch.cuda.is_available():
        torch, torch_note = None, "this torch has no CUDA"

    threads, how = be.resolve_threads(args.threads)
    be.apply_accel(args)
    print(f"encoder_step: {cfg.describe()}; device {device}, float32, minigrad --accel {args.accel}")
    for line in be.environment_lines(torch):
        print(line)
    torch_threads = "-"
    if torch is not None:
        torch.set_num_threads(threads)
        torch_threads = str(torch.get_num_threads())
    print(f"threads: numpy BLAS {threads} [{how}], torch intra-op {torch_threads}")
    if args.data_parallel > 1:
        print(f"minigrad step: {be.data_parallel_note(args.data_parallel, threads)}")
    if torch is None:
        print(f"PyTorch comparison skipped: {torch_note}")

    # the same batch and weights for both
    batch = bu.make_batch(cfg, args.seed)
    model, opt = bu.build_minigrad(cfg, device, args.seed)
    inputs = bu.minigrad_inputs(batch, device)
    step_inputs = bu.minigrad_chunks(batch, args.data_parallel, device) if args.data_parallel > 1 else inputs
    mg = (model, opt, inputs, step_inputs)
    th = None
    if torch is not None:
        tmodel, topt = bu.build_torch(torch, cfg, model, device)
        th = (tmodel, topt, bu.torch_inputs(torch, batch, device))
    lines, ok = check_losses(args, mg, th, torch)
    for line in lines:
        print(line)

    fns = {"minigrad": lambda: bu.minigrad_step(model, opt, step_inputs)}
    sync = {}
    if device == "cuda":
        sync["minigrad"] = bu.cuda_synchronize_minigrad
    if th is not None:
        fns["pytorch"] = lambda: bu.torch_step(torch, *th)
        if device == "cuda":
            sync["pytorch"] = torch.cuda.synchronize
    counters = {"faults": bm.minor_faults, "sys_ms": bm.system_ms} if device == "cpu" else {}
    fwd_flops, step_flops = bu.matmul_flops(cfg)
    # the pause lets spinning CPU threads sleep; a GPU step's threads are the GPU's own
    settle = bm.settle_seconds(threads, args.settle_ms) if len(fns) > 1 and device == "cpu" else 0.0
    print(
        f"matmul FLOPs per step: {step_flops / 1e9:.3f} GFLOP (3 x forward {fwd_flops / 1e9:.3f}); "
        f"timing {repeats} steps each after {args.warmup} warmup, frameworks alternating"
        + (f", {settle * 1e3:.0f} ms pause + >= 50 ms of untimed steps before each" if settle else "")
    )
    times, deltas = bm.time_interleaved(fns, repeats, args.warmup, sync, counters, settle)

    memory = {}
    if not args.no_memory:
        for name in fns:
            memory[name] = bm.measure_memory(
                cfg.name, device, name, threads, args.memory_steps, args.seed, args.data_parallel,
                be.accel_argv(args),
            )  # fmt: skip

    print()
    header = f"{'framework':<10} {'median ms':>10} {'min ms':>9} {'GFLOP/s':>8} {'faults/step':>11} {'sys ms':>7}"
    if memory:
        header += f" {'peak MiB':>9} {'step MiB':>9} {'held MiB':>9}" + (f" {'GPU MiB':>8}" if device == "cuda" else "")
    print(header)
    results: dict[str, Any] = {"config": cfg.name, "device": device, "threads": threads, "accel": args.accel}
    results.update(data_parallel=args.data_parallel, frameworks={})
    for name, ts in times.items():
        med = bm.median(ts)
        row = f"{name:<10} {med * 1e3:>10.2f} {min(ts) * 1e3:>9.2f} {step_flops / med / 1e9:>8.2f}"
        row += f" {deltas[name].get('faults', float('nan')):>11.0f} {deltas[name].get('sys_ms', float('nan')):>7.1f}"
        mem = memory.get(name)
        if mem:
            row += f" {mem['peak_increase'] / bm.MiB:>9.1f} {mem['step_peak'] / bm.MiB:>9.1f}"
            row += f" {mem['held_increase'] / bm.MiB:>9.1f}"
            if device == "cuda":
                row += f" {mem.get('gpu_held', 0) / bm.MiB:>8.1f}"
        print(row)
        results["frameworks"][name] = {"median_ms": med * 1e3, "min_ms": min(ts) * 1e3, "memory": mem}
    if "pytorch" in times:
        ratio = bm.median(times["minigrad"]) / bm.median(times["pytorch"])
        best = min(times["minigrad"]) / min(times["pytorch"])
        # per-round ratios: each round ran both back to back, so they share the machine's state
        rounds = [a / b for a, b in zip(times["minigrad"], times["pytorch"])]
        print(
            f"ratio minigrad/pytorch: {ratio:.2f}x (medians), {bm.median(rounds):.2f}x (median of per-round ratios), "
            f"{best:.2f}x (minimums)"
        )
        results["ratio"] = ratio
    if memory:
        exact = all(m and m["exact_peak"] for m in memory.values())
        print(
            f"memory, in a fresh process per framework running {args.memory_steps} steps: peak = peak RSS minus the "
            "RSS after imports + batch;\n  step = peak of steps 2.. minus the RSS before them; held = RSS increase "
            "still held at the end" + ("" if exact else " (peak mark not resettable: ru_maxrss over the process life)")
        )
        if memory.get("pytorch") and memory.get("minigrad"):
            peaks = memory["minigrad"]["peak_increase"], memory["pytorch"]["peak_increase"]
            if min(peaks) >= bm.MiB:  # below that the ratio is page-granularity noise
                print(f"peak memory ratio minigrad/pytorch: {peaks[0] / peaks[1]:.2f}x")
    if args.json:
        print("JSON " + json.dumps(results))
    if not ok:
        print("FAILED: the two frameworks do not compute the same loss; the comparison is not fair")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
