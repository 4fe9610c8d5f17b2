"""Shape and indexing ops, einsum, the losses and rms_norm of issue 22: PyTorch's values and
input gradients (stored in tests/reference/ops_shape_reference.npz, regenerated with
tests/reference/make_ops_shape_reference.py); PyTorch's semantics and the one-line errors
of the shape, indexing and einsum ops; in-place writes (``x[i] = v``). The losses'
semantics and errors, ``nn.RMSNorm``, ``nn.ModuleDict`` and ``Module.apply`` are in
tests/test_losses_and_modules.py.

The gradient checks (first and second order) of these ops are rows of the tables in
tests/test_ops_gradcheck.py and tests/test_backend_independence.py.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
from reference.ops_shape_cases import CASES, make_inputs, seed

import minigrad
import minigrad.functional as F

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration

REFERENCE = np.load(Path(__file__).parent / "reference" / "ops_shape_reference.npz")
LIB = types.SimpleNamespace(F=F, einsum=F.einsum)


def _run_case(name):
    specs, fn = CASES[name]
    arrays, needs = make_inputs(specs, np.random.default_rng(seed(name)))
    inputs = [minigrad.tensor(a, dtype="float64" if a.dtype.kind == "f" else None, requires_grad=g)
              for a, g in zip(arrays, needs)]  # fmt: skip
    outs = fn(LIB, *inputs)
    return arrays, inputs, list(outs) if isinstance(outs, (list, tuple)) else [outs]


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_pytorch(name):
    arrays, inputs, outs = _run_case(name)
    for k, a in enumerate(arrays):  # the same inputs as PyTorch had
        np.testing.assert_array_equal(a, REFERENCE[f"{name}/in{k}"])
    loss = None
    for k, o in enumerate(outs):
        expected = REFERENCE[f"{name}/out{k}"]
        assert o.shape == expected.shape, (name, k)
        assert (o.dtype.kind == "f") == (expected.dtype.kind == "f"), (name, o.dtype, expected.dtype)
        np.testing.assert_allclose(o.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
        if o.dtype.kind == "f":
            term = (o * minigrad.tensor(REFERENCE[f"{name}/up{k}"], dtype="float64")).sum()
            loss = term if loss is None else loss + term
    float_inputs = [t for t in inputs if t.requires_grad]
    if loss is None:
        assert not any(f"{name}/grad{k}" in REFERENCE for k in range(len(arrays)))
        return
    grads = minigrad.grad(loss, float_inputs, allow_unused=True)
    for k, (t, g) in enumerate(zip(float_inputs, grads)):
        got = np.zeros(t.shape) if g is None else g.numpy()
        np.testing.assert_allclose(got, REFERENCE[f"{name}/grad{k}"], rtol=1e-10, atol=1e-12, err_msg=f"{name} grad{k}")


def test_every_new_op_has_a_pytorch_reference():
    ops = ["clone", "t", "flip", "roll", "pad", "tril", "triu", "repeat", "tile", "repeat_interleave", "chunk",
           "gather", "scatter", "scatter_add", "masked_select", "one_hot", "einsum", "nll_loss", "binary_cross_entropy",
           "bce_with_logits", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "rms_norm"]  # fmt: skip
    for op in ops:
        assert any(name == op or name.startswith(op + "_") for name in CASES), op
    assert str(REFERENCE["torch_version"]).startswith("2.")


# ---- chunk and split follow PyTorch --------------------------------------------------------------
def test_chunk_and_split_sizes_follow_pytorch():
    sizes = lambda pieces, axis=0: [p.shape[axis] for p in pieces]  # noqa: E731
    assert sizes(minigrad.zeros(5, 2).chunk(3)) == [2, 2, 1]
    assert sizes(minigrad.zeros(2, 6).chunk(4, 1), 1) == [2, 2, 2]  # fewer pieces than asked, as torch.chunk
    assert sizes(minigrad.zeros(7).split(3)) == [3, 3, 1]
    assert sizes(F.split(minigrad.zeros(7), [2, 0, 5])) == [2, 0, 5]
    assert sizes(minigrad.zeros(0, 3).split(2)) == [0]  # torch: one empty piece
    assert sizes(F.chunk(minigrad.zeros(0, 3), 2)) == [0, 0]  # torch: ``chunks`` empty pieces
    for bad in (0, -1, 2.0):
        with pytest.raises(ValueError, match=r"chunk: chunks must be a positive integer, got"):
            F.chunk(minigrad.zeros(4), bad)


# ---- in-place writes ------------------------------------------------------------------------------------
def test_setitem_writes_like_numpy():
    x = minigrad.zeros(3, 4, dtype="float64")
    expected = np.zeros((3, 4))
    x[0] = 1.5
    expected[0] = 1.5
    x[:, 1] = minigrad.tensor([5.0, 6.0, 7.0], dtype="float64")
    expected[:, 1] = [5, 6, 7]
    x[minigrad.tensor([2, 0]), 3] = [8.0, 9.0]
    expected[[2, 0], 3] = [8, 9]
    x[x > 5.5] = -1.0
    expected[expected > 5.5] = -1
    x[1][2] = 4.0  # x[1] is a view (as in PyTorch): the write lands in x
    expected[1][2] = 4.0
    x[1:, ::2] = minigrad.tensor([[1.0], [2.0]], dtype="float64")  # broadcasts
    expected[1:, ::2] = [[1.0], [2.0]]
    np.testing.assert_array_equal(x.numpy(), expected)


def test_setitem_refuses_a_tensor_that_requires_grad():
    w = minigrad.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"setitem: cannot write in place into a tensor that requires grad"):
        w[0] = 2.0
    assert w.detach().numpy().tolist() == [1.0, 1.0, 1.0]


def test_setitem_refuses_a_value_that_requires_grad():
    """The gradient of the value could not reach it: refused, not silently dropped."""
    x = minigrad.zeros(3)
    v = minigrad.tensor(1.0, requires_grad=True)
    with pytest.raises(ValueError, match=r"setitem: the value requires grad"):
        x[0] = v
    x[0] = v.detach()
    assert x.numpy().tolist() == [1.0, 0.0, 0.0]


def test_setitem_refuses_a_tensor_a_live_node_saved_and_allows_it_after_backward():
    """y = w * m saves m for dL/dw = g * m: writing into m before backward would give a wrong
    gradient silently. After backward the node is freed and the write is allowed."""
    w = minigrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    m = minigrad.tensor([2.0, 2.0, 2.0])
    y = (w * m).sum()
    with pytest.raises(RuntimeError, match=r"setitem: the tensor of shape \(3,\) is saved by the graph node mul"):
        m[0] = 100.0
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0, 2.0])  # the values m had at forward
    m[0] = 100.0
    assert m.numpy().tolist() == [100.0, 2.0, 2.0]


def test_setitem_refuses_a_view_of_a_saved_tensor():
    """m[0] shares m's memory (a view, as in PyTorch), so writing through it is refused too."""
    w = minigrad.ones(2, 3, requires_grad=True)
    m = minigrad.ones(2, 3)
    y = w * m.T.T
    for view in (m[0], m.reshape(3, 2), m.detach()):
        with pytest.raises(RuntimeError, match=r"saved by the graph node mul"):
            view[0] = 5.0
    other = minigrad.ones(2, 3)  # its own memory
    other[0] = 5.0
    del y
    m[0][1] = 5.0
    assert m.numpy()[0].tolist() == [1.0, 5.0, 1.0]


