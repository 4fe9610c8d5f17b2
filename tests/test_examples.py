"""The learning path: every example runs (in quick mode) and returns the numbers it
teaches, and every code reference in docs/guide.md points at something that exists.

Example files start with digits, so they are loaded with importlib from their paths.
Each ``main(["--out", tmp])`` returns a dict of its key numbers; quick mode
(``MINIGRAD_EXAMPLES_QUICK=1``) keeps the training examples to a few dozen steps.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import math
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from marked_backend import MarkedBackend

import minigrad
import minigrad.backend as B

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GUIDE = ROOT / "docs" / "guide.md"
EXAMPLE_NAMES = [
    "01_autograd_basics",
    "02_custom_op",
    "03_softmax_layernorm",
    "04_attention_head_backprop",
    "05_encoder_layer",
    "06_train_sort_attention",
    "07_postln_vs_preln",
    "08_switch_backend",
    "09_data_parallel",
    "10_flash_attention",
    "11_bert_attention",
]
HAS_GRAPHVIZ = importlib.util.find_spec("graphviz") is not None
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def load_example(name: str) -> ModuleType:
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"minigrad_example_{name}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """run(name) -> the example's main() result, in quick mode, pictures under tmp_path."""
    monkeypatch.setenv("MINIGRAD_EXAMPLES_QUICK", "1")
    default_dtype = minigrad.get_default_dtype()
    default_device = minigrad.get_default_device()

    def _run(name: str) -> dict[str, Any]:
        result = load_example(name).main(["--out", str(tmp_path)])
        assert isinstance(result, dict)
        return result

    yield _run
    # examples must not leave global settings changed behind them
    assert minigrad.get_default_dtype() == default_dtype
    assert minigrad.get_default_device() == default_device


# ---- the examples, one by one ---------------------------------------------------------------
# Every number and claim an example prints is in its result and asserted here, with a margin.
def _dot_nodes(source: str) -> dict[str, str]:
    """DOT node id -> its attribute text, for the node lines of a graphviz source."""
    return dict(re.findall(r"^\s*(\w+) \[(.*)\]$", source, flags=re.M))


def test_01_autograd_basics(run: Any) -> None:
    r = run("01_autograd_basics")
    for k in ("a", "b", "c"):
        assert r["grads"][k] == pytest.approx(r["closed_form"][k], abs=1e-12)
        assert r["by_hand"][k] == pytest.approx(r["closed_form"][k], abs=1e-10)  # the comments' numbers
    assert r["max_diff"] < 1e-12
    assert r["loss"] == pytest.approx(r["loss_closed_form"], abs=1e-12)
    # the intermediate numbers of the comments (11 digits), as autograd computed them
    assert set(r["steps"]) == set(r["by_hand_steps"]) == {"u", "t", "L", "dL/dt", "dt/du", "dL/du"}
    for k, v in r["by_hand_steps"].items():
        assert r["steps"][k] == pytest.approx(v, abs=1e-10), k
    # docs/guide.md section 1 quotes the same numbers to 5 digits
    guide = GUIDE.read_text()
    quoted = {"u": -0.5, "t": -0.46212, "L": 0.21355, "dL/dt": -0.92423, "dt/du": 0.78645, "dL/du": -0.72686}
    for k, v in quoted.items():
        assert f"{v}" in guide, (k, v)
        assert r["steps"][k] == pytest.approx(v, abs=5e-6), k
    for k, v in {"a": 0.72686, "b": -1.45372, "c": -0.72686}.items():
        assert f"dL/d{k} = " in guide and f"{v}" in guide
        assert r["grads"][k] == pytest.approx(v, abs=5e-6), k
    # the graph walked along first inputs, and the order in which backward reached the tensors
    assert r["chain"] == ["pow", "tanh", "add", "mul"] and r["leaf"] == "a"
    assert r["reached"] == ["t", "u", "a*b", "a"]
    if HAS_GRAPHVIZ:
        assert r["picture"] is not None and Path(r["picture"]).exists()
        assert Path(r["picture"]).suffix in (".svg", ".dot")
        # "ellipses are ops, boxes are tensors with their value and grad norm"
        nodes = _dot_nodes(r["dot_source"])
        ops = {attrs for node, attrs in nodes.items() if "class=op" in attrs}
        assert sorted(re.search(r"label=(\w+)", a).group(1) for a in ops) == sorted(r["chain"])
        assert all("shape=ellipse" in a for a in ops)
        leaves = {re.search(r'label="(\w)\\n', a).group(1): a for a in nodes.values() if "class=input" in a}
        assert set(leaves) == {"a", "b", "c"}
        for k, value in (("a", 2), ("b", -1), ("c", 1.5)):
            assert "shape=box" in leaves[k] and f"mean {value} " in leaves[k]
            assert f"grad norm {abs(r['grads'][k]):.3g}" in leaves[k]


