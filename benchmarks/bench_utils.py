"""Shared helpers of the benchmarks: the configs, the batch, the two models, timing, memory, environment.

The benchmark scripts in this folder (``encoder_step.py``, ``micro.py``, ``memory.py``,
``profile_step.py``) import this module; run them as ``python benchmarks/<script>.py``
(Python puts the script's folder first on ``sys.path``, so ``import bench_utils`` works).

PyTorch is optional everywhere: :func:`import_torch` returns None when it is missing
(the project's own virtualenv and CI have no torch), and every torch code path is guarded.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# minigrad first: imported before NumPy, it sets OPENBLAS_THREAD_TIMEOUT so that OpenBLAS's idle
# threads sleep instead of spinning against minigrad's kernel threads (see minigrad/parallel.py).
# Both frameworks then run in this one process under the same environment.
import minigrad
import numpy as np


# ---- the model sizes ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchConfig:
    """One benchmark size: (batch, seq, d_model, heads, d_ff, layers, vocab) of a sequence classifier."""

    name: str
    batch: int
    seq: int
    d_model: int
    nhead: int
    d_ff: int
    layers: int
    vocab: int
    num_classes: int = 4

    def describe(self) -> str:
        return (
            f"{self.name}: batch {self.batch}, seq {self.seq}, d_model {self.d_model}, heads {self.nhead}, "
            f"d_ff {self.d_ff}, layers {self.layers}, vocab {self.vocab}, classes {self.num_classes}"
        )


CONFIGS = {
    "tiny": BenchConfig("tiny", 16, 16, 32, 4, 64, 1, 16),
    "small": BenchConfig("small", 32, 32, 128, 4, 512, 2, 64),
    "medium": BenchConfig("medium", 32, 64, 256, 8, 1024, 4, 128),
}


def matmul_flops(cfg: BenchConfig) -> tuple[int, int]:
    """(forward, forward+backward) matrix-multiplication FLOPs of one training step, counted analytically.

    A product (m, k) @ (k, n) costs 2*m*k*n FLOPs (one multiply and one add per term).
    With N = batch*seq tokens, D = d_model, S = seq, F = d_ff, per encoder layer:

        q, k, v projections  3 * 2*N*D*D
        scores q @ k^T           2*N*S*D     (all heads together: B*H*S*S*(D/H) terms)
        weights @ v              2*N*S*D
        output projection        2*N*D*D
        feed-forward           2 * 2*N*D*F   (D -> F -> D)
        -------------------------------------
        layer forward = 8*N*D^2 + 4*N*S*D + 4*N*D*F

    plus the classifier head 2*B*D*C. The backward pass of every product needs two
    products of the same size (the gradient of each operand), so forward+backward = 3x
    forward. Not counted: the embedding lookup, softmax, layer norm, elementwise ops and
    the optimizer (all O(N*D) or O(params), memory bound). Padded positions are computed
    (and counted) by both frameworks.
    """
    n = cfg.batch * cfg.seq
    d, s, f = cfg.d_model, cfg.seq, cfg.d_ff
    layer = 8 * n * d * d + 4 * n * s * d + 4 * n * d * f
    forward = cfg.layers * layer + 2 * cfg.batch * d * cfg.num_classes
    return forward, 3 * forward


# ---- optional libraries -------------------------------------------------------------------------
def import_torch() -> Any:
    """The torch module, or None when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _threadpoolctl() -> Any:
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl


