"""Write tests/reference/edges_reference.npz: PyTorch's answers at the edges tests/test_edges.py checks.

Regenerate (needs PyTorch and NumPy; minigrad is not used):

    /path/to/python-with-torch tests/reference/make_edges_reference.py

Everything is float64 with a random upstream gradient ``up`` (stored). The file holds, per
case, the inputs, PyTorch's value and the gradient of every input that requires grad:

* ``mean_empty_*``, ``var_ddof_*``: reductions over no elements and with ``correction >= N``;
* ``scalar_<op>_<dim>``: ops on a 0-d tensor with dim 0 or -1;
* ``pow_*``: ``a ** b``, ``a ** 0`` and ``0 ** y`` where a or the base is 0, and integer powers;
* ``bitwise_*``, ``any_*``/``all_*``, ``argmax_*``/``argmin_*``: integer and boolean results;
* ``index_tuple_*``: ``x[((0,),)]``, a tuple inside an index being an integer array;
* ``ce_<case>``: ``torch.nn.functional.cross_entropy`` with the keyword arguments in
  ``CE_CASES`` (the JSON ``ce_cases`` in the file), for logits (..., C) with the classes
  last (a 3-D case is moved to PyTorch's (N, C, d) layout and back).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).with_name("edges_reference.npz")
rng = np.random.default_rng(22)
arrays: dict[str, np.ndarray] = {}


def leaf(values) -> torch.Tensor:
    return torch.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def record(name: str, out: torch.Tensor, inputs: dict[str, torch.Tensor]) -> None:
    """Store the inputs, the value and, under a random upstream gradient, each input's gradient."""
    for key, t in inputs.items():
        arrays[f"{name}/{key}"] = t.detach().numpy()
    arrays[f"{name}/value"] = out.detach().numpy()
    if out.requires_grad:
        up = torch.tensor(rng.standard_normal(out.shape))
        arrays[f"{name}/up"] = up.numpy()
        grads = torch.autograd.grad(out, list(inputs.values()), up, allow_unused=True)
        for key, g in zip(inputs, grads):
            arrays[f"{name}/grad_{key}"] = (torch.zeros_like(inputs[key]) if g is None else g).numpy()


def reductions() -> None:
    for name, shape, dim in (("mean_empty_rows", (0, 3), 0), ("mean_empty_cols", (3, 0), 1)):
        x = leaf(np.zeros(shape))
        record(name, x.mean(dim), {"x": x})
    for name, values, ddof, dim in (
        ("var_ddof_one", [1.0], 1, None),
        ("var_ddof_equal", [3.0, 3.0], 2, None),
        ("var_ddof_over", [1.0, 2.0, 4.0], 4, None),
        ("var_ddof_rows", [[1.0, 2.0], [3.0, 5.0]], 2, 1),
        ("var_ddof_rows_equal", [[1.0, 1.0], [3.0, 5.0]], 3, 1),
    ):
        x = leaf(values)
        out = torch.var(x, correction=ddof) if dim is None else torch.var(x, dim=dim, correction=ddof)
        record(name, out, {"x": x})
        arrays[f"{name}/ddof"] = np.asarray(ddof)
        arrays[f"{name}/dim"] = np.asarray(-99 if dim is None else dim)


def scalars() -> None:
    for op in ("sum", "mean", "softmax", "log_softmax", "logsumexp", "squeeze"):
        for dim in (0, -1):
            x = leaf(1.7)
            record(f"scalar_{op}_{dim}", getattr(x, op)(dim), {"x": x})
    for op in ("argmax", "argmin"):
        for dim in (0, -1):
            arrays[f"scalar_{op}_{dim}/value"] = getattr(torch.tensor(1.7), op)(dim).numpy()


def powers() -> None:
    a, b = leaf([0.0, 0.0, 0.0, 1.5, 2.0, 0.0]), leaf([0.0, 1.0, 2.5, 0.0, -1.0, -1.0])
    record("pow_tensor", a**b, {"a": a, "b": b})
    a = leaf([0.0, 2.0, -1.5])
    record("pow_zero_exponent", a**0, {"a": a})
    y = leaf([0.0, 1.0, 2.5, -1.0])
    record("pow_zero_base_number", 0.0**y, {"y": y})
    y = leaf([0.0, 1.0, 2.5, -1.0])
    record("pow_zero_base_tensor", torch.tensor(0.0, dtype=torch.float64) ** y, {"y": y})
    i = torch.tensor([1, 2, 3, -2])
    arrays["pow_int_int/value"] = (i**3).numpy()
    arrays["pow_int_tensor/value"] = (i ** torch.tensor([2, 0, 1, 3])).numpy()
    arrays["pow_int_float/value"] = (i**0.5).numpy()  # float32, NaN at -2
    arrays["pow_number_int/value"] = (2 ** torch.tensor([0, 1, 4])).numpy()


