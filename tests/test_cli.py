"""The command line, ``python -m encoder ...``: help, one-line errors, and every command end to end.

Most cases call :func:`encoder.cli.main` in-process (fast, output captured with capsys);
a few run ``python -m encoder`` as a subprocess to check what a user really sees.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import minigrad
from encoder.checkpoint import load_checkpoint
from encoder.cli import main

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
TINY = ["--task", "reverse", "--layers", "1", "--d-model", "16", "--heads", "2", "--steps", "30", "--eval-every", "10"]


def run_module(*args: str, pythonpath: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(map(str, (*pythonpath, ROOT)))}
    return subprocess.run(
        [sys.executable, "-m", "encoder", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def one_line_error(capsys, argv: list[str]) -> str:
    """Run ``argv``, expect exit status 2 and a single ``error: ...`` line on stderr; return it."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny reverse run trained once through the CLI, shared by the read-only tests."""
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *TINY, "--out", str(out), "--no-progress"]) == 0
    return out


# ---------------------------------------------------------------------------------------
# help
# ---------------------------------------------------------------------------------------
COMMAND_FLAGS = {
    "train": [
        "--task",
        "--layers",
        "--d-model",
        "--heads",
        "--dropout",
        "--steps",
        "--lr",
        "--schedule",
        "--warmup",
        "--eval-every",
        "--target-acc",
        "--seed",
        "--device",
        "--out",
        "--no-progress",
        "--resume",
    ],
    "eval": ["--checkpoint", "--device"],
    "predict": ["--checkpoint", "--n", "--seed"],
    "attention": ["--checkpoint", "--example", "--layer", "--grads", "--out"],
    "demo": ["--steps", "--target-acc", "--out", "--no-progress"],
    "graph": ["--out", "--view", "--grads", "--norm-first"],
    "bert": ["--weights", "--text", "--grads", "--top", "--out", "--device"],
}


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "python -m encoder" in out
    for command in COMMAND_FLAGS:
        assert command in out