def test_02_custom_op(run: Any) -> None:
    r = run("02_custom_op")
    assert r["node"] == "silu" and r["node_shape"] == r["shape"] == (3, 4)  # one node of the custom op
    assert r["value_diff"] < 1e-14 and r["grad_diff"] < 1e-14
    assert r["good_passed"] and r["gradgrad_passed"]
    assert r["bad_caught"]
    # the report names the output, the input, the worst element and both values; check them:
    # the wrong backward returns u * s, the right one u * s * (1 + x (1 - s)), so their ratio at
    # the worst element is 1 + x (1 - s) whatever the random upstream u
    m = re.search(
        r"output 0 with respect to input 0 \(shape \((\d+), (\d+)\)\) is wrong; worst element \((\d+), (\d+)\): "
        r"numerical (\S+), analytical (\S+) \(atol=1e-05, rtol=0.001\); (\d+) of (\d+) elements differ",
        r["report"],
    )
    assert m, r["report"]
    rows, cols, i, j = (int(v) for v in m.groups()[:4])
    numerical, analytical = float(m.group(5)), float(m.group(6))
    assert (rows, cols) == r["shape"]
    x = r["x"][i][j]
    s = 1.0 / (1.0 + math.exp(-x))
    assert numerical / analytical == pytest.approx(1.0 + x * (1.0 - s), rel=1e-6)
    assert int(m.group(7)) == int(m.group(8)) == rows * cols  # every element is wrong (x != 0 everywhere)


def test_03_softmax_layernorm(run: Any) -> None:
    r = run("03_softmax_layernorm")
    # "to rounding: about 1e-16 for softmax, 1e-15 for layer norm" (docs/guide.md says the same)
    assert r["softmax"]["value_diff"] < 1e-15 and r["softmax"]["grad_diff"] < 1e-15
    assert r["layer_norm"]["value_diff"] < 1e-14 and r["layer_norm"]["grad_diff"] < 1e-14
    # one node fused; the composite ops the guide lists (softmax: 4, layer norm: 9)
    assert r["softmax"]["nodes_fused"] == 1 and r["softmax"]["ops_fused"] == ["softmax"]
    assert r["layer_norm"]["nodes_fused"] == 1 and r["layer_norm"]["ops_fused"] == ["layer_norm"]
    assert r["softmax"]["nodes_composite"] == 4
    assert r["softmax"]["ops_composite"] == sorted(["sub", "exp", "sum", "div"])
    assert r["layer_norm"]["nodes_composite"] == 9
    nine = ["mean", "sub", "mul", "mean", "add", "sqrt", "div", "mul", "add"]  # the guide's list, in order
    assert r["layer_norm"]["ops_composite"] == sorted(nine)
    # the (D,) weight and bias gradients are sums over the B * S positions
    assert r["layer_norm"]["param_grad_shape"] == (5,)
    assert r["layer_norm"]["param_grad_vs_sums"]["weight"] < 1e-14
    assert r["layer_norm"]["param_grad_vs_sums"]["bias"] < 1e-14