def test_setitem_is_allowed_once_the_graph_is_gone():
    w = minigrad.ones(2, requires_grad=True)
    mask = minigrad.tensor([True, False])
    y = w.masked_fill(mask, 0.0)
    with pytest.raises(RuntimeError, match="masked_fill"):
        mask[1] = True
    del y  # nothing holds the graph any more
    mask[1] = True
    assert mask.numpy().tolist() == [True, True]


def test_setitem_refuses_a_detached_output_its_node_reads():
    """exp saves its output for backward; a detached view shares that memory."""
    w = minigrad.tensor([0.0, 1.0], dtype="float64", requires_grad=True)
    y = w.exp()
    view = y.detach()
    with pytest.raises(RuntimeError, match=r"saved by the graph node exp"):
        view[0] = 0.0
    y.backward(minigrad.ones(2, dtype="float64"))
    np.testing.assert_allclose(w.grad.numpy(), np.exp([0.0, 1.0]))
    view[0] = 0.0  # freed by backward


def test_setitem_errors_are_one_line():
    x = minigrad.zeros(2, 3)
    with pytest.raises(ValueError, match=r"setitem: cannot assign a value of shape \(2,\) at index 0 of a tensor of"):
        x[0] = [1.0, 2.0]
    with pytest.raises(TypeError, match=r"setitem: value must be a number, a list or a Tensor, got dict"):
        x[0] = {}
    with pytest.raises(IndexError, match=r"getitem: index arrays must be integer or boolean"):
        x[minigrad.tensor([0.5])] = 1.0