@pytest.mark.parametrize("command", sorted(COMMAND_FLAGS))
def test_command_help_mentions_its_flags(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m encoder {command}")
    for flag in COMMAND_FLAGS[command]:
        assert flag in out, flag


def test_help_as_a_subprocess():
    result = run_module("train", "--help")
    assert result.returncode == 0, result.stderr
    assert "--task" in result.stdout and "--resume" in result.stdout
    for task in ("sort", "reverse", "parity", "mlm"):
        assert task in result.stdout


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "usage:" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# one-line errors
# ---------------------------------------------------------------------------------------
def test_unknown_task_lists_the_known_ones(capsys):
    line = one_line_error(capsys, ["train", "--task", "nope", "--no-progress"])
    assert "'nope'" in line
    for task in ("brackets", "count", "majority", "mlm", "parity", "reverse", "sort"):
        assert task in line


def test_unknown_task_as_a_subprocess():
    result = run_module("train", "--task", "nope", "--no-progress")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown task 'nope'")
    assert "sort" in lines[0] and "parity" in lines[0]
    assert result.stdout == ""


def test_heads_must_divide_d_model(capsys):
    line = one_line_error(capsys, ["train", "--d-model", "30", "--heads", "4", "--no-progress"])
    assert "30" in line and "4" in line and "divisible" in line


@pytest.mark.parametrize(
    ("flags", "words"), [(["--dropout", "1.5"], "--dropout"), (["--lr", "0"], "--lr"), (["--lr", "-1"], "--lr")]
)
def test_bad_training_values(capsys, flags, words):
    assert words in one_line_error(capsys, ["train", *flags, "--no-progress"])


def test_cuda_without_a_gpu(capsys):
    if minigrad.backend.is_available("cuda"):
        pytest.skip("CuPy and a GPU are available here")
    line = one_line_error(capsys, ["train", "--device", "cuda", "--no-progress"])
    assert "cuda" in line.lower()


def test_unknown_device(capsys):
    assert "tpu" in one_line_error(capsys, ["train", "--device", "tpu", "--no-progress"])


@pytest.mark.parametrize("argv", [["train", "--steps", "0"], ["train", "--layers", "x"], ["predict"]])
def test_argparse_rejects_bad_flags(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_eval_refuses_a_pickle(capsys, tmp_path):
    marker = tmp_path / "pwned"
    pkl = tmp_path / "some.pkl"
    pkl.write_bytes(pickle.dumps({"state": Payload(marker)}, protocol=4))
    line = one_line_error(capsys, ["eval", "--checkpoint", str(pkl)])
    assert "pickle" in line and "some.pkl" in line
    assert not marker.exists()


def test_eval_of_a_missing_checkpoint(capsys, tmp_path):
    assert "does not exist" in one_line_error(capsys, ["eval", "--checkpoint", str(tmp_path / "none.safetensors")])


def test_resume_from_a_non_checkpoint(capsys, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    assert "bad.safetensors" in one_line_error(capsys, ["train", "--resume", str(bad), "--no-progress"])


# ---------------------------------------------------------------------------------------
# train, eval, predict, resume end to end
# ---------------------------------------------------------------------------------------
def test_train_writes_the_run_folder(run_dir):
    assert (run_dir / "checkpoint.safetensors").is_file()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 31))
    assert [r["step"] for r in rows if "val_loss" in r] == [10, 20, 30]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["summary"]["step"] == 30
    assert summary["model_config"]["d_model"] == 16 and summary["model_config"]["nhead"] == 2
    assert summary["model_config"]["num_layers"] == 1 and summary["model_config"]["dim_feedforward"] == 32
    assert summary["train_config"]["task"] == "reverse" and summary["train_config"]["steps"] == 30
    ckpt = load_checkpoint(run_dir)
    assert ckpt.step == 30 and ckpt.meta["task"]["name"] == "reverse"


def test_train_prints_progress_summary(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["train", *TINY[:-4], "--steps", "5", "--eval-every", "5", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "reverse:" in text and "parameters on cpu" in text
    assert "step 5: validation loss" in text and "sequence accuracy" in text
    assert "checkpoint.safetensors" in text


def test_eval_prints_json_with_accuracy(capsys, run_dir):
    assert main(["eval", "--checkpoint", str(run_dir)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "reverse" and result["step"] == 30
    assert 0.0 <= result["token_acc"] <= 1.0 and 0.0 <= result["seq_acc"] <= 1.0 and result["loss"] > 0
    summary = json.loads((run_dir / "summary.json").read_text())["summary"]
    assert result["token_acc"] == pytest.approx(summary["val_token_acc"])  # the same model, the same data
    assert result["loss"] == pytest.approx(summary["val_loss"])


def test_eval_of_the_checkpoint_file_itself(capsys, run_dir):
    assert main(["eval", "--checkpoint", str(run_dir / "checkpoint.safetensors"), "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 30


def test_predict_shows_inputs_targets_predictions(capsys, run_dir):
    assert main(["predict", "--checkpoint", str(run_dir), "--n", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["input", "target", "prediction"]
    assert len(lines) == 4
    for line in lines[1:]:
        source, target, prediction, mark = line.split()
        assert target == source[::-1]  # the task is reverse
        assert len(prediction) == len(source)
        assert mark == ("ok" if prediction == target else "WRONG")


def test_resume_continues_from_the_checkpoint(capsys, run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    assert main(["train", "--resume", str(run / "checkpoint.safetensors"), "--steps", "40", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "resuming reverse from step 30" in out
    assert "step 40:" in out
    assert load_checkpoint(run).step == 40  # written back into the run folder
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 41))
    assert all(r["lr"] > 0 for r in rows[30:-1])  # it keeps learning, not at the old schedule's end
    assert json.loads((run / "summary.json").read_text())["summary"]["step"] == 40
    assert main(["eval", "--checkpoint", str(run)]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 40
    assert load_checkpoint(run_dir).step == 30  # the original is untouched


def test_resume_into_another_folder(capsys, run_dir, tmp_path):
    out = tmp_path / "longer"
    assert main(["train", "--resume", str(run_dir), "--steps", "32", "--out", str(out), "--no-progress"]) == 0
    assert load_checkpoint(out).step == 32
    assert load_checkpoint(run_dir).step == 30


# ---------------------------------------------------------------------------------------
# attention, demo, graph
# ---------------------------------------------------------------------------------------
def test_attention_writes_a_png(capsys, run_dir, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "attn.png"
    assert main(["attention", "--checkpoint", str(run_dir), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG
    assert f"wrote {out}" in capsys.readouterr().out


def test_attention_bad_layer_is_one_line(capsys, run_dir, tmp_path):
    pytest.importorskip("matplotlib")
    line = one_line_error(
        capsys, ["attention", "--checkpoint", str(run_dir), "--layer", "5", "--out", str(tmp_path / "a.png")]
    )
    assert "--layer" in line
    assert "--example" in one_line_error(capsys, ["attention", "--checkpoint", str(run_dir), "--example", "-1"])
    assert "mlm" in one_line_error(capsys, ["attention", "--checkpoint", str(run_dir), "--text", "hello"])


def test_demo_runs_to_completion(tmp_path):
    # a subprocess with one BLAS thread: the demo's model is big enough for OpenBLAS to start
    # threads, which makes it ten times slower on a busy two-core machine
    out = tmp_path / "demo"
    result = run_module("demo", "--steps", "30", "--target-acc", "0.5", "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    text = result.stdout
    assert "step 30: validation loss" in text and "token accuracy" in text and "sequence accuracy" in text
    table = [line for line in text.splitlines() if line.rstrip().endswith(("ok", "WRONG"))]
    assert len(table) == 5
    for line in table:
        source, target = line.split()[:2]
        assert target == "".join(sorted(source))  # the demo's task is sort
    assert (out / "checkpoint.safetensors").is_file() and (out / "metrics.jsonl").is_file()
    assert load_checkpoint(out).step == 30
    if importlib.util.find_spec("graphviz") is None:  # the viz extra is missing: trained, and says so
        assert "graph not drawn" in text and "minigrad-encoder[viz]" in text
        assert not list(out.glob("layer0_collapsed.*"))
        return
    graphs = list(out.glob("layer0_collapsed.*"))
    assert graphs, sorted(p.name for p in out.iterdir())
    assert str(graphs[0]) in text


def test_demo_without_the_viz_extra_trains_and_says_what_to_install(tmp_path):
    # a graphviz package that fails to import stands first on the path, as if it were not installed
    hide = tmp_path / "hide"
    (hide / "graphviz").mkdir(parents=True)
    (hide / "graphviz" / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    out = tmp_path / "demo"
    result = run_module(
        "demo", "--steps", "5", "--target-acc", "0.5", "--out", str(out), "--no-progress", pythonpath=(hide,)
    )
    assert result.returncode == 0, result.stderr
    assert "graph not drawn" in result.stdout and "minigrad-encoder[viz]" in result.stdout
    assert (out / "checkpoint.safetensors").is_file()
    assert not list(out.glob("layer0_collapsed.*"))


def test_graph_writes_dot_source(capsys, tmp_path):
    pytest.importorskip("graphviz", reason="the viz extra (graphviz package) is not installed")
    out = tmp_path / "layer.dot"
    assert main(["graph", "--out", str(out)]) == 0
    assert out.read_text().lstrip().startswith("digraph")
    assert "wrote" in capsys.readouterr().out
    assert "--out" in one_line_error(capsys, ["graph", "--out", str(tmp_path / "layer.txt")])
