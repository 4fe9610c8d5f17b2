"""The explorer page without a browser: its data (minigrad.viz.explore), the ``explore``
command, and that the file is self-contained (no network reference of any kind).

Every number the page shows is checked here against an independent computation: the
parameters' gradients from a plain ``backward``, the attention weights' gradient from
``retain_grad``, dL/dS through the Softmax op's own backward. The browser side is in
tests/test_explorer_browser.py.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad
import minigrad.functional as F
from encoder.cli import main
from encoder.cli.explore import _small_trainer, explore_trainer
from encoder.graphs import padding_mask
from encoder.layers import TransformerEncoderLayer
from minigrad import engine, viz
from minigrad.engine import topological_order
from minigrad.viz import explore_page

ROOT = Path(__file__).resolve().parents[1]


def decode(b64: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)


def page_data(html: str) -> dict:
    match = re.search(r"window\.EXPLORER = (.*?);\n", html)
    assert match, "the page holds no data"
    return json.loads(match.group(1))


def tiny_layer():
    minigrad.manual_seed(0)
    layer = TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    x = minigrad.randn(2, 4, 8, requires_grad=True)
    return layer, x, padding_mask(2, 4)


UPSTREAM = np.random.default_rng(1).standard_normal((2, 4, 8)).astype(np.float32)


def tiny_loss(y):
    """sum(y * u) for a fixed random u: every gradient is O(1), far above float32 rounding."""
    return (y * minigrad.tensor(UPSTREAM)).sum()


@pytest.fixture(scope="module")
def tiny():
    layer, x, mask = tiny_layer()
    page = viz.explore(layer, x, loss=tiny_loss, kwargs={"src_key_padding_mask": mask})
    return layer, x, mask, page


def reference_grads():
    """The same layer and input, a plain backward: the gradients the page must show."""
    layer, x, mask = tiny_layer()
    layer.self_attn.keep_attention = True
    y = layer(x, src_key_padding_mask=mask)
    loss = tiny_loss(y)
    loss.backward()
    return layer, x, layer.self_attn.last_attention, loss


# ---- the data model -----------------------------------------------------------------------------
def test_backward_order_is_the_engines(tiny):
    layer, x, mask, page = tiny
    d = page.data
    ids = [n["id"] for n in d["nodes"]]
    assert d["order"] == list(reversed(ids)), "backward visits every node, from the loss back"
    assert d["nodes"][-1]["op"] == "sum" and d["nodes"][-1]["terms"][0]["from"] is None  # the seed


def test_parameter_and_input_gradients_match_a_plain_backward(tiny):
    layer, x, mask, page = tiny
    ref_layer, ref_x, _, ref_loss = reference_grads()
    assert page.data["loss"] == pytest.approx(ref_loss.item(), rel=1e-6)
    names = dict(ref_layer.named_parameters())
    leaves = {leaf["name"]: leaf for leaf in page.data["leaves"]}
    assert set(names) <= set(leaves)
    for name, p in names.items():
        g = p.grad.numpy().astype(np.float64)
        assert leaves[name]["grad"]["stats"]["norm"] == pytest.approx(np.linalg.norm(g), rel=1e-5, abs=1e-12), name
        assert leaves[name]["grad"]["stats"]["max"] == pytest.approx(g.max(), rel=1e-5, abs=1e-12)
    # the explored layer's .grad are left as they were (None), the input's too
    assert all(p.grad is None for p in layer.parameters()) and x.grad is None
    assert leaves["input"]["grad"]["stats"]["norm"] == pytest.approx(np.linalg.norm(ref_x.grad.numpy()), rel=1e-5)


def test_gradient_terms_add_up_term_by_term(tiny):
    layer, x, mask, page = tiny
    d = page.data
    (inp,) = [leaf for leaf in d["leaves"] if leaf["kind"] == "input"]
    # x feeds q, k and v projections and the first residual: four terms, in backward order
    assert len(inp["terms"]) == 4
    steps = [d["order"].index(t["from"]) for t in inp["terms"]]
    assert steps == sorted(steps)
    assert inp["terms"][-1]["sum_norm"] == pytest.approx(inp["grad"]["stats"]["norm"], rel=1e-5)
    assert inp["terms"][0]["sum_norm"] == pytest.approx(inp["terms"][0]["norm"])
    # a node's received gradient is the sum of its terms
    for node in d["nodes"]:
        assert node["terms"], node["op"]
        assert node["terms"][-1]["sum_norm"] == pytest.approx(node["grad"]["stats"]["norm"], rel=1e-5, abs=1e-12)


def test_attention_maps_match_the_tensors(tiny):
    layer, x, mask, page = tiny
    _, _, weights, _ = reference_grads()
    (att,) = page.data["attention"]
    shape = (att["heads"], att["seq_q"], att["seq_k"])
    a_ref, g_ref = weights.detach().numpy()[0], weights.grad.numpy()[0]
    a = decode(att["A"], "f4", shape)
    g = decode(att["dA"], "f4", shape)
    np.testing.assert_allclose(a, a_ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(decode(att["AdA"], "f4", shape), a_ref * g_ref, rtol=1e-5, atol=1e-10)
    # dL/dS through the Softmax op's own backward: softmax(log A) = A on rows without padding
    live = a_ref[:, :, :3]  # sequence 0 has no padding, every weight > 0
    s = minigrad.tensor(np.log(a_ref.astype(np.float64)), requires_grad=True)
    (F.softmax(s, -1) * minigrad.tensor(g_ref.astype(np.float64))).sum().backward()
    assert (live > 0).all()
    np.testing.assert_allclose(decode(att["dS"], "f4", shape), s.grad.numpy(), rtol=1e-4, atol=1e-9)
    assert att["module"] == "self_attn" and att["tokens"] == ["0", "1", "2", "3"]


def test_composite_attention_shows_the_same_maps(tiny):
    """A layer built op by op (fused=False) has no attention_weights op: its MultiHeadAttention
    keeps the weights (keep_attention), and the panels show the same numbers."""
    minigrad.manual_seed(0)
    layer = TransformerEncoderLayer(8, 2, 16, dropout=0.0, fused=False)
    x = minigrad.randn(2, 4, 8, requires_grad=True)
    page = viz.explore(layer, x, loss=tiny_loss, kwargs={"src_key_padding_mask": padding_mask(2, 4)})
    assert "attention_weights" not in [n["op"] for n in page.data["nodes"]]
    (got,) = page.data["attention"]
    (want,) = tiny[3].data["attention"]
    assert got["module"] == "self_attn"
    shape = (got["heads"], got["seq_q"], got["seq_k"])
    for key in ("A", "dA", "dS", "AdA"):
        np.testing.assert_allclose(decode(got[key], "f4", shape), decode(want[key], "f4", shape), rtol=1e-4, atol=1e-6)
    assert layer.self_attn.keep_attention is False and layer.self_attn.last_attention is None  # as it was


def test_node_details_doc_source_and_saved(tiny):
    d = tiny[3].data
    (node,) = [n for n in d["nodes"] if n["op"] == "attention_weights"]
    assert node["module"] == "self_attn" and node["out_shape"] == [2, 2, 4, 4] and node["dtype"] == "float32"
    assert node["in_shapes"] == [[2, 2, 4, 4], [2, 2, 4, 4]] and node["in_dtypes"] == ["float32", "float32"]
    saved = dict(node["saved"])
    assert saved["inputs"].startswith("(Tensor (2, 2, 4, 4) float32") and "out" in saved
    info = d["docs"][node["cls"]]
    assert "softmax" in info["doc"]
    for key, start in (("forward", "def forward"), ("backward", "def backward")):
        path, line = info[key].rsplit(":", 1)
        assert (ROOT / path).read_text().splitlines()[int(line) - 1].strip().startswith(start)
    v = node["value"]
    assert v["stats"]["min"] >= 0 and v["stats"]["max"] <= 1
    heat = decode(v["heat"]["data"], "f2", (v["heat"]["rows"], v["heat"]["cols"]))
    assert heat.shape == (4, 4) and v["heat"]["slice"] == "[0, 0, :4, :4]"
    np.testing.assert_allclose(heat.sum(-1), 1.0, atol=3e-3)  # the first query's weights, a softmax row


def test_explore_leaves_the_engine_as_it_was(tiny):
    assert engine.edge_observers == [] and minigrad.autograd.node_observers == []
    layer, x, mask, _ = tiny
    y = layer(x, src_key_padding_mask=mask)
    assert all(n.hooks is None for n in topological_order([y._ctx]))


def test_edge_observers_see_every_gradient_term():
    x = minigrad.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    engine.edge_observers.append(lambda node, slot, target, g: seen.append((node.op_name, slot, target, g.tolist())))
    try:
        (x * x + x).sum().backward()
    finally:
        engine.edge_observers.clear()
    to_x = [(op, slot, g) for op, slot, target, g in seen if target is x]
    assert to_x == [("add", 1, [1.0, 1.0]), ("mul", 0, [1.0, 2.0]), ("mul", 1, [1.0, 2.0])]
    assert x.grad.tolist() == [3.0, 5.0]  # 1 + 2x, the sum of the three terms


def test_explore_keeps_hooks_it_did_not_add():
    layer, x, mask = tiny_layer()
    mine = []

    def hook(g):
        return None

    def observe(node, output):
        engine.register_node_hook(node, hook)
        mine.append(node)

    minigrad.autograd.node_observers.append(observe)
    try:
        viz.explore(layer, x, loss=tiny_loss, kwargs={"src_key_padding_mask": mask})
    finally:
        minigrad.autograd.node_observers.remove(observe)
    assert mine and all(node.hooks == [hook] for node in mine)


def test_explore_bad_arguments():
    layer, x, mask = tiny_layer()
    with pytest.raises(ValueError, match="explore: view must be one of"):
        viz.explore(layer, x, view="big")
    with pytest.raises(ValueError, match="explore: loss must give a scalar Tensor.*shape"):
        viz.explore(layer, x, kwargs={"src_key_padding_mask": mask})
    with pytest.raises(TypeError, match="explore: module must be a minigrad nn.Module"):
        viz.explore(lambda t: t, x)
    assert engine.edge_observers == [] and minigrad.autograd.node_observers == []


# ---- the page -----------------------------------------------------------------------------------
def offline_problems(html: str) -> list[str]:
    problems = re.findall(r"""(?:src|href|action|srcset)\s*=\s*["']?\s*(?:https?:|//)[^"'\s>]*""", html, re.I)
    problems += re.findall(r"https?://", html)
    problems += re.findall(r"\b(?:fetch|XMLHttpRequest|WebSocket|EventSource|importScripts|sendBeacon)\s*\(", html)
    problems += re.findall(r"@import|url\((?!['\"]?data:)", html)
    return problems


def test_page_is_one_offline_file(tiny, tmp_path):
    page = tiny[3]
    path = page.save(tmp_path / "page.html")
    html = path.read_text()
    assert offline_problems(html) == []
    assert "<script src" not in html and "<link rel=\"stylesheet\"" not in html
    assert page_data(html)["order"] == page.data["order"]
    for view in ("collapsed", "expanded"):
        assert f'id="svg-{view}"' in html
    ids = set(re.findall(r"<title>([^<]+)</title>", html))
    for node in page.data["nodes"]:  # every op is drawn in both views (collapsed: in its module)
        assert {node["units"]["collapsed"], node["units"]["expanded"]} <= ids
    assert '<iframe srcdoc="' in page._repr_html_()


def test_page_text_cannot_break_out_of_its_script(tmp_path):
    layer, x, mask = tiny_layer()
    title = "a </script><script>alert(1)</script> <!-- b"
    page = viz.explore(layer, x, loss=tiny_loss, title=title, kwargs={"src_key_padding_mask": mask})
    html = page.save(tmp_path / "p.html").read_text()
    assert page_data(html)["title"] == title
    assert html.count("</script>") == 2 and "<script>alert" not in html


@pytest.mark.parametrize("missing", ["_find_dot", "_has_graphviz"])
def test_page_without_dot_draws_its_own_layout(monkeypatch, tmp_path, missing):
    monkeypatch.setattr(explore_page, missing, lambda: None)
    layer, x, mask = tiny_layer()
    page = viz.explore(layer, x, loss=tiny_loss, view="expanded", kwargs={"src_key_padding_mask": mask})
    html = page.save(tmp_path / "p.html").read_text()
    assert page.data["layout"] == "simple" and explore_page.NO_DOT in html
    ids = re.findall(r'<g class="node"><title>([^<]+)</title>', page.svgs["expanded"])
    assert {n["units"]["expanded"] for n in page.data["nodes"]} <= set(ids)
    assert {leaf["units"]["expanded"] for leaf in page.data["leaves"]} <= set(ids)
    assert offline_problems(html) == []


def test_demo_sized_page_is_a_few_mb(tmp_path):
    from encoder.cli.train import DEMO
    from encoder.tasks import get_task
    from encoder.training import TrainConfig, Trainer, model_config_for

    task = get_task("sort")
    dims = {k: DEMO[k] for k in ("d_model", "nhead", "num_layers", "dim_feedforward", "dropout")}
    trainer = Trainer(TrainConfig(progress=False), model_config_for(task, **dims), task)
    page = explore_trainer(trainer, example=1)
    size = len(page.save(tmp_path / "demo.html").read_bytes())
    assert size < 3_000_000, size
    assert len(page.data["attention"]) == DEMO["num_layers"]
    assert page.data["attention"][0]["heads"] == DEMO["nhead"]


def test_demo_page_goes_into_the_run_folder(tmp_path):
    from encoder.cli.explore import demo_page

    line = demo_page(_small_trainer(), tmp_path)
    assert str(tmp_path / "explore.html") in line
    assert page_data((tmp_path / "explore.html").read_text())["attention"]


# ---- the command --------------------------------------------------------------------------------
def test_cli_writes_the_page(tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["explore", "--no-accel", "--example", "2", "--view", "expanded", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    d = page_data(out.read_text())
    assert d["view"] == "expanded" and d["title"].startswith("sort example 2")
    trainer = _small_trainer()
    ref = explore_trainer(trainer, example=2).data
    assert [n["op"] for n in d["nodes"]] == [n["op"] for n in ref["nodes"]]
    assert d["loss"] == pytest.approx(ref["loss"], rel=1e-6)


def test_cli_explores_a_checkpoint(tmp_path, capsys):
    from encoder.training import Trainer

    run = tmp_path / "run"
    tiny = ["--task", "reverse", "--layers", "1", "--d-model", "16", "--heads", "2", "--steps", "3"]
    assert main(["train", *tiny, "--eval-every", "3", "--out", str(run), "--no-progress", "--no-accel"]) == 0
    out = tmp_path / "page.html"
    assert main(["explore", "--no-accel", "--checkpoint", str(run), "--example", "1", "--out", str(out)]) == 0
    d = page_data(out.read_text())
    ref = explore_trainer(Trainer.from_checkpoint(run, progress=False), example=1).data
    assert d["title"].startswith("reverse example 1") and len(d["attention"]) == 1
    assert d["loss"] == pytest.approx(ref["loss"], rel=1e-6)
    assert [leaf["grad"]["stats"] for leaf in d["leaves"]] == [leaf["grad"]["stats"] for leaf in ref["leaves"]]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--out", "page.svg"], "--out must end in .html"),
        (["--example", "-1"], "--example must be >= 0"),
        (["--checkpoint", "no/such/run"], "no/such/run"),
    ],
)
def test_cli_bad_flags_are_one_line(tmp_path, argv, message):
    result = subprocess.run(
        [sys.executable, "-m", "encoder", "explore", "--no-accel", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_explore_on_every_path_shows_the_same_numbers(accel_mode, tiny):
    """With the acceleration on (its faster ops register beneath the reference ones) the page
    shows the same gradients, and names where the accelerated forward ran."""
    layer, x, mask = tiny_layer()
    page = viz.explore(layer, x, loss=tiny_loss, kwargs={"src_key_padding_mask": mask})
    ref = tiny[3].data
    assert [n["op"] for n in page.data["nodes"]] == [n["op"] for n in ref["nodes"]]
    for got, want in zip(page.data["leaves"], ref["leaves"]):
        # (abs: k_proj.bias has a zero gradient in exact arithmetic, float32 rounding here)
        assert got["grad"]["stats"]["norm"] == pytest.approx(want["grad"]["stats"]["norm"], rel=1e-4, abs=1e-5)
    a, b = page.data["attention"][0], ref["attention"][0]
    shape = (a["heads"], a["seq_q"], a["seq_k"])
    np.testing.assert_allclose(decode(a["dS"], "f4", shape), decode(b["dS"], "f4", shape), rtol=1e-4, atol=1e-8)
    info = page.data["docs"]["AttentionWeights"]
    assert info["forward"].startswith("minigrad/ops/attention.py:")
    assert ("ran" in info) == (accel_mode != "reference")


def test_a_flash_attention_node_shows_what_it_saved_o_and_l_not_the_weights():
    """FlashAttention is one node whose saved values are O and L = m + log(l), never the (seq, seq) weights."""
    minigrad.manual_seed(0)
    layer = TransformerEncoderLayer(8, 2, 16, dropout=0.0, impl="flash", block_size=2)
    x = minigrad.randn(2, 4, 8, requires_grad=True)
    page = viz.explore(layer, x, loss=tiny_loss, kwargs={"src_key_padding_mask": padding_mask(2, 4)})
    (node,) = [n for n in page.data["nodes"] if n["op"] == "flash_attention"]
    saved = dict(node["saved"])
    assert "(2, 2, 4, 4)" in saved["out"] and "(2, 2, 4, 1)" in saved["lse"]  # O (batch, heads, seq, d_head), L
    assert not any("(2, 2, 4, 4) float32" in text and name != "out" for name, text in saved.items()
                   if name != "inputs")  # nothing else of the weights' (batch, heads, seq, seq) shape
    assert not [n for n in page.data["nodes"] if n["op"] == "attention_weights"]
