"""Tests of minigrad.optim: SGD, Adam, AdamW, state dicts, gradient clipping, schedules.

Adam/AdamW (and SGD again) are checked against PyTorch's results stored in
tests/reference/optim_reference.npz (regenerate with tests/reference/make_optim_reference.py).
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

import minigrad
from minigrad import optim
from minigrad.nn import Parameter
from minigrad.optim import (
    SGD,
    Adam,
    AdamW,
    ConstantSchedule,
    NoamSchedule,
    WarmupCosineSchedule,
    clip_grad_norm_,
    clip_grad_value_,
)

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration

REFERENCE = Path(__file__).parent / "reference" / "optim_reference.npz"


def param(values, dtype="float64") -> Parameter:
    return Parameter(minigrad.tensor(np.asarray(values, dtype=dtype)))


def set_grad(p: Parameter, values) -> None:
    p.grad = minigrad.tensor(np.asarray(values, dtype=p.dtype))


def run_scalar_sgd(**kwargs) -> np.ndarray:
    """3 steps on p0 = [1, -1] with the fixed gradients [g, -g], g = 1, 2, -1."""
    p = param([1.0, -1.0])
    opt = SGD([p], lr=0.1, **kwargs)
    for g in (1.0, 2.0, -1.0):
        set_grad(p, [g, -g])
        opt.step()
    return p.data


# ---- SGD against hand computation -------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, expected",
    [
        # p3 = 1 - 0.1 * (1 + 2 - 1)
        ({}, 0.8),
        # b1 = 1, b2 = 0.9 + 2 = 2.9, b3 = 2.61 - 1 = 1.61; p3 = 1 - 0.1 * (1 + 2.9 + 1.61)
        ({"momentum": 0.9}, 0.449),
        # b1 = 1 (no dampening on the first step), b2 = 0.9 + 0.5*2 = 1.9, b3 = 1.71 - 0.5 = 1.21
        # p3 = 1 - 0.1 * (1 + 1.9 + 1.21)
        ({"momentum": 0.9, "dampening": 0.5}, 0.589),
        # buffers as with momentum; d_t = g_t + 0.9 b_t: 1.9, 2 + 2.61 = 4.61, -1 + 1.449 = 0.449
        # p3 = 1 - 0.1 * (1.9 + 4.61 + 0.449)
        ({"momentum": 0.9, "nesterov": True}, 0.3041),
        # d1 = 1 + 0.5*1 = 1.5 -> p1 = 0.85; d2 = 2 + 0.425 = 2.425 -> p2 = 0.6075
        # d3 = -1 + 0.30375 = -0.69625 -> p3 = 0.6075 + 0.069625
        ({"weight_decay": 0.5}, 0.677125),
        # d1 = 1.5, b1 = 1.5 -> p1 = 0.85; d2 = 2.425, b2 = 1.35 + 2.425 = 3.775 -> p2 = 0.4725
        # d3 = -1 + 0.23625 = -0.76375, b3 = 3.3975 - 0.76375 = 2.63375 -> p3 = 0.4725 - 0.263375
        ({"weight_decay": 0.5, "momentum": 0.9}, 0.209125),
    ],
    ids=["plain", "momentum", "dampening", "nesterov", "weight_decay", "wd_momentum"],
)
def test_sgd_closed_form(kwargs, expected):
    np.testing.assert_allclose(run_scalar_sgd(**kwargs), [expected, -expected], rtol=0, atol=1e-12)


def test_sgd_param_groups_use_their_own_lr():
    a, b = param([1.0]), param([1.0])
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    set_grad(a, [2.0])
    set_grad(b, [2.0])
    opt.step()
    assert a.data[0] == pytest.approx(0.8) and b.data[0] == pytest.approx(0.0)
    assert opt.param_groups[1]["momentum"] == 0.0  # missing hyperparameters come from the defaults


# ---- against PyTorch ---------------------------------------------------------------------------
def _reference():
    ref = np.load(REFERENCE)
    return ref, json.loads(str(ref["meta"]))


_REF, _META = _reference()


@pytest.mark.parametrize("name", sorted(_META["configs"]))
def test_matches_pytorch(name):
    config = _META["configs"][name]
    W, b = param(_REF["W0"]), param(_REF["b0"])
    kwargs = dict(config["kwargs"])
    groups = config.get("groups")
    params = [W, b] if groups is None else [{"params": [p], **g} for p, g in zip([W, b], groups)]
    opt = getattr(optim, config["cls"])(params, **kwargs)
    for step in range(1, _META["steps"] + 1):
        set_grad(W, _REF["A_W"] * (W.data - _REF["T_W"]))
        if step == _META["skip_bias_step"]:
            b.grad = None
        else:
            set_grad(b, _REF["A_b"] * (b.data - _REF["T_b"]))
        opt.step()
        np.testing.assert_allclose(W.data, _REF[f"{name}/W"][step - 1], rtol=0, atol=1e-10, err_msg=f"step {step}")
        np.testing.assert_allclose(b.data, _REF[f"{name}/b"][step - 1], rtol=0, atol=1e-10, err_msg=f"step {step}")
    if config["cls"] != "SGD":
        assert opt.state[W]["step"] == _META["steps"]
        assert opt.state[b]["step"] == _META["steps"] - 1  # skipped once


def test_clip_grad_norm_matches_pytorch():
    scale = _META["clip_grad_scale"]
    for i, norm_type in enumerate(_META["clip_norm_types"]):
        W, b = param(np.zeros((3, 4))), param(np.zeros(4))
        set_grad(W, _REF["T_W"] * scale)
        set_grad(b, _REF["T_b"] * scale)
        total = clip_grad_norm_([W, b], _META["clip_max_norm"], norm_type=float(norm_type))
        assert isinstance(total, float)
        assert total == pytest.approx(float(_REF[f"clip{i}/total"]), rel=1e-12)
        np.testing.assert_allclose(W.grad.data, _REF[f"clip{i}/W_grad"], rtol=1e-12, atol=0)
        np.testing.assert_allclose(b.grad.data, _REF[f"clip{i}/b_grad"], rtol=1e-12, atol=0)


# ---- Adam details ------------------------------------------------------------------------------
def test_adam_first_step_by_hand():
    # t = 1: m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2 -> p -= lr * g / (|g| + eps)
    p = param([1.0, 2.0])
    set_grad(p, [0.5, -4.0])
    Adam([p], lr=0.1, eps=1e-8).step()
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * 0.5 / (0.5 + 1e-8), 2.0 + 0.1 * 4.0 / (4.0 + 1e-8)], atol=1e-14)


def test_adamw_decay_is_decoupled():
    # with a zero gradient the Adam part does nothing: p = p * (1 - lr * wd) exactly
    p = param([2.0, -3.0])
    opt = AdamW([p], lr=0.1, weight_decay=0.5)
    set_grad(p, [0.0, 0.0])
    opt.step()
    np.testing.assert_allclose(p.data, [2.0 * 0.95, -3.0 * 0.95], atol=1e-15)
    assert AdamW([param([1.0])]).defaults["weight_decay"] == 1e-2
    assert Adam([param([1.0])]).defaults["weight_decay"] == 0.0


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps), lambda ps: AdamW(ps)])
def test_updates_in_place_keep_dtype(make):
    p = param(np.ones((2, 3)), dtype="float32")
    data = p.data
    opt = make([p])
    set_grad(p, np.full((2, 3), 0.5))
    grad_before = p.grad.data.copy()
    opt.step()
    assert p.data is data and p.data.dtype == np.float32
    assert not p.requires_grad or p.grad_fn is None  # still a leaf, no graph recorded
    np.testing.assert_array_equal(p.grad.data, grad_before)  # the gradient is not modified
    assert (p.data < 1.0).all()


def test_params_without_grad_are_skipped():
    a, b = param([1.0, 2.0]), param([3.0])
    for opt in (SGD([a, b], lr=0.1, momentum=0.9, weight_decay=0.1), Adam([a, b], weight_decay=0.1), AdamW([a, b])):
        set_grad(a, [1.0, 1.0])
        b.grad = None
        opt.step()
        np.testing.assert_array_equal(b.data, [3.0])
        assert b not in opt.state
        assert a in opt.state


def test_zero_grad():
    p = param([1.0, 2.0])
    opt = SGD([p], lr=0.1)
    set_grad(p, [1.0, 1.0])
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.data, [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


def test_step_with_closure_returns_loss():
    p = param([3.0])
    opt = SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss) == 9.0
    assert p.data[0] == pytest.approx(3.0 - 0.25 * 6.0)


# ---- constructor errors --------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_empty_parameter_list_raises(cls):
    with pytest.raises(ValueError, match="empty parameter list"):
        cls([])
    with pytest.raises(ValueError, match="empty parameter list"):
        cls(iter([]))


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_negative_lr_raises(cls):
    with pytest.raises(ValueError, match="learning rate"):
        cls([param([1.0])], lr=-0.1)
    with pytest.raises(ValueError, match="learning rate"):
        cls([{"params": [param([1.0])], "lr": -1.0}])


def test_other_invalid_arguments():
    p = param([1.0])
    with pytest.raises(ValueError, match="beta"):
        Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="eps"):
        Adam([p], eps=-1.0)
    with pytest.raises(ValueError, match="momentum"):
        SGD([p], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="more than once"):
        SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="set"):
        SGD({p}, lr=0.1)
    with pytest.raises(TypeError, match="single"):
        SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        SGD([p * 2.0], lr=0.1)


def test_params_keep_their_order():
    ps = [param([float(i)]) for i in range(20)]
    opt = Adam(iter(ps))
    kept = opt.param_groups[0]["params"]
    assert isinstance(kept, list) and len(kept) == 20 and all(a is b for a, b in zip(kept, ps))
    assert [int(g) for g in opt.state_dict()["param_groups"][0]["params"]] == list(range(20))


# ---- state dicts ---------------------------------------------------------------------------------
def _quadratic_grads(params, targets):
    for p, t in zip(params, targets):
        set_grad(p, (p.data - t) * 1.5 + 0.1)


def _make_problem(seed, dtype="float64"):
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    targets = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    return [param(v, dtype) for v in values], [t.astype(dtype) for t in targets]


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda ps: Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.01}], lr=0.1, weight_decay=0.1),
        lambda ps: AdamW(ps, lr=0.1),
    ],
    ids=["sgd", "adam", "adamw"],
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_state_dict_round_trip_is_bit_identical(make, dtype):
    params, targets = _make_problem(0, dtype)
    opt = make(params)
    for _ in range(3):
        _quadratic_grads(params, targets)
        opt.step()
    saved = opt.state_dict()
    for pstate in saved["state"].values():
        for k, v in pstate.items():
            assert isinstance(v, int) if k == "step" else isinstance(v, minigrad.Tensor)
    # a fresh optimizer over fresh parameters with the saved values (different lr: load restores it)
    new_params = [param(p.data.copy(), dtype) for p in params]
    new_opt = make(new_params)
    new_opt.param_groups[0]["lr"] = 123.0
    new_opt.load_state_dict(saved)
    assert new_opt.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for _ in range(3):
        for ps in (params, new_params):
            _quadratic_grads(ps, targets)
        opt.step()
        new_opt.step()
    for p, q in zip(params, new_params):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_through_numpy_and_json():
    """What a checkpoint writer does: buffers as host arrays, hyperparameters as JSON, string keys."""
    params, targets = _make_problem(1)
    opt = Adam(params, lr=0.1)
    for _ in range(2):
        _quadratic_grads(params, targets)
        opt.step()
    sd = opt.state_dict()
    flat = {f"{i}.{k}": v.numpy().copy() for i, s in sd["state"].items() for k, v in s.items() if k != "step"}
    meta = json.loads(
        json.dumps({"param_groups": sd["param_groups"], "steps": {i: s["step"] for i, s in sd["state"].items()}})
    )
    state = {i: {"step": step} for i, step in meta["steps"].items()}  # JSON made the keys strings
    for key, array in flat.items():
        i, k = key.split(".")
        state[i][k] = array
    new_params = [param(p.data.copy()) for p in params]
    new_opt = Adam(new_params)
    new_opt.load_state_dict({"param_groups": meta["param_groups"], "state": state})
    assert new_opt.param_groups[0]["betas"] == (0.9, 0.999)
    _quadratic_grads(params, targets)
    _quadratic_grads(new_params, targets)
    opt.step()
    new_opt.step()
    for p, q in zip(params, new_params):
        np.testing.assert_array_equal(p.data, q.data)


def test_load_state_dict_copies_and_checks_shapes():
    params, targets = _make_problem(2)
    opt = SGD(params, lr=0.1, momentum=0.9)
    _quadratic_grads(params, targets)
    opt.step()
    saved = opt.state_dict()
    other = SGD([param(p.data.copy()) for p in params], lr=0.1, momentum=0.9)
    other.load_state_dict(saved)
    buf = saved["state"][0]["momentum_buffer"].data
    assert other.state[other.param_groups[0]["params"][0]]["momentum_buffer"] is not buf

    wrong = SGD([param(np.zeros((4, 3))), param(np.zeros(4))], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="shape"):
        wrong.load_state_dict(saved)
    assert wrong.state == {}  # nothing changed
    with pytest.raises(ValueError, match="param groups"):
        SGD([{"params": [param([1.0])]}, {"params": [param([1.0])]}], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="parameters"):
        SGD([param([1.0])], lr=0.1).load_state_dict(saved)


# ---- gradient clipping ---------------------------------------------------------------------------
def test_clip_grad_norm_by_hand():
    a, b, c = param([0.0, 0.0]), param([0.0]), param([0.0])
    set_grad(a, [3.0, 4.0])
    set_grad(b, [12.0])
    c.grad = None  # skipped
    total = clip_grad_norm_([a, b, c], max_norm=6.5)
    assert total == pytest.approx(13.0, abs=1e-12)  # sqrt(9 + 16 + 144)
    coef = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad.data, [3.0 * coef, 4.0 * coef], rtol=1e-14)
    np.testing.assert_allclose(b.grad.data, [12.0 * coef], rtol=1e-14)
    assert c.grad is None


def test_clip_grad_norm_other_norms_and_no_clip():
    a = param([0.0, 0.0, 0.0])
    set_grad(a, [1.0, -2.0, 2.0])
    assert clip_grad_norm_([a], max_norm=10.0) == pytest.approx(3.0)
    np.testing.assert_array_equal(a.grad.data, [1.0, -2.0, 2.0])  # below max_norm: untouched
    assert clip_grad_norm_(a, max_norm=10.0, norm_type=1) == pytest.approx(5.0)
    assert clip_grad_norm_([a], max_norm=1.0, norm_type=math.inf) == pytest.approx(2.0)
    np.testing.assert_allclose(a.grad.data, np.array([1.0, -2.0, 2.0]) / (2.0 + 1e-6))
    assert clip_grad_norm_([param([1.0])], max_norm=1.0) == 0.0  # no gradients at all
    set_grad(a, [np.nan, 1.0, 1.0])
    with pytest.raises(RuntimeError, match="nan"):
        clip_grad_norm_([a], 1.0, error_if_nonfinite=True)


def test_clip_grad_value():
    a = param([0.0, 0.0, 0.0])
    set_grad(a, [0.5, -3.0, 2.0])
    clip_grad_value_([a], 1.0)
    np.testing.assert_array_equal(a.grad.data, [0.5, -1.0, 1.0])


# ---- schedules -----------------------------------------------------------------------------------
def noam(k, d_model, warmup, factor=1.0):
    k = max(k, 1)
    return factor * d_model**-0.5 * min(k**-0.5, k * warmup**-1.5)


def test_noam_closed_form():
    opt = Adam([param([1.0])], lr=1.0)
    s = NoamSchedule(opt, d_model=512, warmup_steps=4000, factor=2.0)
    assert s.lr_at(0) == s.lr_at(1) == pytest.approx(2.0 * 512**-0.5 * 4000**-1.5)
    assert s.lr_at(4000) == pytest.approx(2.0 * (512 * 4000) ** -0.5)  # the peak
    assert s.lr_at(16000) == pytest.approx(2.0 * 512**-0.5 * 16000**-0.5)
    assert s.lr_at(100) == pytest.approx(2.0 * 512**-0.5 * 100 * 4000**-1.5)
    assert max(range(1, 10000, 7), key=s.lr_at) in range(3994, 4007)


def test_noam_drives_the_optimizer():
    p = param([1.0])
    opt = Adam([{"params": [p]}, {"params": [param([2.0])], "lr": 5.0}], lr=1.0)
    s = NoamSchedule(opt, d_model=16, warmup_steps=4)
    # constructed: the first optimizer step uses the value at step 1
    assert s.last_step == 0
    assert opt.param_groups[0]["lr"] == opt.param_groups[1]["lr"] == noam(1, 16, 4)
    seen = []
    for _ in range(8):
        seen.append(s.get_last_lr()[0])
        set_grad(p, [1.0])
        opt.step()
        s.step()
    assert s.last_step == 8 and s.lr == noam(9, 16, 4)
    assert seen == [noam(k, 16, 4) for k in range(1, 9)]
    assert seen.index(max(seen)) == 3  # the 4th step (k == warmup) has the peak


def test_warmup_cosine_closed_form():
    opt = SGD([param([1.0])], lr=1.0)
    s = WarmupCosineSchedule(opt, warmup_steps=4, total_steps=12, min_lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.25  # first step: base_lr / warmup
    assert s.lr_at(0) == 0.0
    assert s.lr_at(1) == 0.25
    assert s.lr_at(2) == 0.5
    assert s.lr_at(4) == 1.0  # the peak at step == warmup
    assert s.lr_at(5) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 8)))
    assert s.lr_at(8) == pytest.approx(0.55)  # half way through the decay
    assert s.lr_at(12) == pytest.approx(0.1)  # the end of the cosine
    assert s.lr_at(13) == s.lr_at(1000) == 0.1
    lrs = []
    for _ in range(14):
        lrs.append(s.lr)
        s.step()
    assert lrs == [s.lr_at(k) for k in range(1, 15)]
    assert all(x < y for x, y in zip(lrs[:3], lrs[1:4])) and all(x >= y for x, y in zip(lrs[3:], lrs[4:]))


def test_warmup_cosine_base_lr_and_groups():
    opt = SGD([{"params": [param([1.0])]}, {"params": [param([1.0])], "lr": 0.1}], lr=1.0)
    s = WarmupCosineSchedule(opt, warmup_steps=2, total_steps=4)
    assert s.get_last_lr() == [0.5, 0.05]  # each group warms up to its own lr
    s = WarmupCosineSchedule(opt, warmup_steps=0, total_steps=4, base_lr=2.0)
    assert s.get_last_lr() == pytest.approx([2.0 * 0.5 * (1 + math.cos(math.pi / 4))] * 2)
    with pytest.raises(ValueError):
        WarmupCosineSchedule(opt, warmup_steps=5, total_steps=4)


def test_schedule_state_dict_round_trip():
    opt = Adam([param([1.0])], lr=0.3)
    s = WarmupCosineSchedule(opt, warmup_steps=3, total_steps=10, min_lr=0.01)
    for _ in range(5):
        s.step()
    saved = json.loads(json.dumps(s.state_dict()))
    opt2 = Adam([param([1.0])], lr=0.3)
    s2 = WarmupCosineSchedule(opt2, warmup_steps=1, total_steps=2)
    s2.load_state_dict(saved)
    assert s2.last_step == 5 and opt2.param_groups[0]["lr"] == s.lr == s.lr_at(6)
    s.step()
    s2.step()
    assert s2.get_last_lr() == s.get_last_lr()

    n = NoamSchedule(opt, d_model=8, warmup_steps=2)
    n.step()
    n2 = NoamSchedule(opt2, d_model=64, warmup_steps=100)
    n2.load_state_dict(n.state_dict())
    assert n2.lr == n.lr == noam(2, 8, 2)


def test_constant_schedule():
    opt = SGD([param([1.0])], lr=0.3)
    s = ConstantSchedule(opt)
    s.step()
    assert s.get_last_lr() == [0.3]
    ConstantSchedule(opt, lr=0.01)
    assert opt.param_groups[0]["lr"] == 0.01


# ---- the library's own rule -------------------------------------------------------------------
def test_optim_does_not_import_numpy_or_cupy():
    folder = Path(optim.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in ("numpy", "cupy"), f"{path.name} imports {name}"


# ---- the backend's own arrays (the "marked" test backend stands in for CuPy) -----------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.2),
        lambda ps: Adam(ps, lr=0.1, weight_decay=0.1),
        lambda ps: AdamW(ps, lr=0.1),
    ],
    ids=["sgd_nesterov", "sgd_dampening", "adam", "adamw"],
)
def test_updates_stay_on_the_parameters_backend(make, marked):
    from marked_backend import MarkedArray

    rng = np.random.default_rng(3)
    values = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    targets = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    results = {}
    for device in ("cpu", "marked"):
        ps = [Parameter(minigrad.tensor(v, dtype="float64", device=device)) for v in values]
        opt = make(ps)
        for _ in range(3):
            for p, t in zip(ps, targets):
                p.grad = minigrad.tensor((p.backend.to_host(p.data) - t) * 4.0, dtype="float64", device=device)
            clip_grad_norm_(ps, max_norm=1.0)
            opt.step()
        if device == "marked":
            fresh = make([Parameter(minigrad.tensor(p.detach(), device=device)) for p in ps])
            fresh.load_state_dict(opt.state_dict())
            for o in (opt, fresh):
                for pstate in o.state.values():
                    for k, v in pstate.items():
                        assert k == "step" or type(v) is MarkedArray, k
            for p in ps:
                assert type(p.data) is MarkedArray and type(p.grad.data) is MarkedArray
        results[device] = [p.backend.to_host(p.data) for p in ps]
    for a, b in zip(results["cpu"], results["marked"]):
        np.testing.assert_array_equal(a, b)
