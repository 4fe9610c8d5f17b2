"""Semantics of the autograd engine: accumulation, hooks, graph lifetime, grad modes,
higher-order gradients, aliasing, deep and wide graphs, deterministic order, errors."""

from __future__ import annotations

import gc
import itertools
import weakref

import numpy as np
import pytest

import minigrad
import minigrad.functional as F
from minigrad.autograd import Function
from minigrad.engine import GraphFreedError, topological_order

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration


def leaf(values, dtype="float64"):
    return minigrad.tensor(values, dtype=dtype, requires_grad=True)


# ---- accumulation and retained gradients ------------------------------------------------------
def test_leaf_grad_accumulates_across_backward_calls():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 4, 6])
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5, 7, 9])
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3, 3, 3])


def test_leaf_used_twice_sums_both_paths():
    x = leaf([2.0, -1.0])
    y = x * x + x * 3.0 + F.exp(x)  # d/dx = 2x + 3 + exp(x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array([2.0, -1.0]) + 3 + np.exp([2.0, -1.0]))


def test_non_leaf_grad_is_none_unless_retained():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    z = y * y
    w = z.sum()
    z.retain_grad()
    w.backward()
    assert y.grad is None
    assert not y.is_leaf and y.grad_fn is not None
    np.testing.assert_allclose(z.grad.numpy(), [1, 1])
    np.testing.assert_allclose(x.grad.numpy(), [8, 16])  # d/dx (2x)^2 = 8x
    assert w.grad is None
    assert not z.grad.requires_grad


def test_retain_grad_accumulates_like_a_leaf():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    y.retain_grad()
    s = y.sum()
    s.backward(retain_graph=True)
    s.backward()
    np.testing.assert_allclose(y.grad.numpy(), [2, 2])
    np.testing.assert_allclose(x.grad.numpy(), [6, 6])


# ---- hooks ------------------------------------------------------------------------------------------
def test_leaf_hook_sees_gradient_and_can_replace_it():
    x = leaf([1.0, 2.0, 3.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    (x * 3.0).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [3, 3, 3])

    y = leaf([1.0, 2.0])
    y.register_hook(lambda g: g * 10.0)
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [20, 40])


def test_non_leaf_hook_replaces_the_gradient_flowing_on():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()))
    y.register_hook(lambda g: g * 10.0)
    (y * y).sum().backward()
    np.testing.assert_allclose(seen[0], [6, 12])  # dL/dy = 2y
    np.testing.assert_allclose(x.grad.numpy(), [6 * 10 * 3, 12 * 10 * 3])


def test_node_hook_sees_the_summed_gradient_once():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    calls = []
    y.register_hook(lambda g: calls.append(g.numpy().copy()))
    (y + y * 3.0).sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0], [4, 4])


@pytest.mark.parametrize("where", ["leaf", "non_leaf"])
def test_hook_remover_works(where):
    x = leaf([1.0, 2.0])
    y = x * 1.0
    target = x if where == "leaf" else y
    calls = []
    remove = target.register_hook(lambda g: calls.append(1) or g * 100.0)
    remove()
    remove()  # removing twice is harmless
    (y * 2.0).sum().backward()
    assert calls == []
    np.testing.assert_allclose(x.grad.numpy(), [2, 2])


def test_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="requires grad|require grad"):
        minigrad.tensor([1.0]).register_hook(lambda g: g)


def test_hooks_also_run_for_minigrad_grad():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 2.0)
    y = x * 5.0
    y.register_hook(lambda g: g + 1.0)
    (gx,) = minigrad.grad(y.sum(), x)
    np.testing.assert_allclose(gx.numpy(), [20, 20])  # ((1 + 1) * 5) * 2
    assert x.grad is None


# ---- graph lifetime ----------------------------------------------------------------------------
def test_backward_twice_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph") as info:
        y.backward()
    assert isinstance(info.value, GraphFreedError)


