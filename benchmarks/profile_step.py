"""Where does a minigrad training step spend its time? cProfile plus a per-op breakdown.

    PYTHONPATH=. python benchmarks/profile_step.py --config medium [--accel off] [--steps 3] [--threads N]
    PYTHONPATH=. python benchmarks/profile_step.py --config medium --device cuda --torch

minigrad runs with its acceleration on (``--accel on``, the default: the accelerated ops'
classes, e.g. ``FastLayerNorm``, show in the table) or on the reference path
(``--accel off``). Prints, for ``--steps`` training steps (after ``--warmup`` untimed
ones, in which numba compiles or loads its kernels):

1. the step time without any instrumentation (median), split into phases: zero_grad,
   forward (model + loss), backward, optimizer;
2. cProfile's top ``--top`` functions sorted by own time (tottime) and by cumulative time;
3. a per-op breakdown, measured by wrapping every ``Function`` subclass's ``forward`` and
   ``backward`` and ``Function.apply`` with timers (a monkeypatch in this process only):

   * fwd ms: time inside the op's ``forward`` during the forward pass (array work);
   * apply ms: the rest of ``Function.apply`` for that op (device/dtype checks, node
     creation, the output Tensor: per-op Python overhead);
   * bwd ms: the op's ``backward``, inclusive; "own" is the part outside the ops it
     applies: the kernel calls of an accelerated op, the Python of a reference formula
     (whose array work is in the ops it applies: the "in bwd" columns);
   * what the forward pass spends outside ``Function.apply`` (modules, ``functional``
     argument checks, Tensor methods) and the engine outside the ops' backward (graph
     walk, gradient accumulation) is printed per phase.

   The timers add a little time to every call, so the breakdown's total is a little
   above the uninstrumented step.
With ``--device cuda`` the phases are timed with a GPU synchronize after each one, and
``--torch`` adds PyTorch's phases on the same device. The per-op columns are then the time
the CPU spends issuing each op (the GPU runs behind it).

4. Python overhead per op: (step time - the ops' array work: ``forward`` bodies, the
   forward bodies of the ops backward formulas apply, and the own time of accelerated
   ops' ``backward``) / number of ops applied, with the node count per step.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import bench_env as be
import bench_measure as bm
import bench_utils as bu

from minigrad import registry


# ---- the per-op timers ----------------------------------------------------------------------------
def all_subclasses(cls: type) -> list[type]:
    out, stack = [], [cls]
    while stack:
        for sub in stack.pop().__subclasses__():
            out.append(sub)
            stack.append(sub)
    return out


class OpTimer:
    """Wraps Function.apply and every subclass's forward/backward with perf_counter timers.

    Totals are kept per (op name, kind) where kind is "fwd" (forward during the forward
    pass), "apply" (apply minus forward, forward pass), "bwd" (backward, inclusive),
    "bwd_own" (backward minus the ops it applies), "fwd_in_bwd" / "apply_in_bwd" (ops
    run by some backward formula).
    """

    def __init__(self) -> None:
        self.total: dict[tuple[str, str], float] = defaultdict(float)
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self.backward_stack: list[float] = []  # per running backward: time spent in the ops it applied
        self.active_forward: set[int] = set()  # objects whose forward is running (super() calls nest)
        self.active_backward: set[int] = set()  # the same for backward
        self.saved: list[tuple[type, str, Any]] = []
        self.last_forward = 0.0
        self.last_name = ""

    def add(self, op: str, kind: str, seconds: float) -> None:
        self.total[op, kind] += seconds
        self.calls[op, kind] += 1

    def install(self) -> None:
        from minigrad.autograd import Function

        timer = self

        def wrap_forward(fn: Callable) -> Callable:
            def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
                if id(self) in timer.active_forward:  # a subclass's forward calling super().forward
                    return fn(self, *args, **kwargs)
                timer.active_forward.add(id(self))
                t0 = time.perf_counter()
                try:
                    return fn(self, *args, **kwargs)
                finally:
                    dt = time.perf_counter() - t0
                    timer.active_forward.discard(id(self))
                    kind = "fwd_in_bwd" if timer.backward_stack else "fwd"
                    timer.add(type(self).__name__, kind, dt)
                    timer.last_forward = dt  # read by the apply wrapper below, with the class that ran
                    timer.last_name = type(self).__name__

            return forward

        def wrap_backward(fn: Callable) -> Callable:
            def backward(self: Any, g: Any) -> Any:
                if id(self) in timer.active_backward:  # a subclass's backward calling super()'s
                    return fn(self, g)
                timer.active_backward.add(id(self))
                timer.backward_stack.append(0.0)
                t0 = time.perf_counter()
                try:
                    return fn(self, g)
                finally:
                    dt = time.perf_counter() - t0
                    inner = timer.backward_stack.pop()
                    timer.add(type(self).__name__, "bwd", dt)
                    timer.add(type(self).__name__, "bwd_own", dt - inner)
                    timer.active_backward.discard(id(self))

            return backward

        apply_fn = Function.__dict__["apply"].__func__

        def apply(cls: type, *inputs: Any, **params: Any) -> Any:
            timer.last_forward, timer.last_name = 0.0, cls.__name__
            t0 = time.perf_counter()
            out = apply_fn(cls, *inputs, **params)
            dt = time.perf_counter() - t0
            name = timer.last_name  # the class whose forward ran: an accelerated subclass, when registered
            if timer.backward_stack:
                timer.backward_stack[-1] += dt
                timer.add(name, "apply_in_bwd", dt - timer.last_forward)
            else:
                timer.add(name, "apply", dt - timer.last_forward)  # forward bodies never call apply
            return out

        self.saved.append((Function, "apply", Function.__dict__["apply"]))
        Function.apply = classmethod(apply)
        for cls in all_subclasses(Function):
            for name, wrap in (("forward", wrap_forward), ("backward", wrap_backward)):
                if cls.__dict__.get(name) is not None:
                    self.saved.append((cls, name, cls.__dict__[name]))
                    setattr(cls, name, wrap(cls.__dict__[name]))

    def uninstall(self) -> None:
        for cls, name, value in reversed(self.saved):
            setattr(cls, name, value)
        self.saved.clear()

    def reset(self) -> None:
        self.total.clear()
        self.calls.clear()


# ---- measurements ------------------------------------------------------------------------------------
def _nothing() -> None:
    return None


def phase_times(
    model: Any, opt: Any, inputs: Any, steps: int, sync: Callable[[], None] = _nothing, loss_fn: Callable | None = None
) -> dict[str, list[float]]:
    """Uninstrumented step, split into zero_grad / forward / backward / optimizer (seconds).

    ``sync`` runs at the end of each phase (a GPU synchronize); ``loss_fn(model, inputs)``
    defaults to minigrad's loss (PyTorch's works the same way).
    """
    loss_fn = loss_fn or bu.minigrad_loss
    out: dict[str, list[float]] = defaultdict(list)
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad()
        sync()
        t1 = time.perf_counter()
        loss = loss_fn(model, inputs)
        sync()
        t2 = time.perf_counter()
        loss.backward()
        sync()
        t3 = time.perf_counter()
        opt.step()
        sync()
        t4 = time.perf_counter()
        for name, dt in (("zero_grad", t1 - t0), ("forward", t2 - t1), ("backward", t3 - t2), ("optimizer", t4 - t3)):
            out[name].append(dt)
        out["step"].append(t4 - t0)
    return out


def print_cprofile(step: Callable[[], Any], steps: int, top: int) -> None:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key)
        stats.print_stats(top)
        text = buf.getvalue()
        start = text.find("   ncalls")
        print(f"\ncProfile, {steps} steps, top {top} by {key} (per-call columns are per call, totals over all steps):")
        print(text[start:].rstrip())


def op_breakdown(model: Any, opt: Any, inputs: Any, steps: int, step_ms: float) -> dict[str, float]:
    """Per-op table (ms per step). Returns a few totals for the overhead summary.

    "ops" counts the op's applications in the forward pass (graph nodes, plus the few ops
    on tensors that need no gradient, such as the padding mask's cast).
    """
    timer = OpTimer()
    timer.install()
    try:
        phases: dict[str, float] = defaultdict(float)
        for _ in range(steps):
            opt.zero_grad()
            t0 = time.perf_counter()
            loss = bu.minigrad_loss(model, inputs)
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            t3 = time.perf_counter()
            phases["forward"] += t1 - t0
            phases["backward"] += t2 - t1
            phases["optimizer"] += t3 - t2
    finally:
        timer.uninstall()
    per = 1e3 / steps  # seconds over all steps -> ms per step
    ops = sorted({op for op, _ in timer.total})

    def tot(op: str, kind: str) -> float:
        return timer.total.get((op, kind), 0.0) * per

    def n(op: str, kind: str) -> float:
        return timer.calls.get((op, kind), 0) / steps

    rows = sorted(((tot(op, "fwd") + tot(op, "apply") + tot(op, "bwd"), op) for op in ops), reverse=True)
    print(f"\nper-op breakdown, ms per step (mean of {steps} instrumented steps; uninstrumented step {step_ms:.2f} ms)")
    print(
        f"{'op':<22} {'ops':>6} {'fwd ms':>9} {'apply ms':>9} {'bwd ms':>9} {'bwd own':>9} {'total':>9} {'%step':>6}"
        f" | {'in bwd: calls':>13} {'fwd ms':>8} {'apply ms':>8}"
    )
    for total, op in rows:
        print(
            f"{op:<22} {n(op, 'fwd'):>6.0f} {tot(op, 'fwd'):>9.3f} {tot(op, 'apply'):>9.3f} {tot(op, 'bwd'):>9.3f}"
            f" {tot(op, 'bwd_own'):>9.3f} {total:>9.3f} {100 * total / step_ms:>5.1f}% | {n(op, 'fwd_in_bwd'):>13.0f} "
            f"{tot(op, 'fwd_in_bwd'):>8.3f} {tot(op, 'apply_in_bwd'):>8.3f}"
        )
    accelerated = {impl.__name__ for impl in registry.implementations.values() if isinstance(impl, type)}
    fwd_forward = sum(tot(op, "fwd") for op in ops)
    fwd_apply = sum(tot(op, "apply") for op in ops)
    bwd_nodes = sum(tot(op, "bwd") for op in ops)
    bwd_kernels = sum(tot(op, "bwd_own") for op in ops if op in accelerated)
    bwd_arrays = sum(tot(op, "fwd_in_bwd") for op in ops)
    bwd_apply = sum(tot(op, "apply_in_bwd") for op in ops)
    nodes = sum(n(op, "fwd") for op in ops)
    applies_in_bwd = sum(n(op, "fwd_in_bwd") for op in ops)
    forward_ms, backward_ms, opt_ms = phases["forward"] * per, phases["backward"] * per, phases["optimizer"] * per
    print(
        f"\nforward pass {forward_ms:.2f} ms: op forward bodies {fwd_forward:.2f}, Function.apply bookkeeping "
        f"{fwd_apply:.2f}, outside apply (modules, functional checks, Tensor methods) "
        f"{forward_ms - fwd_forward - fwd_apply:.2f}"
    )
    print(
        f"backward pass {backward_ms:.2f} ms: ops' backward {bwd_nodes:.2f} (accelerated ops' own kernel calls "
        f"{bwd_kernels:.2f}; array work in the ops the formulas apply {bwd_arrays:.2f}, their apply bookkeeping "
        f"{bwd_apply:.2f}, the rest: formula Python {bwd_nodes - bwd_kernels - bwd_arrays - bwd_apply:.2f}), "
        f"engine outside the ops {backward_ms - bwd_nodes:.2f}"
    )
    print(f"optimizer {opt_ms:.2f} ms; ops applied per step: {nodes:.0f} in forward, {applies_in_bwd:.0f} in backward")
    return {"array_ms": fwd_forward + bwd_arrays + bwd_kernels, "nodes": nodes, "applies": nodes + applies_in_bwd}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=sorted(bu.CONFIGS), default="medium")
    p.add_argument("--steps", type=int, default=None, help="profiled steps (default: 3 medium, 10 small, 50 tiny)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-cprofile", action="store_true")
    be.add_accel_flags(p)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--torch", action="store_true", help="also time PyTorch's phases (same weights, same device)")
    args = p.parse_args(argv)
    be.reexec_with_env(be.env_flag_changes(False, args.threads))
    threads, how = be.resolve_threads(args.threads)
    be.apply_accel(args)
    cfg = bu.CONFIGS[args.config]
    steps = args.steps or {"tiny": 50, "small": 10, "medium": 3}[cfg.name]
    device = args.device
    print(f"profile_step: minigrad, {cfg.describe()}; device {device}; threads {threads} [{how}]; --accel {args.accel}")
    torch = be.import_torch() if args.torch else None
    for line in be.environment_lines(torch):
        print(line)

    batch = bu.make_batch(cfg)
    model, opt = bu.build_minigrad(cfg, device)
    inputs = bu.minigrad_inputs(batch, device)
    for _ in range(args.warmup):
        bu.minigrad_step(model, opt, inputs)
    sync = bu.cuda_synchronize_minigrad if device == "cuda" else _nothing

    phases = phase_times(model, opt, inputs, max(steps, 5), sync)
    step_ms = bm.median(phases["step"]) * 1e3
    split = ", ".join(f"{k} {bm.median(v) * 1e3:.2f}" for k, v in phases.items() if k != "step")
    print(f"\nuninstrumented step: median {step_ms:.2f} ms ({split}; medians of {max(steps, 5)} steps)")
    if torch is not None:
        torch.set_num_threads(threads)
        tmodel, topt = bu.build_torch(torch, cfg, model, device)
        tinputs = bu.torch_inputs(torch, batch, device)
        for _ in range(args.warmup):
            bu.torch_step(torch, tmodel, topt, tinputs)
        tsync = torch.cuda.synchronize if device == "cuda" else _nothing
        tphases = phase_times(tmodel, topt, tinputs, max(steps, 5), tsync, lambda m, i: bu.torch_loss(torch, m, i))
        tsplit = ", ".join(f"{k} {bm.median(v) * 1e3:.2f}" for k, v in tphases.items() if k != "step")
        print(f"PyTorch step:        median {bm.median(tphases['step']) * 1e3:.2f} ms ({tsplit})")
    if device == "cuda":
        print("(on the GPU the per-op times below are the CPU's time to issue each op's kernels)")

    if not args.no_cprofile:
        print_cprofile(lambda: bu.minigrad_step(model, opt, inputs), steps, args.top)
    totals = op_breakdown(model, opt, inputs, steps, step_ms)
    overhead = step_ms - totals["array_ms"]
    print(
        f"\noutside the ops' array work: step {step_ms:.2f} ms - {totals['array_ms']:.2f} ms = {overhead:.2f} ms "
        f"({100 * overhead / step_ms:.0f}% of the step) over {totals['applies']:.0f} op applications "
        f"= {1e3 * overhead / max(totals['applies'], 1):.1f} us per op applied.\n"
        "That is graph bookkeeping and the Python of modules, functional checks, backward formulas and the engine,\n"
        "plus two kinds of array work: the engine's gradient sums and Adam's update (small for tiny configs)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
