"""The gradient of a BERT prediction w.r.t. its attention weights, and the ``bert`` command end to end.

The command runs on a tiny random BertForMaskedLM folder that the test writes itself
(save_hf_bert + a vocab.txt of 24 words), so the tokenizer path is exercised too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad
from encoder.bert import BertConfig, BertForMaskedLM
from encoder.bert_attention import logit_attention, predictions
from encoder.cli import main
from encoder.interop import load_hf_bert, load_tokenizer, save_hf_bert

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "tests" / "reference"
R = np.load(REF / "bert_reference.npz")
PNG = b"\x89PNG\r\n\x1a\n"
TEXT = "The capital of France is [MASK] ."


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A random masked-LM BERT (2 layers x 2 heads) with the reference vocabulary."""
    minigrad.manual_seed(0)
    config = BertConfig(vocab_size=24, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, initializer_range=0.5)  # fmt: skip
    path = tmp_path_factory.mktemp("bert") / "tiny"
    save_hf_bert(BertForMaskedLM(config), path)
    shutil.copy(REF / "bert_base_gelu" / "vocab.txt", path / "vocab.txt")
    return path


def test_logit_attention_matches_transformers(accel_mode):
    """d logit / d attention weights of every layer: Hugging Face's (retain_grad) to 1e-10."""
    model = load_hf_bert(REF / "bert_mlm_gelu_new", dtype="float64")
    position, token = R["mlm_gelu_new/logit_grad/position_token"]
    ids, types, mask = (R[f"mlm_gelu_new/{k}"][1:] for k in ("input_ids", "token_type_ids", "attention_mask"))
    result = logit_attention(model, ids, int(position), attention_mask=mask, token_type_ids=types)
    assert result.token_id == token  # the top prediction, as in transformers
    for i, g in enumerate(result.grads):
        ref = R[f"mlm_gelu_new/logit_grad/{i}"][0]
        assert np.abs(g - ref).max() / np.abs(ref).max() < 1e-10
        np.testing.assert_allclose(result.weights[i], R["mlm_gelu_new/attention/" + str(i)][1], rtol=1e-10, atol=0)
    last = result.grads[-1].copy()
    assert np.abs(last[:, position]).max() > 0
    last[:, position] = 0
    assert not last.any()  # in the last layer only the predicted position's row matters
    assert all(p.grad is None for p in model.parameters())  # minigrad.grad: parameters untouched
    assert all(layer.self_attn.last_attention is None for layer in model.layers)


def test_logit_attention_without_grads_and_errors():
    model = load_hf_bert(REF / "bert_mlm_gelu_new", dtype="float64")
    ids = R["mlm_gelu_new/input_ids"][:1]
    result = logit_attention(model, ids, 2, token_id=5, grads=False)
    assert result.grads is None and result.token_id == 5
    np.testing.assert_allclose(result.probs, predictions(model, ids)[2], rtol=1e-12)
    with pytest.raises(ValueError, match="one sequence"):
        logit_attention(model, R["mlm_gelu_new/input_ids"], 0)
    with pytest.raises(IndexError, match="position 9 out of range"):
        logit_attention(model, ids, 9)
    with pytest.raises(ValueError, match="no masked-LM head"):
        logit_attention(load_hf_bert(REF / "bert_base_gelu"), ids, 0)


def test_bert_command_end_to_end(folder, tmp_path, capsys):
    out = tmp_path / "pictures"
    argv = ["bert", "--weights", str(folder), "--text", TEXT, "--grads", "--top", "3", "--out", str(out)]  # accel on
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    tokens = "[CLS] the capital of france is [MASK] . [SEP]".split()
    assert lines[1] == "tokens: " + " ".join(tokens)
    # what the command prints is what the library computes
    model, tokenizer = load_hf_bert(folder), load_tokenizer(folder)
    ids = np.array([tokenizer.encode(TEXT).ids])
    expected = logit_attention(model, ids, 6)
    top = ", ".join(f"{tokenizer.id_to_token(i)} {p:.3f}" for i, p in expected.top(3))
    assert lines[2] == f"[MASK] at 6: {top}"
    predicted = tokenizer.id_to_token(expected.token_id)
    assert f"d logit({predicted!r}) / d weight" in lines[3]
    heads = [line for line in lines if line.startswith("  layer ")]
    assert len(heads) == 4
    for line in heads:
        layer, head, looked, grad_at, value = re.match(
            r"  layer (\d) head (\d): looks most at '(.+)' \(.+\); largest gradient at '(.+)' \((.+)\)", line
        ).groups()
        w = expected.weights[int(layer)][int(head), 6]
        g = expected.grads[int(layer)][int(head), 6]
        assert looked == tokens[int(np.argmax(w))] and grad_at == tokens[int(np.argmax(np.abs(g)))]
        assert float(value) == pytest.approx(g[np.argmax(np.abs(g))], rel=1e-2)
    for layer in range(2):
        assert (out / f"bert_layer{layer}.png").read_bytes()[:8] == PNG
    page = (out / "explore.html").read_text()
    assert lines[-1] == f"wrote {out / 'explore.html'}"
    assert page.startswith("<!DOCTYPE html>") and "loss = -logit(" in page and "[MASK]" in page


def test_bert_command_on_another_device(folder, marked, capsys):
    """--device runs the model there (the marked backend stands in for a GPU): the same predictions."""
    argv = ["bert", "--weights", str(folder), "--text", TEXT, "--grads", "--no-accel"]
    assert main([*argv, "--device", "marked"]) == 0
    on_marked = capsys.readouterr().out.splitlines()
    assert main(argv) == 0
    on_cpu = capsys.readouterr().out.splitlines()
    assert on_marked[1:] == on_cpu[1:]


def test_bert_command_as_a_subprocess(folder):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    text = "the [MASK] sat on the [MASK] ."
    done = subprocess.run(
        [sys.executable, "-m", "encoder", "bert", "--weights", str(folder), "--text", text, "--no-accel"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "[MASK] at 2: " in done.stdout and "[MASK] at 6: " in done.stdout  # both masks predicted
    assert "largest gradient" not in done.stdout  # no --grads


def one_line_error(capsys, argv: list[str]) -> str:
    assert main([*argv, "--no-accel"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_bert_command_errors(folder, tmp_path, capsys):
    base = ["bert", "--weights", str(folder), "--text"]
    assert "--text has no [MASK] token" in one_line_error(capsys, [*base, "no mask here"])
    assert "no such folder" in one_line_error(capsys, ["bert", "--weights", str(tmp_path / "x"), "--text", TEXT])
    assert "--top must be a positive integer" in one_line_error(capsys, [*base, TEXT, "--top", "0"])
    assert "unknown device 'nowhere'" in one_line_error(capsys, [*base, TEXT, "--device", "nowhere"])
    assert "at most 16" in one_line_error(capsys, [*base, "the " * 20 + "[MASK]"])
    error = one_line_error(capsys, ["bert", "--weights", str(REF / "bert_base_gelu"), "--text", TEXT])
    assert "without the masked-LM head" in error
    bare = tmp_path / "bare"
    shutil.copytree(folder, bare)
    (bare / "vocab.txt").unlink()
    assert "has no tokenizer.json or vocab.txt" in one_line_error(
        capsys, ["bert", "--weights", str(bare), "--text", TEXT]
    )
    (bare / "model.safetensors").unlink()
    assert "has no model.safetensors" in one_line_error(capsys, ["bert", "--weights", str(bare), "--text", TEXT])