def test_backward_twice_with_retain_graph_doubles_grads():
    x = leaf([1.0, 2.0])
    y = F.tanh(x * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_grad_twice_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    y = F.exp(x).sum()
    minigrad.grad(y, x)
    with pytest.raises(RuntimeError, match="retain_graph"):
        minigrad.grad(y, x)
    z = F.exp(x).sum()
    (g1,) = minigrad.grad(z, x, retain_graph=True)
    (g2,) = minigrad.grad(z, x)
    np.testing.assert_allclose(g1.numpy(), g2.numpy())


def test_saved_arrays_are_freed_after_backward():
    x = leaf(np.arange(6.0).reshape(2, 3))
    y = F.exp(x)  # Exp keeps its output for backward
    out_ref = weakref.ref(y.data)
    node = y.grad_fn
    loss = (y * 2.0).sum()
    del y
    gc.collect()
    assert out_ref() is not None  # still needed by backward
    assert not node.released
    loss.backward()
    assert node.released
    assert vars(node) == {}
    gc.collect()
    assert out_ref() is None, "the saved output array is still alive after backward"
    assert all(n.released for n in topological_order([loss.grad_fn]))


def test_intermediate_gradients_are_freed_during_backward():
    """A gradient dies as soon as its node's backward used it, not when backward ends
    (a model's peak memory in backward would otherwise grow with its depth)."""
    x = leaf(np.ones(4))
    a = x * 2.0
    b = a * 3.0
    c = b * 4.0
    refs: dict[str, weakref.ref] = {}
    c.register_hook(lambda g: refs.setdefault("c", weakref.ref(g.data)) and None)
    b.register_hook(lambda g: refs.setdefault("b", weakref.ref(g.data)) and None)
    alive_at_leaf: list[bool] = []
    x.register_hook(lambda g: alive_at_leaf.append(refs["c"]() is not None) and None)
    c.sum().backward()
    assert alive_at_leaf == [False], "dL/dc was still alive when backward reached x"
    np.testing.assert_allclose(x.grad.numpy(), np.full(4, 24.0))


def test_leaf_gradient_never_aliases_a_gradient_still_waiting_for_its_node():
    """y = x + f(x): Add hands one array to the leaf x and to f's node. When x then gets a
    second contribution (accumulated in place into x.grad), f's pending gradient must not
    change with it."""
    x = leaf([1.0, 2.0])
    w = leaf([3.0, 5.0])
    f = (x * w) * 1.0  # f's gradient reaches x after x's direct one
    other = x * 10.0  # a branch that also delivers to x
    y = (x + f) + other
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1.0 + np.array([3.0, 5.0]) + 10.0)
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 2.0])


def test_saved_arrays_kept_with_retain_graph():
    x = leaf([1.0, 2.0])
    y = F.tanh(x)
    ref = weakref.ref(y.data)
    loss = y.sum()
    del y
    loss.backward(retain_graph=True)
    gc.collect()
    assert ref() is not None
    assert not any(n.released for n in topological_order([loss.grad_fn]))


def test_graph_is_freed_by_reference_counting_when_root_dropped():
    x = leaf(np.ones((3, 3)))
    y = F.softmax(F.tanh(x) @ x, -1)
    node_ref = weakref.ref(y.grad_fn)
    data_ref = weakref.ref(y.grad_fn.out)
    gc.disable()
    try:
        del y
        assert node_ref() is None and data_ref() is None, "the graph holds a reference cycle"
    finally:
        gc.enable()


# ---- grad modes -------------------------------------------------------------------------------
def test_no_grad_context():
    x = leaf([1.0])
    with minigrad.no_grad():
        assert not minigrad.is_grad_enabled()
        y = x * 2.0
    assert minigrad.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None


def test_no_grad_restores_mode_after_exception():
    with pytest.raises(ValueError), minigrad.no_grad():
        raise ValueError
    assert minigrad.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = leaf([1.0])
    with minigrad.no_grad():
        with minigrad.enable_grad():
            y = x * 2.0
        z = x * 2.0
    assert y.requires_grad and y.grad_fn is not None
    assert not z.requires_grad


def test_no_grad_and_enable_grad_as_decorators():
    x = leaf([1.0, 2.0])

    @minigrad.no_grad()
    def frozen(t):
        return t * 2.0

    @minigrad.enable_grad()
    def recorded(t):
        return t * 2.0

    assert frozen.__name__ == "frozen"
    assert not frozen(x).requires_grad
    assert minigrad.is_grad_enabled()
    with minigrad.no_grad():
        out = recorded(x)
        assert not minigrad.is_grad_enabled()
    assert out.requires_grad
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 2])


def test_set_grad_enabled_as_function_and_context():
    x = leaf([1.0])
    with minigrad.set_grad_enabled(False):
        assert not (x * 2.0).requires_grad
        with minigrad.set_grad_enabled(True):
            assert (x * 2.0).requires_grad
    assert minigrad.is_grad_enabled()
    try:
        minigrad.set_grad_enabled(False)
        assert not minigrad.is_grad_enabled()
        assert not (x * 2.0).requires_grad
    finally:
        minigrad.set_grad_enabled(True)
    assert (x * 2.0).requires_grad


def test_tensors_without_requires_grad_record_nothing():
    a = minigrad.tensor([1.0, 2.0])
    b = a * 2.0 + 1.0
    assert not b.requires_grad and b.grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        b.sum().backward()
    with pytest.raises(TypeError, match="floating"):
        minigrad.tensor([1, 2]).requires_grad_()