# ---- einsum: its backward is einsum -------------------------------------------------------------------
def test_einsum_backward_is_einsum_again():
    a = minigrad.randn(3, 4, dtype="float64", requires_grad=True)
    b = minigrad.randn(4, 2, dtype="float64", requires_grad=True)
    out = F.einsum("ij,jk->ik", a, b)
    g = minigrad.randn(3, 2, dtype="float64", requires_grad=True)
    ga, gb = minigrad.grad(out, [a, b], g, create_graph=True)
    assert ga.grad_fn.op_name == "einsum" and gb.grad_fn.op_name == "einsum"
    np.testing.assert_allclose(ga.detach().numpy(), g.detach().numpy() @ b.detach().numpy().T, rtol=1e-12)
    np.testing.assert_allclose(F.einsum("ij,jk->ik", a, b).detach().numpy(), (a @ b).detach().numpy(), rtol=1e-12)
    trace = F.einsum("ii", minigrad.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert trace.item() == 5.0


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda a: F.einsum("ij,jk->ik", a), ValueError, r"einsum: 'ij,jk->ik' names 2 operands, got 1"),
        (lambda a: F.einsum("ijk->i", a), ValueError, r"einsum: subscripts 'ijk' do not match an operand of shape"),
        (lambda a: F.einsum("ij,jk", a, a), ValueError, r"einsum: subscript 'j' of 'ij,jk' has sizes 3 and 2"),
        (lambda a: F.einsum("ij->k", a), ValueError, r"einsum: output subscript 'k' of 'ij->k' appears in no input"),
        (lambda a: F.einsum("ij->ii", a), ValueError, r"einsum: output subscripts of 'ij->ii' repeat a letter"),
        (lambda a: F.einsum("i1->i", a), ValueError, r"einsum: subscripts must be letters"),
        (lambda a: F.einsum(a, "ij"), TypeError, r"einsum: the first argument must be the subscripts string"),
    ],
)
def test_einsum_errors(call, error, message):
    with pytest.raises(error, match=message):
        call(minigrad.zeros(2, 3))


