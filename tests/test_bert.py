"""BERT checkpoints: parity with Hugging Face's BertModel / BertForMaskedLM, the round trip, errors.

The reference files (tiny random checkpoints, their outputs and every parameter's gradient
in float64) come from tests/reference/make_bert_reference.py (torch + transformers); these
tests need neither.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from marked_backend import MarkedArray

import minigrad
from encoder.bert import BertConfig, BertForMaskedLM, BertModel
from encoder.bert_config import BertConfigError
from encoder.interop import BertCheckpointError, hf_names, load_hf_bert, load_tokenizer, save_hf_bert
from encoder.interop.hf_tokenizer import TokenizerError
from encoder.layers import TransformerEncoderLayer

REF = Path(__file__).parent / "reference"
R = np.load(REF / "bert_reference.npz")
MODELS = ["base_gelu", "mlm_gelu_new"]
# softmax(s + c) = softmax(s) for a constant c: the key bias adds q . b_k to a whole row of
# scores, so its gradient is exactly 0 (both libraries give rounding noise, ~1e-16)
ZERO_GRAD = ".attention.self.key.bias"


def rel(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - b).max() / np.abs(b).max())


def run_reference_case(name: str, dtype: str, device: str | None = None):
    """Our outputs, attention weights and parameter gradients (by Hugging Face name) for a case."""
    model = load_hf_bert(REF / f"bert_{name}", dtype=dtype, device=device)
    for layer in model.layers:
        layer.self_attn.keep_attention = True
    out = model.outputs(R[f"{name}/input_ids"], R[f"{name}/token_type_ids"], R[f"{name}/attention_mask"])
    got = {"hidden": out.last_hidden_state}
    if out.logits is not None:
        got["logits"] = out.logits
    if out.pooler_output is not None:
        got["pooled"] = out.pooler_output
    loss = None
    for key, value in got.items():
        if f"{name}/upstream_{key}" in R:
            term = (value * minigrad.tensor(R[f"{name}/upstream_{key}"], dtype=dtype, device=device)).sum()
            loss = term if loss is None else loss + term
    loss.backward()
    names = hf_names(model)
    grads = {names[k]: p.grad for k, p in model.named_parameters()}
    attention = [layer.self_attn.last_attention for layer in model.layers]
    return got, attention, grads


def check_parity(name: str, dtype: str, tol: float, device: str | None = None) -> None:
    got, attention, grads = run_reference_case(name, dtype, device)
    for key, value in got.items():
        assert value.dtype == np.dtype(dtype)
        assert rel(value.detach().numpy(), R[f"{name}/{key}"]) < tol, key
    for i, a in enumerate(attention):
        assert rel(a.detach().numpy(), R[f"{name}/attention/{i}"]) < tol, f"attention {i}"
    expected = {k.split("/grad/", 1)[1] for k in R if k.startswith(f"{name}/grad/")}
    assert set(grads) == expected  # every parameter of the Hugging Face model, none more
    for key, g in grads.items():
        ref = R[f"{name}/grad/{key}"]
        if key.endswith(ZERO_GRAD):
            assert np.abs(g.numpy()).max() < 1e-12 * (1e9 if dtype == "float32" else 1) and np.abs(ref).max() < 1e-12
        else:
            assert rel(g.numpy(), ref) < tol, key


@pytest.mark.parametrize("name", MODELS)
def test_parity_float64(name, accel_mode):
    """Hidden states, pooled output / MLM logits, attention weights, every gradient: 1e-10 relative."""
    check_parity(name, "float64", 1e-10)


@pytest.mark.parametrize("name", MODELS)
def test_parity_float32(name, accel_mode):
    check_parity(name, "float32", 1e-5)


def test_parity_on_another_device(marked):
    """The same numbers on the marked backend, every array made there (a stand-in for the GPU)."""
    check_parity("mlm_gelu_new", "float64", 1e-10, device="marked")
    got, attention, grads = run_reference_case("base_gelu", "float64", device="marked")
    assert all(type(t.data) is MarkedArray for t in [*got.values(), *attention, *grads.values()])


def test_padding_is_ignored(accel_mode):
    """Changing a padded token (mask 0) changes no kept position's hidden state."""
    model = load_hf_bert(REF / "bert_base_gelu", dtype="float64")
    ids, types, mask = (R[f"base_gelu/{k}"].copy() for k in ("input_ids", "token_type_ids", "attention_mask"))
    before = model(ids, types, mask).detach().numpy()
    ids[1, -1] = 7
    after = model(ids, types, mask).detach().numpy()
    np.testing.assert_array_equal(before[1, :5], after[1, :5])
    assert not np.array_equal(before[1, 5:], after[1, 5:])


