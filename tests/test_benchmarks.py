"""The benchmark helpers count the work they claim to (no timing here: benchmarks run by hand)."""

from __future__ import annotations

import sys
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


def test_encoder_step_runs_with_data_parallel(capsys: pytest.CaptureFixture[str]) -> None:
    import encoder_step

    argv = ["--config", "tiny", "--no-torch", "--no-memory", "--repeats", "2", "--warmup", "1"]
    assert encoder_step.main([*argv, "--data-parallel", "2"]) == 0
    out = capsys.readouterr().out
    assert "the batch in 2 chunks" in out
    assert "minigrad" in out.split("framework")[-1]


def test_cupy_overhead_runs_on_a_gpu_and_explains_itself_without_one(capsys: pytest.CaptureFixture[str]) -> None:
    import cupy_overhead

    import minigrad

    rc = cupy_overhead.main(["--calls", "3", "--no-torch"])
    out = capsys.readouterr().out
    if not minigrad.is_available("cuda"):
        assert rc == 1 and "needs CuPy and a GPU" in out
        return
    assert rc == 0
    for row in ("cupy.add(x, y, out=out)", "backend.layer_norm_forward", "minigrad a + b (graph recorded)"):
        assert row in out
