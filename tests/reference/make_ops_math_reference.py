"""Write tests/reference/ops_math_reference.npz: PyTorch's values and input gradients for the
elementwise functions, activations, reductions, scans, sorting and creation functions of
issue 22, which tests/test_ops_math.py checks minigrad against.

Regenerate (needs PyTorch and NumPy; minigrad is not used):

    /path/to/python-with-torch tests/reference/make_ops_math_reference.py

Each case is float64 inputs (seeded), PyTorch's output(s), a random upstream gradient ``up``
and the gradient of ``sum(up * out)`` with respect to every input. The inputs include the
points where PyTorch picks a one-sided derivative (0 for leaky_relu/elu/relu6, the ends
of hardtanh, +-3 for hardswish), ties for amax/amin, zeros for prod/cumprod, a constant row
for std and halves for round, so the tests pin PyTorch's conventions there too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as TF

OUT = Path(__file__).with_name("ops_math_reference.npz")
rng = np.random.default_rng(20261201)


def normal(*shape):
    return rng.standard_normal(shape)


def uniform(lo, hi, *shape):
    return rng.uniform(lo, hi, shape)


def with_points(values, points):
    """``values`` (2-D) with its first entries replaced by the given exact points."""
    flat = values.reshape(-1).copy()
    flat[: len(points)] = points
    return flat.reshape(values.shape)


KINKS = [0.0, -0.0, 1.0, -1.0]
ZEROS = np.array([[1.5, 0.0, -2.0, 0.7], [0.0, 0.0, 1.3, -0.4], [0.9, -1.1, 0.6, 1.7]])
TIES = np.array([[1.0, 3.0, 3.0, -2.0], [2.0, 2.0, 2.0, 2.0], [0.5, -1.0, 0.25, -1.0]])

# name -> (torch function of the input tensors, the input arrays)
CASES = {
    # elementwise
    "tan": (torch.tan, [uniform(-1.2, 1.2, 3, 4)]),
    "asin": (torch.asin, [uniform(-0.95, 0.95, 3, 4)]),
    "acos": (torch.acos, [uniform(-0.95, 0.95, 3, 4)]),
    "atan": (torch.atan, [normal(3, 4) * 2]),
    "sinh": (torch.sinh, [normal(3, 4) * 2]),
    "cosh": (torch.cosh, [normal(3, 4) * 2]),
    "asinh": (torch.asinh, [normal(3, 4) * 3]),
    "acosh": (torch.acosh, [uniform(1.05, 4.0, 3, 4)]),
    "atanh": (torch.atanh, [uniform(-0.95, 0.95, 3, 4)]),
    "log2": (torch.log2, [uniform(0.1, 10.0, 3, 4)]),
    "log10": (torch.log10, [uniform(0.1, 10.0, 3, 4)]),
    "exp2": (torch.exp2, [normal(3, 4) * 3]),
    "expm1": (torch.expm1, [with_points(normal(3, 4), [1e-10, -1e-12])]),
    "log1p": (torch.log1p, [with_points(uniform(-0.9, 3.0, 3, 4), [1e-10, -1e-12])]),
    "rsqrt": (torch.rsqrt, [uniform(0.1, 5.0, 3, 4)]),
    "floor": (torch.floor, [with_points(normal(3, 4) * 3, [2.0, -2.0, 0.5, -0.5])]),
    "ceil": (torch.ceil, [with_points(normal(3, 4) * 3, [2.0, -2.0, 0.5, -0.5])]),
    "round": (torch.round, [with_points(normal(3, 4) * 3, [0.5, 1.5, 2.5, -0.5, -1.5, -2.5])]),
    "round_decimals": (lambda x: torch.round(x, decimals=2), [normal(3, 4) * 3]),
    "trunc": (torch.trunc, [with_points(normal(3, 4) * 3, [2.0, -2.0, 0.5, -0.5])]),
    "lerp_scalar": (lambda a, b: torch.lerp(a, b, 0.3), [normal(3, 4), normal(3, 4)]),
    "lerp_tensor": (torch.lerp, [normal(3, 4), normal(4), with_points(uniform(-0.5, 1.5, 3, 1), [0.0, 1.0])]),
    # activations
    "silu": (TF.silu, [normal(3, 4) * 3]),
    "leaky_relu": (lambda x: TF.leaky_relu(x, 0.2), [with_points(normal(3, 4), KINKS)]),
    "elu": (lambda x: TF.elu(x, 0.7), [with_points(normal(3, 4), KINKS)]),
    "selu": (TF.selu, [with_points(normal(3, 4), KINKS)]),
    "softplus": (TF.softplus, [with_points(normal(3, 4) * 5, [20.0, 20.5, 19.5, -30.0])]),
    "softplus_beta": (lambda x: TF.softplus(x, beta=2.0, threshold=1.0), [with_points(normal(3, 4), [0.5, 0.6])]),
    "softsign": (TF.softsign, [with_points(normal(3, 4) * 3, KINKS)]),
    "logsigmoid": (TF.logsigmoid, [with_points(normal(3, 4) * 5, [-40.0, 40.0, 0.0])]),
    "hardtanh": (lambda x: TF.hardtanh(x, -0.5, 0.8), [with_points(normal(3, 4), [-0.5, 0.8, 0.0])]),
    "relu6": (TF.relu6, [with_points(normal(3, 4) * 5, [0.0, 6.0, -0.0])]),
    "hardswish": (TF.hardswish, [with_points(normal(3, 4) * 3, [-3.0, 3.0, 0.0])]),
    "mish": (TF.mish, [with_points(normal(3, 4) * 3, [25.0, -25.0, 0.0])]),
    "gelu_tanh": (lambda x: TF.gelu(x, approximate="tanh"), [normal(3, 4) * 2]),
    # reductions and scans
    "amax_axis": (lambda x: torch.amax(x, dim=1), [TIES]),
    "amax_all": (torch.amax, [TIES]),
    "amin_keepdim": (lambda x: torch.amin(x, dim=0, keepdim=True), [TIES]),
    "std": (torch.std, [normal(3, 4)]),
    "std_axis_correction0": (lambda x: torch.std(x, dim=0, correction=0), [normal(3, 4)]),
    "std_biased_keepdim": (lambda x: torch.std(x, dim=1, unbiased=False, keepdim=True), [normal(3, 4)]),
    "std_constant_row": (lambda x: torch.std(x, dim=1), [np.array([[1.5, 1.5, 1.5], [0.2, -1.0, 0.7]])]),
    "prod_all": (torch.prod, [uniform(0.5, 1.5, 3, 4)]),
    "prod_axis_zeros": (lambda x: torch.prod(x, dim=1), [ZEROS]),
    "prod_all_one_zero": (torch.prod, [np.array([[1.5, 0.0, -2.0], [0.7, 1.3, -0.4]])]),
    "cumsum": (lambda x: torch.cumsum(x, dim=0), [normal(3, 4)]),
    "cumprod": (lambda x: torch.cumprod(x, dim=1), [normal(3, 4)]),
    "cumprod_zeros": (lambda x: torch.cumprod(x, dim=1), [ZEROS]),
    "logcumsumexp": (lambda x: torch.logcumsumexp(x, dim=1), [with_points(normal(3, 4), [-800.0, 0.0, 700.0])]),
    "sort": (lambda x: torch.sort(x, dim=-1), [normal(3, 4)]),
    "sort_descending": (lambda x: torch.sort(x, dim=0, descending=True), [normal(3, 4)]),
    "argsort": (lambda x: torch.argsort(x, dim=1), [normal(3, 4)]),
    "topk": (lambda x: torch.topk(x, 2, dim=-1), [normal(3, 4)]),
    "topk_smallest": (lambda x: torch.topk(x, 2, dim=0, largest=False), [normal(3, 4)]),
    # no gradient: the isnan family
    "isnan": (torch.isnan, [np.array([[0.0, np.nan, np.inf], [-np.inf, 1.0, -np.nan]])]),
    "isinf": (torch.isinf, [np.array([[0.0, np.nan, np.inf], [-np.inf, 1.0, -np.nan]])]),
    "isfinite": (torch.isfinite, [np.array([[0.0, np.nan, np.inf], [-np.inf, 1.0, -np.nan]])]),
}
CREATION = {
    "eye_3": torch.eye(3, dtype=torch.float64),
    "eye_2_4": torch.eye(2, 4, dtype=torch.float64),
    "linspace": torch.linspace(-1.0, 2.0, 7, dtype=torch.float64),
    "linspace_1": torch.linspace(3.0, 5.0, 1, dtype=torch.float64),
}


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    for name, (fn, inputs) in CASES.items():
        xs = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
        result = fn(*xs)
        outs = list(result) if isinstance(result, tuple) else [result]
        for i, x in enumerate(inputs):
            arrays[f"{name}/in{i}"] = x
        for i, o in enumerate(outs):
            arrays[f"{name}/out{i}"] = o.detach().numpy()
        out = outs[0]
        if not out.requires_grad:
            continue
        up = rng.standard_normal(tuple(out.shape))
        grads = torch.autograd.grad(out, xs, torch.tensor(up), allow_unused=True)
        arrays[f"{name}/up"] = up
        for i, g in enumerate(grads):
            arrays[f"{name}/grad{i}"] = np.zeros(inputs[i].shape) if g is None else g.numpy()
    for name, t in CREATION.items():
        arrays[f"creation/{name}"] = t.numpy()
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({len(CASES)} op cases, {len(CREATION)} creation cases, torch {torch.__version__})")


if __name__ == "__main__":
    main()
