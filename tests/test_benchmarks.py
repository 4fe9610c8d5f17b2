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
