"""README.md and docs/guide.md say only what is true.

Every ```python block of the README runs, on its own, in a fresh interpreter, and prints
exactly the ```text block shown after it; the ```python blocks of the guide run in order,
sharing one namespace. Every `python -m encoder ...` line of the README parses with the
real command-line parser, every path it names exists and every `minigrad.`/`encoder.`/`F.`
name it mentions resolves. Benchmark figures belong in docs/performance.md, not here.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "guide.md"
PERFORMANCE = ROOT / "docs" / "performance.md"
BENCHMARKS_README = ROOT / "benchmarks" / "README.md"

FENCE_RE = re.compile(r"^```([\w+-]*)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
INLINE_RE = re.compile(r"`([^`\n]+)`")


@dataclass
class Fence:
    lang: str
    body: str
    line: int  # 1-based line of the opening ```
    start: int
    end: int


@dataclass
class Snippet:
    code: str
    expected: str | None  # the ```text block shown as its output, if any
    where: str


def _fences(text: str) -> list[Fence]:
    return [
        Fence(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1, m.start(), m.end())
        for m in FENCE_RE.finditer(text)
    ]


def _is_output_of(text: str, code: Fence, nxt: Fence) -> bool:
    """A ```text block is a snippet's output when at most one line of prose separates them."""
    between = [line for line in text[code.end : nxt.start].splitlines() if line.strip()]
    return nxt.lang == "text" and len(between) <= 1


def snippets(path: Path) -> list[Snippet]:
    """The ```python blocks of ``path``, each with the output block that follows it."""
    text = path.read_text()
    fences = _fences(text)
    out = []
    for i, fence in enumerate(fences):
        if fence.lang != "python":
            continue
        nxt = fences[i + 1] if i + 1 < len(fences) else None
        expected = nxt.body if nxt is not None and _is_output_of(text, fence, nxt) else None
        out.append(Snippet(fence.body, expected, f"{path.relative_to(ROOT)}:{fence.line + 1}"))
    return out


DRIVER = """
import contextlib, io, json, sys
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
outputs = []
for block in blocks:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(block["code"], block["where"], "exec"), namespace)
    outputs.append(buffer.getvalue())
json.dump(outputs, open(sys.argv[2], "w"))
"""


def run_snippets(blocks: list[Snippet], cwd: Path) -> list[str]:
    """Run ``blocks`` in order in one fresh interpreter (one namespace) in ``cwd``; their stdout each.

    The environment is the documented default: no MINIGRAD_* variables (the acceleration
    layer off, the CPU as default device), this checkout first on the path.
    """
    (cwd / "blocks.json").write_text(json.dumps([{"code": b.code, "where": b.where} for b in blocks]))
    (cwd / "driver.py").write_text(DRIVER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIGRAD_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(
        [sys.executable, "driver.py", "blocks.json", "outputs.json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"snippet failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads((cwd / "outputs.json").read_text())


README_SNIPPETS = snippets(README)


# ---- the README's python blocks -----------------------------------------------------------------
@pytest.mark.parametrize("snippet", README_SNIPPETS, ids=[s.where for s in README_SNIPPETS])
def test_readme_snippet_runs_alone_and_prints_what_the_readme_shows(snippet: Snippet, tmp_path: Path) -> None:
    (printed,) = run_snippets([snippet], tmp_path)
    if snippet.expected is not None:
        assert printed == snippet.expected
    else:
        assert printed == "", f"{snippet.where} prints output that the README does not show"


def test_readme_has_the_snippets_these_tests_rely_on() -> None:
    codes = [s.code for s in README_SNIPPETS]
    assert len(codes) >= 4
    assert any("loss.backward()" in c for c in codes), "the first taste"
    assert any("minigrad.accel.enable()" in c and "minigrad.accel.disable()" in c for c in codes)
    assert any("viz.render" in c for c in codes)
    assert any('minigrad.is_available("cuda")' in c for c in codes)


def test_first_taste_prints_the_numbers_shown() -> None:
    text = README.read_text()
    section = text[text.index("## A first taste") : text.index("## What is inside")]
    (snippet,) = [s for s in README_SNIPPETS if s.code in section]
    assert snippet.expected is not None and "tensor(-1.8918, grad_fn=<sum>)" in snippet.expected


def test_every_output_block_belongs_to_a_snippet() -> None:
    """No printed output in the README goes unchecked."""
    text = README.read_text()
    fences = _fences(text)
    for i, fence in enumerate(fences):
        if fence.lang == "text":
            assert i > 0 and fences[i - 1].lang == "python" and _is_output_of(text, fences[i - 1], fence), (
                f"README.md:{fence.line}: a ```text block that no python snippet prints"
            )


def test_every_code_block_says_its_language() -> None:
    """Python code cannot hide from the snippet tests in an untagged or oddly tagged block."""
    langs = {(f.lang, f.line) for f in _fences(README.read_text())}
    odd = sorted(line for lang, line in langs if lang not in {"python", "text", "sh", "bash"})
    assert not odd, f"README.md: code blocks at lines {odd} need ```python, ```text, ```sh or ```bash"


def test_graph_snippet_writes_the_layer_picture(tmp_path: Path) -> None:
    (snippet,) = [s for s in README_SNIPPETS if "viz.render" in s.code]
    run_snippets([snippet], tmp_path)
    written = [p for p in (tmp_path / "layer.svg", tmp_path / "layer.dot") if p.exists()]
    assert written, "the snippet wrote neither layer.svg nor (without Graphviz's dot) layer.dot"
    picture = written[0].read_text()
    for module in ("self_attn", "ff", "norm1", "norm2"):
        assert module in picture


# ---- docs/guide.md ------------------------------------------------------------------------------
def test_guide_python_blocks_run_in_order(tmp_path: Path) -> None:
    """The guide's ```python blocks build on each other: run them in one namespace, check shown output."""
    blocks = snippets(GUIDE)
    outputs = run_snippets(blocks, tmp_path)
    for block, printed in zip(blocks, outputs):
        if block.expected is not None:
            assert printed == block.expected, block.where