# ---- higher order ----------------------------------------------------------------------------------
def test_second_derivative_with_grad():
    x = leaf([1.0, -2.0, 0.5])
    y = (x**3).sum()
    (g,) = minigrad.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 3 * x.detach().numpy() ** 2)
    assert g.requires_grad
    (gg,) = minigrad.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), 6 * x.detach().numpy())
    assert x.grad is None


def test_second_derivative_with_backward_create_graph():
    x = leaf([1.0, -2.0, 0.5])
    (x**3).sum().backward(create_graph=True)
    first = x.grad
    assert first.requires_grad and first.grad_fn is not None
    np.testing.assert_allclose(first.detach().numpy(), 3 * x.detach().numpy() ** 2)
    x.grad = None
    first.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.detach().numpy())


def test_third_derivative_and_mixed_partials():
    x = leaf([0.7])
    y = leaf([-1.3])
    f = F.sin(x) * y**2  # d/dx = cos(x) y^2; d2/dxdy = 2 y cos(x); d3/dx3 = -cos(x) y^2
    (fx,) = minigrad.grad(f.sum(), x, create_graph=True)
    (fxy,) = minigrad.grad(fx.sum(), y, create_graph=True)
    np.testing.assert_allclose(fxy.detach().numpy(), 2 * -1.3 * np.cos(0.7))
    (fxx,) = minigrad.grad(fx.sum(), x, create_graph=True)
    (fxxx,) = minigrad.grad(fxx.sum(), x)
    np.testing.assert_allclose(fxxx.numpy(), -np.cos(0.7) * 1.3**2)


def test_grad_does_not_touch_dot_grad():
    x = leaf([1.0, 2.0])
    x.grad = minigrad.tensor([10.0, 10.0], dtype="float64")
    y = x * x
    y.retain_grad()
    (g,) = minigrad.grad(y.sum(), x)
    np.testing.assert_allclose(g.numpy(), [2, 4])
    np.testing.assert_allclose(x.grad.numpy(), [10, 10])
    assert y.grad is None


def test_grad_with_several_outputs_and_grad_outputs():
    x = leaf([1.0, 2.0])
    a, b = x * 2.0, x * x
    ga, gb = minigrad.tensor([1.0, 0.5], dtype="float64"), minigrad.tensor([2.0, 1.0], dtype="float64")
    (g,) = minigrad.grad([a, b], [x], [ga, gb])
    np.testing.assert_allclose(g.numpy(), 2 * ga.numpy() + 2 * x.detach().numpy() * gb.numpy())


def test_allow_unused():
    x, y = leaf([1.0]), leaf([2.0])
    z = (x * 3.0).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        minigrad.grad(z, [x, y], retain_graph=True)
    gx, gy = minigrad.grad(z, [x, y], allow_unused=True)
    np.testing.assert_allclose(gx.numpy(), [3])
    assert gy is None


def test_grad_of_intermediate():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    y = (h * h).sum()
    gh, gx = minigrad.grad(y, [h, x])
    np.testing.assert_allclose(gh.numpy(), 2 * h.detach().numpy())
    np.testing.assert_allclose(gx.numpy(), 18 * x.detach().numpy())


# ---- gradients never alias ---------------------------------------------------------------------------
def _all_distinct(*arrays):
    for a, b in itertools.combinations(arrays, 2):
        assert not np.shares_memory(a, b)


def test_x_plus_x():
    x = leaf([1.0, 2.0])
    g = minigrad.tensor([1.0, 1.0], dtype="float64")
    (x + x).backward(g)
    np.testing.assert_allclose(x.grad.numpy(), [2, 2])
    np.testing.assert_allclose(g.numpy(), [1, 1])  # the caller's gradient is untouched
    _all_distinct(x.grad.data, g.data)


def test_add_gives_separate_gradients_to_its_inputs():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    g = minigrad.tensor([1.0, 1.0], dtype="float64")
    z = a + b
    z.retain_grad()
    z.backward(g)
    _all_distinct(a.grad.data, b.grad.data, z.grad.data, g.data)
    a.grad.data += 100.0
    np.testing.assert_allclose(b.grad.numpy(), [1, 1])
    np.testing.assert_allclose(z.grad.numpy(), [1, 1])
    np.testing.assert_allclose(g.numpy(), [1, 1])
    # a second backward accumulates in place into a.grad; b.grad is still its own array
    (a + b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [102, 102])
    np.testing.assert_allclose(b.grad.numpy(), [2, 2])


