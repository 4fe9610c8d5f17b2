"""Microbenchmarks: forward+backward of minigrad's fused ops against a hand-written NumPy floor.

    PYTHONPATH=. $TORCH_PYTHON benchmarks/micro.py [--accel on|off] [--threads N] [--ops softmax,...]

Each op (``micro_ops.py``) runs three ways, alternating every round
(``bench_measure.time_interleaved``):

* **minigrad**: the op through ``minigrad.functional``, then ``out.backward(g)`` with a
  fixed upstream gradient g (no extra reduction op in the graph). With ``--accel on``
  (the default) ``minigrad.accel.enable()`` puts numba kernels beneath the ops that have
  one (the ``kernel`` column names the implementation that ran); ``--accel off`` times
  the reference path, NumPy calls only;
* **floor**: the same forward and backward written by hand in NumPy, as few passes over
  memory as we could manage, in place where possible: what minigrad's NumPy code could
  reach with no overhead at all. The target for a fused op is minigrad within 1.2x of it;
* **pytorch** (when importable): the same op with ``torch.autograd``, the same threads.

Before timing, the three are checked to give the same output and input gradients.
Sizes come from ``--config`` (medium by default). The fused ops are ``linear_relu`` (the
feed-forward network's first layer), ``softmax``, ``layer_norm``, ``attention`` (the
scores' scale, mask and softmax as one node, then ``@ v``) and ``cross_entropy``;
``matmul``, ``linear`` and ``relu`` are shown for scale, and ``overhead`` adds two
1-element tensors: the fixed cost of one op (forward, graph recording, backward).

NumPy's elementwise ops and reductions use one thread, and so do numba's kernels unless
``--kernel-threads`` asks for more; PyTorch's use the ``--threads`` count, so with several
threads the floor is not a bound for them. Matrix products use BLAS threads in all three.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import bench_env as be
import bench_measure as bm
import bench_utils as bu
import numpy as np
from micro_ops import OPS, OpBench

from minigrad import registry

FUSED = ("linear_relu", "softmax", "layer_norm", "attention", "cross_entropy")


# ---- checking and timing -------------------------------------------------------------------------------
def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        return x.detach().numpy()
    return np.asarray(x)


def check(op: OpBench, impls: dict[str, Callable[[], Any]]) -> str:
    """Largest relative difference of every implementation's output and gradients from the floor's."""
    ref_out, ref_grads = op.floor()
    worst = 0.0
    for name, fn in impls.items():
        out, grads = fn()
        for a, b in zip([out, *grads], [ref_out, *ref_grads]):
            a, b = _to_numpy(a).astype(np.float64), _to_numpy(b).astype(np.float64)
            if a.shape != b.shape:
                raise AssertionError(f"{op.name}: {name} returned shape {a.shape}, the floor {b.shape}")
            err = float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-30))
            worst = max(worst, err)
            if err > 1e-4:
                raise AssertionError(f"{op.name}: {name} differs from the floor by {err:.1e} (relative to max |value|)")
    return f"{worst:.0e}"


def kernel_name(op: OpBench) -> str:
    """Which implementation minigrad runs for this op on the CPU: an accelerated class, or the reference."""
    if op.reference is None:
        return "-"  # no accelerated implementation exists: NumPy calls either way
    implementation = registry.lookup(op.reference, "cpu")
    return implementation.__name__ if implementation is not op.reference else "reference"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", choices=sorted(bu.CONFIGS), default="medium", help="sizes (default medium)")
    p.add_argument("--ops", default=",".join(OPS), help=f"comma-separated subset of {','.join(OPS)}")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first (numba compiles or loads here)")
    p.add_argument("--threads", type=int, default=None, help="threads for all (default: numpy's BLAS default)")
    p.add_argument("--settle-ms", type=float, default=None, help="as encoder_step.py (default 250 if threads > 1)")
    p.add_argument("--no-torch", action="store_true")
    be.add_accel_flags(p)
    p.add_argument("--unset-openblas-env", action="store_true", help="as encoder_step.py")
    args = p.parse_args(argv)
    unknown = [name for name in args.ops.split(",") if name not in OPS]
    if unknown:
        p.error(f"unknown ops {unknown}; choose from {','.join(OPS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    be.reexec_with_env(be.env_flag_changes(args.unset_openblas_env, args.threads))

    torch = None if args.no_torch else be.import_torch()
    threads, how = be.resolve_threads(args.threads)
    be.apply_accel(args)
    if torch is not None:
        torch.set_num_threads(threads)
    cfg = bu.CONFIGS[args.config]
    settle = bm.settle_seconds(threads, args.settle_ms)
    print(f"micro: forward+backward per op at the sizes of {cfg.describe()}; float32, cpu, --accel {args.accel}")
    for line in be.environment_lines(torch):
        print(line)
    print(
        f"threads: numpy BLAS {threads} [{how}], torch {torch.get_num_threads() if torch else '-'}; "
        f"{args.repeats} timed rounds after {args.warmup} warmup, implementations alternating"
        + (f", {settle * 1e3:.0f} ms pause + >= 50 ms of untimed calls before each" if settle else "")
    )
    if torch is None:
        print("PyTorch comparison skipped: " + ("--no-torch" if args.no_torch else "torch is not installed"))
    print()
    head = f"{'op':<14} {'kernel':<21} {'minigrad ms':>11} {'floor ms':>9} {'torch ms':>9} {'mg/floor':>9}"
    print(head + f" {'mg/torch':>9} {'<=1.2x':>6} {'check':>6}  inputs")
    rng = np.random.default_rng(0)
    failed = []
    for name in args.ops.split(","):
        op = OPS[name](cfg, rng)
        op.setup_minigrad()
        impls: dict[str, Callable[[], Any]] = {"minigrad": op.minigrad, "floor": op.floor}
        if torch is not None:
            op.setup_torch(torch)
            impls["pytorch"] = op.pytorch
        agreement = check(op, {k: v for k, v in impls.items() if k != "floor"})
        times, _ = bm.time_interleaved(impls, args.repeats, args.warmup, settle=settle)
        med = {k: bm.median(v) for k, v in times.items()}
        unit = 1e6 if name == "overhead" else 1e3  # microseconds for the 1-element op
        t_torch = f"{med['pytorch'] * unit:>9.3f}" if "pytorch" in med else f"{'-':>9}"
        r_torch = f"{med['minigrad'] / med['pytorch']:>8.2f}x" if "pytorch" in med else f"{'-':>9}"
        r_floor = med["minigrad"] / med["floor"]
        ok = r_floor <= 1.2
        if not ok and name in FUSED:
            failed.append(name)
        label = name + (" (us)" if name == "overhead" else "")
        verdict = ("yes" if ok else "NO") if name in FUSED else "-"  # the target is for the fused ops
        print(
            f"{label:<14} {kernel_name(op):<21} {med['minigrad'] * unit:>11.3f} {med['floor'] * unit:>9.3f} "
            f"{t_torch} {r_floor:>8.2f}x {r_torch} {verdict:>6} {agreement:>6}  {op.describe()}"
        )
    print()
    print("ms = median milliseconds per forward+backward (overhead: microseconds); kernel = the implementation")
    print("minigrad ran on the CPU (reference: no kernel registered; -: the op has none); check = worst relative")
    print("difference of minigrad's and torch's output and gradients from the floor's. The 1.2x target is for")
    print("the fused ops; the others are shown for scale.")
    if failed:
        print(f"fused ops slower than 1.2x the NumPy floor: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