def test_4d_additive_mask(accel_mode):
    model = load_hf_bert(REF / "bert_base_gelu", dtype="float64")
    ids, types, mask = (R[f"base_gelu/{k}"] for k in ("input_ids", "token_type_ids", "attention_mask"))
    hidden = model(ids, types, R["base_gelu/mask4d"]).detach().numpy()
    assert rel(hidden, R["base_gelu/mask4d_hidden"]) < 1e-10
    # the 2-D padding mask written as Hugging Face's additive (batch, 1, 1, seq) mask: the same numbers
    additive = np.where(mask == 0, np.finfo(np.float64).min, 0.0)[:, None, None, :]
    np.testing.assert_allclose(model(ids, types, additive).detach().numpy(), model(ids, types, mask).detach().numpy(),
                               rtol=0, atol=1e-14)  # fmt: skip


def test_a_4d_float_mask_gets_its_gradient():
    """A 4-D additive mask that requires grad is differentiated through (central difference check)."""
    model = load_hf_bert(REF / "bert_base_gelu", dtype="float64")
    ids = R["base_gelu/input_ids"][:1]
    upstream = minigrad.tensor(R["base_gelu/upstream_hidden"][:1])
    start = np.random.default_rng(0).standard_normal((1, 1, 7, 7))
    mask = minigrad.tensor(start, requires_grad=True)
    (model(ids, attention_mask=mask) * upstream).sum().backward()
    direction = np.random.default_rng(1).standard_normal(start.shape)

    def f(m):
        return float((model(ids, attention_mask=m) * upstream).sum().item())

    eps = 1e-6
    numeric = (f(start + eps * direction) - f(start - eps * direction)) / (2 * eps)
    assert abs(float((mask.grad.numpy() * direction).sum()) - numeric) < 1e-7 * max(1.0, abs(numeric))


def test_round_trip_bit_for_bit(tmp_path):
    """save_hf_bert writes Hugging Face's names and bits; what transformers saved back from it
    (tests/reference/bert_roundtrip_mlm) loads to the same bits."""
    from safetensors.numpy import load_file

    for name in MODELS:
        original = load_file(str(REF / f"bert_{name}" / "model.safetensors"))
        save_hf_bert(load_hf_bert(REF / f"bert_{name}", dtype="float64"), tmp_path / name)
        written = load_file(str(tmp_path / name / "model.safetensors"))
        assert set(written) == set(original)
        for key, value in original.items():
            assert written[key].dtype == value.dtype and np.array_equal(written[key], value), key
        config = json.loads((tmp_path / name / "config.json").read_text())
        assert config["architectures"] == [
            json.loads((REF / f"bert_{name}" / "config.json").read_text())["architectures"][0]
        ]
    first = load_hf_bert(REF / "bert_mlm_gelu_new", dtype="float64")
    back = load_hf_bert(REF / "bert_roundtrip_mlm", dtype="float64")
    assert isinstance(back, BertForMaskedLM)
    for (k, p), (k2, q) in zip(first.named_parameters(), back.named_parameters()):
        assert k == k2 and np.array_equal(p.detach().numpy(), q.detach().numpy()), k


def test_state_dict_source_old_names_and_tied_decoder():
    """A mapping plus config works; gamma/beta and a stored tied decoder (older files) are read."""
    from safetensors.numpy import load_file

    arrays = load_file(str(REF / "bert_mlm_gelu_new" / "model.safetensors"))
    config = json.loads((REF / "bert_mlm_gelu_new" / "config.json").read_text())
    old = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
           for k, v in arrays.items()}  # fmt: skip
    old["cls.predictions.decoder.weight"] = arrays["bert.embeddings.word_embeddings.weight"]
    old["cls.predictions.decoder.bias"] = arrays["cls.predictions.bias"]
    model = load_hf_bert(old, config=config, dtype="float64")
    reference = load_hf_bert(REF / "bert_mlm_gelu_new", dtype="float64")
    for (_, p), (_, q) in zip(model.named_parameters(), reference.named_parameters()):
        assert np.array_equal(p.detach().numpy(), q.detach().numpy())
    old["cls.predictions.decoder.weight"] = arrays["bert.embeddings.word_embeddings.weight"] + 1.0
    with pytest.raises(BertCheckpointError, match="untied masked-LM decoder is not supported"):
        load_hf_bert(old, config=config)