# ---- environment: BLAS, threads, allocator ------------------------------------------------------------
# glibc malloc settings for --malloc-tuning: the values minigrad.allocator sets at import,
# as environment variables read before the libraries load. By default glibc
# serves blocks above a dynamic threshold (128 KiB at first, rising to at most 32 MiB) with
# mmap and gives freed memory at the top of the heap back to the OS (trim), so every step
# page-faults its large temporaries in again. With these two variables, blocks up to
# 32 MiB come from the heap and freed memory is kept (up to 1 GiB) for the next step.
# 32 MiB is the largest mmap threshold every glibc accepts (older versions reject larger
# values, and since setting the trim threshold turns the dynamic mmap threshold off, a
# rejected value would leave it at 128 KiB: the opposite of the intent). The largest
# temporary of the medium config is 8 MiB.
MALLOC_TUNING = {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024), "MALLOC_TRIM_THRESHOLD_": str(1024 * 1024 * 1024)}
MALLOC_VARS = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_ARENA_MAX",
    "GLIBC_TUNABLES",
)
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_REEXEC_MARK = "MINIGRAD_BENCH_REEXEC"


def reexec_with_env(changes: dict[str, str | None]) -> None:
    """Restart this script with environment variables set (str) or unset (None), if needed.

    Allocator and BLAS variables are read once, when the C libraries load, so they must
    be in place before the process starts: we re-execute ourselves with the same
    arguments. Nothing happens when the environment already matches (the re-executed
    process), so there is no loop.
    """
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    if env == dict(os.environ):
        return
    if os.environ.get(_REEXEC_MARK):
        raise RuntimeError("re-executing did not set the environment; giving up")
    env[_REEXEC_MARK] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def env_flag_changes(malloc_tuning: bool, unset_openblas_env: bool, threads: int | None) -> dict[str, str | None]:
    """The environment changes the common flags ask for (see :func:`reexec_with_env`)."""
    changes: dict[str, str | None] = {}
    if malloc_tuning:
        changes.update(MALLOC_TUNING)
    if unset_openblas_env:
        changes.update({key: None for key in OPENBLAS_VARS})  # both together
    if threads is not None and _threadpoolctl() is None and _openblas_functions() is None:
        # with neither threadpoolctl nor OpenBLAS's API, the only way to size BLAS's pool is before it loads
        changes.update({key: str(threads) for key in THREAD_VARS})
    return changes


def blas_info() -> dict[str, Any]:
    """Which BLAS NumPy uses and its thread count (threadpoolctl when installed, else numpy's config)."""
    tpc = _threadpoolctl()
    if tpc is not None:
        import numpy  # noqa: F401  (threadpoolctl only sees libraries already loaded)

        pools = [p for p in tpc.threadpool_info() if p.get("user_api") == "blas"]
        numpy_pools = [p for p in pools if "numpy" in p.get("filepath", "")] or pools
        if numpy_pools:
            p = numpy_pools[0]
            return {
                "source": "threadpoolctl",
                "name": p.get("internal_api"),
                "version": p.get("version"),
                "arch": p.get("architecture"),
                "threading": p.get("threading_layer"),
                "threads": p.get("num_threads"),
                "path": p.get("filepath"),
            }
    info: dict[str, Any] = {"source": "numpy.show_config (threadpoolctl not installed)", "threads": None}
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        info.update(name=blas.get("name"), version=blas.get("version"), arch=None, threading=None, path=None)
    except Exception:  # older NumPy: no dict mode
        info.update(name="unknown", version=None, arch=None, threading=None, path=None)
    lib = _openblas_functions()
    if lib is not None:  # ask OpenBLAS itself
        info["source"] += " + OpenBLAS through ctypes"
        info["threads"] = int(lib["get_num_threads"]())
        info["arch"] = lib["get_corename"]().decode()
    return info


def _openblas_functions() -> dict[str, Any] | None:
    """OpenBLAS's get/set_num_threads and get_corename through ctypes (``minigrad.backend.openblas_api``):
    a fallback for when threadpoolctl is missing."""
    from minigrad.backend import openblas_api

    return openblas_api()


def set_blas_threads(n: int) -> bool:
    """Use ``n`` threads for the rest of the process: NumPy's BLAS (threadpoolctl, else OpenBLAS's
    API) and minigrad's own kernels (``minigrad.set_num_threads``). Returns whether BLAS was set."""
    minigrad.set_num_threads(n)
    tpc = _threadpoolctl()
    if tpc is not None:
        tpc.threadpool_limits(limits=n, user_api="blas")
        return True
    lib = _openblas_functions()
    if lib is not None:
        lib["set_num_threads"](n)
        return int(lib["get_num_threads"]()) == n
    return False


