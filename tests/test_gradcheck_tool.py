"""gradcheck itself: it catches wrong backward formulas and says where."""

from __future__ import annotations

import re

import numpy as np
import pytest

import minigrad
import minigrad.functional as F
from minigrad import GradcheckError, gradcheck, gradgradcheck

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration


# ---- deliberately wrong ops ----------------------------------------------------------------------
class BadSoftmax(minigrad.Function):
    """Softmax whose backward returns zeros."""

    saves_inputs = False

    def forward(self, x):
        e = self.xp.exp(x - x.max(axis=-1, keepdims=True))
        self.out = e / e.sum(axis=-1, keepdims=True)
        return self.out

    def backward(self, g):
        return F.zeros_like(g)


class ForgetfulSoftmax(BadSoftmax):
    """Softmax whose backward forgets the normalization term: g * y instead of y * (g - sum(g * y))."""

    def backward(self, g):
        return g * self.saved_output()


class ForgetfulLayerNorm(minigrad.Function):
    """Layer norm (last axis, no affine) whose backward forgets both mean terms: rstd * g."""

    saves_inputs = False

    def forward(self, x):
        xc = x - x.mean(axis=-1, keepdims=True)
        self.rstd = 1.0 / self.xp.sqrt((xc * xc).mean(axis=-1, keepdims=True) + 1e-5)
        return xc * self.rstd

    def backward(self, g):
        return g * self.const(self.rstd)


class OneWrongElement(minigrad.Function):
    """out = 2x, but the gradient of element (1, 2) is off by 1."""

    saves_inputs = False

    def forward(self, x):
        return x * 2.0

    def backward(self, g):
        bump = self.xp.zeros(g.shape, dtype=g.dtype)
        bump[1, 2] = 1.0
        return g * 2.0 + self.const(bump)


class FirstOrderOnlyTanh(minigrad.Function):
    """tanh with a correct first derivative computed from a saved constant: its backward
    records no graph back to x, so second derivatives are wrong."""

    saves_inputs = False

    def forward(self, x):
        self.y = self.xp.tanh(x)
        return self.y

    def backward(self, g):
        y = self.const(self.y)
        return g * (1.0 - y * y)


def x64(*shape, seed=0):
    rng = np.random.default_rng(seed)
    return minigrad.tensor(rng.standard_normal(shape), dtype="float64", requires_grad=True)


WRONG = {
    "zeros": (BadSoftmax.apply, (3, 4)),
    "softmax_g_times_y": (ForgetfulSoftmax.apply, (3, 4)),
    "layer_norm_without_means": (ForgetfulLayerNorm.apply, (2, 5)),
}


@pytest.mark.parametrize("name", list(WRONG))
def test_full_mode_catches_wrong_backward(name):
    fn, shape = WRONG[name]
    x = x64(*shape)
    with pytest.raises(GradcheckError) as info:
        gradcheck(fn, [x])
    msg = str(info.value)
    assert "input 0" in msg and f"shape {shape}" in msg
    assert re.search(r"worst element \(\d+, \d+\)", msg)
    assert re.search(r"numerical -?[\d.e+-]+, analytical -?[\d.e+-]+", msg)


@pytest.mark.parametrize("name", list(WRONG))
def test_directional_mode_catches_wrong_backward(name):
    fn, shape = WRONG[name]
    x = x64(*shape)
    with pytest.raises(GradcheckError, match="directional") as info:
        gradcheck(fn, [x], mode="directional")
    assert "input 0" in str(info.value) and "numerical" in str(info.value) and "analytical" in str(info.value)


@pytest.mark.parametrize("name", list(WRONG))
def test_raise_exception_false_returns_false(name):
    fn, shape = WRONG[name]
    assert gradcheck(fn, [x64(*shape)], raise_exception=False) is False
    assert gradcheck(fn, [x64(*shape)], mode="directional", raise_exception=False) is False


def test_the_correct_ops_pass_in_both_modes():
    x = x64(3, 4)
    for fn in (lambda x: F.softmax(x, -1), lambda x: F.layer_norm(x, 4), F.tanh):
        assert gradcheck(fn, [x]) is True
        assert gradcheck(fn, [x], mode="directional") is True
        assert gradcheck(fn, [x], raise_exception=False) is True


def test_worst_element_and_values_are_reported():
    x = x64(2, 4)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x: OneWrongElement.apply(x).sum(), [x])
    msg = str(info.value)
    assert "worst element (1, 2)" in msg
    # upstream u is a random scalar: numerical 2u, analytical 2u + 1
    m = re.search(r"numerical (-?[\d.e+-]+), analytical (-?[\d.e+-]+)", msg)
    numerical, analytical = float(m.group(1)), float(m.group(2))
    assert analytical - numerical == pytest.approx(1.0, abs=1e-6)
    assert "1 of 8 elements differ" in msg


def test_error_names_the_wrong_input_and_output():
    a, b = x64(3, seed=1), x64(3, seed=2)

    def fn(a, b):
        return a * b, ForgetfulSoftmax.apply(b)

    with pytest.raises(GradcheckError) as info:
        gradcheck(fn, [a, b])
    assert "output 1" in str(info.value) and "input 1" in str(info.value)


def test_broken_graph_is_caught():
    """An output that lost its graph (a stray detach) has zero analytical gradient."""
    x = x64(3)
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: F.exp(x.detach()), [x])


def test_gradgradcheck_catches_first_order_only_backward():
    x = x64(2, 3)
    assert gradcheck(FirstOrderOnlyTanh.apply, [x])
    with pytest.raises(GradcheckError):
        gradgradcheck(FirstOrderOnlyTanh.apply, [x])
    assert gradgradcheck(F.tanh, [x])
    assert gradgradcheck(FirstOrderOnlyTanh.apply, [x], raise_exception=False) is False


def test_non_float64_inputs_are_refused():
    x = minigrad.randn(3, requires_grad=True)  # float32
    with pytest.raises(TypeError, match="float64"):
        gradcheck(F.tanh, [x])
    with pytest.raises(TypeError, match="float64"):
        gradgradcheck(F.tanh, [x])


def test_bad_arguments():
    x = minigrad.randn(3, dtype="float64")  # no requires_grad
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(F.tanh, [x])
    with pytest.raises(ValueError, match="mode"):
        gradcheck(F.tanh, [x.requires_grad_()], mode="fast")


def test_inputs_not_requiring_grad_are_left_alone():
    x = x64(3)
    c = minigrad.tensor([1.0, 2.0, 3.0], dtype="float64")
    assert gradcheck(lambda x, c: x * c, [x, c])
    np.testing.assert_array_equal(c.numpy(), [1.0, 2.0, 3.0])
    before = x.detach().numpy().copy()
    gradcheck(F.exp, [x])
    np.testing.assert_array_equal(x.detach().numpy(), before)  # perturbations are undone
