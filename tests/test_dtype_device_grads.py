"""Gradients through a dtype cast (Cast) and a device move (ToDevice), checked for real.

``F.cast(x, x.dtype)`` and ``F.to_device(x, x.device)`` return ``x`` itself (no node), so a
check that casts a float64 tensor to float64 checks nothing. Here every cast changes the
dtype and every move changes the device (to the test-only "marked" backend, CPU arrays of
type MarkedArray, see tests/marked_backend.py).

The derivative of both ops is the identity, carried back: the gradient of a cast is the
upstream gradient cast back to the source dtype (so a float64 gradient passing a float32
cast is rounded to float32), and the gradient of a move is the upstream gradient moved
back to the source device. Each exact check runs twice: first order (``create_graph=False``,
where the engine may use an op's ``backward_array``) and with ``create_graph=True`` (where
it must use ``backward``, written with Tensor ops).
"""

from __future__ import annotations

import numpy as np
import pytest
from marked_backend import MarkedArray

import minigrad
import minigrad.functional as F
from minigrad import GradcheckError, gradcheck

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration

CREATE_GRAPH = pytest.mark.parametrize("create_graph", [False, True], ids=["first_order", "create_graph"])


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def not_float32(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """float64 values that float32 cannot hold exactly (so rounding through float32 shows)."""
    a = rng(seed).standard_normal(shape)
    assert np.all(a.astype(np.float32).astype(np.float64) != a)
    return a


def arr(t: minigrad.Tensor) -> np.ndarray:
    return t.detach().numpy()


def grad_of(out: minigrad.Tensor, x: minigrad.Tensor, upstream: minigrad.Tensor, create_graph: bool):
    (g,) = minigrad.grad(out, x, upstream, create_graph=create_graph)
    return g


# ---- Cast ------------------------------------------------------------------------------------
def test_cast_to_the_same_dtype_is_no_node():
    """Why the old check was vacuous: casting to the dtype a tensor already has records nothing."""
    x = minigrad.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    assert F.cast(x, "float64") is x
    y = F.cast(x, "float32")
    assert y is not x and y.grad_fn is not None and y.grad_fn.op_name == "cast"


@CREATE_GRAPH
def test_float32_to_float64_to_float32(create_graph):
    x = minigrad.tensor(rng(0).standard_normal((3, 4)), dtype="float32", requires_grad=True)
    mid = F.cast(x, "float64")
    z = F.cast(mid, "float32")
    assert (mid.dtype, z.dtype) == (minigrad.float64, minigrad.float32)
    assert [mid.grad_fn.op_name, z.grad_fn.op_name] == ["cast", "cast"]
    np.testing.assert_array_equal(arr(z), arr(x))  # float32 -> float64 is exact
    u = minigrad.tensor(rng(1).standard_normal((3, 4)), dtype="float32")
    g = grad_of(z, x, u, create_graph)
    assert g.dtype == minigrad.float32 and g.shape == x.shape
    np.testing.assert_array_equal(arr(g), arr(u))  # float32 -> float64 -> float32: exact


@CREATE_GRAPH
def test_float64_to_float32_to_float64(create_graph):
    data = not_float32((3, 4), seed=2)
    x = minigrad.tensor(data, dtype="float64", requires_grad=True)
    z = F.cast(F.cast(x, "float32"), "float64")
    assert z.dtype == minigrad.float64
    np.testing.assert_array_equal(arr(z), data.astype(np.float32).astype(np.float64))
    u_data = not_float32((3, 4), seed=3)
    g = grad_of(z, x, minigrad.tensor(u_data, dtype="float64"), create_graph)
    # the gradient is the cast of the gradient: through the float32 node it is rounded to float32
    assert g.dtype == minigrad.float64
    np.testing.assert_array_equal(arr(g), u_data.astype(np.float32).astype(np.float64))
    assert np.all(arr(g) != u_data)  # the rounding really happened


@CREATE_GRAPH
def test_cast_inside_an_expression(create_graph):
    """L = sum(u * cast(x32 * x32, float64) * w): dL/dx32 = cast(2 * x32 * cast(u * w, float32))."""
    x_data = rng(4).standard_normal((2, 5)).astype(np.float32)
    w_data = not_float32((2, 5), seed=5)
    u_data = not_float32((2, 5), seed=6)
    x = minigrad.tensor(x_data, dtype="float32", requires_grad=True)
    w = minigrad.tensor(w_data, dtype="float64", requires_grad=True)
    y = F.cast(x * x, "float64") * w
    gx, gw = minigrad.grad(y, [x, w], minigrad.tensor(u_data, dtype="float64"), create_graph=create_graph)
    assert gx.dtype == minigrad.float32 and gw.dtype == minigrad.float64
    by_hand_x = 2 * x_data * (u_data * w_data).astype(np.float32)
    np.testing.assert_allclose(arr(gx), by_hand_x, rtol=2e-7, atol=0)
    np.testing.assert_array_equal(arr(gw), u_data * (x_data * x_data).astype(np.float64))


def test_second_order_through_a_float32_cast():
    """d/dx of grad(sum(cast(cast(x, f32)**3, f64)), x) = 6 x (the backward of Cast is differentiable)."""
    data = rng(7).standard_normal(6)
    x = minigrad.tensor(data, dtype="float64", requires_grad=True)
    y32 = F.cast(x, "float32")
    loss = F.cast(y32 * y32 * y32, "float64").sum()
    (g,) = minigrad.grad(loss, x, create_graph=True)
    assert g.dtype == minigrad.float64 and g.requires_grad
    x32 = data.astype(np.float32)
    np.testing.assert_allclose(arr(g), 3 * x32.astype(np.float64) ** 2, rtol=1e-6)
    v = rng(8).standard_normal(6)
    (gg,) = minigrad.grad((g * minigrad.tensor(v, dtype="float64")).sum(), x)
    assert gg.dtype == minigrad.float64
    np.testing.assert_allclose(arr(gg), 6 * x32.astype(np.float64) * v, rtol=1e-6)


def f64_through_f32(x: minigrad.Tensor) -> minigrad.Tensor:
    """A float64 function that computes in float32 in the middle: tanh(x32) * x32, back to float64."""
    x32 = F.cast(x, "float32")
    return F.cast(F.tanh(x32) * x32, "float64")


# float32 rounds the function's values to ~6e-8 relative; central differences divide that
# by 2 eps, so eps must be large (1e-3: ~6e-5 error from rounding, ~1e-6 from truncation)
F32_CHECK = dict(eps=1e-3, atol=1e-4, rtol=1e-3)


def test_gradcheck_through_float32_and_back():
    x = minigrad.tensor(rng(9).standard_normal((3, 4)), dtype="float64", requires_grad=True)
    assert gradcheck(f64_through_f32, [x], **F32_CHECK)
    assert gradcheck(f64_through_f32, [x], mode="directional", **F32_CHECK)


def test_gradcheck_through_float32_catches_a_wrong_gradient():
    """The loose tolerance still catches a 1% error in the gradient behind the casts."""
    x = minigrad.tensor(rng(9).standard_normal((3, 4)), dtype="float64", requires_grad=True)

    def wrong(x):
        x32 = F.cast(x, "float32")
        if x32.requires_grad:  # gradcheck's finite-difference passes run under no_grad
            x32.register_hook(lambda g: g * 1.01)
        return F.cast(F.tanh(x32) * x32, "float64")

    with pytest.raises(GradcheckError):
        gradcheck(wrong, [x], **F32_CHECK)


def test_vjp_of_the_float32_function_analytically():
    """The gradient of f64_through_f32 against its derivative, tanh(x) + x (1 - tanh(x)^2), in float32."""
    data = rng(10).standard_normal((3, 4))
    u = rng(11).standard_normal((3, 4))
    x = minigrad.tensor(data, dtype="float64", requires_grad=True)
    (g,) = minigrad.grad(f64_through_f32(x), x, minigrad.tensor(u, dtype="float64"))
    x32 = data.astype(np.float32)
    t = np.tanh(x32)
    expected = u.astype(np.float32) * (t + x32 * (1 - t * t))
    np.testing.assert_allclose(arr(g), expected.astype(np.float64), rtol=1e-5, atol=1e-6)


# ---- ToDevice -------------------------------------------------------------------------------------
def test_move_to_the_same_device_is_no_node():
    x = minigrad.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    assert F.to_device(x, "cpu") is x


@CREATE_GRAPH
def test_gradient_flows_back_to_the_cpu_tensor(marked, create_graph):
    data = rng(12).standard_normal((2, 3))
    x = minigrad.tensor(data, dtype="float64", requires_grad=True)
    y = F.to_device(x, "marked")
    assert y.device == "marked" and type(y.data) is MarkedArray
    assert y.grad_fn is not None and y.grad_fn.op_name == "to_device"
    u = rng(13).standard_normal((2, 3))
    g = grad_of(y, x, minigrad.tensor(u, dtype="float64", device="marked"), create_graph)
    assert g.device == "cpu" and type(g.data) is np.ndarray and g.dtype == minigrad.float64
    np.testing.assert_array_equal(arr(g), u)


def test_backward_accumulates_into_the_cpu_leaf(marked):
    """Two moves of the same tensor, used in one marked expression: the gradients add up on the CPU."""
    data = rng(14).standard_normal(4)
    a, b = rng(15).standard_normal(4), rng(16).standard_normal(4)
    x = minigrad.tensor(data, dtype="float64", requires_grad=True)
    y1, y2 = F.to_device(x, "marked"), F.to_device(x, "marked")
    loss = (y1 * minigrad.tensor(a, device="marked") + y2 * y2 * minigrad.tensor(b, device="marked")).sum()
    assert loss.device == "marked"
    loss.backward()
    assert x.grad.device == "cpu" and type(x.grad.data) is np.ndarray
    np.testing.assert_allclose(arr(x.grad), a + 2 * data * b, rtol=1e-14)


def test_second_order_through_the_move(marked):
    """grad(sum(to_marked(x)**3), x, create_graph=True) = 3 x^2 on the CPU, differentiable again: 6 x v."""
    data = rng(17).standard_normal(5)
    x = minigrad.tensor(data, dtype="float64", requires_grad=True)
    y = F.to_device(x, "marked")
    (g,) = minigrad.grad((y * y * y).sum(), x, create_graph=True)
    assert g.device == "cpu" and type(g.data) is np.ndarray and g.requires_grad
    np.testing.assert_allclose(arr(g), 3 * data**2, rtol=1e-14)
    v = rng(18).standard_normal(5)
    (gg,) = minigrad.grad((g * minigrad.tensor(v)).sum(), x)
    assert gg.device == "cpu" and type(gg.data) is np.ndarray
    np.testing.assert_allclose(arr(gg), 6 * data * v, rtol=1e-14)


def test_second_order_when_the_gradient_crosses_back(marked):
    """A marked parameter used on CPU data: the second derivative crosses both ways."""
    w_data, x_data = rng(19).standard_normal(3), rng(20).standard_normal(3)
    w = minigrad.tensor(w_data, dtype="float64", device="marked", requires_grad=True)
    x = minigrad.tensor(x_data, dtype="float64", requires_grad=True)
    loss = (F.tanh(F.to_device(w, "cpu") * x)).sum()  # on the CPU
    gw, gx = minigrad.grad(loss, [w, x], create_graph=True)
    assert gw.device == "marked" and type(gw.data) is MarkedArray and gx.device == "cpu"
    t = np.tanh(w_data * x_data)
    np.testing.assert_allclose(arr(gw), x_data * (1 - t * t), rtol=1e-13)
    # d/dx of sum(gw) = d/dx sum(x (1 - tanh(w x)^2)) = (1 - t^2) - 2 t (1 - t^2) w x
    (ggx,) = minigrad.grad(gw.sum(), x)
    assert ggx.device == "cpu"
    np.testing.assert_allclose(arr(ggx), (1 - t * t) * (1 - 2 * t * w_data * x_data), rtol=1e-13)


@CREATE_GRAPH
def test_move_inside_a_larger_expression(marked, create_graph):
    """cpu: h = tanh(x @ w); marked: s = to_marked(h) * v; cpu: out = to_cpu(s) + x.
    The gradients equal those of the same expression on the CPU alone, each on its own device."""
    x_data, w_data, v_data = (rng(s).standard_normal(shape) for s, shape in ((21, (4, 3)), (22, (3, 3)), (23, (4, 3))))
    u = minigrad.tensor(rng(24).standard_normal((4, 3)))

    def grads(device: str):
        x = minigrad.tensor(x_data, requires_grad=True)
        w = minigrad.tensor(w_data, requires_grad=True)
        v = minigrad.tensor(v_data, device=device, requires_grad=True)
        h = F.tanh(x @ w)
        s = F.to_device(h, device) * v
        out = F.to_device(s, "cpu") + x
        assert out.device == "cpu"
        return arr(out), minigrad.grad(out, [x, w, v], u, create_graph=create_graph)

    out_m, (gx, gw, gv) = grads("marked")
    out_c, (cx, cw, cv) = grads("cpu")
    np.testing.assert_array_equal(out_m, out_c)
    assert gx.device == gw.device == "cpu" and type(gx.data) is np.ndarray and type(gw.data) is np.ndarray
    assert gv.device == "marked" and type(gv.data) is MarkedArray
    for a, b in ((gx, cx), (gw, cw), (gv, cv)):
        np.testing.assert_allclose(arr(a), arr(b), rtol=1e-14, atol=1e-15)
    # and the CPU values by hand: dv = u * h, dh = u * v, dx = u + dz @ w^T, dw = x^T @ dz, dz = dh * (1 - h^2)
    h = np.tanh(x_data @ w_data)
    dz = arr(u) * v_data * (1 - h * h)
    np.testing.assert_allclose(arr(gv), arr(u) * h, rtol=1e-13)
    np.testing.assert_allclose(arr(gx), arr(u) + dz @ w_data.T, rtol=1e-13)
    np.testing.assert_allclose(arr(gw), x_data.T @ dz, rtol=1e-13)


def test_gradcheck_through_the_move(marked):
    x = minigrad.tensor(rng(25).standard_normal((2, 3)), dtype="float64", requires_grad=True)

    def fn(x):
        y = F.to_device(x, "marked")
        return F.to_device(F.tanh(y) * y, "cpu")

    assert gradcheck(fn, [x])
    with pytest.raises(GradcheckError):  # and a wrong gradient through the move is caught

        def wrong(x):
            y = F.to_device(x, "marked")
            if y.requires_grad:
                y.register_hook(lambda g: g * 1.01)
            return F.to_device(F.tanh(y) * y, "cpu")

        gradcheck(wrong, [x])


def test_no_node_without_grad(marked):
    x = minigrad.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    with minigrad.no_grad():
        y = F.to_device(x, "marked")
        z = F.cast(x, "float32")
    assert y.grad_fn is None and not y.requires_grad and y.device == "marked"
    assert z.grad_fn is None and not z.requires_grad and z.dtype == minigrad.float32