def test_04_attention_head_backprop(run: Any) -> None:
    r = run("04_attention_head_backprop")
    assert set(r["diffs"]) == {"Q", "K", "V", "W", "S"}
    assert r["max_diff"] < 1e-15  # docs/guide.md: "0 to 2e-16"
    assert r["rowsum_dS"] < 1e-14  # zero to rounding
    # the padded key: weight exactly 0, and exactly no gradient to its key and value rows ...
    assert r["masked_weight"] == 0.0
    assert r["masked_key_grad"] == 0.0 and r["masked_value_grad"] == 0.0
    # ... while every real key gets some, and each query's weights on the real keys sum to 1
    assert r["smallest_real_key_grad"] > 1e-3 and r["smallest_real_value_grad"] > 1e-3
    assert r["real_weight_rowsum_error"] < 1e-14


def _layer_parameters(d: int, d_ff: int) -> dict[str, int]:
    """Parameter counts of one encoder layer's sub-layers (weights and biases)."""
    return {"self_attn": 4 * (d * d + d), "ff": d * d_ff + d_ff + d_ff * d + d, "norm1": 2 * d, "norm2": 2 * d}


def test_05_encoder_layer(run: Any) -> None:
    r = run("05_encoder_layer")
    dims = r["dims"]
    assert r["gradcheck_passed"] is True
    assert r["gradcheck_tensors"] == 17  # "the input and 16 parameter tensors"
    assert r["padded_per_sequence"] == list(range(dims["batch"]))  # "sequence b has its last b positions padded"
    expected = _layer_parameters(dims["d_model"], dims["d_ff"])
    assert r["num_parameters"] == sum(expected.values()) == 600
    assert {k: v["values"] for k, v in r["sizes"].items()} == expected
    assert {k: v["tensors"] for k, v in r["sizes"].items()} == {"self_attn": 8, "ff": 4, "norm1": 2, "norm2": 2}
    for name in ("self_attn", "ff", "norm1", "norm2", "input"):
        assert math.isfinite(r["grad_norms"][name]) and r["grad_norms"][name] > 0.1
    n = dims["batch"] * dims["seq"] * dims["d_model"]
    assert 0.5 * math.sqrt(n) < r["upstream_norm"] < 1.5 * math.sqrt(n)  # a standard normal upstream
    if HAS_GRAPHVIZ:
        assert set(r["pictures"]) == {"collapsed", "expanded"}
        assert all(Path(p).exists() for p in r["pictures"].values())


def test_06_train_sort_attention(run: Any) -> None:
    r = run("06_train_sort_attention")
    assert r["chance"] == pytest.approx(0.1)  # one of 10 digits
    assert r["token_acc"] > 3 * r["chance"]  # learned something in 60 quick steps
    assert 0.0 <= r["seq_acc"] <= 1.0
    assert r["steps"] == 60 and r["num_layers"] == 2
    # "17,834 parameters": embedding, two pre-LN layers, the final LayerNorm, the head
    d, d_ff, classes = 32, 64, 10
    layers = 2 * sum(_layer_parameters(d, d_ff).values())
    assert r["num_parameters"] == r["vocab_size"] * d + layers + 2 * d + d * classes + classes == 17834
    # the evaluation rows it prints; the last is the final one
    assert [e["step"] for e in r["evals"]] == [15, 30, 45, 60]
    for e in r["evals"]:
        assert math.isfinite(e["loss"]) and 0.0 <= e["val_token_acc"] <= 1.0 and 0.0 <= e["val_seq_acc"] <= 1.0
    assert r["evals"][-1]["val_token_acc"] == r["token_acc"] and r["evals"][-1]["val_seq_acc"] == r["seq_acc"]
    assert r["evals"][-1]["loss"] < r["evals"][0]["loss"]
    # the example shown: a shorter sequence (so there is padding), its target is the sorted input
    shown = r["shown"]
    assert 4 <= shown["digits"] < 8 and shown["digits"] + shown["padding"] == 8
    assert len(shown["input"]) == len(shown["target"]) == len(shown["prediction"]) == shown["digits"]
    assert shown["target"] == "".join(sorted(shown["input"]))
    assert shown["prediction"].isdigit()
    # "rows sum to 1.000; largest weight on a padded key: 0.0"
    assert r["layer0_weights_shape"] == (4, 8, 8)  # (heads, queries, keys)
    lo, hi = r["layer0_row_sums"]
    assert abs(lo - 1.0) < 1e-5 and abs(hi - 1.0) < 1e-5  # float32
    assert r["layer0_padded_max_weight"] == 0.0  # exactly, not just rounded (and not None: there is padding)
    if HAS_MATPLOTLIB:
        assert len(r["pictures"]) == 2
        for p in r["pictures"]:
            assert Path(p).suffix == ".png" and Path(p).stat().st_size > 0


