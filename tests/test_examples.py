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
def test_01_autograd_basics(run: Any) -> None:
    r = run("01_autograd_basics")
    for k in ("a", "b", "c"):
        assert r["grads"][k] == pytest.approx(r["closed_form"][k], abs=1e-12)
        assert r["by_hand"][k] == pytest.approx(r["closed_form"][k], abs=1e-10)  # the comments' numbers
    assert r["max_diff"] < 1e-12
    assert r["loss"] == pytest.approx(r["loss_closed_form"], abs=1e-12)
    if HAS_GRAPHVIZ:
        assert r["picture"] is not None and Path(r["picture"]).exists()
        assert Path(r["picture"]).suffix in (".svg", ".dot")


def test_02_custom_op(run: Any) -> None:
    r = run("02_custom_op")
    assert r["good_passed"] and r["gradgrad_passed"]
    assert r["bad_caught"]
    assert "gradcheck" in r["report"] and "numerical" in r["report"] and "analytical" in r["report"]
    assert r["value_diff"] < 1e-12 and r["grad_diff"] < 1e-12


def test_03_softmax_layernorm(run: Any) -> None:
    r = run("03_softmax_layernorm")
    for op in ("softmax", "layer_norm"):
        assert r[op]["value_diff"] < 1e-10
        assert r[op]["grad_diff"] < 1e-10
        assert r[op]["nodes_fused"] == 1
        assert r[op]["nodes_composite"] > r[op]["nodes_fused"]


def test_04_attention_head_backprop(run: Any) -> None:
    r = run("04_attention_head_backprop")
    assert set(r["diffs"]) == {"Q", "K", "V", "W", "S"}
    assert r["max_diff"] < 1e-10
    assert r["rowsum_dS"] < 1e-10
    assert r["masked_key_grad"] == 0.0 and r["masked_value_grad"] == 0.0


def test_05_encoder_layer(run: Any) -> None:
    r = run("05_encoder_layer")
    assert r["gradcheck_passed"] is True
    for name in ("self_attn", "ff", "norm1", "norm2"):
        assert math.isfinite(r["grad_norms"][name]) and r["grad_norms"][name] > 0
    if HAS_GRAPHVIZ:
        assert set(r["pictures"]) == {"collapsed", "expanded"}
        assert all(Path(p).exists() for p in r["pictures"].values())


def test_06_train_sort_attention(run: Any) -> None:
    r = run("06_train_sort_attention")
    assert r["token_acc"] > r["chance"]
    assert r["num_layers"] == 2
    if HAS_MATPLOTLIB:
        assert len(r["pictures"]) == 2
        for p in r["pictures"]:
            assert Path(p).suffix == ".png" and Path(p).stat().st_size > 0


def test_07_postln_vs_preln(run: Any) -> None:
    r = run("07_postln_vs_preln")
    assert set(r["curves"]) == {"post-LN, warmup", "post-LN, no warmup", "pre-LN, warmup", "pre-LN, no warmup"}
    for curve in r["curves"].values():
        assert len(curve) == r["steps"]
        assert math.isfinite(curve[0])
    assert set(r["grad_norms_at_init"]) == {"post-LN", "pre-LN"}
    assert all(len(v) == 6 and all(x > 0 for x in v) for v in r["grad_norms_at_init"].values())
    if HAS_MATPLOTLIB:
        assert r["picture"] is not None and Path(r["picture"]).exists()


def test_08_switch_backend(run: Any) -> None:
    r = run("08_switch_backend")
    cpu = r["cpu"]
    assert cpu["device"] == "cpu" and len(cpu["losses"]) > 0 and math.isfinite(cpu["final_loss"])
    if minigrad.is_available("cuda"):
        assert r["cuda_skipped"] is False
        assert len(r["cuda"]["losses"]) == len(cpu["losses"])
        assert r["max_loss_diff"] < 1e-2  # float32 on two libraries: close, not bit for bit
    else:
        assert r["cuda_skipped"] is True and r["cuda"] is None
        assert r["reason"]  # it says why


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
    assert r["max_loss_diff"] < 1e-6


def test_09_data_parallel(run: Any) -> None:
    r = run("09_data_parallel")
    assert r["largest_gradient"] > 0.01  # the gradients are not trivially zero ...
    for key in ("max_diff_two_chunks", "max_diff_per_example", "max_diff_data_parallel"):
        assert r[key] < 1e-12  # ... and the three ways agree with one backward (float64)
    assert math.isfinite(r["loss"]) and r["loss"] > 0
    assert r["ms_one_graph"] > 0 and r["ms_two_chunks"] > 0  # timed (not compared: no timing in tests)


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
