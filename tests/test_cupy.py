"""The same forward/backward checks on the GPU (device "cuda", CuPy), compared with the CPU.

Skipped as a whole when CuPy is not installed or no GPU is present. The checks reuse the
op table and the tracker of test_backend_independence.py: every tensor, gradient and
saved array must be a ``cupy.ndarray``, and the numbers must match the CPU's.
"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad

cupy = pytest.importorskip("cupy", reason="CuPy not installed or no GPU")
if not minigrad.is_available("cuda"):
    pytest.skip("CuPy not installed or no GPU", allow_module_level=True)

from test_backend_independence import CASES, SECOND_ORDER, Tracker, _make_inputs, _Model, _run, _train_step  # noqa: E402

import minigrad.functional as F  # noqa: E402

DEVICE = "cuda"
ARRAY_TYPE = cupy.ndarray

# a representative set of ops (every family: elementwise, reductions, softmax, shapes,
# indexing, linear algebra, normalization, losses, attention)
REPRESENTATIVE = [
    "add", "sub", "mul", "div", "rdiv", "pow_scalar", "pow_tensor", "int_plus_float", "exp", "log", "sqrt", "abs",
    "tanh", "sigmoid", "relu", "gelu", "gelu_tanh", "erf", "erf_0d", "maximum", "minimum", "clip", "where",
    "masked_fill", "sum", "sum_keepdims", "mean_axis", "var_axis_ddof", "max", "max_axis", "argmax", "logsumexp",
    "softmax", "log_softmax", "softmax_composite", "reshape", "permute", "expand", "squeeze", "getitem_slices",
    "getitem_int_tensor", "getitem_mixed", "getitem_bool_mask", "concat", "stack", "split", "matmul_1d_2d",
    "matmul_2d", "matmul_batch_broadcast", "linear", "layer_norm", "layer_norm_no_affine", "embedding_padding",
    "flash_attention", "flash_attention_masks", "flash_attention_float_mask",
    "cross_entropy", "cross_entropy_ignore_smooth", "mse_loss", "cast", "sin", "attention_weights_bool_mask",
    "attention_weights_float_mask", "compare_logic",
    # issue 22
    "tan", "log1p", "lerp", "rounding", "softplus", "hardswish", "std", "prod_zeros", "cumsum", "cumprod_zeros",
    "logcumsumexp", "sort", "argsort", "topk",
]  # fmt: skip
# random ops draw from each device's own generator: same kind of result, different numbers
RANDOM = ["dropout"]
RTOL, ATOL = 1e-9, 1e-10  # float64; GPU kernels sum in a different order


@pytest.mark.parametrize("name", REPRESENTATIVE + RANDOM)
def test_op_on_gpu_matches_cpu(name, monkeypatch):
    fn, specs = CASES[name]
    _, _, cpu_values, cpu_grads = _run(fn, specs, "cpu")

    tracker = Tracker(monkeypatch, device=DEVICE, array_type=ARRAY_TYPE)
    inputs, outs, values, grads = _run(fn, specs, DEVICE)
    tracker.check()
    for t in inputs + outs:
        assert t.device == DEVICE and type(t.data) is ARRAY_TYPE
    for t in inputs:
        if t.grad is not None:
            assert t.grad.device == DEVICE and type(t.grad.data) is ARRAY_TYPE
    if name in RANDOM:
        return
    for v, c in zip(values, cpu_values):
        assert type(v) is np.ndarray and v.dtype == c.dtype and v.shape == c.shape
        np.testing.assert_allclose(v, c, rtol=RTOL, atol=ATOL)
    for g, c in zip(grads, cpu_grads):
        assert (g is None) == (c is None)
        if g is not None:
            np.testing.assert_allclose(g, c, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", [n for n in SECOND_ORDER if n in REPRESENTATIVE])
def test_double_backward_on_gpu_matches_cpu(name, monkeypatch):
    fn, specs = CASES[name]

    def second_order(device):
        minigrad.manual_seed(0)
        inputs = _make_inputs(specs, device, 0)
        xs = [t for t in inputs if t.requires_grad]
        out = fn(*inputs)
        u = minigrad.tensor(np.random.default_rng(5).standard_normal(out.shape), dtype=out.dtype, device=device)
        grads = minigrad.grad(out, xs, u, create_graph=True, allow_unused=True)
        with_graph = [g for g in grads if g is not None and g.requires_grad]
        if not with_graph:  # a linear op: its gradient does not depend on the inputs
            return []
        total = sum((g * g).sum() for g in with_graph)
        second = minigrad.grad(total, xs, allow_unused=True)
        return [None if g is None else g.numpy() for g in second]

    expected = second_order("cpu")
    tracker = Tracker(monkeypatch, device=DEVICE, array_type=ARRAY_TYPE)
    got = second_order(DEVICE)
    tracker.check()
    assert len(got) == len(expected)
    for g, c in zip(got, expected):
        assert (g is None) == (c is None)
        if g is not None:
            np.testing.assert_allclose(g, c, rtol=1e-8, atol=1e-9)


def test_gradcheck_on_gpu():
    x = minigrad.randn(3, 4, dtype="float64", device=DEVICE, requires_grad=True)
    w = minigrad.randn(4, dtype="float64", device=DEVICE, requires_grad=True)
    assert minigrad.gradcheck(lambda x, w: F.layer_norm(F.softmax(x, -1), 4, w), [x, w])
    assert minigrad.gradcheck(lambda x: F.gelu(x), [x], mode="directional")
    assert minigrad.gradgradcheck(lambda x: F.log_softmax(x, -1), [x])


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 1e-4)])
def test_nn_model_on_gpu_matches_cpu(dtype, rtol, monkeypatch):
    minigrad.manual_seed(3)
    cpu_model = _Model().eval().to(dtype=dtype)  # eval: no dropout, the generators differ
    minigrad.manual_seed(3)
    gpu_model = _Model().eval().to(DEVICE, dtype=dtype)
    cpu_loss = _train_step(cpu_model, "cpu")

    tracker = Tracker(monkeypatch, device=DEVICE, array_type=ARRAY_TYPE)
    gpu_loss = _train_step(gpu_model, DEVICE)
    tracker.check()
    assert gpu_loss.device == DEVICE
    np.testing.assert_allclose(gpu_loss.item(), cpu_loss.item(), rtol=rtol)
    for (name, p), q in zip(gpu_model.named_parameters(), cpu_model.parameters()):
        assert p.device == DEVICE and type(p.data) is ARRAY_TYPE and type(p.grad.data) is ARRAY_TYPE, name
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=rtol * 10, atol=rtol, err_msg=name)


def test_model_trains_on_gpu_in_training_mode():
    minigrad.manual_seed(0)
    model = _Model(device=DEVICE)
    first = _train_step(model, DEVICE).item()
    for _ in range(20):
        with minigrad.no_grad():
            for p in model.parameters():
                p.data -= 0.1 * p.grad.data
        model.zero_grad()
        last = _train_step(model, DEVICE).item()
    assert np.isfinite(last) and last < first


def test_tensor_to_gpu_and_back():
    x = minigrad.tensor([[1.0, -2.0, 3.0]], dtype="float64", requires_grad=True)
    y = x.to(DEVICE)
    assert y.device == DEVICE and type(y.data) is ARRAY_TYPE and y.grad_fn is not None
    loss = (y * y).sum().to("cpu")
    assert loss.device == "cpu" and type(loss.data) is np.ndarray
    loss.backward()
    assert x.grad.device == "cpu" and type(x.grad.data) is np.ndarray
    np.testing.assert_allclose(x.grad.numpy(), [[2.0, -4.0, 6.0]])
    assert repr(y.detach()).endswith(f"device='{DEVICE}', dtype=float64)")


def test_mixing_cpu_and_gpu_raises():
    a = minigrad.ones(2)
    b = minigrad.ones(2, device=DEVICE)
    with pytest.raises(RuntimeError) as info:
        a + b
    assert "cpu" in str(info.value) and DEVICE in str(info.value)


def test_manual_seed_reproducible_on_gpu():
    minigrad.manual_seed(5)
    a = minigrad.randn(4, device=DEVICE).tolist()
    minigrad.manual_seed(5)
    assert minigrad.randn(4, device=DEVICE).tolist() == a


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize(
    "make",
    [
        lambda ps: minigrad.optim.Adam(ps, lr=1e-2),
        lambda ps: minigrad.optim.Adam(ps, lr=1e-2, weight_decay=0.1),
        lambda ps: minigrad.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
        lambda ps: minigrad.optim.SGD(ps, lr=1e-2, momentum=0.9, nesterov=True),
    ],
    ids=["adam", "adam_l2", "adamw", "sgd_nesterov"],
)
def test_optimizer_steps_on_gpu_match_cpu(make, dtype, rtol):
    """Three updates with the same gradients on both devices (on the GPU Adam is one fused kernel)."""
    rng = np.random.default_rng(0)
    start = [rng.standard_normal(shape) for shape in ((4, 3), (3,), (2, 5, 3))]
    grads = [[rng.standard_normal(a.shape) for a in start] for _ in range(3)]

    def run(device):
        params = [minigrad.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in start]
        opt = make(params)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = minigrad.tensor(g, dtype=dtype, device=device)
            opt.step()
        return params

    for p, q in zip(run(DEVICE), run("cpu")):
        assert type(p.data) is ARRAY_TYPE and p.dtype == q.dtype
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_adam_kernel_matches_the_array_expressions(dtype):
    backend = minigrad.backend.get_backend(DEVICE)
    rng = np.random.default_rng(1)
    host = {k: rng.standard_normal((7, 33)).astype(dtype) for k in ("p", "g", "m")}
    host["v"] = rng.random((7, 33)).astype(dtype)
    kwargs = dict(beta1=0.9, beta2=0.999, step_size=1e-3 / (1 - 0.9**3), bias_correction2_sqrt=(1 - 0.999**3) ** 0.5)
    fused = {k: cupy.asarray(a) for k, a in host.items()}
    plain = {k: cupy.asarray(a) for k, a in host.items()}
    backend.adam_update(fused["p"], fused["g"], fused["m"], fused["v"], eps=1e-8, **kwargs)
    minigrad.backend.Backend.adam_update(backend, plain["p"], plain["g"], plain["m"], plain["v"], eps=1e-8, **kwargs)
    rtol = 1e-6 if dtype == "float32" else 1e-14
    for k in ("p", "m", "v"):
        assert fused[k].dtype == dtype
        np.testing.assert_allclose(cupy.asnumpy(fused[k]), cupy.asnumpy(plain[k]), rtol=rtol, err_msg=k)
    assert not np.allclose(cupy.asnumpy(fused["p"]), host["p"])  # it did update


def test_encoder_training_steps_on_gpu_match_cpu():
    """The encoder classifier, three Adam steps in float32: the same losses on both devices."""
    from encoder.models import ModelConfig, build_model

    rng = np.random.default_rng(2)
    tokens = rng.integers(1, 20, size=(4, 9))
    tokens[:, 7:] = 0  # padding
    labels = rng.integers(0, 3, size=4)

    def losses(device):
        minigrad.manual_seed(0)
        config = ModelConfig(vocab_size=20, num_classes=3, head="sequence", d_model=16, nhead=2, num_layers=2,
                             dim_feedforward=32, dropout=0.0, max_len=9, pooling="mean", padding_idx=0)  # fmt: skip
        model = build_model(config)  # built on the CPU with the CPU generator, then moved
        model.to(device)
        opt = minigrad.optim.Adam(list(model.parameters()), lr=1e-2)
        x = minigrad.tensor(tokens, device=device)
        mask = minigrad.tensor(tokens == 0, device=device)
        y = minigrad.tensor(labels, device=device)
        out = []
        for _ in range(3):
            opt.zero_grad()
            loss = F.cross_entropy(model(x, mask), y)
            loss.backward()
            opt.step()
            out.append(loss.item())
        if device == DEVICE:
            assert all(type(p.data) is ARRAY_TYPE for p in model.parameters())
        return out

    np.testing.assert_allclose(losses(DEVICE), losses("cpu"), rtol=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 5, 32, 33, 256, 1000, 2500])
def test_row_reduction_kernels_match_numpy(dtype, n):
    """The GPU's row_sum / row_dot / row_max / col_sum kernels against NumPy, for rows
    shorter and longer than a block, with NaN and -inf in some rows."""
    backend = minigrad.backend.get_backend(DEVICE)
    rng = np.random.default_rng(n)
    a = rng.standard_normal((3, 4, n)).astype(dtype)
    b = rng.standard_normal((3, 4, n)).astype(dtype)
    a[0, 1] = -np.inf  # a fully masked row: max -inf
    a[1, 2, 0] = np.nan  # max skips a NaN unless the row is all NaN; sums propagate it
    a[2, 3] = np.nan
    ga, gb = cupy.asarray(a), cupy.asarray(b)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    with np.errstate(invalid="ignore"):
        checks = [
            (backend.row_sum(ga), a.sum(-1, keepdims=True)),
            (backend.row_dot(ga, gb), (a * b).sum(-1, keepdims=True)),
            (backend.row_max(ga), np.fmax.reduce(a, axis=-1, keepdims=True)),
            (backend.col_sum(ga.reshape(-1, n)), a.reshape(-1, n).sum(0)),
        ]
    for got, want in checks:
        assert type(got) is ARRAY_TYPE and got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=rtol, atol=rtol * n)
    tall = rng.standard_normal((2049, 37)).astype(dtype)  # many rows per column thread
    got = backend.col_sum(cupy.asarray(tall))
    np.testing.assert_allclose(cupy.asnumpy(got), tall.sum(0), rtol=rtol, atol=rtol * 100)
    # a non-contiguous input takes CuPy's own reductions, with the same results
    t = ga.swapaxes(0, 1)
    want = a.swapaxes(0, 1).sum(-1, keepdims=True)
    np.testing.assert_allclose(cupy.asnumpy(backend.row_sum(t)), want, rtol=rtol, atol=rtol * n)


def test_attention_weights_on_gpu_read_nothing_back(monkeypatch):
    """On the GPU the fused attention kernel never asks the device for a value (each ask
    waits for the GPU to finish all queued work)."""
    q = minigrad.randn(2, 3, 4, device=DEVICE, requires_grad=True)
    k = minigrad.randn(2, 5, 4, device=DEVICE, requires_grad=True)
    mask = minigrad.tensor(np.arange(5)[None, :] > np.array([[1], [0], [-1]]), device=DEVICE)
    import minigrad.ops.attention as attention_module

    asked = []

    def spy(value):  # found before the builtin by the module's global lookups
        asked.append(value)
        return bool(value)

    monkeypatch.setattr(attention_module, "bool", spy, raising=False)
    w = F.attention_weights(q, k, mask=mask)
    (w * w).sum().backward()
    monkeypatch.undo()
    assert asked == []
    w = cupy.asnumpy(w.data)
    assert np.all(w[:, 2] == 0) and np.all(w[:, 1, 2:] == 0)
    np.testing.assert_allclose(w[:, :2].sum(-1), 1.0, rtol=1e-6)


# ---- the single-kernel hooks against their plain NumPy references (tests/kernel_reference.py)
import kernel_reference  # noqa: E402

KERNEL_ROWS = [1, 5, 32, 33, 64, 256, 1000, 2500]


def _tol(dtype, n):
    return (1e-5, 1e-6 * max(n, 10)) if dtype == "float32" else (1e-12, 1e-13 * max(n, 10))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", KERNEL_ROWS)
@pytest.mark.parametrize("mask", [None, "bool", "float"])
def test_softmax_kernels_match_the_reference(dtype, n, mask):
    backend = minigrad.backend.get_backend(DEVICE)
    rng = np.random.default_rng(n)
    w = (3 * rng.standard_normal((3, 4, n))).astype(dtype)
    w[0, 1] = -np.inf  # a row whose every score is masked becomes 0
    w[1, 2, 0] = np.nan  # a NaN spreads over its row, as on the CPU
    kwargs = {}
    if mask == "bool":
        kwargs["bool_mask"] = rng.random((3, 1, n)) < 0.3  # broadcast over the rows
        kwargs["bool_mask"][2, 0, :] = True  # every key of batch 2 masked
    elif mask == "float":
        kwargs["float_mask"] = rng.standard_normal((1, 4, n)).astype(dtype)
    want = w.copy()
    kernel_reference.softmax_rows(want, 0.7, **kwargs)
    got = cupy.asarray(w)
    assert backend.softmax_rows(got, 0.7, **{k: cupy.asarray(v) for k, v in kwargs.items()}) is True
    rtol, atol = _tol(dtype, n)
    np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=rtol, atol=atol)
    assert np.all(cupy.asnumpy(got)[0, 1] == 0)

    g = rng.standard_normal((3, 4, n)).astype(dtype)
    p = np.nan_to_num(want)
    for g_device in (cupy.asarray(g), cupy.asarray(np.ascontiguousarray(g.swapaxes(0, 1))).swapaxes(0, 1)):
        got = backend.softmax_backward(g_device, cupy.asarray(p), 0.7)
        assert type(got) is ARRAY_TYPE and got.dtype == dtype and got.flags.c_contiguous
        want = kernel_reference.softmax_backward(g, p, 0.7)
        np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", KERNEL_ROWS)
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
def test_layer_norm_kernels_match_the_reference(dtype, n, affine):
    backend = minigrad.backend.get_backend(DEVICE)
    rng = np.random.default_rng(n + 7)
    x = (2 + 3 * rng.standard_normal((37, n))).astype(dtype)
    weight = rng.standard_normal(n).astype(dtype) if affine in ("both", "weight") else None
    bias = rng.standard_normal(n).astype(dtype) if affine in ("both", "bias") else None
    dev = lambda a: None if a is None else cupy.asarray(a)  # noqa: E731
    rtol, atol = _tol(dtype, n)
    got = backend.layer_norm_forward(cupy.asarray(x), dev(weight), dev(bias), 1e-5)
    want = kernel_reference.layer_norm_forward(x, weight, bias, 1e-5)
    for a, b in zip(got, want):
        assert type(a) is ARRAY_TYPE and a.dtype == dtype and a.shape == b.shape
        np.testing.assert_allclose(cupy.asnumpy(a), b, rtol=rtol, atol=atol)
    mean, rstd = want[1].astype(dtype), want[2].astype(dtype)
    g = rng.standard_normal((37, n)).astype(dtype)
    for wants in [(True, True, True), (True, False, False), (False, True, False), (False, False, True)]:
        got = backend.layer_norm_backward(
            cupy.asarray(g), cupy.asarray(x), cupy.asarray(mean), cupy.asarray(rstd), dev(weight), *wants
        )
        want = kernel_reference.layer_norm_backward(g, x, mean, rstd, weight, *wants)
        assert len(got) == 3
        for a, b in zip(got, want):
            assert (a is None) == (b is None)
            if a is not None:  # dweight and dbias are sums over the 37 rows
                np.testing.assert_allclose(cupy.asnumpy(a), b, rtol=rtol, atol=atol * 40)


def test_kernel_hooks_decline_what_they_do_not_cover():
    """Half precision and mismatched arrays go back to the ops' array code."""
    backend = minigrad.backend.get_backend(DEVICE)
    half = cupy.ones((4, 8), dtype="float16")
    assert backend.softmax_rows(half) is False
    assert backend.softmax_backward(half, half) is None
    assert backend.layer_norm_forward(half, None, None, 1e-5) is None
    x = cupy.ones((4, 8), dtype="float32")
    assert backend.layer_norm_forward(x, cupy.ones(7, dtype="float32"), None, 1e-5) is None
    assert backend.layer_norm_forward(x, cupy.ones(8, dtype="float64"), None, 1e-5) is None
    assert backend.softmax_backward(cupy.ones((4, 7), dtype="float32"), x) is None