def integers() -> None:
    a, b = torch.tensor([6, 3, -4, 12]), torch.tensor([3, 5, 1, 10])
    arrays["bitwise/a"], arrays["bitwise/b"] = a.numpy(), b.numpy()
    arrays["bitwise_and/value"] = (a & b).numpy()
    arrays["bitwise_or/value"] = (a | b).numpy()
    arrays["bitwise_xor/value"] = (a ^ b).numpy()
    arrays["bitwise_not/value"] = (~a).numpy()
    arrays["bitwise_and_number/value"] = (a & 5).numpy()
    m = torch.tensor([[True, False, True], [False, False, True]])
    arrays["bool/m"] = m.numpy()
    for op in ("any", "all"):
        arrays[f"{op}_dim1_keepdim/value"] = getattr(m, op)(dim=1, keepdim=True).numpy()
        arrays[f"{op}_dim0/value"] = getattr(m, op)(dim=0).numpy()
        arrays[f"{op}_all/value"] = getattr(m, op)().numpy()
    x = torch.tensor(rng.standard_normal((3, 4)))
    arrays["arg/x"] = x.numpy()
    for op in ("argmax", "argmin"):
        arrays[f"{op}_keepdim/value"] = getattr(x, op)(keepdim=True).numpy()
        arrays[f"{op}_dim1_keepdim/value"] = getattr(x, op)(dim=1, keepdim=True).numpy()
        arrays[f"{op}_dim0/value"] = getattr(x, op)(dim=0).numpy()


def indexing() -> None:
    cases = (("index_tuple_one", ((0,),)), ("index_tuple_two", ((2, 0, 2),)), ("index_tuple_2d", ((1,), (0,))))
    for name, index in cases:
        x = leaf(rng.standard_normal((3, 4)))
        record(name, x[index], {"x": x})


# case -> (logits shape, target kind, keyword arguments): "index" targets hold -100 (ignored)
# at some positions only where ignore_index is the default; "prob" targets are softmaxes
CE_CASES: dict[str, dict] = {
    "prob": {"shape": [6, 5], "target": "prob", "kwargs": {}},
    "prob_sum": {"shape": [6, 5], "target": "prob", "kwargs": {"reduction": "sum"}},
    "prob_none_smooth": {"shape": [6, 5], "target": "prob", "kwargs": {"reduction": "none", "label_smoothing": 0.2}},
    "prob_smooth_weight": {"shape": [6, 5], "target": "prob", "kwargs": {"label_smoothing": 0.1, "weight": True}},
    "prob_unnormalized": {"shape": [6, 5], "target": "prob_raw", "kwargs": {"weight": True}},
    "prob_3d": {"shape": [2, 3, 5], "target": "prob", "kwargs": {"label_smoothing": 0.3}},
    "index_weight": {"shape": [6, 5], "target": "index", "kwargs": {"weight": True}},
    "index_weight_ignore": {"shape": [6, 5], "target": "index_ignored", "kwargs": {"weight": True}},
    "index_weight_ignore_smooth": {
        "shape": [6, 5], "target": "index_ignored", "kwargs": {"weight": True, "label_smoothing": 0.25}},
    "index_weight_smooth_sum": {
        "shape": [6, 5], "target": "index_ignored", "kwargs": {"weight": True, "label_smoothing": 0.1,
                                                              "reduction": "sum"}},
    "index_weight_smooth_none": {
        "shape": [6, 5], "target": "index_ignored", "kwargs": {"weight": True, "label_smoothing": 0.4,
                                                              "reduction": "none"}},
    "index_ignore_index_3": {"shape": [6, 5], "target": "index", "kwargs": {"ignore_index": 3,
                                                                           "label_smoothing": 0.1}},
    "index_smooth_3d": {"shape": [2, 3, 5], "target": "index_ignored", "kwargs": {"label_smoothing": 0.2}},
}  # fmt: skip


def cross_entropy() -> None:
    for name, case in CE_CASES.items():
        shape = tuple(case["shape"])
        x = leaf(rng.standard_normal(shape) * 2)
        inputs = {"x": x}
        kwargs = dict(case["kwargs"])
        if kwargs.pop("weight", False):
            w = torch.tensor(rng.uniform(0.2, 2.0, shape[-1]))
            arrays[f"ce_{name}/weight"] = w.numpy()
            kwargs["weight"] = w
        kind = case["target"]
        if kind.startswith("prob"):
            raw = rng.uniform(0.0, 1.0, shape)
            target = leaf(raw if kind == "prob_raw" else raw / raw.sum(-1, keepdims=True))
            inputs["target"] = target
        else:
            t = rng.integers(0, shape[-1], shape[:-1])
            if kind == "index_ignored":
                t.reshape(-1)[[1, 4]] = -100
            target = torch.tensor(t)
            arrays[f"ce_{name}/target"] = t
        if len(shape) == 3:  # PyTorch wants (N, C, d): move the classes to axis 1
            xt = x.permute(0, 2, 1)
            tt = target.permute(0, 2, 1) if target.dtype.is_floating_point else target
            out = torch.nn.functional.cross_entropy(xt, tt, **kwargs)
        else:
            out = torch.nn.functional.cross_entropy(x, target, **kwargs)
        record(f"ce_{name}", out, inputs)


def main() -> None:
    warnings.simplefilter("ignore")  # var's "degrees of freedom is <= 0"
    reductions()
    scalars()
    powers()
    integers()
    indexing()
    cross_entropy()
    arrays["ce_cases"] = np.asarray(json.dumps(CE_CASES))
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({len(arrays)} arrays, torch {torch.__version__})")


if __name__ == "__main__":
    main()
