"""Attention's stacks of small products in registers (``minigrad.accel.numba_tiles``).

The tiles take the stacks ``numba_gemm.matmul_stack`` gets when their shapes fit: every
layout attention makes (heads interleaved in a (batch, seq, heads, d) array, transposed
views, compact stacks), both float dtypes, any thread count. Each product is checked
against NumPy's, and the bits against other thread counts.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba", reason="the acceleration's CPU kernels need numba (the fast extra)")

from minigrad.accel import numba_gemm, numba_gemm_loops, numba_tiles  # noqa: E402  (needs numba)

if not numba_tiles.vector_fma():  # pragma: no cover - a CPU without AVX2 and FMA
    pytest.skip("the tiles are off on this CPU (no AVX2 and FMA)", allow_module_level=True)


def _heads(rng, b, s, h, d, dtype):
    """(b, h, s, d) views of a C-contiguous (b, s, h, d) array: the heads interleaved in memory."""
    return rng.standard_normal((b, s, h, d)).astype(dtype).transpose(0, 2, 1, 3)


def _operands(layout, b, h, m, k, n, dtype, seed=0):
    """a (b, h, m, k) and b (b, h, k, n) in attention's layouts: 'heads' (interleaved heads,
    rows contiguous), 'heads_t' (the transpose of such a view), 'compact' (C-contiguous) and
    'compact_t' (the transpose of a C-contiguous stack)."""
    rng = np.random.default_rng(seed)

    def make(kind, rows, cols):
        if kind == "heads":
            return _heads(rng, b, rows, h, cols, dtype)
        if kind == "heads_t":
            return _heads(rng, b, cols, h, rows, dtype).swapaxes(-1, -2)
        if kind == "compact":
            return rng.standard_normal((b, h, rows, cols)).astype(dtype)
        return rng.standard_normal((b, h, cols, rows)).astype(dtype).swapaxes(-1, -2)

    kind_a, kind_b = layout
    return make(kind_a, m, k), make(kind_b, k, n)


def _run(a, b, parts, heads_layout=False):
    """The tiles' product of two 4-D stacks, into a fresh output (heads layout: a view)."""
    if heads_layout:
        c = np.empty((a.shape[0], a.shape[2], a.shape[1], b.shape[3]), dtype=a.dtype).transpose(0, 2, 1, 3)
    else:
        c = np.empty(a.shape[:3] + b.shape[3:], dtype=a.dtype)
    numba_tiles.stack_product(a, b, c, parts)
    return c


def _close(got, a, b):
    """Equal to the product in float64, to the rounding of a sum of k terms in got's dtype."""
    exact = np.matmul(a.astype(np.float64), b.astype(np.float64))
    terms = np.matmul(np.abs(a).astype(np.float64), np.abs(b).astype(np.float64))  # sum_p |a_ip b_pj|
    eps = np.finfo(got.dtype).eps
    assert np.all(np.abs(got - exact) <= 2 * a.shape[-1] * eps * terms + 1e-300)


