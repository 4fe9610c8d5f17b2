"""The benchmark helpers count the work they claim to, and the scripts run on both paths (the
acceleration on and off) in a few short steps. The figures themselves are never checked here:
benchmarks run by hand, and their results go to docs/performance.md."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_utils as bu  # noqa: E402
import blas_share  # noqa: E402


@pytest.mark.parametrize("name", sorted(bu.CONFIGS))
@pytest.mark.parametrize("packed", [False, True])
def test_replayed_products_are_the_steps_linear_layers(name: str, packed: bool) -> None:
    cfg = bu.CONFIGS[name]
    calls: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        calls.append((a.shape, b.shape))
        return a @ b

    run, flops = blas_share.replay(blas_share.linear_shapes(cfg, packed), matmul, lambda s: np.ones(s, np.float32))
    run()
    # every product is (m, k) @ (k, n); their FLOPs add up to what replay reports ...
    assert all(a[1] == b[0] for a, b in calls)
    assert flops == sum(2 * a[0] * a[1] * b[1] for a, b in calls)
    # ... which is the step's analytic count without the attention's batched products
    n, d, s = cfg.batch * cfg.seq, cfg.d_model, cfg.seq
    attention = 3 * cfg.layers * 4 * n * s * d
    assert flops == bu.matmul_flops(cfg)[1] - attention
    layers = cfg.layers * (4 if packed else 6) + 1
    assert len(calls) == 3 * layers  # forward, and two products per layer in backward


def test_a_chunked_step_computes_the_gradients_of_a_whole_batch_step() -> None:
    cfg = bu.CONFIGS["tiny"]
    batch = bu.make_batch(cfg)
    whole = bu.build_minigrad(cfg)
    chunked = bu.build_minigrad(cfg)
    loss = bu.minigrad_step(*whole, bu.minigrad_inputs(batch)).item()
    chunks = bu.minigrad_chunks(batch, 3)
    assert [len(c[2]) for c in chunks] == [5, 5, 6]
    assert bu.minigrad_step(*chunked, chunks).item() == pytest.approx(loss, rel=1e-6)
    # the step leaves the gradients in .grad (Adam's first update is ~lr * sign(grad): it
    # would amplify float32 rounding in near-zero gradients, so compare those instead)
    # (some are exactly 0 in exact arithmetic, a key projection's bias for one: compare
    # against the largest gradient of the model)
    pairs = [(p.grad.numpy(), q.grad.numpy()) for p, q in zip(whole[0].parameters(), chunked[0].parameters())]
    scale = max(np.abs(g).max() for g, _ in pairs)
    for g, h in pairs:
        np.testing.assert_allclose(h, g, rtol=1e-4, atol=1e-6 * scale)
    with pytest.raises(ValueError, match="cannot split a batch of 16 into 17 chunks"):
        bu.minigrad_chunks(batch, 17)


SMOKE = ["--config", "tiny", "--no-torch", "--repeats", "2", "--warmup", "1"]


def _numba_missing() -> bool:
    import importlib.util

    return importlib.util.find_spec("numba") is None


@pytest.fixture
def reference_path_after() -> Iterator[None]:
    """The scripts turn the acceleration on or off process-wide: leave it off (the reference) afterwards."""
    yield
    import minigrad

    minigrad.accel.disable()
    minigrad.accel.set_kernel_threads(1)


def _timed_row(out: str, name: str) -> list[str]:
    """The cells of the results table's row for ``name`` (after the header line)."""
    table = out.split("median ms")[-1]
    return next(line.split() for line in table.splitlines() if line.startswith(name + " "))


def test_encoder_step_on_the_reference_path(capsys: pytest.CaptureFixture[str], reference_path_after: None) -> None:
    import encoder_step

    import minigrad

    assert encoder_step.main([*SMOKE, "--accel", "off", "--data-parallel", "2"]) == 0
    out = capsys.readouterr().out
    assert "minigrad acceleration: off" in out and not minigrad.accel.is_enabled()
    # with the acceleration off the chunks run one after the other, and the header says why
    assert "the batch in 2 chunks, forward+backward one after the other (the chunks run on threads only" in out
    assert float(_timed_row(out, "minigrad")[1]) > 0  # median ms
    assert "PyTorch comparison skipped: disabled by --no-torch" in out