# ---- a Linear layer's products as direct cuBLAS calls (CupyBackend.matmul2d)
def _layout(x, order):
    return cupy.asarray(x) if order == "C" else cupy.asarray(np.ascontiguousarray(x.T)).T  # F: a transposed view


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 7), (64, 1, 9), (1, 300, 2), (257, 129, 65)])
def test_direct_cublas_products_match_cupy_for_every_layout(dtype, shape):
    backend = minigrad.backend.get_backend(DEVICE)
    assert backend.direct_cublas, "cuBLAS could not be called directly: every product takes CuPy's matmul"
    m, k, n = shape
    rng = np.random.default_rng(m * 1000 + n)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for order_a in "CF":
        for order_b in "CF":
            ga, gb = _layout(a, order_a), _layout(b, order_b)
            got = backend.matmul2d(ga, gb)
            assert type(got) is ARRAY_TYPE and got.dtype == dtype and got.shape == (m, n) and got.flags.c_contiguous
            np.testing.assert_allclose(cupy.asnumpy(got), a @ b, rtol=rtol, atol=rtol * k, err_msg=order_a + order_b)


def test_direct_cublas_falls_back_to_cupy_where_it_does_not_apply(monkeypatch):
    backend = minigrad.backend.get_backend(DEVICE)
    rng = np.random.default_rng(5)
    a = cupy.asarray(rng.standard_normal((6, 8)).astype("float32"))
    b = cupy.asarray(rng.standard_normal((4, 5)).astype("float32"))
    for x, y in [
        (a[:, ::2], b),  # strided: neither C- nor F-contiguous
        (a[:, :4], b.astype("float64")),  # mixed dtypes
        (cupy.arange(12).reshape(3, 4), cupy.arange(8).reshape(4, 2)),  # integers
    ]:
        np.testing.assert_allclose(cupy.asnumpy(backend.matmul2d(x, y)), cupy.asnumpy(x @ y), rtol=1e-6)
    monkeypatch.setenv("MINIGRAD_CUBLAS", "0")
    assert minigrad.backend.CupyBackend().direct_cublas is False
