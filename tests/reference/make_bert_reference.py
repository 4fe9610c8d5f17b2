"""Make the Hugging Face reference files for tests/test_bert.py (needs torch and transformers).

Regenerate from the repository root (torch 2.13 CPU and transformers 5.24 were used):

    PYTHONPATH=$PWD python tests/reference/make_bert_reference.py

For two tiny random configs it writes, under tests/reference/:

* ``bert_base_gelu/``: a ``BertModel`` (pooler, exact GELU, 2 heads) as ``save_pretrained``
  writes it, plus a ``vocab.txt`` of a few words;
* ``bert_mlm_gelu_new/``: a ``BertForMaskedLM`` (tanh GELU "gelu_new", 4 heads);
* ``bert_reference.npz``: for each, in float64, the input (ids, token types, the integer
  padding mask), the last hidden state, the pooled output or the MLM logits, every layer's
  attention probabilities, a fixed random upstream gradient and every parameter's gradient
  ("{name}/grad/{parameter}"); for the base model also the outputs with a 4-D additive mask,
  for the MLM model the gradient of one top logit with respect to every layer's attention weights;
  and the ids ``BertTokenizerFast`` gives a sentence with ``vocab.txt``;
* ``bert_roundtrip_mlm/``: the MLM folder loaded with ``encoder.interop.load_hf_bert``,
  written by ``save_hf_bert``, loaded by ``transformers`` (no missing or unexpected keys:
  checked here, and for the base model too) and saved again by ``save_pretrained``.

Every parameter is randomized (LayerNorm weights around 1), so no term hides behind a zero.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizerFast

HERE = Path(__file__).parent
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "capital", "of", "france", "is", "paris", "a",
         "city", "river", "big", "small", "red", "blue", "cat", "dog", "sat", "on", "mat", "."]  # fmt: skip
SENTENCE = "The capital of France is [MASK] ."
CONFIGS = {
    "base_gelu": dict(num_attention_heads=2, hidden_act="gelu", cls=BertModel),
    "mlm_gelu_new": dict(num_attention_heads=4, hidden_act="gelu_new", cls=BertForMaskedLM),
}
B, S = 2, 7
LENGTHS = [7, 5]  # the second sequence ends with 2 padding tokens


def make(name: str, spec: dict) -> tuple[torch.nn.Module, dict[str, np.ndarray]]:
    config = BertConfig(
        vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=2, num_attention_heads=spec["num_attention_heads"],
        intermediate_size=16, hidden_act=spec["hidden_act"], hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, max_position_embeddings=12, type_vocab_size=2, layer_norm_eps=1e-12,
        pad_token_id=0,
    )  # fmt: skip
    config._attn_implementation = "eager"  # so that the attention probabilities are returned
    model = spec["cls"](config).to(torch.float64).eval()
    with torch.no_grad():
        for key, p in model.named_parameters():
            if "LayerNorm.weight" in key:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.5 * torch.randn_like(p))
    folder = HERE / f"bert_{name}"
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)
    return model, {}


def run(name: str, model: torch.nn.Module, out: dict[str, np.ndarray]) -> None:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, len(VOCAB), (B, S), generator=g)
    mask = torch.tensor([[1 if i < n else 0 for i in range(S)] for n in LENGTHS])
    ids = torch.where(mask.bool(), ids, torch.zeros_like(ids))  # pad token 0 at padded positions
    ids[:, 0] = 2  # [CLS]
    types = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 0, 0]])
    out.update({f"{name}/input_ids": ids.numpy(), f"{name}/token_type_ids": types.numpy(),
                f"{name}/attention_mask": mask.numpy()})  # fmt: skip
    result = model(input_ids=ids, token_type_ids=types, attention_mask=mask, output_attentions=True)
    loss = 0.0
    if isinstance(model, BertForMaskedLM):
        outputs = {"logits": result.logits}
    else:
        outputs = {"hidden": result.last_hidden_state, "pooled": result.pooler_output}
    if isinstance(model, BertForMaskedLM):
        with torch.no_grad():
            out[f"{name}/hidden"] = model.bert(ids, attention_mask=mask, token_type_ids=types).last_hidden_state.numpy()
    for key, value in outputs.items():
        upstream = torch.randn(value.shape, dtype=torch.float64, generator=g)
        out[f"{name}/{key}"] = value.detach().numpy()
        out[f"{name}/upstream_{key}"] = upstream.numpy()
        loss = loss + (value * upstream).sum()
    for i, a in enumerate(result.attentions):
        out[f"{name}/attention/{i}"] = a.detach().numpy()
    loss.backward()
    for key, p in model.named_parameters():
        out[f"{name}/grad/{key}"] = p.grad.clone().numpy()
    if isinstance(model, BertForMaskedLM):  # d (top logit at one position) / d attention weights, sequence 1
        pos = 3
        r = model(input_ids=ids[1:], token_type_ids=types[1:], attention_mask=mask[1:], output_attentions=True)
        for a in r.attentions:
            a.retain_grad()
        token = int(r.logits[0, pos].argmax())
        r.logits[0, pos, token].backward()
        out[f"{name}/logit_grad/position_token"] = np.array([pos, token])
        for i, a in enumerate(r.attentions):
            out[f"{name}/logit_grad/{i}"] = a.grad.numpy()
    if isinstance(model, BertModel):  # a 4-D additive mask: blocks chosen per query, padding too
        blocked = torch.rand((B, 1, S, S), generator=g) < 0.3
        blocked[..., 0] = False  # every query keeps the [CLS] key
        low = torch.tensor(torch.finfo(torch.float64).min, dtype=torch.float64)
        additive = torch.where(blocked, low, torch.zeros((), dtype=torch.float64))
        with torch.no_grad():
            r = model(input_ids=ids, token_type_ids=types, attention_mask=additive)
        out[f"{name}/mask4d"] = additive.numpy()
        out[f"{name}/mask4d_hidden"] = r.last_hidden_state.numpy()


def round_trip(out: dict[str, np.ndarray]) -> None:
    from encoder.interop import load_hf_bert, save_hf_bert

    ours = load_hf_bert(HERE / "bert_mlm_gelu_new", dtype="float64")
    with tempfile.TemporaryDirectory() as tmp:
        save_hf_bert(ours, tmp)
        model, info = BertForMaskedLM.from_pretrained(tmp, output_loading_info=True, dtype=torch.float64)
        problems = {k: v for k, v in info.items() if v}
        assert not problems, problems
        target = HERE / "bert_roundtrip_mlm"
        shutil.rmtree(target, ignore_errors=True)
        model.save_pretrained(target)
    print(f"round trip: transformers loaded save_hf_bert's folder with {info}")
    with tempfile.TemporaryDirectory() as tmp:  # the base model (with its pooler) loads with no key problems too
        save_hf_bert(load_hf_bert(HERE / "bert_base_gelu", dtype="float64"), tmp)
        _, info = BertModel.from_pretrained(tmp, output_loading_info=True, dtype=torch.float64)
        assert not any(info.values()), info


def main() -> None:
    torch.manual_seed(0)
    out: dict[str, np.ndarray] = {}
    for name, spec in CONFIGS.items():
        model, _ = make(name, spec)
        run(name, model, out)
    vocab = HERE / "bert_base_gelu" / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    tokenizer = BertTokenizerFast.from_pretrained(vocab.parent)  # reads vocab.txt, lower-cases
    out["tokenizer/ids"] = np.array(tokenizer(SENTENCE)["input_ids"])
    round_trip(out)
    path = HERE / "bert_reference.npz"
    np.savez_compressed(path, **out)
    meta = {"sentence": SENTENCE, "torch": torch.__version__}
    (HERE / "bert_reference.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(out)} arrays)")


if __name__ == "__main__":
    main()
