"""Graph pictures (minigrad.viz, encoder.graphs, the ``graph`` command).

The golden file tests/golden/tiny_layer_expanded.dot is regenerated with
``python tests/golden/regen.py`` (from the repository root); review its diff before
committing it.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("graphviz")

import minigrad  # noqa: E402
from encoder.graphs import layer_graph, padding_mask, write_layer_graph  # noqa: E402
from encoder.layers import TransformerEncoderLayer  # noqa: E402
from minigrad import autograd, viz  # noqa: E402

GOLDEN_DIR = Path(__file__).parent / "golden"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's 'dot' program is not on PATH (apt-get install graphviz)")


# ---- reading DOT text back ------------------------------------------------------------------
NODE = re.compile(r'^\s*(\w+) \[label=("(?:[^"\\]|\\.)*"|\S+)(.*)\]$')
CLUSTER_LABEL = re.compile(r'label=("(?:[^"\\]|\\.)*"|\S+)')


def parse_dot(source: str) -> dict[str, dict]:
    """node id -> {"label", "class", "clusters": labels of the boxes around it, outermost first}."""
    nodes: dict[str, dict] = {}
    stack: list[str | None] = []
    for line in source.splitlines():
        if re.match(r"^\s*subgraph cluster_\w+ \{$", line):
            stack.append(None)
            continue
        if line.strip() == "}":
            if stack:
                stack.pop()
            continue
        m = NODE.match(line)
        if m:
            rest = m.group(3)
            cls = re.search(r"class=(\w+)", rest)
            nodes[m.group(1)] = {
                "label": m.group(2).strip('"'),
                "class": cls.group(1) if cls else None,
                "clusters": tuple(stack),
                "red": "color=red" in rest,
            }
            continue
        if stack and stack[-1] is None and "->" not in line:
            lm = CLUSTER_LABEL.search(line)
            if lm:
                stack[-1] = lm.group(1).strip('"')
    return nodes


def of_class(nodes: dict[str, dict], cls: str) -> dict[str, dict]:
    return {k: v for k, v in nodes.items() if v["class"] == cls}


def run_layer(fused: bool = True, grads: bool = False, values: bool = False):
    """A small layer, its output on random input with a padding mask, and the ops recorded."""
    minigrad.manual_seed(0)
    layer = TransformerEncoderLayer(16, 2, 32, dropout=0.0, fused=fused)
    x = minigrad.randn(2, 5, 16, requires_grad=True)
    recorded = []

    def count(node, out):
        recorded.append(node)

    autograd.node_observers.append(count)
    try:
        with viz.record(grads=grads, values=values):
            y = layer(x, src_key_padding_mask=padding_mask(2, 5))
    finally:
        autograd.node_observers.remove(count)
    return layer, y, recorded


# ---- structure of the expanded view -----------------------------------------------------------
def test_expanded_layer_has_a_box_per_module_and_scope():
    layer, y, _ = run_layer()
    nodes = parse_dot(viz.draw_graph(y, module=layer).source)
    boxes = {c for n in nodes.values() for c in n["clusters"]}
    for label in [
        "self_attn (MultiHeadAttention)",
        "self_attn.q_proj (Linear)",
        "self_attn.k_proj (Linear)",
        "self_attn.v_proj (Linear)",
        "self_attn.out_proj (Linear)",
        "ff (PositionwiseFeedForward)",
        "ff.linear1 (Linear)",
        "ff.linear2 (Linear)",
        "norm1 (LayerNorm)",
        "norm2 (LayerNorm)",
        "residual1",
        "residual2",
    ]:
        assert label in boxes, f"no box {label!r} in {sorted(b for b in boxes if b)}"
    # nesting: the projections sit inside self_attn, the linears inside ff
    linears = [n["clusters"] for n in of_class(nodes, "op").values() if n["label"] == "linear"]
    assert ("self_attn (MultiHeadAttention)", "self_attn.q_proj (Linear)") in linears
    assert ("ff (PositionwiseFeedForward)", "ff.linear2 (Linear)") in linears
    adds = [n["clusters"] for n in of_class(nodes, "op").values() if n["label"] == "add"]
    assert ("residual1",) in adds and ("residual2",) in adds


def test_every_parameter_appears_once_under_its_module_path():
    layer, y, _ = run_layer()
    params = of_class(parse_dot(viz.draw_graph(y, module=layer).source), "parameter")
    names = [p["label"].split("\\n")[0] for p in params.values()]
    expected = [name for name, _ in layer.named_parameters()]
    assert sorted(names) == sorted(expected)  # each exactly once
    for p in params.values():
        name = p["label"].split("\\n")[0]
        owner = name.rsplit(".", 1)[0]
        assert p["clusters"][-1].split(" ")[0] == owner, (name, p["clusters"])


def reachable(output) -> set[int]:
    """ids of the nodes behind ``output`` (a plain walk over ``node.next``)."""
    seen, todo = set(), [output.grad_fn]
    while todo:
        node = todo.pop()
        if isinstance(node, minigrad.Function) and id(node) not in seen:
            seen.add(id(node))
            todo.extend(node.next)
    return seen


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composite"])
def test_expanded_view_draws_every_recorded_op(fused):
    layer, y, recorded = run_layer(fused=fused)
    ops = of_class(parse_dot(viz.draw_graph(y, module=layer).source), "op")
    used = [node for node in recorded if id(node) in reachable(y)]
    assert used == recorded  # every recorded op is part of the output's graph
    assert len(ops) == len(used) == viz.count_ops(y)
    assert sorted(n["label"] for n in ops.values()) == sorted(node.op_name for node in used)


def test_golden_dot_of_a_tiny_layer():
    spec = importlib.util.spec_from_file_location("golden_regen", GOLDEN_DIR / "regen.py")
    regen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(regen)
    expected = (GOLDEN_DIR / "tiny_layer_expanded.dot").read_text()
    assert regen.tiny_layer_source() == expected, "picture changed: run python tests/golden/regen.py and review"


def test_same_model_and_input_give_identical_dot():
    assert layer_graph(view="expanded").source == layer_graph(view="expanded").source
    assert layer_graph(grads=True).source == layer_graph(grads=True).source


# ---- collapsed view and depth -------------------------------------------------------------------
def test_collapsed_view_has_one_node_per_submodule_and_scope():
    source = layer_graph(view="collapsed").source
    nodes = parse_dot(source)
    assert len(nodes) <= 25
    groups = {n["label"].split("\\n")[0] for n in nodes.values() if n["class"] in ("module", "scope")}
    assert groups == {"self_attn", "ff", "norm1", "norm2", "residual1", "residual2"}
    assert not of_class(nodes, "op") and not of_class(nodes, "parameter")
    assert 'label="(2, 5, 16)"' in source  # shapes travel on the edges


def test_depth_two_collapses_the_projections_inside_self_attn():
    layer, y, _ = run_layer()
    nodes = parse_dot(viz.draw_graph(y, module=layer, depth=2).source)
    q = [n for n in of_class(nodes, "module").values() if n["label"].startswith("self_attn.q_proj\\n")]
    assert len(q) == 1 and q[0]["clusters"] == ("self_attn (MultiHeadAttention)",)
    assert any(n["label"] == "attention_weights" for n in of_class(nodes, "op").values())
    assert len(of_class(nodes, "op")) < viz.count_ops(y)


def test_bad_view_and_depth_are_rejected():
    layer, y, _ = run_layer()
    with pytest.raises(ValueError, match="view"):
        viz.draw_graph(y, view="tiny")
    with pytest.raises(ValueError, match="depth"):
        viz.draw_graph(y, depth=0)


# ---- annotations ------------------------------------------------------------------------------------
def test_gradient_norms_appear_after_backward():
    layer, y, _ = run_layer(grads=True)
    y.backward(minigrad.randn(*y.shape))
    nodes = parse_dot(viz.draw_graph(y, module=layer, grads=True).source)
    for kind in ("tensor", "parameter", "input", "output"):
        assert all("grad norm" in n["label"] for n in of_class(nodes, kind).values()), kind
    assert not any(n["red"] for n in nodes.values())
    collapsed = layer_graph(grads=True).source
    assert "param grad norm" in collapsed and "grad norm" in collapsed


def test_values_statistics_are_recorded():
    layer, y, _ = run_layer(values=True)
    nodes = parse_dot(viz.draw_graph(y, module=layer, values=True).source)
    assert all("mean" in n["label"] and "max" in n["label"] for n in of_class(nodes, "tensor").values())


def test_without_record_the_picture_says_so():
    minigrad.manual_seed(0)
    x = minigrad.randn(3, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    source = viz.draw_graph(y, grads=True).source
    assert "viz.record()" in source
    assert "grad norm" in source  # the leaf's .grad is still shown


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_gradient_and_inf_value_are_red():
    x = minigrad.tensor([1.0, 0.0], requires_grad=True)
    with viz.record(grads=True, values=True):
        a = x.sqrt()  # d sqrt(a) / da = inf at 0, so 0 * inf = NaN reaches a
        b = a.sqrt()
        loss = (b * 0.0).sum()
    loss.backward()
    nodes = parse_dot(viz.draw_graph(loss, grads=True).source)
    tensors = list(of_class(nodes, "tensor").values())
    assert tensors[0]["label"].startswith("(2,) float32") and tensors[0]["red"]  # a: NaN gradient
    assert of_class(nodes, "input")["in1"]["red"]
    assert "legend_nonfinite" in nodes

    with viz.record(grads=False, values=True):
        y = (x.log() * 1.0).sum()  # log(0) = -inf
    nodes = parse_dot(viz.draw_graph(y, values=True).source)
    assert [n["red"] for n in of_class(nodes, "tensor").values()] == [True, True]
    assert nodes["out"]["red"]


def test_record_removes_its_observer_even_on_error():
    before = list(autograd.node_observers)
    with pytest.raises(RuntimeError):
        with viz.record():
            raise RuntimeError("boom")
    assert autograd.node_observers == before


def test_graph_of_a_leaf_and_names_of_unnamed_tensors():
    x = minigrad.tensor([1.0, 2.0], requires_grad=True)
    assert viz.count_ops(x) == 0
    assert 'out [label="output\\n(2,) float32"' in viz.draw_graph(x).source
    a, b = minigrad.tensor([1.0], requires_grad=True), minigrad.tensor([2.0], requires_grad=True)
    a.name = "a"
    nodes = parse_dot(viz.draw_graph(a * b + 1.0, legend=False).source)
    assert [n["label"].split("\\n")[0] for n in of_class(nodes, "input").values()] == ["a", "input 2"]
    assert of_class(nodes, "constant") and not any(k.startswith("legend") for k in nodes)


# ---- files -------------------------------------------------------------------------------------------
@needs_dot
@pytest.mark.parametrize("suffix,magic", [(".svg", b"<svg"), (".png", b"\x89PNG")])
def test_render_with_dot(tmp_path, suffix, magic):
    path = write_layer_graph(tmp_path / "pics" / f"layer{suffix}", view="expanded")
    assert path == tmp_path / "pics" / f"layer{suffix}"
    assert magic in path.read_bytes()[:400]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind


def test_render_without_dot_writes_the_source(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    graph = layer_graph()
    path = viz.render(graph, tmp_path / "layer.svg")
    assert path == tmp_path / "layer.dot"
    assert path.read_text() == graph.source
    assert not (tmp_path / "layer.svg").exists()
    err = capsys.readouterr().err
    assert "Graphviz's 'dot' program is not installed; wrote" in err and "layer.dot" in err
    assert "apt-get install graphviz" in err


def test_render_rejects_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match="format"):
        viz.render(layer_graph(), tmp_path / "layer.txt")


def test_missing_graphviz_package_names_the_extra(monkeypatch):
    layer, y, _ = run_layer()
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(ImportError, match=r"minigrad-encoder\[viz\]"):
        viz.draw_graph(y)


# ---- the command line ----------------------------------------------------------------------------------
def graph_command(argv: list[str]) -> int:
    from encoder.cli import viz as graph_cli

    parser = argparse.ArgumentParser()
    graph_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["graph", *argv])
    return args.func(args)


def test_graph_command_writes_the_picture(tmp_path, capsys):
    out = tmp_path / "layer.dot"
    assert graph_command(["--out", str(out), "--view", "expanded", "--norm-first", "--composite"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert "(pre-LN, composite)" in out.read_text()


def test_graph_command_errors(tmp_path):
    from encoder.cli import CLIError

    with pytest.raises(CLIError, match="--out must end in"):
        graph_command(["--out", str(tmp_path / "layer.txt")])
    with pytest.raises(CLIError, match="divisible"):
        graph_command(["--out", str(tmp_path / "layer.dot"), "--d-model", "10", "--nhead", "3"])


def test_cli_main_prints_one_line(tmp_path, capsys):
    from encoder.cli import main

    assert main(["graph", "--out", str(tmp_path / "x.txt")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