# ---- the command lines -------------------------------------------------------------------------
def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    from encoder.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return parser, dict(sub.choices)


def readme_encoder_commands(text: str) -> list[list[str]]:
    """The arguments of every `python -m encoder ...` the README shows, in code blocks or inline."""
    commands = []
    for m in re.finditer(r"python -m encoder\b([^\n`]*)", text):
        rest = re.split(r"\s#|&&|\|\||[|;]", m.group(1))[0]
        commands.append(shlex.split(rest))
    return commands


def test_readme_encoder_commands_parse(capsys: pytest.CaptureFixture[str]) -> None:
    commands = readme_encoder_commands(README.read_text())
    assert len(commands) >= 10
    parser, subcommands = _parser()
    wrong = []
    for argv in commands:
        line = "python -m encoder " + " ".join(argv)
        if not argv or argv[0] not in subcommands:
            wrong.append(f"{line}: no such command")
            continue
        known = set(subcommands[argv[0]]._option_string_actions) | set(parser._option_string_actions)
        wrong += [
            f"{line}: no flag {flag}"
            for flag in (a.split("=")[0] for a in argv)
            if flag.startswith("--") and flag not in known
        ]  # exactly: argparse would also accept an abbreviation
        if "--help" in argv:
            continue
        try:
            parser.parse_args(argv)
        except SystemExit:
            wrong.append(f"{line}: {capsys.readouterr().err.strip().splitlines()[-1]}")
    assert not wrong, "README.md shows command lines the CLI rejects:\n" + "\n".join(wrong)


def test_readme_shows_every_command() -> None:
    _, subcommands = _parser()
    shown = {argv[0] for argv in readme_encoder_commands(README.read_text()) if argv}
    assert shown == set(subcommands)


def test_readme_inline_flags_exist() -> None:
    """A flag named in the prose (`--norm-first`) is a flag of some command."""
    parser, subcommands = _parser()
    known = set(parser._option_string_actions)
    for sub in subcommands.values():
        known |= set(sub._option_string_actions)
    flags = {code.split()[0] for code in INLINE_RE.findall(_prose(README.read_text())) if code.startswith("--")}
    assert flags and flags <= known, f"unknown flags: {sorted(flags - known)}"