def resolve_threads(requested: int | None) -> tuple[int, str]:
    """The thread count both frameworks use, and how it was found."""
    if requested is not None:
        if set_blas_threads(requested):
            how = "threadpoolctl" if _threadpoolctl() is not None else "OpenBLAS's set_num_threads"
            return requested, f"--threads (set with {how})"
        return requested, "--threads (set through *_NUM_THREADS before BLAS loaded; threadpoolctl missing)"
    info = blas_info()
    if info["threads"]:
        return int(info["threads"]), f"numpy's BLAS default [{info['source']}]"
    for key in THREAD_VARS:
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key]), f"${key}"
    return os.cpu_count() or 1, "os.cpu_count() (OpenBLAS's default; BLAS not queryable, count not verified)"


def _torch_version() -> str:
    """The installed torch version without importing it (importing costs ~200 MiB of RSS)."""
    from importlib import metadata

    try:
        return metadata.version("torch") + " (not imported)"
    except metadata.PackageNotFoundError:
        return "not installed"


def code_version() -> str:
    """The repository's commit, and whether minigrad/ or encoder/ differ from it (the code measured)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--", "minigrad", "encoder"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + (" + uncommitted changes in minigrad/ or encoder/" if dirty else "")


def environment_lines(torch: Any = None) -> list[str]:
    """Header lines: versions, BLAS, the variables that change speed (printed by every benchmark)."""
    info = blas_info()
    lines = [
        f"code: commit {code_version()}",
        f"python {platform.python_version()}, numpy {np.__version__}"
        + f", torch {torch.__version__ if torch is not None else _torch_version()}"
        + f", {platform.machine()}, {os.cpu_count()} cpus",
        f"numpy BLAS: {info['name']} {info.get('version') or ''} arch={info.get('arch')} "
        f"threading={info.get('threading')} threads={info['threads']} [{info['source']}]",
    ]
    unset = "<unset>"
    lines.append(
        "OpenBLAS env: "
        + ", ".join(f"{k}={os.environ.get(k, unset)}" for k in (*OPENBLAS_VARS, "OPENBLAS_THREAD_TIMEOUT"))
    )
    lines.append(f"minigrad kernel threads: {minigrad.get_num_threads()} (MINIGRAD_NUM_THREADS or set_num_threads)")
    minigrad.native.library()  # build or load the C kernels now, so that the line says what the run uses
    lines.append(f"minigrad C kernels: {minigrad.native.status()}")
    malloc = [f"{k}={os.environ[k]}" for k in MALLOC_VARS if k in os.environ]
    tuned = all(os.environ.get(k) == v for k, v in MALLOC_TUNING.items())
    listed = ", ".join(malloc) if malloc else "no MALLOC_* variables"
    lines.append(f"malloc tuning: {'ON' if tuned else 'off'} ({listed})")
    lines.append(f"minigrad's malloc settings (both frameworks share the process): {minigrad.allocator.status()}")
    return lines


# ---- timing ---------------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values)


def time_interleaved(
    fns: dict[str, Callable[[], Any]],
    repeats: int,
    warmup: int,
    sync: dict[str, Callable[[], None]] | None = None,
    counters: dict[str, Callable[[], float]] | None = None,
    settle: float = 0.0,
) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    """Run each function ``warmup`` times, then ``repeats`` timed rounds, alternating them.

    Round r runs the functions in an order rotated by r (A B, B A, ... for two), so slow
    drifts of a noisy machine hit all of them alike. ``sync[name]`` (e.g. a CUDA
    synchronize) runs inside the timed region after the call. ``counters`` are read before
    and after every timed call (e.g. page faults); their mean change per call is returned.
    With ``settle`` > 0, every timed call is preceded by ``settle`` seconds of sleep and
    untimed calls of the same function for at least ``REWARM`` seconds (at least one call;
    see :func:`settle_seconds`).

    Returns ({name: [seconds per call]}, {name: {counter: mean change per call}}).
    """
    sync = sync or {}
    counters = counters or {}
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
            sync.get(name, _noop)()
    times: dict[str, list[float]] = {name: [] for name in names}
    deltas: dict[str, dict[str, float]] = {name: dict.fromkeys(counters, 0.0) for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            if settle:  # let the others' threads fall asleep, then run ours untimed for >= 50 ms
                time.sleep(settle)
                start = time.perf_counter()
                while True:
                    fns[name]()
                    sync.get(name, _noop)()
                    if time.perf_counter() - start >= REWARM:
                        break
            before = {c: read() for c, read in counters.items()}
            t0 = time.perf_counter()
            fns[name]()
            sync.get(name, _noop)()
            times[name].append(time.perf_counter() - t0)
            for c, read in counters.items():
                deltas[name][c] += read() - before[c]
    for name in names:
        for c in counters:
            deltas[name][c] /= max(repeats, 1)
    return times, deltas


REWARM = 0.05  # seconds of untimed calls after a settle pause


def settle_seconds(threads: int, requested_ms: float | None) -> float:
    """Pause before each timed call: 0.25 s when several threads are used, else none.

    After a call, OpenBLAS's worker threads keep spinning for ~0.1 s (and PyTorch's
    OpenMP threads for a while too) before they sleep. With more than one thread, the
    framework timed next then shares its cores with the other's spinning threads: on this
    2-core machine a 3 ms torch matmul right after a NumPy one took 6-14 ms, and 3.8 ms
    after a 0.2 s pause. But a process that slept is slow to start again too (its
    threads asleep, caches and the CPU's clock cold: a 2.2 ms tiny step took 6.6 ms right
    after one warm-up call), so after the pause the function runs untimed for ``REWARM``
    seconds before the timed call (see :func:`time_interleaved`). With one thread there
    are no worker threads to wait for, and no pause.
    """
    if requested_ms is not None:
        return requested_ms / 1e3
    return 0.25 if threads > 1 else 0.0


def _noop() -> None:
    return None


def minor_faults() -> float:
    """Minor page faults of this process so far (a first touch of fresh memory from the OS)."""
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def system_ms() -> float:
    """CPU time this process spent in the kernel so far, in ms (page faults, mmap/munmap, ...)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime * 1e3