KINDS = ("heads", "heads_t", "compact", "compact_t")
LAYOUTS = [(x, y) for x in KINDS for y in KINDS]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", LAYOUTS, ids=["-".join(x) for x in LAYOUTS])
def test_the_tiles_equal_the_product_for_every_layout(dtype, layout):
    a, b = _operands(layout, 3, 4, 8, 12, 32, dtype)
    for parts in (1, 2, 3):
        for heads_layout in (False, True):
            _close(_run(a, b, parts, heads_layout), a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_attentions_products_equal_numpys(dtype):
    """The six products of attention's forward and backward, in the layouts its ops pass."""
    rng = np.random.default_rng(1)
    q, k, v, do = (_heads(rng, 2, 16, 3, 16, dtype) for _ in range(4))
    p = rng.random((2, 3, 16, 16)).astype(dtype)
    products = {
        "scores q k^T": (q, k.swapaxes(-1, -2)),
        "output p v": (p, v),
        "dp = do v^T": (do, v.swapaxes(-1, -2)),
        "dv = p^T do": (p.swapaxes(-1, -2), do),
        "dq = ds k": (p, k),
        "dk = ds^T q": (p.swapaxes(-1, -2), q),
    }
    for name, (a, b) in products.items():
        assert numba_tiles.fits(a.shape[-2], a.shape[-1], b.shape[-1], a.itemsize), name
        got = _run(a, b, 2, heads_layout=True)
        _close(got, a, b)
        np.testing.assert_allclose(got, a @ b, rtol=1e-12 if dtype == "float64" else 1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_bits_do_not_depend_on_the_thread_count(dtype):
    """Each entry's sum runs in one order, whatever the split: same bits on 1, 2, 3 or 5 threads."""
    a, b = _operands(("heads", "heads_t"), 2, 3, 16, 8, 16, dtype, seed=2)
    first = _run(a, b, 1)
    for parts in (2, 3, 5):
        assert np.array_equal(_run(a, b, parts), first)


def test_read_only_and_broadcast_operands_are_taken():
    """One compiled kernel per dtype serves read-only views too (a broadcast stack of one matrix)."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((2, 3, 8, 4))
    a.setflags(write=False)
    b = np.broadcast_to(rng.standard_normal((4, 8)), (2, 3, 4, 8))
    assert not a.flags.writeable and not b.flags.writeable
    np.testing.assert_allclose(_run(a, b, 2), a @ b, rtol=1e-12, atol=1e-13)


def test_fewer_batch_entries_than_threads_split_the_heads():
    """One batch entry on 2 or 3 threads: its heads are shared out, each computed once."""
    a, b = _operands(("heads", "compact"), 1, 5, 4, 8, 16, "float64", seed=3)
    units, per = numba_tiles.split_heads(1, 5, 3, 8 * 16 * 8)
    assert (units, per) == (3, 3)
    for parts in (2, 3, 8):
        np.testing.assert_allclose(_run(a, b, parts), a @ b, rtol=1e-12, atol=1e-13)


def test_a_units_copies_stay_within_its_budget():
    """Heads whose copies of b would pass UNIT_BYTES are split into several units."""
    panel = 64 * 128 * 8  # float64 (64, 128): 64 KiB
    units, per = numba_tiles.split_heads(2, 6, 1, panel)
    heads_per_unit = -(-6 // per)
    assert per == 2 and heads_per_unit * panel <= numba_tiles.UNIT_BYTES  # 4 heads fit: 6 need two units
    ranges = [numba_tiles.unit_range(u, 6, per) for u in range(units)]
    covered = sorted(i * 6 + h for i, h0, h1 in ranges for h in range(h0, h1))
    assert covered == list(range(12))  # every head of both entries exactly once
    a, b = _operands(("heads", "heads_t"), 2, 6, 8, 64, 128, "float64", seed=4)
    np.testing.assert_allclose(_run(a, b, 2), a @ b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["heads", "heads_t", "compact", "compact_t"])
@pytest.mark.parametrize("rows,cols", [(8, 16), (32, 64), (5, 7), (9, 17), (16, 3)])
def test_gather_copies_each_layout_in_order(kind, dtype, rows, cols):
    """Rows in whole vectors and columns in transposed blocks, with the tails shorter than a
    vector (or a block) element by element: every entry lands where it belongs."""
    a, _ = _operands((kind, "compact"), 2, 3, rows, cols, 16, dtype, seed=5)
    buf = np.full((3, rows, cols), np.nan, dtype=dtype)
    numba_tiles.gather(a[1], buf)
    assert np.array_equal(buf, a[1])
    assert numba_tiles.is_compact(a) == kind.startswith("compact")


def test_gather_takes_a_layout_with_no_contiguous_axis_element_by_element():
    x = np.random.default_rng(6).standard_normal((3, 10, 12))[:, ::2, ::3]  # (3, 5, 4), no unit stride
    buf = np.full(x.shape, np.nan)
    numba_tiles.gather(x, buf)
    assert np.array_equal(buf, x)


def test_fits_takes_whole_tiles_and_small_copies():
    cols32, cols64 = numba_tiles.columns(4), numba_tiles.columns(8)
    assert (cols32, cols64) == (16, 8)
    assert numba_tiles.fits(64, 32, 64, 4) and numba_tiles.fits(64, 64, 32, 4) and numba_tiles.fits(8, 4, 8, 8)
    assert not numba_tiles.fits(6, 32, 64, 4)  # rows not a multiple of 4
    assert not numba_tiles.fits(64, 32, 8, 4)  # 8 columns: half a float32 tile
    assert not numba_tiles.fits(64, 0, 64, 4)  # nothing to sum
    assert not numba_tiles.fits(64, 512, 64, 4)  # b's copy 128 KiB, over MAX_PANEL_BYTES
    assert numba_tiles.fits(64, 256, 64, 4)  # exactly 64 KiB


@pytest.mark.skipif(numba_gemm.load() is not None, reason="the products on numba's threads need NumPy's OpenBLAS")
def test_matmul_stack_runs_the_tiles_where_they_fit_and_blas_elsewhere(monkeypatch):
    calls = []
    for module, name in ((numba_tiles, "stack_product"), (numba_gemm_loops, "gemm_stack")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _r=real, _n=name: (calls.append(_n), _r(*a))[1])
    rng = np.random.default_rng(6)
    for shape_a, shape_b, expected in [((2, 3, 8, 4), (2, 3, 4, 16), "stack_product"),
                                       ((2, 3, 6, 4), (2, 3, 4, 16), "gemm_stack"),
                                       ((2, 3, 8, 4), (2, 3, 4, 12), "gemm_stack")]:  # fmt: skip
        a, b = rng.standard_normal(shape_a).astype(np.float32), rng.standard_normal(shape_b).astype(np.float32)
        calls.clear()
        np.testing.assert_allclose(numba_gemm.matmul_stack(a, b, 2), a @ b, rtol=1e-5, atol=1e-5)
        assert calls == [expected]