@pytest.mark.skipif(_numba_missing(), reason="numba is not installed (the fast extra): no CPU kernels to time")
def test_encoder_step_with_the_acceleration(capsys: pytest.CaptureFixture[str], reference_path_after: None) -> None:
    import encoder_step

    import minigrad

    # --malloc-tuning off: the test process keeps glibc's defaults (the setting cannot be undone)
    argv = [*SMOKE, "--accel", "on", "--malloc-tuning", "off", "--threads", "2", "--kernel-threads", "2", "--json"]
    assert encoder_step.main(argv) == 0
    out = capsys.readouterr().out
    assert minigrad.accel.is_enabled()
    assert "minigrad acceleration: on" in out and "minigrad cpu: on (numba" in out
    assert "2 kernel threads" in out  # --kernel-threads reached the kernels before they were registered
    assert "minigrad malloc: " in out  # "not applied", unless another test in this process applied it
    assert float(_timed_row(out, "minigrad")[1]) > 0
    # the memory subprocess ran with the same flags: it reports a measurement, not a failure
    assert "memory subprocess for minigrad failed" not in out
    results = json.loads(next(line for line in out.splitlines() if line.startswith("JSON "))[5:])
    assert results["accel"] == "on" and results["threads"] == 2
    assert results["frameworks"]["minigrad"]["memory"]["params"] > 0


def test_malloc_flag_follows_the_acceleration_unless_asked() -> None:
    import bench_env as be

    assert be.malloc_wanted("on", "auto") and not be.malloc_wanted("off", "auto")
    assert be.malloc_wanted("off", "on") and not be.malloc_wanted("on", "off")
    parser = argparse.ArgumentParser()
    be.add_accel_flags(parser)
    assert parser.parse_args([]).accel == "on"
    assert parser.parse_args(["--malloc-tuning"]).malloc_tuning == "on"  # the flag alone, as before
    assert parser.parse_args([]).malloc_tuning == "auto"
    args = parser.parse_args(["--accel", "off", "--kernel-threads", "2"])
    assert be.accel_argv(args) == ["--accel", "off", "--malloc-tuning", "auto", "--kernel-threads", "2"]


@pytest.mark.parametrize("accel", ["off", "on"])
def test_micro_checks_and_times_the_fused_ops(
    accel: str, capsys: pytest.CaptureFixture[str], reference_path_after: None
) -> None:
    if accel == "on" and _numba_missing():
        pytest.skip("numba is not installed (the fast extra): no CPU kernels to time")
    import micro

    ops = "softmax,layer_norm,attention,linear_relu,cross_entropy"
    argv = ["--config", "tiny", "--no-torch", "--repeats", "2", "--warmup", "1", "--ops", ops, "--malloc-tuning", "off"]
    assert micro.main([*argv, "--accel", accel]) == 0
    out = capsys.readouterr().out
    kernels = {name: _timed_row(out, name)[1] for name in ops.split(",")}
    if accel == "on":  # the ops that have a kernel ran it, cross-entropy has none
        assert kernels == {
            "softmax": "FastSoftmax",
            "layer_norm": "FastLayerNorm",
            "attention": "FastAttentionWeights",
            "linear_relu": "FastLinearReLU",
            "cross_entropy": "-",
        }
    else:
        assert set(kernels.values()) == {"reference", "-"}


def test_cupy_overhead_runs_on_a_gpu_and_explains_itself_without_one(capsys: pytest.CaptureFixture[str]) -> None:
    import cupy_overhead

    import minigrad

    rc = cupy_overhead.main(["--calls", "3", "--no-torch"])
    out = capsys.readouterr().out
    if not minigrad.is_available("cuda"):
        assert rc == 1 and "needs CuPy and a GPU" in out
        return
    assert rc == 0
    for row in ("cupy.add(x, y, out=out)", "accel.cuda.layer_norm_forward", "minigrad a + b (graph recorded)"):
        assert row in out