# ---- argument errors of the shape and indexing ops ----------------------------------------------------
X = minigrad.zeros(2, 3)
IDX = minigrad.tensor([[0, 1]])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: F.t(minigrad.zeros(2, 2, 2)), ValueError, r"t: expects a tensor of at most 2 dimensions"),
        (lambda: X.flip(2), ValueError, r"flip: axis 2 is out of range for a tensor with 2 dimensions"),
        (lambda: X.roll((1, 2), 0), ValueError, r"roll: shifts \(1, 2\) and dims \(0,\) must have the same length"),
        (lambda: X.roll((1, 2)), ValueError, r"roll: with dims=None, shifts must be a single integer"),
        (lambda: F.pad(X, (1, 1), mode="edge"), ValueError, r"pad: mode must be one of 'constant', 'reflect'"),
        (lambda: F.pad(X, (1,)), ValueError, r"pad: pad must hold \(before, after\) pairs for at most 2 axes"),
        (lambda: F.pad(X, (-1, 0), mode="replicate"), ValueError,
         r"pad: widths must be >= 0 for mode 'replicate' \(only 'constant' crops\)"),
        (lambda: F.pad(X, (-2, -2)), ValueError, r"pad: padding \(-2, -2\) crops more than the axis size 3"),
        (lambda: F.pad(X, (3, 0), mode="reflect"), ValueError, r"pad: reflect padding \(3, 0\) must be below the axis"),
        (lambda: F.pad(X, (1, 0), mode="reflect", value=1.0), ValueError, r"pad: value is only for mode 'constant'"),
        (lambda: F.pad(X, (1, 0), value=minigrad.ones(1, requires_grad=True)), ValueError, r"pad: value requires grad"),
        (lambda: minigrad.zeros(3).tril(), ValueError, r"tril: expects a tensor of at least 2 dimensions"),
        (lambda: X.triu(0.5), TypeError, r"triu: diagonal must be an integer, got 0.5"),
        (lambda: X.repeat(2), ValueError, r"repeat: needs at least 2 sizes for a tensor of shape \(2, 3\)"),
        (lambda: X.repeat_interleave(minigrad.tensor([1, 2])), ValueError,
         r"repeat_interleave: repeats must be an integer tensor of shape \(6,\) or \(1,\)"),
        (lambda: X.repeat_interleave(-1, 0), ValueError, r"repeat_interleave: repeats must be >= 0, got -1"),
        (lambda: X.gather(1, minigrad.tensor([0, 1])), ValueError, r"gather: index must have the input's 2 dimensions"),
        (lambda: X.gather(1, minigrad.tensor([[3]])), IndexError, r"gather: index values must be in \[0, 3\)"),
        (lambda: X.gather(0, minigrad.tensor([[0, 1, 0, 1]])), ValueError, r"gather: index of shape \(1, 4\) is large"),
        (lambda: X.gather(0, minigrad.tensor([[0.5]])), TypeError, r"gather: index must hold integers, got dtype"),
        (lambda: X.scatter(1, IDX), ValueError, r"scatter: give exactly one of src \(a tensor\) and value"),
        (lambda: X.scatter(1, IDX, minigrad.zeros(1, 1)), ValueError, r"scatter: index of shape \(1, 2\) is larger"),
        (lambda: X.scatter_add(1, IDX, minigrad.zeros(2)), ValueError, r"scatter_add: src must have the input's 2 dim"),
        (lambda: X.masked_select(minigrad.ones(3)), TypeError, r"masked_select: mask must be a boolean Tensor"),
        (lambda: X.masked_select(minigrad.tensor([True, False])), ValueError, r"masked_select: shapes \(2, 3\) and"),
        (lambda: F.one_hot(minigrad.tensor([0.0])), TypeError, r"one_hot: expects an integer tensor"),
        (lambda: F.one_hot(minigrad.tensor([0, 3]), 3), ValueError, r"one_hot: class values must be in \[0, 3\), got"),
        (lambda: F.one_hot(minigrad.tensor([-1, 0])), ValueError, r"one_hot: class values must be in \[0, 1\)"),
    ],
)
def test_shape_op_errors_name_the_op(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_one_hot_is_int64_without_gradient():
    out = F.one_hot(minigrad.tensor([[2, 0]]), 4)
    assert out.dtype == minigrad.int64 and not out.requires_grad
    assert out.tolist() == [[[0, 0, 1, 0], [1, 0, 0, 0]]]


def test_repeat_interleave_and_gather_route_repeated_gradients_together():
    """An element copied k times gets the sum of its copies' gradients (checked exactly)."""
    x = minigrad.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    x.repeat_interleave(minigrad.tensor([3, 1])).backward(minigrad.tensor([1.0, 2.0, 4.0, 8.0], dtype="float64"))
    assert x.grad.tolist() == [7.0, 8.0]
    y = minigrad.tensor([[1.0, 2.0, 3.0]], dtype="float64", requires_grad=True)
    y.gather(1, minigrad.tensor([[2, 2, 0]])).sum().backward()
    assert y.grad.tolist() == [[1.0, 0.0, 2.0]]