# ---- memory ---------------------------------------------------------------------------------------
def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:  # no /proc (not Linux): the caller reports the figure as unavailable
        return None
    return None


def rss_bytes() -> int:
    """Current resident set size (Linux /proc, else psutil, else the peak as a last resort)."""
    kib = _proc_status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        return peak_rss_bytes()


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; True when supported.

    Writing "5" to /proc/self/clear_refs (Linux >= 4.0) does it; without it the peak is
    ``ru_maxrss``, the peak of the whole process life (imports included).
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """Peak RSS since the last :func:`reset_peak_rss` (VmHWM), else of the process life (ru_maxrss)."""
    kib = _proc_status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, KiB on Linux


MiB = 1024 * 1024


def measure_memory(
    config: str, device: str, framework: str, threads: int, steps: int, seed: int = 0, data_parallel: int = 1
) -> dict | None:
    """Peak memory of ``steps`` training steps of one framework, measured in a fresh interpreter.

    Runs ``encoder_step.py --memory-child`` (same Python, same environment) and parses the
    JSON line it prints; see ``encoder_step.memory_child`` for what is measured.
    """
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "encoder_step.py")
    cmd = [sys.executable, script, "--memory-child", framework, "--config", config, "--device", device]
    cmd += ["--threads", str(threads), "--memory-steps", str(steps), "--seed", str(seed)]
    cmd += ["--data-parallel", str(data_parallel)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("MEMORY "):
            return json.loads(line[len("MEMORY ") :])
    print(f"  (memory subprocess for {framework} failed: {proc.stderr.strip()[-500:]})")
    return None


# ---- the batch ----------------------------------------------------------------------------------------
def make_batch(cfg: BenchConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Token ids with padding, the key padding mask (True = padding) and one label per sequence.

    Lengths are drawn in [seq/2, seq]; padded positions hold token 0 (the padding index).
    """
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, cfg.vocab, size=(cfg.batch, cfg.seq), dtype=np.int64)
    lengths = rng.integers(cfg.seq // 2, cfg.seq + 1, size=cfg.batch)
    lengths[0] = cfg.seq  # at least one full-length sequence
    padding = np.arange(cfg.seq)[None, :] >= lengths[:, None]
    tokens[padding] = 0
    labels = rng.integers(0, cfg.num_classes, size=cfg.batch, dtype=np.int64)
    return {"tokens": tokens, "padding_mask": padding, "labels": labels}


# ---- minigrad ---------------------------------------------------------------------------------------
LR = 1e-3  # Adam with its defaults otherwise (betas 0.9, 0.999, eps 1e-8), the same in both frameworks


def build_minigrad(cfg: BenchConfig, device: str = "cpu", seed: int = 0) -> tuple[Any, Any]:
    """Our SequenceClassifier (mean pooling, no dropout, post-LN, ReLU) and its Adam optimizer."""
    import minigrad
    from encoder.models import ModelConfig, build_model

    minigrad.manual_seed(seed)
    config = ModelConfig(
        vocab_size=cfg.vocab,
        num_classes=cfg.num_classes,
        head="sequence",
        d_model=cfg.d_model,
        nhead=cfg.nhead,
        num_layers=cfg.layers,
        dim_feedforward=cfg.d_ff,
        dropout=0.0,
        max_len=cfg.seq,
        pooling="mean",
        padding_idx=0,
    )
    model = build_model(config)
    model.to(device)
    optimizer = minigrad.optim.Adam(list(model.parameters()), lr=LR)
    return model, optimizer


def minigrad_inputs(batch: dict[str, np.ndarray], device: str = "cpu") -> tuple[Any, Any, Any]:
    import minigrad

    return tuple(minigrad.tensor(batch[k], device=device) for k in ("tokens", "padding_mask", "labels"))


def minigrad_loss(model: Any, inputs: tuple[Any, Any, Any]) -> Any:
    import minigrad.functional as F

    tokens, padding_mask, labels = inputs
    return F.cross_entropy(model(tokens, padding_mask), labels)


def minigrad_chunks(batch: dict[str, np.ndarray], parts: int, device: str = "cpu") -> list[tuple[Any, Any, Any]]:
    """The batch split into ``parts`` chunks of consecutive sequences (for ``minigrad_step``)."""
    size = len(batch["labels"])
    if not 1 <= parts <= size:
        raise ValueError(f"cannot split a batch of {size} into {parts} chunks")
    from minigrad.parallel import even_slices

    return [minigrad_inputs({k: v[lo:hi] for k, v in batch.items()}, device) for lo, hi in even_slices(size, parts)]


def minigrad_step(model: Any, optimizer: Any, inputs: tuple[Any, Any, Any] | list[tuple[Any, Any, Any]]) -> Any:
    """One training step: forward, loss, backward, Adam update. Returns the loss tensor.

    ``inputs`` as a list of chunks (``minigrad_chunks``): the chunks' forward and backward
    run on threads (``minigrad.data_parallel_backward``), each weighted by its share of the batch.
    """
    optimizer.zero_grad()
    if isinstance(inputs, list):
        import minigrad

        sizes = [len(chunk[2]) for chunk in inputs]
        loss = minigrad.data_parallel_backward(
            lambda chunk: minigrad_loss(model, chunk),
            inputs,
            list(model.parameters()),
            [n / sum(sizes) for n in sizes],
        )
    else:
        loss = minigrad_loss(model, inputs)
        loss.backward()
    optimizer.step()
    return loss


def cuda_synchronize_minigrad() -> None:
    """Wait for the GPU (CuPy is imported here only, so CPU runs never need it)."""
    import cupy

    cupy.cuda.Device().synchronize()


# ---- PyTorch ------------------------------------------------------------------------------------------
def sinusoidal_table_np(max_len: int, d_model: int) -> np.ndarray:
    """The same table as ``encoder.embeddings.sinusoidal_table``, in NumPy (float32)."""
    pos = np.arange(max_len, dtype=np.float64)[:, None]
    angle = pos * np.exp(np.arange(0, d_model, 2, dtype=np.float64) * (-math.log(10000.0) / d_model))
    table = np.stack([np.sin(angle), np.cos(angle)], axis=-1).reshape(max_len, -1)[:, :d_model]
    return table.astype(np.float32)


def build_torch(torch: Any, cfg: BenchConfig, source: Any = None, device: str = "cpu") -> tuple[Any, Any]:
    """The same classifier in PyTorch and its Adam optimizer.

    The encoder is ``torch.nn.TransformerEncoder(batch_first=True, norm_first=False,
    dropout=0, enable_nested_tensor=False)``. With ``source`` (our minigrad model) every
    weight is copied from it: the embedding, the encoder stack through
    ``encoder.interop.to_torch_state_dict`` and the head; otherwise torch's own init is
    kept (enough for memory measurements, where values do not matter).
    """
    nn = torch.nn

    class TorchSequenceClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(cfg.vocab, cfg.d_model, padding_idx=0)
            self.register_buffer("pe", torch.from_numpy(sinusoidal_table_np(cfg.seq, cfg.d_model)))
            layer = nn.TransformerEncoderLayer(
                cfg.d_model, cfg.nhead, cfg.d_ff, dropout=0.0, activation="relu", batch_first=True, norm_first=False
            )
            self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
            self.head = nn.Linear(cfg.d_model, cfg.num_classes)
            self.scale = math.sqrt(cfg.d_model)

        def forward(self, tokens: Any, padding_mask: Any) -> Any:
            # as encoder.models.SequenceClassifier: embed * sqrt(d) + PE, encoder, masked mean, head
            x = self.embed(tokens) * self.scale + self.pe[: tokens.shape[1]]
            h = self.encoder(x, src_key_padding_mask=padding_mask)
            keep = (~padding_mask).to(h.dtype).unsqueeze(-1)
            return self.head((h * keep).sum(1) / keep.sum(1))

    model = TorchSequenceClassifier()
    if source is not None:
        from encoder.interop import to_torch_state_dict

        state = {"encoder." + k: torch.from_numpy(v.copy()) for k, v in to_torch_state_dict(source.encoder).items()}
        state["embed.weight"] = torch.from_numpy(source.embed.embedding.weight.detach().numpy().copy())
        state["pe"] = torch.from_numpy(source.pos.table.numpy()[: cfg.seq].copy())
        state["head.weight"] = torch.from_numpy(source.head.weight.detach().numpy().copy())
        state["head.bias"] = torch.from_numpy(source.head.bias.detach().numpy().copy())
        model.load_state_dict(state, strict=True)
    model.to(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    return model, optimizer


def torch_inputs(torch: Any, batch: dict[str, np.ndarray], device: str = "cpu") -> tuple[Any, Any, Any]:
    return tuple(torch.from_numpy(batch[k].copy()).to(device) for k in ("tokens", "padding_mask", "labels"))


def torch_loss(torch: Any, model: Any, inputs: tuple[Any, Any, Any]) -> Any:
    tokens, padding_mask, labels = inputs
    return torch.nn.functional.cross_entropy(model(tokens, padding_mask), labels)


def torch_step(torch: Any, model: Any, optimizer: Any, inputs: tuple[Any, Any, Any]) -> Any:
    optimizer.zero_grad(set_to_none=True)
    loss = torch_loss(torch, model, inputs)
    loss.backward()
    optimizer.step()
    return loss