def test_random_model_save_load(tmp_path):
    """A random BertForMaskedLM (default init) written and read back computes the same logits."""
    minigrad.manual_seed(0)
    cfg = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=12,
                     max_position_embeddings=10, hidden_act="gelu_pytorch_tanh")  # fmt: skip
    model = BertForMaskedLM(cfg, add_pooling_layer=True).eval()
    ids = np.array([[2, 5, 4, 9, 3]])
    save_hf_bert(model, tmp_path)
    back = load_hf_bert(tmp_path)
    assert back.pooler is not None and back.config == cfg
    np.testing.assert_array_equal(model.logits(ids).detach().numpy(), back.logits(ids).detach().numpy())


def test_pretraining_checkpoint_both_heads(tmp_path):
    """BertForPreTraining's layout (pooler, MLM head and next-sentence head) is written and read back."""
    from safetensors.numpy import load_file

    minigrad.manual_seed(1)
    cfg = BertConfig(vocab_size=12, hidden_size=4, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
                     max_position_embeddings=8)  # fmt: skip
    model = BertForMaskedLM(cfg, add_pooling_layer=True, nsp_head=True).eval()
    save_hf_bert(model, tmp_path)
    keys = set(load_file(str(tmp_path / "model.safetensors")))
    assert {"bert.pooler.dense.weight", "cls.seq_relationship.weight", "cls.predictions.bias"} <= keys
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["BertForPreTraining"]
    back = load_hf_bert(tmp_path)
    ids = np.array([[2, 5, 3]])
    a, b = model.outputs(ids), back.outputs(ids)
    np.testing.assert_array_equal(a.next_sentence_logits.detach().numpy(), b.next_sentence_logits.detach().numpy())
    np.testing.assert_array_equal(a.logits.detach().numpy(), b.logits.detach().numpy())


# ---- errors: one clear line each --------------------------------------------------------------
def copy_folder(tmp_path: Path, name: str = "bert_base_gelu") -> Path:
    folder = tmp_path / name
    shutil.copytree(REF / name, folder)
    return folder


def bfloat16_safetensors() -> bytes:
    """A safetensors file holding one bfloat16 tensor (which NumPy cannot hold), written by hand."""
    header = json.dumps({"a": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + bytes(4)


def edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"is_decoder": True}, "is_decoder=True is not supported"),
        ({"position_embedding_type": "relative_key"}, "only learned absolute positions"),
        ({"tie_word_embeddings": False}, "tie_word_embeddings=False is not supported"),
        ({"hidden_act": "silu"}, "hidden_act must be one of"),
        ({"frobnicate": 3}, "config key 'frobnicate' .* is not supported"),
        ({"num_attention_heads": 3}, "not divisible by num_attention_heads"),
        (
            {"hidden_size": 16, "num_attention_heads": 2},
            "do not fit the config: embeddings.norm.bias: checkpoint shape .* and 34 more",
        ),
        ({"model_type": "roberta"}, "only BERT checkpoints"),
    ],
)
def test_config_errors(tmp_path, changes, message):
    folder = copy_folder(tmp_path)
    edit_config(folder, **changes)
    with pytest.raises(BertCheckpointError, match=message) as info:
        load_hf_bert(folder)
    assert "\n" not in str(info.value)


def test_folder_errors(tmp_path):
    with pytest.raises(BertCheckpointError, match="does not exist"):
        load_hf_bert(tmp_path / "nothing")
    folder = copy_folder(tmp_path)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(BertCheckpointError, match="pytorch_model.bin .*it is a pickle"):
        load_hf_bert(folder)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(BertCheckpointError, match="not a valid safetensors file"):
        load_hf_bert(folder)
    (folder / "model.safetensors").write_bytes(bfloat16_safetensors())
    with pytest.raises(BertCheckpointError, match="NumPy cannot read .*save the checkpoint in float32"):
        load_hf_bert(folder)
    (folder / "config.json").unlink()
    with pytest.raises(BertCheckpointError, match="has no config.json"):
        load_hf_bert(folder)
    with pytest.raises(BertCheckpointError, match="needs config="):
        load_hf_bert({})
    with pytest.raises(BertConfigError, match="vocab_size must be a positive integer"):
        BertConfig(vocab_size=0)


