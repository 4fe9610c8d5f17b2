"""The ops of issue 22: elementwise functions, activations, amax/amin/std/prod, scans, sorting,
creation functions and the activation modules.

* first order: float64 gradient checks with a random upstream gradient, in three tables
  that tests/test_op_tables.py pins (``ELEMENTWISE`` over the unary shapes, ``SCANS`` over
  the reduction shapes, ``MATH_CASES`` with their own inputs); the second-order rows are in
  tests/test_ops_gradcheck.py (``GRADGRAD``) and tests/test_backend_independence.py;
* PyTorch: every op's values and input gradients against tests/reference/ops_math_reference.npz
  (written by tests/reference/make_ops_math_reference.py), kinks, ties and zeros included;
* the rest: rounding gives zero gradients (not None), indices carry none, the errors, the modules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from marked_backend import MarkedArray
from test_ops_gradcheck import REDUCTION_SHAPES, UNARY_SHAPES, S, inputs_for

import minigrad
import minigrad.functional as F
from minigrad import gradcheck, nn

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration

REFERENCE = Path(__file__).parent / "reference" / "ops_math_reference.npz"


# ---- first order: elementwise, over the unary shapes (1-d, 0-d, 3-d, transposed, size 1) --------
ELEMENTWISE = {  # name -> (function, kind of input values; see test_ops_gradcheck._values)
    "tan": (lambda x: F.tan(0.5 * x), "a"),
    "asin": (lambda x: F.asin(0.45 * x), "a"),
    "acos": (lambda x: F.acos(0.45 * x), "a"),
    "atan": (F.atan, "n"),
    "sinh": (F.sinh, "n"),
    "cosh": (F.cosh, "n"),
    "asinh": (F.asinh, "n"),
    "acosh": (lambda x: F.acosh(x + 1.0), "p"),
    "atanh": (lambda x: F.atanh(0.45 * x), "a"),
    "log2": (F.log2, "p"),
    "log10": (F.log10, "p"),
    "exp2": (F.exp2, "n"),
    "expm1": (F.expm1, "n"),
    "log1p": (F.log1p, "p"),
    "rsqrt": (F.rsqrt, "p"),
    "silu": (F.silu, "n"),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), "a"),
    "elu": (lambda x: F.elu(x, 0.7), "a"),
    "selu": (F.selu, "a"),
    "softplus": (F.softplus, "n"),
    "softplus_beta_threshold": (lambda x: F.softplus(x, beta=2.0, threshold=1.0), "ga"),  # both sides of 0.5
    "softsign": (F.softsign, "a"),
    "logsigmoid": (F.logsigmoid, "n"),
    "hardtanh": (F.hardtanh, "ga"),  # away from the ends -1 and 1
    "relu6": (lambda x: F.relu6(4.0 * x), "ga"),  # 4x is an odd integer +-0.2: away from 0 and 6
    "hardswish": (lambda x: F.hardswish(2.0 * x), "ga"),  # 2x is k + 1/2 +-0.1: away from -3 and 3
    "mish": (F.mish, "n"),
}


def elementwise_case(op, shape="1d"):
    fn, kind = ELEMENTWISE[op]
    s, transposed = UNARY_SHAPES[shape]
    return fn, inputs_for("math" + op + shape, [S(s, kind, transposed)])


@pytest.mark.parametrize("shape", list(UNARY_SHAPES))
@pytest.mark.parametrize("op", list(ELEMENTWISE))
def test_elementwise_gradcheck(op, shape):
    fn, xs = elementwise_case(op, shape)
    assert gradcheck(fn, xs)


# ---- first order: reductions, scans and sorting, over the reduction shapes ------------------------
SCANS = {
    "std_all": (F.std, "n"),
    "std_axis": (lambda x: x.std(1), "n"),
    "std_correction0_keepdims": (lambda x: F.std(x, -1, keepdims=True, correction=0), "n"),
    "prod_all": (F.prod, "a"),
    "prod_axis": (lambda x: x.prod(1), "a"),
    "prod_keepdims": (lambda x: F.prod(x, -1, keepdims=True), "a"),
    "amax": (lambda x: F.amax(x, -1), "d"),
    "amin_keepdims": (lambda x: x.amin((0, 1), keepdims=True), "d"),
    "cumsum_first": (lambda x: F.cumsum(x, 0), "n"),
    "cumsum_last": (lambda x: x.cumsum(-1), "n"),
    "cumprod": (lambda x: F.cumprod(x, 1), "a"),
    "cumprod_first": (lambda x: x.cumprod(0), "a"),
    "logcumsumexp": (lambda x: F.logcumsumexp(x, -1), "n"),
    "logcumsumexp_first": (lambda x: x.logcumsumexp(0), "n"),
    "sort": (lambda x: F.sort(x, -1).values, "d"),
    "sort_descending_first": (lambda x: x.sort(0, descending=True).values, "d"),
    "topk": (lambda x: F.topk(x, 2, -1).values, "d"),
    "topk_smallest": (lambda x: x.topk(1, axis=1, largest=False).values, "d"),
}


def scan_case(op, shape="2d"):
    fn, kind = SCANS[op]
    s, transposed = REDUCTION_SHAPES[shape]
    return fn, inputs_for("math" + op + shape, [S(s, kind, transposed)])


@pytest.mark.parametrize("shape", list(REDUCTION_SHAPES))
@pytest.mark.parametrize("op", list(SCANS))
def test_scan_and_reduction_gradcheck(op, shape):
    fn, xs = scan_case(op, shape)
    assert gradcheck(fn, xs)


# ---- first order: ops with their own inputs ---------------------------------------------------------
_ZEROS = [[1.5, 0.0, -2.0, 0.7], [0.0, 0.0, 1.3, -0.4], [0.9, -1.1, 0.6, 1.7]]  # rows: one, two, no zeros


def _zeros():
    return [minigrad.tensor(_ZEROS, dtype="float64", requires_grad=True)]


MATH_CASES = {  # name -> (function, input specs or a function making the inputs)
    "lerp_scalar": (lambda a, b: F.lerp(a, b, 0.3), [S((3, 4)), S((4,))]),
    "lerp_tensor": (lambda a, b, w: F.lerp(a, b, w), [S((2, 3)), S((2, 3), "n", True), S((3,))]),
    "lerp_method_weight_only": (lambda w: minigrad.tensor([[1.0, -2.0]], dtype="float64").lerp(
        minigrad.tensor([0.5, 3.0], dtype="float64"), w), [S((3, 1))]),
    # the products are polynomials, smooth at zero: finite differences see the exact gradient there
    "prod_zeros": (lambda x: F.prod(x, 1), _zeros),
    "prod_all_one_zero": (lambda x: F.prod(x[0]) * F.prod(x[2]), _zeros),
    "cumprod_zeros": (lambda x: F.cumprod(x, 1), _zeros),
    "cumprod_zeros_first": (lambda x: x.cumprod(0), _zeros),
    # rounding: derivative 0, so the row multiplies by x to have a gradient to check at all
    "floor": (lambda x: F.floor(x) * x, [S((3, 4), "ga")]),
    "ceil": (lambda x: x.ceil() * x, [S((3, 4), "ga")]),
    "round": (lambda x: F.round(x) * x + F.round(x, 1), [S((3, 4), "ga")]),
    "trunc": (lambda x: x.trunc() * x, [S((3, 4), "ga")]),
}  # fmt: skip


def math_case(name):
    fn, specs = MATH_CASES[name]
    return fn, specs() if callable(specs) else inputs_for("math" + name, specs)


@pytest.mark.parametrize("name", list(MATH_CASES))
def test_math_case_gradcheck(name):
    fn, xs = math_case(name)
    assert gradcheck(fn, xs)


# ---- PyTorch's values and input gradients ------------------------------------------------------------
OURS = {  # the same cases as CASES in make_ops_math_reference.py, in minigrad
    **{name: getattr(F, name) for name in [
        "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log2", "log10", "exp2",
        "expm1", "log1p", "rsqrt", "floor", "ceil", "round", "trunc", "silu", "selu", "softplus", "softsign",
        "logsigmoid", "relu6", "hardswish", "mish", "std", "isnan", "isinf", "isfinite"]},
    "round_decimals": lambda x: F.round(x, decimals=2),
    "lerp_scalar": lambda a, b: F.lerp(a, b, 0.3),
    "lerp_tensor": F.lerp,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "elu": lambda x: F.elu(x, 0.7),
    "softplus_beta": lambda x: F.softplus(x, beta=2.0, threshold=1.0),
    "hardtanh": lambda x: F.hardtanh(x, -0.5, 0.8),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "amax_axis": lambda x: F.amax(x, 1),
    "amax_all": F.amax,
    "amin_keepdim": lambda x: F.amin(x, 0, keepdims=True),
    "std_axis_correction0": lambda x: F.std(x, 0, correction=0),
    "std_biased_keepdim": lambda x: x.std(1, unbiased=False, keepdims=True),
    "std_constant_row": lambda x: x.std(1),
    "prod_all": F.prod,
    "prod_axis_zeros": lambda x: F.prod(x, 1),
    "prod_all_one_zero": F.prod,
    "cumsum": lambda x: F.cumsum(x, 0),
    "cumprod": lambda x: F.cumprod(x, 1),
    "cumprod_zeros": lambda x: x.cumprod(1),
    "logcumsumexp": lambda x: F.logcumsumexp(x, 1),
    "sort": lambda x: F.sort(x, -1),
    "sort_descending": lambda x: x.sort(0, descending=True),
    "argsort": lambda x: F.argsort(x, 1),
    "topk": lambda x: F.topk(x, 2, -1),
    "topk_smallest": lambda x: x.topk(2, axis=0, largest=False),
}  # fmt: skip


def _reference():
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


REF = _reference()


def test_reference_covers_every_case():
    stored = {key.split("/")[0] for key in REF if not key.startswith("creation/")}
    assert stored == set(OURS)


@pytest.mark.parametrize("name", sorted(OURS))
def test_matches_pytorch(name):
    n_in = sum(1 for key in REF if key.startswith(f"{name}/in"))
    xs = [minigrad.tensor(REF[f"{name}/in{i}"], dtype="float64", requires_grad=True) for i in range(n_in)]
    result = OURS[name](*xs)
    outs = list(result) if isinstance(result, tuple) else [result]
    for i, out in enumerate(outs):
        expected = REF[f"{name}/out{i}"]
        assert out.shape == expected.shape
        if expected.dtype.kind in "bi":
            assert out.dtype.kind == expected.dtype.kind and not out.requires_grad  # indices, booleans
            np.testing.assert_array_equal(out.numpy(), expected)
        else:
            np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-13, atol=1e-15, equal_nan=True)
    if f"{name}/up" not in REF:
        assert not outs[0].requires_grad
        return
    grads = minigrad.grad(outs[0], xs, minigrad.tensor(REF[f"{name}/up"], dtype="float64"))
    for i, g in enumerate(grads):
        np.testing.assert_allclose(g.numpy(), REF[f"{name}/grad{i}"], rtol=1e-12, atol=1e-14, err_msg=f"input {i}")


def test_creation_matches_pytorch():
    np.testing.assert_array_equal(minigrad.eye(3, dtype="float64").numpy(), REF["creation/eye_3"])
    np.testing.assert_array_equal(minigrad.eye(2, 4, dtype="float64").numpy(), REF["creation/eye_2_4"])
    np.testing.assert_allclose(minigrad.linspace(-1.0, 2.0, 7, dtype="float64").numpy(), REF["creation/linspace"],
                               rtol=1e-15, atol=1e-15)  # fmt: skip
    np.testing.assert_array_equal(minigrad.linspace(3.0, 5.0, 1, dtype="float64").numpy(), REF["creation/linspace_1"])


# ---- what PyTorch does at the edges -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc"])
def test_rounding_gives_a_zero_gradient_not_none(name):
    x = minigrad.tensor([[-1.5, 0.3], [2.7, -0.2]], dtype="float64", requires_grad=True)
    y = getattr(F, name)(x)
    assert y.requires_grad and y.grad_fn.op_name == name  # as PyTorch: FloorBackward0 and friends
    (y * 3.0).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    assert np.array_equal(x.grad.numpy(), np.zeros((2, 2)))
    whole = minigrad.tensor([3, -2])
    assert getattr(F, name)(whole).numpy().tolist() == [3, -2] and getattr(F, name)(whole).dtype == minigrad.int64


def test_round_halves_to_even_and_decimals():
    x = minigrad.tensor([0.5, 1.5, 2.5, -0.5, -2.5, 1.2345], dtype="float64")
    assert F.round(x).numpy().tolist() == [0.0, 2.0, 2.0, -0.0, -2.0, 1.0]
    np.testing.assert_allclose(x.round(2).numpy()[-1], 1.23)


def test_isnan_family_carries_no_gradient():
    x = minigrad.tensor([0.0, float("nan"), float("inf"), -float("inf")], dtype="float64", requires_grad=True)
    for fn, expected in [(F.isnan, [0, 1, 0, 0]), (F.isinf, [0, 0, 1, 1]), (F.isfinite, [1, 0, 0, 0])]:
        out = fn(x)
        assert out.dtype == minigrad.bool_ and not out.requires_grad and out.grad_fn is None
        assert out.numpy().tolist() == [bool(e) for e in expected]


def test_sort_and_topk_indices_carry_no_gradient_and_values_route_it_back():
    x = minigrad.tensor([[3.0, 1.0, 2.0], [0.5, -1.0, 4.0]], dtype="float64", requires_grad=True)
    values, indices = x.sort(-1, descending=True)
    assert indices.dtype == minigrad.int64 and not indices.requires_grad
    assert indices.numpy().tolist() == [[0, 2, 1], [2, 0, 1]]
    top = x.topk(2)
    assert top.indices.numpy().tolist() == [[0, 2], [2, 0]] and not top.indices.requires_grad
    (top.values * minigrad.tensor([[10.0, 1.0], [100.0, 1000.0]], dtype="float64")).sum().backward()
    assert x.grad.numpy().tolist() == [[10.0, 0.0, 1.0], [1000.0, 0.0, 100.0]]
    assert values.grad_fn.op_name == "sort" and top.values.grad_fn.op_name == "topk"
    ties = minigrad.tensor([2.0, 1.0, 2.0, 1.0])
    assert F.argsort(ties).numpy().tolist() == [1, 3, 0, 2]  # a stable sort: ties keep their order
    assert F.argsort(ties, descending=True).numpy().tolist() == [0, 2, 1, 3]


def test_nan_sorts_as_the_largest_value():
    x = minigrad.tensor([[1.0, float("nan"), 3.0, float("inf"), float("nan")]], dtype="float64")
    assert F.argsort(x).numpy().tolist() == [[0, 2, 3, 1, 4]]  # as torch.sort(stable=True)
    assert F.argsort(x, descending=True).numpy().tolist() == [[1, 4, 3, 2, 0]]
    assert F.topk(x, 2).indices.numpy().tolist() == [[1, 4]]


def test_prod_and_cumprod_with_zeros_second_order():
    assert minigrad.gradgradcheck(lambda x: F.prod(x, 1), _zeros())
    assert minigrad.gradgradcheck(lambda x: F.cumprod(x, 1), _zeros())
    assert minigrad.gradgradcheck(lambda x: F.prod(x[0]), _zeros())


def test_logcumsumexp_is_stable_over_a_wide_spread():
    x = minigrad.tensor([-1000.0, 0.0, 1000.0, 1000.0], dtype="float64", requires_grad=True)
    y = F.logcumsumexp(x, 0)
    np.testing.assert_allclose(y.detach().numpy(), [-1000.0, 0.0, 1000.0, 1000.0 + np.log(2.0)], rtol=1e-15)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0, 1.5, 0.5], rtol=1e-12)


def test_logcumsumexp_without_ufunc_accumulate_agrees():
    """The path for array modules that lack ufunc.accumulate gives the same numbers."""
    from minigrad.ops.scan import logcumsumexp_by_matrix

    x = np.random.default_rng(3).standard_normal((3, 5, 2)) * 50
    x[0, 0, 0], x[1, 2, 1] = -np.inf, 800.0
    for axis in (0, 1, 2):
        expected = np.logaddexp.accumulate(x, axis=axis)
        with np.errstate(divide="ignore"):  # log(0) = -inf where the running sum is exp(-inf)
            ours = logcumsumexp_by_matrix(np, x, axis)
        np.testing.assert_allclose(ours, expected, rtol=1e-14, atol=1e-14)
    assert logcumsumexp_by_matrix(np, np.zeros((2, 0)), 1).shape == (2, 0)


def test_scans_of_a_0d_tensor_are_the_element():
    x = minigrad.tensor(1.5, dtype="float64", requires_grad=True)
    for fn in (F.cumsum, F.cumprod, F.logcumsumexp):
        y = fn(x, 0)
        assert y.shape == () and y.item() == 1.5
    assert F.sort(x).values.shape == () and F.topk(x, 1).indices.item() == 0


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda x: F.softplus(x, beta=0), ValueError, r"^softplus: beta must be non-zero, got 0$"),
        (lambda x: F.hardtanh(x, 1.0, -1.0), ValueError, r"^hardtanh: min_val must not exceed max_val"),
        (lambda x: F.leaky_relu(x, "0.1"), TypeError, r"^leaky_relu: negative_slope must be a number, got '0.1'$"),
        (lambda x: F.silu(minigrad.tensor([1, 2])), TypeError, r"^silu: expected a floating tensor, got dtype int64$"),
        (lambda x: F.topk(x, 4), ValueError, r"^topk: k must be an int in \[0, 3\] for axis -1 of shape \(2, 3\)"),
        (lambda x: F.sort(x, 2), ValueError, r"^sort: axis 2 is out of range for a tensor with 2 dimensions$"),
        (lambda x: F.cumsum(x, (0, 1)), TypeError, r"^cumsum: axis must be an int, got \(0, 1\)$"),
        (lambda x: F.std(x, correction=1, unbiased=True), ValueError, r"^std: give correction or unbiased, not both"),
        (lambda x: F.std(x, correction=-1), ValueError, r"^std: correction must be a non-negative number, got -1$"),
        (lambda x: x.std(1, True), TypeError, r"takes from 1 to 2 positional arguments but 3 were given"),
        (lambda x: F.prod(x, (0, 1)), TypeError, r"^prod: axis must be an int or None, got \(0, 1\)$"),
        (lambda x: F.lerp(x, 1.0, 0.5), TypeError, r"^lerp: start and end must be Tensors, got Tensor and float$"),
        (lambda x: F.lerp(x, x, "half"), TypeError, r"^lerp: weight must be a number or a Tensor, got str$"),
        (lambda x: F.round(x, 1.5), TypeError, r"^round: decimals must be an int, got 1.5$"),
        (lambda x: F.amax(minigrad.zeros(0)), ValueError, r"^amax: empty tensor of shape \(0,\)$"),
        (lambda x: minigrad.from_numpy([1.0]), TypeError, r"^from_numpy: expected a numpy.ndarray, got list$"),
        (lambda x: minigrad.from_numpy(np.array(["a"])), TypeError, r"^from_numpy: dtype <U1 is not supported"),
        (lambda x: minigrad.eye(-1), ValueError, r"^eye: n must be a non-negative int, got -1$"),
        (lambda x: minigrad.linspace(0, 1, 2.5), ValueError, r"^linspace: steps must be a non-negative int, got 2.5$"),
        (lambda x: nn.GELU("fast"), ValueError, r"^GELU: approximate must be 'none' or 'tanh', got 'fast'$"),
        (lambda x: nn.Softmax(0, dim=1), TypeError, r"^Softmax: give axis or dim, not both"),
        (lambda x: nn.Softplus(beta=0), ValueError, r"^Softplus: beta must be non-zero, got 0$"),
        (lambda x: nn.LeakyReLU(None), TypeError, r"^LeakyReLU: negative_slope must be a number, got None$"),
    ],
)
def test_bad_arguments_get_one_line_errors(call, error, message):
    x = minigrad.randn(2, 3, dtype="float64")
    with pytest.raises(error, match=message) as info:
        call(x)
    assert "\n" not in str(info.value)


# ---- creation --------------------------------------------------------------------------------------
def test_creation_functions():
    e = minigrad.eye(2, 3, requires_grad=True)
    assert e.dtype == minigrad.float32 and e.requires_grad and e.detach().numpy().tolist() == [[1, 0, 0], [0, 1, 0]]
    line = minigrad.linspace(0, 1, 5, dtype="float64")
    assert line.dtype == minigrad.float64 and line.numpy().tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert minigrad.linspace(0, 1, 0).shape == (0,)
    blank = minigrad.empty(2, 3, dtype="int64")
    assert blank.shape == (2, 3) and blank.dtype == minigrad.int64 and minigrad.empty((4,)).shape == (4,)


def test_from_numpy_shares_memory_and_keeps_the_dtype():
    array = np.arange(6, dtype=np.int32).reshape(2, 3)
    t = minigrad.from_numpy(array)
    assert t.dtype == np.int32 and t.device == "cpu" and not t.requires_grad
    array[0, 0] = 100
    assert t.numpy()[0, 0] == 100  # one memory, as torch.from_numpy
    t.data[1, 2] = -7
    assert array[1, 2] == -7
    f = minigrad.from_numpy(np.ones(3)).requires_grad_()
    (f * 2.0).sum().backward()
    assert f.grad.numpy().tolist() == [2.0, 2.0, 2.0]


def test_creation_functions_on_the_marked_backend(marked):
    for t in [minigrad.eye(3, device="marked"), minigrad.linspace(0, 1, 4, device="marked"),
              minigrad.empty(2, device="marked")]:  # fmt: skip
        assert t.device == "marked" and type(t.data) is MarkedArray


# ---- modules and methods -----------------------------------------------------------------------------
MODULES = [  # module, the function it stands for
    (nn.Softmax(dim=0), lambda x: F.softmax(x, 0)),
    (nn.LogSoftmax(), lambda x: F.log_softmax(x, -1)),
    (nn.GELU(approximate="tanh"), lambda x: F.gelu(x, approximate="tanh")),
    (nn.SiLU(), F.silu),
    (nn.Tanh(), F.tanh),
    (nn.Sigmoid(), F.sigmoid),
    (nn.LeakyReLU(0.3), lambda x: F.leaky_relu(x, 0.3)),
    (nn.ELU(alpha=0.5), lambda x: F.elu(x, 0.5)),
    (nn.SELU(), F.selu),
    (nn.Softplus(beta=2.0, threshold=3.0), lambda x: F.softplus(x, 2.0, 3.0)),
    (nn.Softsign(), F.softsign),
    (nn.Mish(), F.mish),
    (nn.Hardtanh(-0.5, 0.5), lambda x: F.hardtanh(x, -0.5, 0.5)),
    (nn.ReLU6(), F.relu6),
    (nn.Hardswish(), F.hardswish),
    (nn.LogSigmoid(), F.logsigmoid),
]


@pytest.mark.parametrize("module, fn", MODULES, ids=[type(m).__name__ for m, _ in MODULES])
def test_activation_module_is_its_function(module, fn):
    x = minigrad.tensor(np.linspace(-7.0, 7.0, 15).reshape(3, 5), dtype="float64", requires_grad=True)
    out = module(x)
    np.testing.assert_array_equal(out.detach().numpy(), fn(x).detach().numpy())
    assert list(module.parameters()) == []
    out.sum().backward()
    assert x.grad is not None


def test_activation_modules_print_their_arguments():
    assert repr(nn.Softmax(dim=1)) == "Softmax(axis=1)"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.Softplus()) == "Softplus(beta=1.0, threshold=20.0)"
    assert repr(nn.Hardtanh()) == "Hardtanh(min_val=-1.0, max_val=1.0)"
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')" and repr(nn.SiLU()) == "SiLU()"


METHODS = ["tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "atanh", "log2", "log10", "exp2", "expm1",
           "log1p", "rsqrt", "floor", "ceil", "round", "trunc", "isnan", "isinf", "isfinite", "amax", "amin",
           "std", "prod"]  # fmt: skip


@pytest.mark.parametrize("name", METHODS)
def test_tensor_method_is_the_function(name):
    x = minigrad.tensor([[0.25, 0.5], [0.75, 0.125]], dtype="float64")
    np.testing.assert_array_equal(getattr(x, name)().numpy(), getattr(F, name)(x).numpy())


def test_tensor_methods_with_arguments():
    x = minigrad.tensor([[0.25, 0.5, -1.0], [0.75, 0.125, 2.0]], dtype="float64")
    np.testing.assert_array_equal((x + 2.5).acosh().numpy(), np.arccosh(x.numpy() + 2.5))
    np.testing.assert_array_equal(x.cumsum(1).numpy(), np.cumsum(x.numpy(), 1))
    np.testing.assert_array_equal(x.cumprod(0).numpy(), np.cumprod(x.numpy(), 0))
    np.testing.assert_allclose(x.logcumsumexp(1).numpy(), np.logaddexp.accumulate(x.numpy(), 1))
    np.testing.assert_array_equal(x.lerp(x * 3.0, 0.5).numpy(), x.numpy() * 2.0)
    np.testing.assert_array_equal(x.argsort(0).numpy(), np.argsort(x.numpy(), 0))
    np.testing.assert_allclose(x.std(1, correction=0).numpy(), np.std(x.numpy(), 1), rtol=1e-15)
    np.testing.assert_allclose(x.std().numpy(), np.std(x.numpy(), ddof=1), rtol=1e-15)  # PyTorch's default
    np.testing.assert_array_equal(x.prod(1, keepdims=True).numpy(), np.prod(x.numpy(), 1, keepdims=True))