def test_07_postln_vs_preln(run: Any) -> None:
    """Example 07's lesson, as it prints it and docs/guide.md quotes it: at a high learning rate
    without warmup post-LN stays at chance level, with warmup it learns, and pre-LN learns
    either way; post-LN's gradients at initialization are larger in every layer."""
    r = run("07_postln_vs_preln")
    assert set(r["curves"]) == {"post-LN, warmup", "post-LN, no warmup", "pre-LN, warmup", "pre-LN, no warmup"}
    assert r["steps"] == 60 and r["warmup_steps"] == 60 // 5
    for name, curve in r["curves"].items():
        assert len(curve) == r["steps"] and all(math.isfinite(x) for x in curve), name
        # "final loss": the mean of the last tenth of the curve
        tail = curve[-max(r["steps"] // 10, 1) :]
        assert r["final"][name]["final_loss"] == pytest.approx(sum(tail) / len(tail), rel=1e-12), name
        assert 0.0 < r["final"][name]["token_acc"] <= 1.0, name
    # same initial weights and batches for the two runs of one architecture: the same first loss,
    # then different losses (a different learning rate schedule)
    for ln in ("post-LN", "pre-LN"):
        warm, cold = r["curves"][f"{ln}, warmup"], r["curves"][f"{ln}, no warmup"]
        assert warm[0] == cold[0] and warm[1] != cold[1], ln
    # the lesson, with margins: stuck means a final loss above 2.0 (chance is ln 10 = 2.30) and a
    # token accuracy near 1/10; learning means below 1.5 (here all three are below 1.3)
    final = r["final"]
    assert r["lesson"] == {
        "post-LN, warmup": "learning",
        "post-LN, no warmup": "stuck near chance",
        "pre-LN, warmup": "learning",
        "pre-LN, no warmup": "learning",
    }
    assert 2.0 < final["post-LN, no warmup"]["final_loss"] < math.log(10) + 0.1
    assert final["post-LN, no warmup"]["token_acc"] < 0.25
    for name in ("post-LN, warmup", "pre-LN, warmup", "pre-LN, no warmup"):
        assert final[name]["final_loss"] < 1.3 and final[name]["token_acc"] > 0.55, name
    assert final["post-LN, warmup"]["final_loss"] < 0.6 * final["post-LN, no warmup"]["final_loss"]
    norms = r["grad_norms_at_init"]
    assert set(norms) == {"post-LN", "pre-LN"}
    assert all(len(v) == 6 and all(math.isfinite(x) and x > 0.05 for x in v) for v in norms.values())
    # post-LN's gradients at initialization are larger than pre-LN's in every layer, by the
    # factors it prints (the guide quotes "1.3x to 1.7x")
    ratios = [p / q for p, q in zip(norms["post-LN"], norms["pre-LN"])]
    assert r["grad_ratio"] == (min(ratios), max(ratios))
    assert 1.2 < min(ratios) and max(ratios) < 1.8
    if HAS_MATPLOTLIB:
        assert r["picture"] is not None and Path(r["picture"]).exists()


def test_08_switch_backend(run: Any) -> None:
    r = run("08_switch_backend")
    cpu = r["cpu"]
    assert cpu["device"] == "cpu" and cpu["array_type"] == "numpy.ndarray"
    assert len(cpu["losses"]) == r["steps"] == 20 and all(math.isfinite(x) for x in cpu["losses"])
    assert cpu["final_loss"] == cpu["losses"][-1] < cpu["losses"][0]
    assert 0.0 <= cpu["token_acc"] <= 1.0 and cpu["seconds"] > 0  # steps/s = steps / seconds
    if minigrad.is_available("cuda"):
        assert r["cuda_skipped"] is False
        assert len(r["cuda"]["losses"]) == len(cpu["losses"])
        assert r["max_loss_diff"] < 1e-2  # float32 on two libraries: close, not bit for bit
        assert r["max_loss_diff_all"] >= r["max_loss_diff"]
    else:
        assert r["cuda_skipped"] is True and r["cuda"] is None
        assert r["max_loss_diff"] is None and r["max_loss_diff_all"] is None
        assert r["reason"]  # it says why
        if importlib.util.find_spec("cupy") is None:
            assert "CuPy" in r["reason"]


def test_08_switch_backend_gpu_branch(run: Any) -> None:
    """The GPU half of example 08, run on a stand-in "cuda" device (CPU arrays) where there is no GPU."""
    if minigrad.is_available("cuda"):
        pytest.skip("a real GPU is present: test_08_switch_backend runs the GPU branch")
    class FakeCuda(MarkedBackend):
        device = "cuda"

    B.register_backend(FakeCuda())
    try:
        r = run("08_switch_backend")
    finally:
        B.unregister_backend("cuda")
    assert r["cuda_skipped"] is False and r["cuda"]["device"] == "cuda"
    assert r["cuda"]["array_type"].endswith("MarkedArray")  # it really ran on the other backend
    assert r["cuda"]["losses"] == pytest.approx(r["cpu"]["losses"], abs=1e-6)
    assert r["cuda"]["final_loss"] == r["cuda"]["losses"][-1]
    assert r["max_loss_diff"] < 1e-6 and r["max_loss_diff_all"] < 1e-6


def test_09_data_parallel(run: Any) -> None:
    r = run("09_data_parallel")
    assert r["largest_gradient"] > 0.01  # the gradients are not trivially zero ...
    for key in ("max_diff_two_chunks", "max_diff_per_example", "max_diff_data_parallel"):
        assert r[key] < 1e-15  # ... and the three ways agree with one backward (float64; the guide: ~1e-16)
    assert math.isfinite(r["loss"]) and r["loss"] > 0
    assert r["threads"] == min(2, os.cpu_count() or 1)
    assert r["ms_one_graph"] > 0 and r["ms_two_chunks"] > 0  # timed (not compared: no timing in tests)


def test_10_flash_attention(run: Any) -> None:
    r = run("10_flash_attention")
    assert r["online_softmax_max_diff"] < 1e-15  # the rescaling is exact: rounding only
    assert r["max_diff_output"] < 1e-12 and r["max_diff_grads"] < 1e-12  # flash is the plain attention
    assert r["dead_row_output"] == 0.0  # the dead row: output exactly 0
    assert r["d_identity_max_diff"] < 1e-12  # D = rowsum(dO * O) = rowsum(dW * W)
    assert r["seq"] == 256 and r["weights_mb"] == pytest.approx(2.0)  # quick mode: 8 x 256 x 256 float32
    assert r["plain_mb"] > r["weights_mb"]  # the plain attention holds its weights (and more)
    assert r["flash_mb"] < r["plain_mb"] / 2  # the printed "x less" is at least 2 in quick mode


def test_11_bert_attention(run: Any, tmp_path: Path) -> None:
    r = run("11_bert_attention")
    assert r["random"] and (tmp_path / "11_random_bert" / "model.safetensors").exists()  # built, not downloaded
    assert r["round_trip_mismatched"] == []  # "0 of 42 tensors differ": bit for bit
    assert r["tokens"] == "[CLS] the capital of france is [MASK] . [SEP]".split() and r["position"] == 6
    assert r["embedding_shape"] == (1, 9, 16) and r["weights_shape"] == (1, 2, 9, 9)
    assert r["row_sum_error"] < 1e-14  # every row of the weights sums to 1
    probs = [p for _, p in r["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    # the last layer: only the [MASK] row reaches the logit; the first layer: every row does
    assert r["live_rows"][-1] == [6] and len(r["live_rows"][0]) == 9
    assert r["score_row_sum"] < 1e-14  # dS rows sum to 0
    assert r["key_bias_grad"] < 1e-14 < 1e-3 < r["query_bias_grad"]  # the key bias: exactly 0 up to rounding


# ---- the examples' shared shape -----------------------------------------------------------------
def _imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_is_a_script_with_main(name: str) -> None:
    """main(argv=None), the __main__ guard, --out and the quick-mode switch; minigrad, not NumPy."""
    source = (EXAMPLES / f"{name}.py").read_text()
    tree = ast.parse(source)
    mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    assert len(mains) == 1 and mains[0].args.args[0].arg == "argv"
    assert 'if __name__ == "__main__":' in source
    assert '"--out"' in source and "MINIGRAD_EXAMPLES_QUICK" in source
    assert ast.get_docstring(tree), "every example starts with a docstring saying what it teaches"
    assert "numpy" not in _imports(tree)


def test_every_example_is_listed() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("[0-9][0-9]_*.py")) == EXAMPLE_NAMES


# ---- docs/guide.md: every code reference resolves ------------------------------------------------
PATH_RE = re.compile(r"^[\w.\-]+(/[\w.\-]+)+\.(py|md|toml|txt)$")
DOTTED_RE = re.compile(r"^(minigrad|encoder)(\.[A-Za-z_]\w*)*$")
NAME_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
INLINE_RE = re.compile(r"`([^`\n]+)`")


def _inline_code(text: str) -> list[tuple[str, str]]:
    """(code, text up to the next inline code) for each inline code span outside fenced blocks."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    spans = list(INLINE_RE.finditer(text))
    out = []
    for i, m in enumerate(spans):
        end = spans[i + 1].start() if i + 1 < len(spans) else len(text)
        out.append((m.group(1), text[m.end() : end]))
    return out


def _module_of(path: str) -> str:
    mod = path[: -len(".py")].replace("/", ".")
    return mod[: -len(".__init__")] if mod.endswith(".__init__") else mod


def _resolve(dotted: str) -> Any:
    """Import the longest module prefix of ``dotted`` and getattr the rest."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)  # AttributeError: a broken reference
        return obj
    raise ImportError(f"no module in {dotted!r}")


def _guide_references() -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """(paths, dotted names, (path, name inside it)) referenced by the guide."""
    paths, dotted, relative = [], [], []
    spans = _inline_code(GUIDE.read_text())
    for i, (code, between) in enumerate(spans):
        if PATH_RE.match(code):
            paths.append(code)
            # `path/to/file.py` `Name.attr`: a name inside that file
            if code.endswith(".py") and between.strip() == "" and i + 1 < len(spans):
                nxt = spans[i + 1][0]
                if NAME_RE.match(nxt) and not DOTTED_RE.match(nxt):
                    relative.append((code, nxt))
        elif DOTTED_RE.match(code) and "." in code:
            dotted.append(code)
    return paths, dotted, relative


def test_guide_paths_exist() -> None:
    paths, _, _ = _guide_references()
    assert len(paths) >= 15
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"docs/guide.md mentions files that do not exist: {missing}"


def test_guide_dotted_names_resolve() -> None:
    _, dotted, relative = _guide_references()
    assert len(dotted) >= 20 and len(relative) >= 10
    broken = []
    for name in dotted:
        try:
            _resolve(name)
        except (ImportError, AttributeError) as exc:
            broken.append(f"{name}: {exc}")
    for path, name in relative:
        try:
            _resolve(f"{_module_of(path)}.{name}")
        except (ImportError, AttributeError) as exc:
            broken.append(f"{path} {name}: {exc}")
    assert not broken, "docs/guide.md has broken code references:\n" + "\n".join(broken)


def test_guide_covers_every_example() -> None:
    text = GUIDE.read_text()
    mentioned = set(re.findall(r"examples/[\w.\-]+\.py", text))
    missing = sorted(m for m in mentioned if not (ROOT / m).exists())
    assert not missing, f"docs/guide.md mentions examples that do not exist: {missing}"
    unmentioned = {f"examples/{n}.py" for n in EXAMPLE_NAMES} - mentioned
    assert not unmentioned, f"docs/guide.md never mentions {sorted(unmentioned)}"
