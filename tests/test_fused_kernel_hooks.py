"""The ops' single-kernel path, with reference kernels.

Layer norm, the attention weights and softmax's backward each hand a whole pass to a
backend hook (``Backend.layer_norm_forward`` ...): C loops on the CPU when they can be
compiled (``minigrad/cpu_kernels.py``), CUDA kernels on a GPU (``minigrad/cuda_kernels.py``);
where a backend has none the hooks decline and the ops compose the same formulas from
array calls. Here plain NumPy versions of the hooks (``tests/kernel_reference.py``) are
installed on the CPU backend and compared with the array-call path (the C kernels off),
so CI checks the ops' side of the hooks: they are called, with arguments that give the
array path's values and gradients, and a finite-difference check passes through them.
``tests/test_native.py`` and ``tests/test_cupy.py`` check the C and CUDA kernels against
the same references.
"""

from __future__ import annotations

import zlib

import kernel_reference
import numpy as np
import pytest
from test_ops_gradcheck import ATTENTION_CASES

import minigrad
import minigrad.functional as F
from minigrad.backend import NumpyBackend


@pytest.fixture
def hooks(monkeypatch):
    """Install the reference hooks on the NumPy backend; returns a function that does it
    and the names of the hooks called so far."""
    called: list[str] = []
    monkeypatch.setattr(NumpyBackend, "use_native", False)  # "expected": the array-call path

    def install():
        for name, fn in kernel_reference.HOOKS.items():

            def spy(self, *args, _fn=fn, _name=name, **kwargs):
                called.append(_name)
                return _fn(*args, **kwargs)

            monkeypatch.setattr(NumpyBackend, name, spy)

    return install, called


def _tensor(name, shape):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return minigrad.tensor(rng.standard_normal(shape), dtype="float64", requires_grad=True)


def _value_and_grads(fn, xs, seed):
    out = fn(*xs)
    u = minigrad.tensor(np.random.default_rng(seed).standard_normal(out.shape), dtype="float64")
    wanted = [x for x in xs if x.requires_grad]
    grads = minigrad.grad(out, wanted, u)
    return out.detach().numpy(), [g.numpy() for g in grads]


def _same(got, expected):
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-12, atol=1e-14)
    assert len(got[1]) == len(expected[1])
    for a, b in zip(got[1], expected[1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


LAYER_NORM_CASES = {
    "affine": ((4, 3, 8), 8, True, True),
    "weight_only": ((5, 8), 8, True, False),
    "bias_only": ((5, 8), 8, False, True),
    "no_affine": ((5, 8), 8, False, False),
    "two_axes": ((2, 3, 4), (3, 4), True, True),
    "one_feature": ((6, 1), 1, True, True),
}


@pytest.mark.parametrize(
    "case,x_grad",
    # without x's gradient only the weight's and bias's are asked for (not in "no_affine")
    [(c, True) for c in LAYER_NORM_CASES] + [(c, False) for c in LAYER_NORM_CASES if c != "no_affine"],
)
def test_layer_norm_through_the_kernel_hooks(case, x_grad, hooks):
    shape, normalized, has_w, has_b = LAYER_NORM_CASES[case]
    wshape = normalized if isinstance(normalized, tuple) else (normalized,)
    x = _tensor("x" + case, shape)
    x.requires_grad = x_grad
    w = _tensor("w" + case, wshape) if has_w else None
    b = _tensor("b" + case, wshape) if has_b else None
    xs = [t for t in (x, w, b) if t is not None]

    def fn(*args):
        return F.layer_norm(x, normalized, w, b, eps=1e-5)

    expected = _value_and_grads(fn, xs, 1)
    install, called = hooks
    install()
    got = _value_and_grads(fn, xs, 1)
    assert called == ["layer_norm_forward", "layer_norm_backward"]
    _same(got, expected)


def test_layer_norm_hooks_pass_a_gradient_check(hooks):
    install, _ = hooks
    install()
    x, w, b = _tensor("gx", (3, 5)), _tensor("gw", (5,)), _tensor("gb", (5,))
    assert minigrad.gradcheck(lambda x, w, b: F.layer_norm(x, 5, w, b), (x, w, b))


@pytest.mark.parametrize("case", list(ATTENTION_CASES))
def test_attention_weights_through_the_kernel_hooks(case, hooks):
    qs, ks, kind = ATTENTION_CASES[case]
    kshape, ktrans = ks if isinstance(ks[0], tuple) else (ks, False)
    q, k = _tensor("q" + case, qs), _tensor("k" + case, kshape)
    mask = None
    if kind == "bool":
        mask = minigrad.tensor(np.arange(5)[None, :] > np.array([[1], [0], [-1]]))  # row 2: all masked
    elif kind == "float":
        mask = minigrad.tensor(np.random.default_rng(3).standard_normal((3, 5)), dtype="float64")

    def fn(q, k):
        return F.attention_weights(q, k.T if ktrans else k, mask=mask, scale=0.7)

    expected = _value_and_grads(fn, [q, k], 2)
    install, called = hooks
    install()
    got = _value_and_grads(fn, [q, k], 2)
    assert called == ["softmax_rows", "softmax_backward"]
    _same(got, expected)
    if kind == "bool":
        assert np.all(got[0][2] == 0)


def test_attention_hooks_pass_a_gradient_check(hooks):
    install, _ = hooks
    install()
    q, k = _tensor("aq", (2, 3, 4)), _tensor("ak", (2, 5, 4))
    mask = minigrad.tensor(np.array([False, False, True, False, True]))
    assert minigrad.gradcheck(lambda q, k: F.attention_weights(q, k, mask=mask, scale=0.5), (q, k))


@pytest.mark.parametrize("axis", [-1, 1])
def test_softmax_backward_through_the_kernel_hook(axis, hooks):
    x = _tensor("sx", (2, 3, 4))
    expected = _value_and_grads(lambda x: F.softmax(x, axis), [x], 4)
    install, called = hooks
    install()
    got = _value_and_grads(lambda x: F.softmax(x, axis), [x], 4)
    assert called == (["softmax_backward"] if axis == -1 else [])  # the kernel is for the last axis
    _same(got, expected)


def test_numpy_backend_without_c_kernels_declines_the_hooks():
    """Without the C kernels the hooks decline, so the ops keep their threaded array code."""
    backend = NumpyBackend()
    backend.use_native = False
    x = np.ones((2, 3))
    assert backend.softmax_rows(x.copy()) is False
    assert backend.softmax_backward(x, x) is None
    assert backend.layer_norm_forward(x, None, None, 1e-5) is None
    assert backend.layer_norm_backward(x, x, x[:, :1], x[:, :1], None, True, True, True) is None
