"""minigrad.nn: registration order, traversal, modes, dtype, state dicts, printing, layers, init."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minigrad
from encoder import MaskedLanguageModel, ModelConfig, TransformerEncoder, TransformerEncoderLayer
from minigrad import nn
from minigrad.nn import init

pytestmark = pytest.mark.usefixtures("accel_mode")  # the reference path and the acceleration


class Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w2 = nn.Parameter(minigrad.zeros(2))
        self.a1 = nn.Parameter(minigrad.zeros(3))

    def forward(self, x):
        return x


class Outer(nn.Module):
    """Attributes assigned in a deliberately non-alphabetical order."""

    def __init__(self) -> None:
        super().__init__()
        self.zeta = nn.Linear(2, 3)
        self.scale = nn.Parameter(minigrad.ones(1))
        self.beta = Inner()
        self.alpha = nn.Linear(3, 1, bias=False)
        self.not_a_param = minigrad.zeros(4)  # a plain tensor attribute is not registered
        self.register_buffer("running", minigrad.zeros(2))
        self.register_buffer("scratch", minigrad.zeros(2), persistent=False)

    def forward(self, x):
        return self.alpha(self.zeta(x))


LAYER_KEYS = [
    "self_attn.q_proj.weight",
    "self_attn.q_proj.bias",
    "self_attn.k_proj.weight",
    "self_attn.k_proj.bias",
    "self_attn.v_proj.weight",
    "self_attn.v_proj.bias",
    "self_attn.out_proj.weight",
    "self_attn.out_proj.bias",
    "ff.linear1.weight",
    "ff.linear1.bias",
    "ff.linear2.weight",
    "ff.linear2.bias",
    "norm1.weight",
    "norm1.bias",
    "norm2.weight",
    "norm2.bias",
]


# ---------------------------------------------------------------------------------------
# registration and traversal
# ---------------------------------------------------------------------------------------
def test_registration_follows_definition_order():
    m = Outer()
    assert [n for n, _ in m.named_children()] == ["zeta", "beta", "alpha"]
    assert [n for n, _ in m.named_modules()] == ["", "zeta", "beta", "alpha"]
    # a module's own parameters first, then its children's, each in assignment order (as PyTorch)
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "zeta.weight", "zeta.bias", "beta.w2", "beta.a1", "alpha.weight"]
    assert [p for p in m.parameters()] == [p for _, p in m.named_parameters()]
    assert [n for n, _ in m.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in m.named_buffers()] == ["running", "scratch"]
    assert list(m.state_dict()) == names[:1] + ["running"] + names[1:]
    assert m.beta.a1 is m._modules["beta"]._parameters["a1"]
    assert "not_a_param" not in m._parameters and "not_a_param" not in m._buffers


def test_reassignment_and_deletion_update_registration():
    m = Outer()
    m.zeta = nn.Linear(2, 3, bias=False)  # replacing keeps the slot
    assert [n for n, _ in m.named_parameters()][:2] == ["scale", "zeta.weight"]
    del m.beta
    assert "beta.w2" not in dict(m.named_parameters())
    m.scale = None  # a plain value replaces the parameter
    # a tensor assigned to a buffer's name replaces the buffer (still a buffer, still persistent)
    m.running = minigrad.ones(3)
    assert [n for n, _ in m.named_buffers()] == ["running", "scratch"]
    np.testing.assert_array_equal(m.state_dict()["running"].detach().numpy(), [1.0, 1.0, 1.0])
    m.register_buffer("running", minigrad.zeros(1), persistent=False)
    assert "running" not in m.state_dict()
    assert "scale" not in dict(m.named_parameters())
    with pytest.raises(AttributeError, match="beta"):
        _ = m.beta


def test_setattr_before_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self) -> None:
            self.w = nn.Parameter(minigrad.zeros(1))

    with pytest.raises(RuntimeError, match="super\\(\\).__init__"):
        Bad()


def test_encoder_stack_dotted_paths():
    enc = TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 2)
    expected = [f"layers.{i}.{k}" for i in range(2) for k in LAYER_KEYS]
    assert [n for n, _ in enc.named_parameters()] == expected
    assert list(enc.state_dict()) == expected
    modules = dict(enc.named_modules())
    assert isinstance(modules["layers.1.self_attn"], nn.Module)
    assert isinstance(modules["layers.0.self_attn.q_proj"], nn.Linear)


def test_shared_parameter_listed_once():
    cfg = ModelConfig(vocab_size=11, num_classes=11, head="mlm", d_model=8, nhead=2, num_layers=1, tie_weights=True)
    model = MaskedLanguageModel(cfg)
    shared = model.embed.embedding.weight
    assert model.head.weight is shared
    named = list(model.named_parameters())
    assert sum(p is shared for _, p in named) == 1
    assert len({id(p) for _, p in named}) == len(named)
    untied = MaskedLanguageModel(ModelConfig(**{**cfg.to_dict(), "tie_weights": False}))
    assert len(named) == len(list(untied.named_parameters())) - 1
    assert model.num_parameters() == untied.num_parameters() - 11 * 8
    # tying reassigns head.weight: it keeps its slot (before head.bias), as in PyTorch
    assert list(model.state_dict())[-2:] == ["head.weight", "head.bias"]
    assert "head.weight" in model.state_dict() and "embed.embedding.weight" in model.state_dict()


# ---------------------------------------------------------------------------------------
# modes, dropout, gradients
# ---------------------------------------------------------------------------------------
def test_train_eval_propagate_to_every_submodule():
    enc = TransformerEncoder(TransformerEncoderLayer(8, 2, 16, dropout=0.5), 2)
    assert enc.training and all(m.training for m in enc.modules())
    assert enc.eval() is enc
    assert not any(m.training for m in enc.modules())
    enc.train()
    assert all(m.training for m in enc.modules())
    enc.train(False)
    assert not any(m.training for m in enc.modules())
    # the dropouts inside the stack follow the mode
    x = minigrad.randn(2, 4, 8)
    np.testing.assert_array_equal(enc(x).detach().numpy(), enc(x).detach().numpy())
    enc.train()
    minigrad.manual_seed(3)
    y1 = enc(x).detach().numpy()
    y2 = enc(x).detach().numpy()
    minigrad.manual_seed(3)
    np.testing.assert_array_equal(enc(x).detach().numpy(), y1)
    assert not np.array_equal(y1, y2)


def test_dropout_identity_in_eval_and_scaled_in_train():
    p = 0.25
    drop = nn.Dropout(p)
    x = minigrad.randn(200, 50, dtype="float64")
    drop.eval()
    assert drop(x) is x or np.array_equal(drop(x).detach().numpy(), x.detach().numpy())
    drop.train()
    minigrad.manual_seed(7)
    y1 = drop(x).detach().numpy()
    minigrad.manual_seed(7)
    y2 = drop(x).detach().numpy()
    np.testing.assert_array_equal(y1, y2)  # reproducible
    kept = y1 != 0
    np.testing.assert_allclose(y1[kept], x.detach().numpy()[kept] / (1 - p), rtol=1e-15)
    assert abs((~kept).mean() - p) < 0.02
    minigrad.manual_seed(8)
    assert not np.array_equal(drop(x).detach().numpy(), y1)
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)


def test_dropout_gradient_uses_the_same_mask():
    drop = nn.Dropout(0.5)
    x = minigrad.randn(64, dtype="float64", requires_grad=True)
    y = drop(x)
    y.sum().backward()
    scale = y.detach().numpy() / x.detach().numpy()
    np.testing.assert_allclose(x.grad.detach().numpy(), scale, rtol=1e-12)
    assert set(np.round(scale, 12)) <= {0.0, 2.0}


def test_zero_grad():
    lin = nn.Linear(3, 2)
    lin(minigrad.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in lin.parameters())
    lin.zero_grad(set_to_none=False)
    for p in lin.parameters():
        assert p.grad is not None and p.grad.shape == p.shape and not p.grad.detach().numpy().any()
    lin.zero_grad()
    assert all(p.grad is None for p in lin.parameters())
    # after zero_grad gradients start again from zero, not accumulate
    lin(minigrad.ones(1, 3)).sum().backward()
    np.testing.assert_allclose(lin.bias.grad.detach().numpy(), [1.0, 1.0])


# ---------------------------------------------------------------------------------------
# dtype conversion
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["to", "double"])
def test_to_float64_converts_in_place(how):
    m = Outer()
    params = list(m.parameters())
    buffers = [b for _, b in m.named_buffers()]
    values = [p.detach().numpy().copy() for p in params]
    m.zeta(minigrad.randn(1, 2)).sum().backward()
    out = m.to(dtype="float64") if how == "to" else m.double()
    assert out is m
    assert list(m.parameters()) == params and all(a is b for a, b in zip(m.parameters(), params))
    assert all(p.dtype == minigrad.float64 for p in m.parameters())
    assert all(b.dtype == minigrad.float64 for _, b in m.named_buffers())
    assert all(a is b for a, b in zip([b for _, b in m.named_buffers()], buffers))
    assert m.zeta.weight.grad.dtype == minigrad.float64
    for p, v in zip(params, values):
        np.testing.assert_array_equal(p.detach().numpy(), v.astype(np.float64))
    m.float()
    assert all(p.dtype == minigrad.float32 for p in m.parameters())


def test_to_leaves_integer_buffers_alone():
    m = nn.Module()
    m.register_buffer("ids", minigrad.tensor([1, 2, 3]))
    m.double()
    assert m.ids.dtype == minigrad.int64


# ---------------------------------------------------------------------------------------
# state dicts
# ---------------------------------------------------------------------------------------
def test_state_dict_round_trip():
    minigrad.manual_seed(1)
    a = TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 2)
    minigrad.manual_seed(2)
    b = TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 2)
    before = [p for p in b.parameters()]
    assert not np.array_equal(
        a.layers[0].self_attn.q_proj.weight.detach().numpy(), b.layers[0].self_attn.q_proj.weight.detach().numpy()
    )
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert all(x is y for x, y in zip(b.parameters(), before))  # same Parameter objects, values replaced
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va.detach().numpy(), vb.detach().numpy())
    x = minigrad.randn(2, 3, 8)
    np.testing.assert_array_equal(a.eval()(x).detach().numpy(), b.eval()(x).detach().numpy())
    # loading copies: changing the source afterwards does not change the target
    a.layers[0].norm1.weight.data[...] = 5.0
    assert not np.any(b.layers[0].norm1.weight.detach().numpy() == 5.0)


def test_load_state_dict_accepts_numpy_and_keeps_dtype():
    lin = nn.Linear(3, 2).double()
    lin.load_state_dict({"weight": np.arange(6, dtype=np.float32).reshape(2, 3), "bias": np.array([1.0, 2.0])})
    assert lin.weight.dtype == minigrad.float64
    np.testing.assert_array_equal(lin.weight.detach().numpy(), np.arange(6).reshape(2, 3))


def test_strict_load_reports_problems_by_name():
    m = Outer()
    state = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
    original = m.zeta.weight.detach().numpy().copy()
    del state["beta.a1"]
    state["gamma.weight"] = np.zeros(2)
    state["zeta.weight"] = np.ones((4, 2))
    with pytest.raises(RuntimeError) as err:
        m.load_state_dict(state)
    msg = str(err.value)
    assert "beta.a1" in msg and "missing" in msg
    assert "gamma.weight" in msg and "unexpected" in msg
    assert "zeta.weight" in msg and "(4, 2)" in msg and "(3, 2)" in msg
    np.testing.assert_array_equal(m.zeta.weight.detach().numpy(), original)  # nothing half-loaded


def test_wrong_shape_message_names_key_and_both_shapes():
    lin = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match=r"bias: checkpoint shape \(5,\) != model shape \(2,\)"):
        lin.load_state_dict({"weight": lin.weight, "bias": np.zeros(5)})
    # a shape mismatch is an error even when not strict
    with pytest.raises(RuntimeError, match="bias"):
        lin.load_state_dict({"bias": np.zeros(5)}, strict=False)


def test_non_strict_load_returns_missing_and_unexpected():
    lin = nn.Linear(3, 2)
    result = lin.load_state_dict({"bias": np.array([7.0, 8.0]), "extra": np.zeros(1)}, strict=False)
    assert isinstance(result, nn.IncompatibleKeys)
    assert result.missing_keys == ["weight"]
    assert result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(lin.bias.detach().numpy(), [7.0, 8.0])


def test_non_persistent_buffer_not_in_state_dict():
    m = Outer()
    assert "running" in m.state_dict() and "scratch" not in m.state_dict()


# ---------------------------------------------------------------------------------------
# printing and counting
# ---------------------------------------------------------------------------------------
def test_repr_tree_looks_like_pytorch():
    text = repr(TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 2))
    assert text.startswith("TransformerEncoder(\n  (layers): ModuleList(\n    (0): TransformerEncoderLayer(")
    assert "(self_attn): MultiHeadAttention(" in text
    assert "(q_proj): Linear(in_features=8, out_features=8, bias=True)" in text
    assert "(linear1): Linear(in_features=8, out_features=16, bias=True)" in text
    assert "(norm1): LayerNorm((8,), eps=1e-05)" in text
    assert text.endswith("\n)")
    lines = text.splitlines()
    assert "      (self_attn): MultiHeadAttention(" in lines  # nested children indented two spaces per level
    # as in PyTorch, a module with children prints its extra_repr on its own line
    layer = repr(TransformerEncoderLayer(8, 2, 16)).splitlines()
    assert layer[0] == "TransformerEncoderLayer("
    assert layer[1] == "  d_model=8, nhead=2, norm_first=False"
    assert repr(nn.Dropout(0.1)) == "Dropout(p=0.1)"
    assert repr(nn.Sequential(nn.ReLU(), nn.Tanh())) == "Sequential(\n  (0): ReLU()\n  (1): Tanh()\n)"


def test_num_parameters_hand_count():
    layer = TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16)
    expected = 4 * (8 * 8 + 8) + (8 * 16 + 16) + (16 * 8 + 8) + 2 * 2 * 8
    assert layer.num_parameters() == expected == 600
    assert layer.num_parameters() == sum(p.numel() for p in layer.parameters())


# ---------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5,), (4, 5), (2, 3, 5), (2, 2, 3, 5)])
def test_linear_any_leading_shape(shape):
    minigrad.manual_seed(0)
    lin = nn.Linear(5, 3).double()
    x = minigrad.randn(*shape, dtype="float64")
    y = lin(x)
    assert y.shape == shape[:-1] + (3,)
    expected = x.detach().numpy() @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=0, atol=1e-13)
    no_bias = nn.Linear(5, 3, bias=False).double()
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
    np.testing.assert_allclose(
        no_bias(x).detach().numpy(), x.detach().numpy() @ no_bias.weight.detach().numpy().T, atol=1e-13
    )


def test_linear_gradients_and_shape_error():
    lin = nn.Linear(4, 3).double()
    x = minigrad.randn(2, 5, 4, dtype="float64", requires_grad=True)
    assert minigrad.gradcheck(lambda x, w, b: lin(x), [x, lin.weight, lin.bias])
    with pytest.raises(ValueError, match="last dim 4"):
        lin(minigrad.randn(2, 3))


def test_linear_default_init_bounds():
    minigrad.manual_seed(0)
    lin = nn.Linear(100, 50)
    bound = 1 / math.sqrt(100)
    for p in (lin.weight, lin.bias):
        a = p.detach().numpy()
        assert a.min() >= -bound and a.max() <= bound and a.max() - a.min() > 1.5 * bound


def test_embedding_lookup_and_padding_gradient():
    emb = nn.Embedding(6, 3, padding_idx=2).double()
    np.testing.assert_array_equal(emb.weight.detach().numpy()[2], 0.0)
    idx = minigrad.tensor([[2, 1, 2], [5, 1, 0]])
    out = emb(idx)
    np.testing.assert_array_equal(out.detach().numpy(), emb.weight.detach().numpy()[idx.detach().numpy()])
    upstream = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(minigrad.tensor(upstream))
    g = emb.weight.grad.detach().numpy()
    np.testing.assert_array_equal(g[2], 0.0)  # padding row: no gradient although it was used twice
    np.testing.assert_allclose(g[1], upstream[0, 1] + upstream[1, 1], rtol=1e-14)  # repeated index accumulates
    np.testing.assert_allclose(g[5], upstream[1, 0])
    np.testing.assert_array_equal(g[[3, 4]], 0.0)
    with pytest.raises(IndexError):
        emb(minigrad.tensor([6]))


def test_sequential_and_modulelist():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[1] is b and seq[-1] is c
    assert list(seq) == [a, b, c]
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = minigrad.randn(4, 2)
    np.testing.assert_array_equal(seq(x).detach().numpy(), c(b(a(x))).detach().numpy())

    ml = nn.ModuleList([a, c])
    assert ml.append(b) is ml
    assert len(ml) == 3 and ml[0] is a and ml[1] is c and ml[2] is b and ml[-1] is b
    assert list(ml) == [a, c, b]
    assert [n for n, _ in ml.named_children()] == ["0", "1", "2"]
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_layernorm_normalizes_last_axis():
    ln = nn.LayerNorm(6).double()
    x = minigrad.randn(3, 6, dtype="float64") * 4 + 2
    y = ln(x).detach().numpy()
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-12)
    v = x.detach().numpy().var(-1)
    np.testing.assert_allclose(y.var(-1), v / (v + 1e-5), rtol=1e-12)


# ---------------------------------------------------------------------------------------
# initializers
# ---------------------------------------------------------------------------------------
def _fresh(*shape):
    return nn.Parameter(minigrad.zeros(*shape, dtype="float64"))


def test_xavier_uniform_bounds():
    t = init.xavier_uniform_(_fresh(300, 200), gain=2.0)
    bound = 2.0 * math.sqrt(6 / 500)
    a = t.detach().numpy()
    assert a.min() >= -bound and a.max() <= bound
    assert a.max() > 0.99 * bound and a.min() < -0.99 * bound
    assert abs(a.std() - bound / math.sqrt(3)) < 0.01 * bound


def test_normal_statistics():
    minigrad.manual_seed(0)
    a = init.normal_(_fresh(400, 500), mean=3.0, std=0.5).detach().numpy()
    assert abs(a.mean() - 3.0) < 0.005
    assert abs(a.std() - 0.5) < 0.005


def test_constant_initializers():
    t = init.normal_(_fresh(3, 4))
    assert init.zeros_(t) is t and not t.detach().numpy().any()
    np.testing.assert_array_equal(init.ones_(t).detach().numpy(), 1.0)
    np.testing.assert_array_equal(init.constant_(t, 2.5).detach().numpy(), 2.5)
    assert t.dtype == minigrad.float64


def test_kaiming_and_xavier_normal_scales():
    minigrad.manual_seed(0)
    fan_in = 400
    a = init.kaiming_uniform_(_fresh(300, fan_in)).detach().numpy()
    bound = math.sqrt(6 / fan_in)
    assert a.min() >= -bound and a.max() <= bound and a.max() > 0.99 * bound
    b = init.kaiming_normal_(_fresh(300, fan_in)).detach().numpy()
    assert abs(b.std() - math.sqrt(2 / fan_in)) < 0.01 * math.sqrt(2 / fan_in)
    c = init.xavier_normal_(_fresh(300, fan_in)).detach().numpy()
    assert abs(c.std() - math.sqrt(2 / 700)) < 0.01 * math.sqrt(2 / 700)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(_fresh(5))


@pytest.mark.parametrize(
    "fill", [init.xavier_uniform_, init.normal_, init.kaiming_uniform_, init.kaiming_normal_, init.uniform_]
)
def test_initializers_follow_manual_seed(fill):
    minigrad.manual_seed(123)
    a = fill(_fresh(8, 6)).detach().numpy().copy()
    minigrad.manual_seed(123)
    b = fill(_fresh(8, 6)).detach().numpy().copy()
    minigrad.manual_seed(124)
    c = fill(_fresh(8, 6)).detach().numpy().copy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_whole_model_init_follows_manual_seed():
    def build():
        return TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 2)

    minigrad.manual_seed(5)
    a = build().state_dict()
    minigrad.manual_seed(5)
    b = build().state_dict()
    minigrad.manual_seed(6)
    c = build().state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k].detach().numpy(), b[k].detach().numpy())
    assert not np.array_equal(
        a["layers.1.ff.linear1.weight"].detach().numpy(), c["layers.1.ff.linear1.weight"].detach().numpy()
    )


def test_op_results_of_parameters_are_plain_tensors():
    """An op on a Parameter gives a Tensor (PyTorch's rule): a module that keeps such a result
    as an attribute (attention weights) does not grow a parameter."""
    layer = nn.Linear(3, 2)
    y = layer(minigrad.ones(1, 3))
    assert type(y) is minigrad.Tensor and type(layer.weight * 2) is minigrad.Tensor
    layer.kept = y
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    y.sum().backward()
    assert type(layer.weight.grad) is minigrad.Tensor


# ---------------------------------------------------------------------------------------
# one-line errors of the Python API: the argument, the value and what is allowed
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: nn.Linear(-1, 3), ["Linear", "in_features", "positive integer", "-1"]),
        (lambda: nn.Linear(0, 3), ["Linear", "in_features", "0"]),
        (lambda: nn.Linear(3, 0), ["Linear", "out_features", "0"]),
        (lambda: nn.Linear(2.5, 3), ["Linear", "in_features", "2.5"]),
        (lambda: nn.LayerNorm(0), ["LayerNorm", "normalized_shape", "0"]),
        (lambda: nn.LayerNorm((4, 0)), ["LayerNorm", "normalized_shape", "0"]),
        (lambda: nn.LayerNorm(4, eps=0), ["LayerNorm", "eps", "> 0"]),
        (lambda: nn.Embedding(0, 4), ["Embedding", "num_embeddings", "0"]),
        (lambda: nn.Embedding(5, 4, padding_idx=5), ["Embedding", "padding_idx", "5"]),
    ],
)
def test_bad_layer_sizes_are_one_line_errors(build, words):
    with pytest.raises(ValueError) as info:
        build()
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_attention_and_model_arguments_are_checked():
    from encoder.attention import MultiHeadAttention
    from encoder.models import ModelConfig

    for kwargs, words in (
        (dict(d_model=16, nhead=0), ["MultiHeadAttention", "nhead", "0"]),
        (dict(d_model=0, nhead=2), ["MultiHeadAttention", "d_model", "0"]),
        (dict(d_model=16, nhead=3), ["MultiHeadAttention", "divisible"]),
        (dict(d_model=16, nhead=2, dropout=1.0), ["MultiHeadAttention", "dropout", "[0, 1)"]),
    ):
        with pytest.raises(ValueError) as info:
            MultiHeadAttention(**kwargs)
        assert all(w in str(info.value) for w in words), info.value
    for kwargs, words in (
        (dict(num_layers=0), ["num_layers", "0"]),
        (dict(vocab_size=0), ["vocab_size", "0"]),
        (dict(dropout=-0.1), ["dropout", "-0.1"]),
        (dict(activation="tanh"), ["activation", "'tanh'"]),
    ):
        with pytest.raises(ValueError) as info:
            ModelConfig(**{"vocab_size": 10, "num_classes": 3, **kwargs})
        assert "ModelConfig" in str(info.value) and all(w in str(info.value) for w in words), info.value


def test_model_inputs_are_checked_with_one_line_errors():
    from encoder.models import ModelConfig, build_model

    minigrad.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=10, num_classes=3, d_model=8, nhead=2, num_layers=1))
    cases = [
        ([[1, 2, 3]], TypeError, ["tokens", "list", "minigrad.tensor"]),
        (minigrad.zeros(1, 0, dtype="int64"), ValueError, ["(1, 0)", "at least one"]),
        (minigrad.zeros(0, 3, dtype="int64"), ValueError, ["(0, 3)"]),
        (minigrad.tensor([[1.0, 2.0]]), TypeError, ["integer ids", "float32"]),
        (minigrad.tensor([[1, 2, 10]]), ValueError, ["[0, 10)", "10"]),
        (minigrad.tensor([1, 2, 3]), ValueError, ["(batch, seq)", "(3,)"]),
    ]
    for tokens, error, words in cases:
        with pytest.raises(error) as info:
            model(tokens)
        assert "TokenClassifier" in str(info.value) and all(w in str(info.value) for w in words), info.value
    ids = minigrad.tensor([[1, 2, 3]])
    with pytest.raises(ValueError, match=r"padding_mask has shape \(1, 2\)"):
        model(ids, minigrad.tensor([[False, True]]))
    with pytest.raises(TypeError, match="padding_mask must be a bool Tensor"):
        model(ids, [[False, False, True]])
    assert model(ids).shape == (1, 3, 3)


def test_requires_grad_on_an_integer_tensor_is_refused():
    x = minigrad.tensor([1, 2, 3])
    with pytest.raises(TypeError, match="only floating tensors can require grad, got dtype int64"):
        x.requires_grad = True
    assert x.requires_grad is False
    with pytest.raises(TypeError, match="int64"):
        x.requires_grad_()
    x.requires_grad = False  # always allowed on a leaf
    y = minigrad.tensor([1.0, 2.0])
    y.requires_grad = True
    (y * y).sum().backward()
    assert y.grad.dtype.kind == "f" and y.grad.tolist() == [2.0, 4.0]
    with pytest.raises(RuntimeError, match="non-leaf"):
        (y * 2).requires_grad = False