def test_leaf_root_and_shape_ops_do_not_alias():
    x = leaf([1.0, 2.0])
    g = minigrad.tensor([5.0, 6.0], dtype="float64")
    x.backward(g)  # the root is the leaf itself
    x.backward(g)
    np.testing.assert_allclose(x.grad.numpy(), [10, 12])
    np.testing.assert_allclose(g.numpy(), [5, 6])
    w = leaf(np.ones((2, 3)))
    v = leaf(np.ones((3, 2)))
    (w.reshape(3, 2) + v).sum().backward()  # reshape backward returns views of one gradient
    _all_distinct(w.grad.data, v.grad.data)
    w.grad.data[...] = -1
    np.testing.assert_allclose(v.grad.numpy(), np.ones((3, 2)))


def test_retained_grads_do_not_alias_leaf_grads():
    x = leaf([1.0, 2.0])
    y = x + 0.0
    y.retain_grad()
    y.sum().backward()
    _all_distinct(x.grad.data, y.grad.data)
    y.grad.data[...] = 7.0
    np.testing.assert_allclose(x.grad.numpy(), [1, 1])


# ---- deep and wide graphs -----------------------------------------------------------------------------
def test_long_chain_has_no_recursion_limit():
    x = leaf([1.0, 2.0])
    y = x
    n = 100_000
    for _ in range(n):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**n] * 2, rtol=1e-9)
    del y  # freeing a 100,000-node chain must not overflow the C stack either
    gc.collect()


def test_long_chain_of_shape_free_ops():
    x = leaf([3.0])
    y = x
    for _ in range(100_000):
        y = y + 0.0
    (gx,) = minigrad.grad(y.sum(), x)
    np.testing.assert_allclose(gx.numpy(), [1.0])


def test_ten_thousand_parallel_branches():
    x = leaf([1.0, 2.0, 3.0])
    n = 10_000
    branches = [x * (i / n) for i in range(n)]
    F.stack(branches).sum().backward()
    expected = sum(i / n for i in range(n))
    np.testing.assert_allclose(x.grad.numpy(), [expected] * 3, rtol=1e-12)

    x.grad = None
    total = x * 0.0
    for i in range(n):
        total = total + x * (i / n)
    total.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [expected] * 3, rtol=1e-12)


# ---- deterministic order ---------------------------------------------------------------------------
def _build_graph():
    x = leaf(np.linspace(-1, 1, 6).reshape(2, 3))
    w = leaf(np.linspace(0, 1, 12).reshape(3, 4))
    h = F.tanh(x @ w)
    a = F.softmax(h, -1)
    b = F.layer_norm(h, 4) * a
    c = F.concat([a, b, h[:, :1] * 2.0], axis=1)
    return F.log_softmax(c, -1).sum() + F.relu(h).mean() + (x * x).sum()


def test_topological_order_is_deterministic_and_valid():
    orders = []
    for _ in range(3):
        root = _build_graph()
        order = topological_order([root.grad_fn])
        orders.append([n.op_name for n in order])
        # inputs before users: every node comes after each node that feeds it
        position = {id(n): i for i, n in enumerate(order)}
        for i, n in enumerate(order):
            for child in n.next:
                if isinstance(child, Function):
                    assert position[id(child)] < i
        assert order[-1] is root.grad_fn
        assert len(order) == len({id(n) for n in order})
    assert orders[0] == orders[1] == orders[2]
    assert len(orders[0]) > 15


# ---- errors --------------------------------------------------------------------------------------
def test_backward_of_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="scalar") as info:
        (x * 2.0).backward()
    assert "(2,)" in str(info.value)
    with pytest.raises(RuntimeError, match="scalar"):
        minigrad.grad(x * 2.0, x)
    # a one-element non-0-d output is fine
    (x[:1] * 2.0).backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 0])


def test_gradient_of_wrong_shape_or_dtype_errors():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    with pytest.raises(RuntimeError, match="shape") as info:
        y.backward(minigrad.tensor([1.0, 2.0, 3.0], dtype="float64"))
    assert "(3,)" in str(info.value) and "(2,)" in str(info.value)
    with pytest.raises(TypeError, match="dtype"):
        y.backward(minigrad.tensor([1.0, 2.0], dtype="float32"))
    y.backward([1.0, 1.0])  # plain data is accepted and converted
    np.testing.assert_allclose(x.grad.numpy(), [2, 2])


def test_backward_returning_wrong_shape_is_reported():
    class BadShape(Function):
        saves_inputs = False

        def forward(self, a):
            return a * 2.0

        def backward(self, g):
            return F.sum(g)

    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="badshape.*shape"):
        BadShape.apply(x).sum().backward()
