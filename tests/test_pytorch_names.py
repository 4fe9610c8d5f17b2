"""PyTorch's names (issue 21) and the rules minigrad keeps on purpose (docs/semantics.md).

``dim=``/``keepdim=`` are accepted wherever ``axis=``/``keepdims=`` are (functional and
Tensor methods; both names at once is a one-line error), ``x.size()`` is the shape and
``x.size(d)`` one dimension, ``x.numel()`` the element count. Each row of the table in
docs/semantics.md (where minigrad differs from PyTorch on purpose) is asserted here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import minigrad
import minigrad.functional as F
from minigrad import nn

# ---- PyTorch's names: dim=/keepdim=, size(), numel(), dim() ---------------------------------------------
DIM_CALLS = {  # op -> (call with NumPy's names, the same call with PyTorch's)
    "sum": (lambda x: F.sum(x, axis=1, keepdims=True), lambda x: F.sum(x, dim=1, keepdim=True)),
    "mean": (lambda x: x.mean(axis=0), lambda x: x.mean(dim=0)),
    "var": (lambda x: x.var(axis=1, keepdims=True, ddof=1), lambda x: x.var(dim=1, keepdim=True, ddof=1)),
    "max": (lambda x: x.max(axis=-1, keepdims=True), lambda x: x.max(dim=-1, keepdim=True)),
    "min": (lambda x: F.min(x, axis=0), lambda x: F.min(x, dim=0)),
    "argmax": (lambda x: x.argmax(axis=1, keepdims=True), lambda x: x.argmax(dim=1, keepdim=True)),
    "argmin": (lambda x: F.argmin(x, axis=0), lambda x: F.argmin(x, dim=0)),
    "softmax": (lambda x: x.softmax(axis=0), lambda x: x.softmax(dim=0)),
    "log_softmax": (lambda x: F.log_softmax(x, axis=0), lambda x: F.log_softmax(x, dim=0)),
    "logsumexp": (lambda x: x.logsumexp(axis=0, keepdims=True), lambda x: x.logsumexp(dim=0, keepdim=True)),
    "squeeze": (lambda x: x[:1].squeeze(axis=0), lambda x: x[:1].squeeze(dim=0)),
    "unsqueeze": (lambda x: F.unsqueeze(x, axis=1), lambda x: F.unsqueeze(x, dim=1)),
    "flatten": (lambda x: x.flatten(start_axis=0, end_axis=1), lambda x: x.flatten(start_dim=0, end_dim=1)),
    "swapaxes": (lambda x: x.swapaxes(axis1=0, axis2=1), lambda x: x.swapaxes(dim0=0, dim1=1)),
    "split": (lambda x: x.split(1, axis=1)[0], lambda x: x.split(1, dim=1)[0]),
    "chunk": (lambda x: F.chunk(x, 2, axis=0)[0], lambda x: F.chunk(x, 2, dim=0)[0]),
    "concat": (lambda x: F.concat([x, x], axis=1), lambda x: F.cat([x, x], dim=1)),
    "stack": (lambda x: F.stack([x, x], axis=2), lambda x: F.stack([x, x], dim=2)),
}


@pytest.mark.parametrize("op", list(DIM_CALLS))
def test_dim_and_keepdim_are_accepted_wherever_axis_and_keepdims_are(op):
    numpy_names, torch_names = DIM_CALLS[op]
    x = minigrad.tensor(np.arange(6.0).reshape(2, 3) ** 1.5, requires_grad=True)
    a, b = numpy_names(x), torch_names(x)
    assert a.shape == b.shape and a.tolist() == b.tolist()


@pytest.mark.parametrize("call", [lambda x: x.sum(axis=0, dim=0), lambda x: F.mean(x, 0, dim=1),
                                  lambda x: x.softmax(0, dim=0), lambda x: x.max(keepdims=True, keepdim=True),
                                  lambda x: F.any(x, 0, dim=0)])  # fmt: skip
def test_giving_both_names_is_a_one_line_error(call):
    with pytest.raises(TypeError, match=r"^\w+: got both (axis|keepdims) and (dim|keepdim)= .*give one of them$"):
        call(minigrad.randn(2, 3))


def test_size_is_the_shape_and_numel_the_count():
    x = minigrad.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) == x.shape and x.size(0) == 2 and x.size(-1) == 4 and x.size(dim=1) == 3
    assert x.numel() == 24 and x.dim() == 3 and minigrad.tensor(5.0).size() == ()
    with pytest.raises(IndexError, match="size: dimension 3 is out of range for a tensor with 3 dimensions"):
        x.size(3)
    layer = nn.Linear(3, 2)
    assert layer.num_parameters() == 8 == sum(p.numel() for p in layer.parameters())


# ---- docs/semantics.md: each row where minigrad keeps its own rule on purpose --------------------------------
def _row_var_ddof():
    x = minigrad.tensor([1.0, 2.0, 3.0, 4.0], dtype="float64")
    assert x.var().item() == 1.25 and abs(x.var(ddof=1).item() - 5 / 3) < 1e-15


def _row_max_values():
    x = minigrad.tensor([[1.0, 5.0], [7.0, 2.0]])
    assert x.max(1).tolist() == [5.0, 7.0] and x.argmax(1).tolist() == [1, 0] and x.min(dim=0).tolist() == [1.0, 2.0]


def _row_transpose_all():
    x = minigrad.zeros(2, 3, 4)
    assert x.transpose().shape == x.T.shape == (4, 3, 2) and x.transpose(0, 2).shape == (4, 3, 2)
    assert x.transpose(1, 2).shape == (2, 4, 3)


def _row_no_upcast():
    with pytest.raises(TypeError, match=r"add: floating inputs must share one dtype, got \(float32, float64\)"):
        minigrad.ones(2) + minigrad.ones(2, dtype="float64")


def _row_view_is_reshape():
    x = minigrad.tensor(np.arange(6.0).reshape(2, 3), dtype="float64", requires_grad=True)
    y = x.T.view(-1)  # PyTorch: "view size is not compatible with input tensor's size and stride"
    assert y.tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    (y * minigrad.arange(6.0, dtype="float64")).sum().backward()
    assert x.grad.tolist() == [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]


def _row_classes_last():
    x = minigrad.randn(2, 3, 5, dtype="float64")
    t = minigrad.tensor([[0, 4, 1], [2, 2, 3]])
    flat = F.cross_entropy(x.reshape(6, 5), t.reshape(6))
    assert abs(F.cross_entropy(x, t).item() - flat.item()) < 1e-15
    with pytest.raises(ValueError, match=r"need targets of shape \(2, 3\)"):
        F.cross_entropy(x, minigrad.tensor([[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]))


def _row_dead_attention_rows():
    q = minigrad.randn(1, 2, 4, dtype="float64", requires_grad=True)
    k = minigrad.randn(1, 3, 4, dtype="float64", requires_grad=True)
    mask = minigrad.tensor([[[True, True, True], [False, True, False]]])
    w = F.attention_weights(q, k, mask)
    assert w.tolist()[0][0] == [0.0, 0.0, 0.0] and abs(sum(w.tolist()[0][1]) - 1) < 1e-15
    w.sum().backward()
    assert np.isfinite(q.grad.numpy()).all() and q.grad.numpy()[0, 0].tolist() == [0.0] * 4


def _row_var_grad_no_dof():
    x = minigrad.tensor([[1.0, 2.0], [3.0, 5.0]], dtype="float64", requires_grad=True)
    v = x.var(1, ddof=3)
    assert v.tolist() == [float("inf"), float("inf")]
    v.sum().backward()
    assert not np.isfinite(x.grad.numpy()).any()


SEMANTICS_ROWS = {name[5:]: fn for name, fn in dict(globals()).items() if name.startswith("_row_")}


@pytest.mark.parametrize("row", list(SEMANTICS_ROWS))
def test_semantics_table_row(row):
    SEMANTICS_ROWS[row]()


def test_the_semantics_table_lists_exactly_the_tested_rows():
    text = (Path(__file__).parents[1] / "docs" / "semantics.md").read_text()
    rows = [line.split("|")[1].strip().strip("`") for line in text.splitlines() if line.startswith("| `")]
    assert rows == list(SEMANTICS_ROWS)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "(docs/semantics.md)" in readme