def test_readme_shows_the_two_commands_and_the_venv() -> None:
    text = README.read_text()
    for words in ("make demo", "make test", ". .venv/bin/activate", ".venv/bin/python -m encoder"):
        assert words in text
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:.*\n\t.*-m encoder demo", makefile, re.M)
    assert re.search(r"^test:.*\n(\t.*\n)*\t.*-m pytest", makefile, re.M)


# ---- names and paths ---------------------------------------------------------------------------
def _prose(text: str) -> str:
    return FENCE_RE.sub("", text)


def _resolve(dotted: str) -> Any:
    """Import the longest module prefix of ``dotted`` and getattr the rest."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError as exc:
            if exc.name is None or not ".".join(parts[:i]).startswith(exc.name):
                raise
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"no module in {dotted!r}")


NAME_RE = re.compile(r"^((?:minigrad|encoder|F)(?:\.[A-Za-z_]\w*)+)(\(.*\))?$")


def test_readme_names_resolve() -> None:
    """`minigrad.accel.status()`, `F.cross_entropy_composite`, `encoder.attention....`: each exists."""
    names = set()
    for code in INLINE_RE.findall(_prose(README.read_text())):
        m = NAME_RE.match(code)
        if m:
            names.add(re.sub(r"^F\.", "minigrad.functional.", m.group(1)))
    assert len(names) >= 10
    broken = []
    for name in sorted(names):
        try:
            _resolve(name)
        except (ImportError, AttributeError) as exc:
            broken.append(f"{name}: {exc!r}")
    assert not broken, "README.md names what does not exist:\n" + "\n".join(broken)


PATH_RE = re.compile(r"(?<![\w./-])((?:minigrad|encoder|examples|docs|tests|benchmarks)/[\w./-]*)")


def test_readme_paths_exist() -> None:
    paths = {p.rstrip(".") for p in PATH_RE.findall(README.read_text())}
    assert len(paths) >= 20
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"README.md names files that do not exist: {missing}"


def test_readme_lists_every_example_and_task() -> None:
    from encoder.tasks import TASKS

    text = README.read_text()
    for example in sorted((ROOT / "examples").glob("[0-9][0-9]_*.py")):
        assert f"`examples/{example.name}`" in text
    for task in TASKS:
        assert f"`{task}`" in text


def test_readme_claims_the_composite_cross_entropy_only_as_tested() -> None:
    text = " ".join(README.read_text().split())
    if "cross_entropy_composite" in text:
        assert "`F.cross_entropy_composite`, tested equal to the fused `F.cross_entropy`" in text
    assert "composite twin" not in text


# ---- figures live in docs/performance.md -------------------------------------------------------
FIGURE_RES = {
    "a ratio": re.compile(r"\b\d+(?:\.\d+)?x\b"),
    "a time or rate": re.compile(r"\b\d+(?:\.\d+)? ?(?:ms|us|GFLOP/s|TFLOP/s|MiB|GiB)\b"),
    "a commit hash": re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b"),
}


@pytest.mark.parametrize("page", [README, BENCHMARKS_README], ids=["README.md", "benchmarks/README.md"])
def test_no_benchmark_figures_outside_performance_md(page: Path) -> None:
    text = page.read_text()
    found = [f"{what}: {m.group(0)!r}" for what, regex in FIGURE_RES.items() for m in regex.finditer(text)]
    assert not found, f"{page.relative_to(ROOT)} has figures that belong in docs/performance.md: {found}"


def test_readme_is_short_and_links_the_figures() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    assert "](docs/performance.md)" in text and "](docs/guide.md)" in text


def test_performance_md_has_the_tables() -> None:
    text = PERFORMANCE.read_text()
    assert text.index("## Wave 2 (redesign)") < text.index("## Wave 1")
    for heading in ("2-core CPU VM", "H200", "H100", "## What was tried"):
        assert heading in text
    # each machine's table comes with the command that measured it
    for command in ("benchmarks/encoder_step.py --config NAME --threads N", "--device cuda", "benchmarks/micro.py"):
        assert command in text


def test_benchmarks_readme_describes_every_script() -> None:
    text = BENCHMARKS_README.read_text()
    scripts = sorted(p.name for p in (ROOT / "benchmarks").iterdir() if p.suffix in {".py", ".sh"})
    missing = [s for s in scripts if f"`{s}`" not in text]
    assert not missing, f"benchmarks/README.md does not describe {missing}"
