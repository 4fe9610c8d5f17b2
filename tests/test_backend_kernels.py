"""The NumPy backend's faster kernels give what the plain NumPy expressions give.

``NumpyBackend`` replaces a few slow NumPy idioms (reductions along short rows, the sum
of a matrix's rows, ``np.add.at`` on whole rows) with faster equivalents; the base
``Backend`` (used for CuPy and the test backend) keeps the plain expressions. These
tests compare the two on the cases the ops hit and on the edge cases they must not get
wrong.
"""

from __future__ import annotations

import numpy as np
import pytest

from minigrad.backend import Backend, NumpyBackend

FAST, PLAIN = NumpyBackend(), Backend()
NO_C = NumpyBackend()  # the NumPy idioms without the C kernels (minigrad.native)
NO_C.use_native = False


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 5), (1, 9), (300, 64), (4, 1)])
def test_col_sum_matches_sum_over_axis_0(dtype, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    got = FAST.col_sum(x)
    assert got.dtype == dtype and got.shape == shape[1:]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, PLAIN.col_sum(x), rtol=tol, atol=tol)


def test_col_sum_of_a_transposed_view_and_of_integers():
    x = np.random.default_rng(1).standard_normal((6, 40)).T  # not C-contiguous
    np.testing.assert_allclose(FAST.col_sum(x), x.sum(axis=0), rtol=1e-12)
    ints = np.arange(12).reshape(4, 3)  # no BLAS for integers: the plain sum, exact
    assert FAST.col_sum(ints).tolist() == [18, 22, 26]
    assert FAST.col_sum(ints).dtype == ints.sum(axis=0).dtype


def _scatter(backend, shape, index, values):
    target = np.zeros(shape, dtype=values.dtype)
    backend.scatter_add(target, index, values)
    return target


@pytest.mark.parametrize(
    "index",
    [
        np.array([3, 1, 3, 0, 3]),  # repeats accumulate
        np.array([[0, 4], [4, 4], [2, 0]]),  # a batch of token ids (the embedding case)
        np.array([-1, 0, -5, 4]),  # negative indices count from the end, as target[index]
        np.array([], dtype=np.int64),
        np.array(2),  # one row
        np.array([1, 2], dtype=np.uint8),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", [FAST, NO_C], ids=["c_kernel", "flat_add_at"])
def test_scatter_add_rows_matches_add_at(index, dtype, backend):
    rng = np.random.default_rng(2)
    values = rng.standard_normal(index.shape + (3, 2)).astype(dtype)
    got = _scatter(backend, (5, 3, 2), index, values)
    want = np.zeros((5, 3, 2), dtype=dtype)
    np.add.at(want, index, values)
    np.testing.assert_array_equal(got, want)  # the same additions in the same order


def test_scatter_add_other_indices_fall_back_to_add_at():
    values = np.arange(4.0)
    for index in [(np.array([0, 1, 1, 2]), np.array([1, 0, 0, 1])), np.array([True, False, True])]:
        want = np.zeros((3, 2))
        v = values if isinstance(index, tuple) else np.ones((2, 2))
        np.add.at(want, index, v)
        np.testing.assert_array_equal(_scatter(FAST, (3, 2), index, v), want)
    # a 1-D target: every index is one element
    np.testing.assert_array_equal(_scatter(FAST, (3,), np.array([2, 2, 0]), np.ones(3)), [1.0, 0.0, 2.0])


@pytest.mark.parametrize("bad", [5, -6, 100])
@pytest.mark.parametrize("backend", [FAST, NO_C], ids=["c_kernel", "flat_add_at"])
def test_scatter_add_out_of_range_raises_instead_of_writing_another_row(bad, backend):
    index = np.array([0, bad])
    with pytest.raises(IndexError, match="scatter_add: index out of range for 5 rows"):
        _scatter(backend, (5, 3), index, np.ones((2, 3)))


def test_row_reductions_match_plain_numpy():
    x = np.random.default_rng(3).standard_normal((4, 6, 64)).astype(np.float32)
    y = np.random.default_rng(4).standard_normal((4, 6, 64)).astype(np.float32)
    np.testing.assert_array_equal(FAST.row_max(x), PLAIN.row_max(x))
    np.testing.assert_allclose(FAST.row_sum(x), PLAIN.row_sum(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(FAST.row_dot(x, y), PLAIN.row_dot(x, y), rtol=1e-5, atol=1e-5)
