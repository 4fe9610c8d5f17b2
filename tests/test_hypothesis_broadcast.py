"""Property tests: broadcasting binary ops match NumPy forward and finite differences backward.

Hypothesis draws mutually broadcastable shapes (0-d to 3-D, size-1 axes on either side)
and values; each op's forward must equal NumPy's, its gradients must equal the closed
forms summed back over the broadcast axes, and pass gradcheck.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad
import minigrad.functional as F
from minigrad import gradcheck

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration

SETTINGS = settings(max_examples=25, deadline=None, database=None)

finite = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)
nonzero = st.one_of(st.floats(-3.0, -0.5), st.floats(0.5, 3.0))
# maximum/minimum: a on the grid 0.25 + k/2, b on k/2, so a and b never tie (|a - b| >= 0.25)
grid_a = st.integers(-6, 6).map(lambda k: 0.5 * k + 0.25)
grid_b = st.integers(-6, 6).map(lambda k: 0.5 * k)


def sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back to ``shape`` (the NumPy reference)."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


# name -> (minigrad op, NumPy op, elements of a, elements of b, closed-form (ga, gb) given u)
OPS = {
    "add": (lambda a, b: a + b, np.add, finite, finite, lambda a, b, u: (u, u)),
    "sub": (lambda a, b: a - b, np.subtract, finite, finite, lambda a, b, u: (u, -u)),
    "mul": (lambda a, b: a * b, np.multiply, finite, finite, lambda a, b, u: (u * b, u * a)),
    "div": (lambda a, b: a / b, np.divide, finite, nonzero, lambda a, b, u: (u / b, -u * a / b**2)),
    "maximum": (F.maximum, np.maximum, grid_a, grid_b, lambda a, b, u: (u * (a > b), u * (b > a))),
    "minimum": (F.minimum, np.minimum, grid_a, grid_b, lambda a, b, u: (u * (a < b), u * (b < a))),
}

shapes2 = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=3)
shapes3 = hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, min_side=1, max_side=3)


def _leaf(values):
    return minigrad.tensor(values, dtype="float64", requires_grad=True)


@pytest.mark.parametrize("name", list(OPS))
@SETTINGS
@given(data=st.data(), shapes=shapes2)
def test_binary_op_broadcasting(name, data, shapes):
    ours, ref, elems_a, elems_b, closed_form = OPS[name]
    (sa, sb), out_shape = shapes.input_shapes, shapes.result_shape
    a = data.draw(hnp.arrays(np.float64, sa, elements=elems_a), label="a")
    b = data.draw(hnp.arrays(np.float64, sb, elements=elems_b), label="b")
    ta, tb = _leaf(a), _leaf(b)

    out = ours(ta, tb)
    assert out.shape == out_shape == np.broadcast_shapes(sa, sb)
    assert out.dtype == minigrad.float64
    np.testing.assert_array_equal(out.detach().numpy(), ref(a, b))

    u = np.random.default_rng(0).standard_normal(out_shape)
    out.backward(minigrad.tensor(u, dtype="float64"))
    ga, gb = (np.broadcast_to(g, out_shape) for g in closed_form(a, b, u))
    assert ta.grad.shape == sa and tb.grad.shape == sb
    np.testing.assert_allclose(ta.grad.numpy(), sum_to(ga, sa), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), sum_to(gb, sb), rtol=1e-12, atol=1e-12)

    assert gradcheck(ours, [_leaf(a), _leaf(b)])


@SETTINGS
@given(data=st.data(), shapes=shapes3)
def test_where_broadcasting(data, shapes):
    sc, sa, sb = shapes.input_shapes
    out_shape = shapes.result_shape
    cond = data.draw(hnp.arrays(np.bool_, sc), label="cond")
    a = data.draw(hnp.arrays(np.float64, sa, elements=finite), label="a")
    b = data.draw(hnp.arrays(np.float64, sb, elements=finite), label="b")
    tc, ta, tb = minigrad.tensor(cond), _leaf(a), _leaf(b)

    out = F.where(tc, ta, tb)
    assert out.shape == out_shape
    np.testing.assert_array_equal(out.detach().numpy(), np.where(cond, a, b))

    u = np.random.default_rng(1).standard_normal(out_shape)
    out.backward(minigrad.tensor(u, dtype="float64"))
    c = np.broadcast_to(cond, out_shape)
    np.testing.assert_allclose(ta.grad.numpy(), sum_to(u * c, sa), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), sum_to(u * ~c, sb), rtol=1e-12, atol=1e-12)

    assert gradcheck(lambda a, b: F.where(tc, a, b), [_leaf(a), _leaf(b)])


@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=3))
def test_broadcast_shapes_agree_with_numpy(shapes):
    sa, sb = shapes.input_shapes
    out = minigrad.zeros(sa, dtype="float64") + minigrad.ones(sb, dtype="float64")
    assert out.shape == np.broadcast_shapes(sa, sb)


@SETTINGS
@given(sa=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), sb=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_incompatible_shapes_raise(sa, sb):
    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        with pytest.raises(ValueError, match="add") as info:
            minigrad.zeros(sa) + minigrad.zeros(sb)
        assert str(sa) in str(info.value) and str(sb) in str(info.value)
    else:
        assert (minigrad.zeros(sa) + minigrad.zeros(sb)).shape == np.broadcast_shapes(sa, sb)