def test_mask_and_input_errors():
    model = load_hf_bert(REF / "bert_base_gelu", dtype="float64")
    ids = R["base_gelu/input_ids"]
    with pytest.raises(ValueError, match="1 \\(keep\\) and 0 \\(padding\\) only"):
        model(ids, attention_mask=np.full(ids.shape, 2))
    with pytest.raises(TypeError, match="4-D attention_mask must be float"):
        model(ids, attention_mask=np.ones((2, 1, 7, 7), dtype=bool))
    with pytest.raises(ValueError, match="4-D attention_mask must be"):
        model(ids, attention_mask=np.zeros((2, 3, 7, 7)))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(ids, attention_mask=np.ones((2, 6)))
    with pytest.raises(ValueError, match="2-D .* attention_mask cannot carry a gradient"):
        model(ids, attention_mask=minigrad.ones(2, 7, dtype="float64", requires_grad=True))
    with pytest.raises(ValueError, match="token_type_ids must not require grad"):
        model(ids, token_type_ids=minigrad.zeros(2, 7, dtype="float64", requires_grad=True))
    with pytest.raises(ValueError, match="exceeds max_position_embeddings=12"):
        model(np.ones((1, 13), dtype=np.int64))
    with pytest.raises(ValueError, match="input_ids must be integer"):
        model(np.ones((2, 3)))


def test_dropouts_follow_the_config():
    cfg = BertConfig(vocab_size=10, hidden_size=4, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
                     hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.3)  # fmt: skip
    layer = BertModel(cfg).layers[0]
    assert (layer.dropout1.p, layer.dropout2.p, layer.self_attn.dropout, layer.ff.dropout.p) == (0.2, 0.2, 0.3, 0.0)


# ---- the tokenizer -------------------------------------------------------------------------------
def test_tokenizer_matches_transformers():
    sentence = json.loads((REF / "bert_reference.json").read_text())["sentence"]
    tokenizer = load_tokenizer(REF / "bert_base_gelu")
    encoding = tokenizer.encode(sentence)
    np.testing.assert_array_equal(encoding.ids, R["tokenizer/ids"])
    assert encoding.tokens[0] == "[CLS]" and "[MASK]" in encoding.tokens and encoding.tokens[-1] == "[SEP]"


def test_tokenizer_json_and_case(tmp_path):
    """tokenizer.json is preferred when present; tokenizer_config.json's do_lower_case is honoured."""
    sentence = json.loads((REF / "bert_reference.json").read_text())["sentence"]
    load_tokenizer(REF / "bert_base_gelu").save(str(tmp_path / "tokenizer.json"))
    np.testing.assert_array_equal(load_tokenizer(tmp_path).encode(sentence).ids, R["tokenizer/ids"])
    cased = tmp_path / "cased"
    cased.mkdir()
    shutil.copy(REF / "bert_base_gelu" / "vocab.txt", cased / "vocab.txt")
    (cased / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    assert load_tokenizer(cased).encode(sentence).tokens[1] == "[UNK]"  # "The" is not in the lower-case vocab


def test_tokenizer_errors(tmp_path, monkeypatch):
    with pytest.raises(TokenizerError, match="no tokenizer.json or vocab.txt"):
        load_tokenizer(tmp_path)
    (tmp_path / "vocab.txt").write_text("[UNK]\n")
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(TokenizerError, match=r"pip install 'minigrad-encoder\[bert\]'"):
        load_tokenizer(tmp_path)


# ---- the layer's activations (issue 22) ----------------------------------------------------------
@pytest.mark.parametrize("name", ["gelu_tanh", "gelu_new", "gelu_pytorch_tanh"])
def test_layer_takes_the_tanh_gelu_names_and_callables(name):
    x = minigrad.randn(2, 3, 8, dtype="float64")

    def gelu_tanh(t):
        return minigrad.functional.gelu(t, approximate="tanh")

    results = []
    for activation in (name, gelu_tanh, "gelu"):
        minigrad.manual_seed(0)
        layer = TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=activation).to(dtype="float64")
        results.append(layer(x).detach().numpy())
    np.testing.assert_array_equal(results[0], results[1])
    assert not np.allclose(results[0], results[2], rtol=0, atol=1e-12)  # the exact GELU is another function
    with pytest.raises(ValueError, match="activation must be one of .* or a callable"):
        TransformerEncoderLayer(8, 2, 16, activation="swish")
