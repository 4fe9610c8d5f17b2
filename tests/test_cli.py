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
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import minigrad
from encoder.checkpoint import load_checkpoint
from encoder.cli import main

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
TINY = ["--task", "reverse", "--layers", "1", "--d-model", "16", "--heads", "2", "--steps", "30", "--eval-every", "10"]


def run_module(
    *args: str, pythonpath: tuple[Path, ...] = (), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(map(str, (*pythonpath, ROOT))),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "encoder", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def one_line_error(capsys, argv: list[str]) -> str:
    """Run ``argv``, expect exit status 2 and a single ``error: ...`` line on stderr; return it
    (argparse's own errors exit through SystemExit, the commands' errors return 2)."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
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
    assert lines[0].split() == ["#", "input", "target", "prediction"]
    assert len(lines) == 4
    for i, line in enumerate(lines[1:]):
        number, source, target, prediction, mark = line.split()
        assert number == str(i)  # the N that `attention --example N` takes
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
def test_attention_writes_one_picture_of_every_layer_for_predicts_example(capsys, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import encoder.attention_maps as maps

    run = tmp_path / "run2"
    argv = ["train", *TINY[:2], "--layers", "2", "--d-model", "16", "--heads", "2", "--steps", "2"]
    assert main([*argv, "--eval-every", "2", "--out", str(run), "--no-progress"]) == 0
    assert main(["predict", "--checkpoint", str(run), "--n", "3"]) == 0
    third = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert third[0] == "2"
    titles: list[str] = []
    real = maps.attention_figure
    monkeypatch.setattr(maps, "attention_figure", lambda *a, **k: titles.append(a[2]) or real(*a, **k))
    out = tmp_path / "pictures" / "attn.png"
    out.parent.mkdir()
    assert main(["attention", "--checkpoint", str(run), "--example", "2", "--grads", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG
    assert sorted(p.name for p in out.parent.iterdir()) == ["attn.png"]  # one file, as the README says
    printed = capsys.readouterr().out
    assert f"wrote {out}: example 2 ({third[1]}), layers 0-1, with d loss / d weights" in printed
    assert titles == [f"{run}: reverse, step 2, layers 0-1, example 2 ({third[1]})"]


def test_attention_bad_layer_is_one_line(capsys, run_dir, tmp_path):
    pytest.importorskip("matplotlib")
    line = one_line_error(
        capsys, ["attention", "--checkpoint", str(run_dir), "--layer", "5", "--out", str(tmp_path / "a.png")]
    )
    assert "--layer" in line
    assert "--example" in one_line_error(capsys, ["attention", "--checkpoint", str(run_dir), "--example", "-1"])
    assert "mlm" in one_line_error(capsys, ["attention", "--checkpoint", str(run_dir), "--text", "hello"])


def _wrote_line(text: str) -> list[Path]:
    """The files the demo's ``wrote ...`` line names."""
    lines = [line for line in text.splitlines() if line.startswith("wrote ")]
    assert len(lines) == 1, text
    return [Path(name) for name in lines[0][len("wrote ") :].split(", ")]


def test_demo_runs_to_completion(tmp_path):
    # a subprocess with one BLAS thread: the demo's model is big enough for OpenBLAS to start
    # threads, which makes it ten times slower on a busy two-core machine
    out = tmp_path / "demo"
    result = run_module("demo", "--steps", "30", "--target-acc", "0.5", "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    text = result.stdout
    assert "step 30: validation loss" in text and "token accuracy" in text and "sequence accuracy" in text
    assert "stopped at step" not in text  # 30 steps do not reach the target
    table = [line for line in text.splitlines() if line.rstrip().endswith(("ok", "WRONG"))]
    assert len(table) == 5
    for line in table:
        source, target = line.split()[1:3]
        assert target == "".join(sorted(source))  # the demo's task is sort
    assert load_checkpoint(out).step == 30
    written = _wrote_line(text)
    assert all(p.exists() for p in written), written  # it names only files that exist
    names = {p.name for p in written}
    assert {"checkpoint.safetensors", "metrics.jsonl", "summary.json"} <= names
    assert ("metrics.png" in names) == (importlib.util.find_spec("matplotlib") is not None)
    if importlib.util.find_spec("graphviz") is None:  # the viz extra is missing: trained, and says so
        assert "graph not drawn" in text and "pip install -e '.[viz]'" in text
        return
    graph = "layer0_collapsed.svg" if shutil.which("dot") else "layer0_collapsed.dot"
    assert graph in names and (out / graph).stat().st_size > 0


def test_demo_replaces_a_demo_but_no_other_run(capsys, run_dir, tmp_path):
    other = tmp_path / "train-run"
    shutil.copytree(run_dir, other)
    line = one_line_error(capsys, ["demo", "--steps", "1", "--out", str(other), "--no-progress", "--no-accel"])
    assert f"--out {other} holds a run that the demo did not make" in line
    assert load_checkpoint(other).step == 30
    demo = tmp_path / "demo"
    for _ in range(2):
        assert main(["demo", "--steps", "1", "--out", str(demo), "--no-progress", "--no-accel"]) == 0
    assert "replacing the previous demo" in capsys.readouterr().out and load_checkpoint(demo).step == 1


def test_demo_says_when_it_stops_at_its_target(capsys, tmp_path, monkeypatch):
    # a perfect validation score at the first check (step 5), so that the demo stops there
    from encoder.training import Trainer

    monkeypatch.setattr(Trainer, "evaluate", lambda self, batches=None: {"loss": 0.1, "token_acc": 1.0, "seq_acc": 1.0})
    out = tmp_path / "demo"
    argv = ["demo", "--steps", "30", "--eval-every", "5", "--target-acc", "0.9", "--out", str(out)]
    assert main([*argv, "--no-progress", "--no-accel"]) == 0
    text = capsys.readouterr().out
    assert "stopped at step 5 of 30: validation sequence accuracy 1.0000 reached the target 0.9" in text
    assert "step 5: validation loss" in text and load_checkpoint(out).step == 5


def test_demo_without_dot_writes_the_dot_source_and_says_how_to_get_svg(tmp_path):
    pytest.importorskip("graphviz", reason="the viz extra (graphviz package) is not installed")
    out = tmp_path / "demo"
    env_path = {"PATH": str(tmp_path / "no-dot-here")}
    result = run_module("demo", "--steps", "2", "--out", str(out), "--no-progress", "--no-accel", env=env_path)
    assert result.returncode == 0, result.stderr
    assert (out / "layer0_collapsed.dot").read_text().lstrip().startswith("digraph")
    assert not (out / "layer0_collapsed.svg").exists()
    assert out / "layer0_collapsed.dot" in _wrote_line(result.stdout)
    hint = [line for line in result.stdout.splitlines() if "dot -Tsvg" in line]
    assert len(hint) == 1 and f"dot -Tsvg {out}/layer0_collapsed.dot -o {out}/layer0_collapsed.svg" in hint[0]
    assert "Traceback" not in result.stderr


def _hidden(tmp_path: Path, *packages: str) -> Path:
    """A folder whose ``packages`` fail to import; first on the path, it is as if they were not installed."""
    hide = tmp_path / "hide"
    for package in packages:
        (hide / package).mkdir(parents=True)
        (hide / package / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    return hide


def test_demo_without_the_viz_and_plot_extras_trains_and_says_what_to_install(tmp_path):
    out = tmp_path / "demo"
    result = run_module(
        "demo", "--steps", "3", "--target-acc", "0.5", "--out", str(out), "--no-progress", "--no-accel",
        pythonpath=(_hidden(tmp_path, "graphviz", "matplotlib"),),
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "graph not drawn" in result.stdout and "'viz' extra" in result.stdout
    assert "pip install -e '.[viz]'" in result.stdout
    assert "'plot' extra" in result.stdout and "pip install -e '.[plot]'" in result.stdout
    assert (out / "checkpoint.safetensors").is_file()
    assert not list(out.glob("layer0_collapsed.*")) and not (out / "metrics.png").exists()
    written = _wrote_line(result.stdout)
    assert all(p.exists() for p in written) and "metrics.png" not in {p.name for p in written}


def test_graph_writes_dot_source(capsys, tmp_path):
    pytest.importorskip("graphviz", reason="the viz extra (graphviz package) is not installed")
    out = tmp_path / "layer.dot"
    assert main(["graph", "--out", str(out)]) == 0
    assert out.read_text().lstrip().startswith("digraph")
    assert "wrote" in capsys.readouterr().out
    assert "--out" in one_line_error(capsys, ["graph", "--out", str(tmp_path / "layer.txt")])


# ---------------------------------------------------------------------------------------
# run folders: never overwritten by accident, resumed only as the same run
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--lr", "nan"], ["--lr", "nan", "finite number > 0"]),
        (["--lr", "inf"], ["--lr", "inf"]),
        (["--data-parallel", "100"], ["--data-parallel 100", "--batch-size 64", "1 to 64"]),
        (["--target-acc", "2"], ["--target-acc", "2", "(0, 1]"]),
        (["--target-acc", "0"], ["--target-acc", "(0, 1]"]),
        (["--warmup", "-1"], ["--warmup", "-1", ">= 0"]),
        (["--weight-decay", "-0.1"], ["--weight-decay", "-0.1"]),
        (["--label-smoothing", "1"], ["--label-smoothing", "[0, 1)"]),
        (["--steps", "0"], ["--steps", "0", "positive integer"]),
        (["--layers", "x"], ["--layers", "'x'", "positive integer"]),
        (["--dropout", "1"], ["--dropout", "[0, 1)"]),
        (["--seed", "-1"], ["--seed", "-1", ">= 0"]),
    ],
)
def test_bad_values_are_one_line_naming_flag_value_and_what_is_allowed(capsys, flags, words):
    line = one_line_error(capsys, ["train", *flags, "--no-progress"])
    for word in words:
        assert word in line, line


def test_a_folder_holding_a_run_is_refused_unless_overwrite(capsys, run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    before = (run / "checkpoint.safetensors").read_bytes()
    line = one_line_error(capsys, ["train", *TINY, "--out", str(run), "--no-progress"])
    assert f"--out {run} already holds a run" in line and "--resume" in line and "--overwrite" in line
    assert (run / "checkpoint.safetensors").read_bytes() == before  # untouched
    (run / "notes.txt").write_text("mine")
    argv = ["train", *TINY[:-4], "--steps", "3", "--eval-every", "3", "--out", str(run), "--overwrite", "--no-progress"]
    assert main(argv) == 0
    assert "deleted the previous run" in capsys.readouterr().out
    assert load_checkpoint(run).step == 3
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert (run / "notes.txt").read_text() == "mine"  # only the run's own files go


def test_without_out_a_new_folder_under_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "reverse-1").mkdir(parents=True)  # taken
    argv = ["train", *TINY[:-4], "--steps", "2", "--eval-every", "2", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "run folder: runs/reverse-2" in out and "wrote runs/reverse-2/checkpoint.safetensors" in out
    assert load_checkpoint(tmp_path / "runs" / "reverse-2").step == 2
    assert main(argv) == 0  # the next one goes to a new folder again
    assert "run folder: runs/reverse-3" in capsys.readouterr().out


def test_resume_refuses_flags_that_define_the_run(capsys, run_dir):
    argv = ["train", "--resume", str(run_dir), "--lr", "0.1", "--layers", "4", "--task", "sort", "--d-model", "128"]
    line = one_line_error(capsys, [*argv, "--steps", "40", "--no-progress"])
    for clash in (
        "--lr 0.1 (the checkpoint has 0.002)",
        "--layers 4 (the checkpoint has 1)",
        "--task sort (the checkpoint has reverse)",
        "--d-model 128 (the checkpoint has 16)",
    ):
        assert clash in line, line
    assert "--steps" in line  # what may change
    assert load_checkpoint(run_dir).step == 30
    # the same values as the checkpoint are fine
    line = one_line_error(
        capsys, ["train", "--resume", str(run_dir), "--heads", "2", "--norm-first", "--no-progress", "--steps", "31"]
    )
    assert "--norm-first True (the checkpoint has False)" in line and "--heads" not in line.split(":")[1]


def test_resume_applies_and_records_the_changeable_flags(capsys, run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    argv = ["train", "--resume", str(run), "--steps", "36", "--eval-every", "3", "--target-acc", "0.99"]
    assert main([*argv, "--checkpoint-every", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "changed on resume" in out and "--steps 30 -> 36" in out and "--eval-every 10 -> 3" in out
    saved = load_checkpoint(run).meta["train_config"]
    assert saved["steps"] == 36 and saved["eval_every"] == 3 and saved["target_accuracy"] == 0.99
    assert saved["checkpoint_every"] == 2
    assert json.loads((run / "summary.json").read_text())["train_config"]["eval_every"] == 3
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "val_loss" in r] == [10, 20, 30, 33, 36]


def test_resume_of_a_finished_run_needs_more_steps(capsys, run_dir):
    line = one_line_error(capsys, ["train", "--resume", str(run_dir), "--no-progress"])
    assert "step 30" in line and "--steps" in line


def test_resume_into_a_folder_holding_another_run_is_refused(capsys, run_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    line = one_line_error(capsys, ["train", "--resume", str(run_dir), "--steps", "31", "--out", str(other)])
    assert "already holds a run" in line


# ---------------------------------------------------------------------------------------
# SIGINT and SIGTERM save the run (real signals to a real process)
# ---------------------------------------------------------------------------------------
SIGNAL_RUN = ["--task", "reverse", "--layers", "1", "--d-model", "16", "--heads", "2", "--dropout", "0.1",
              "--schedule", "constant", "--warmup", "0", "--eval-every", "1000", "--no-progress", "--no-accel"]


def _start_and_signal(out: Path, signum: int) -> tuple[subprocess.CompletedProcess, int]:
    """Start a long run, send ``signum`` once it has logged 15 steps; return the result and that count."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "encoder", "train", *SIGNAL_RUN, "--steps", "100000", "--out", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    log = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 15:
            break
        time.sleep(0.05)
    seen = len(log.read_text().splitlines())
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), seen


def test_sigint_saves_a_checkpoint_and_the_resumed_run_continues_the_same_curve(capsys, tmp_path):
    out = tmp_path / "interrupted"
    result, seen = _start_and_signal(out, signal.SIGINT)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    step = load_checkpoint(out).step
    assert step >= seen >= 15
    assert f"SIGINT: stopped at step {step}; saved {out}/checkpoint.safetensors" in result.stdout
    assert f"resume with: python -m encoder train --resume {out}" in result.stdout
    assert not list(out.glob(".checkpoint*"))  # no temporary file left
    # resume as printed (plus where to stop), then compare with one uninterrupted run
    assert main(["train", "--resume", str(out), "--steps", str(step + 5), "--no-progress", "--no-accel"]) == 0
    straight = tmp_path / "straight"
    assert main(["train", *SIGNAL_RUN, "--steps", str(step + 5), "--out", str(straight)]) == 0
    resumed = [json.loads(x)["loss"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    uninterrupted = [json.loads(x)["loss"] for x in (straight / "metrics.jsonl").read_text().splitlines()]
    assert len(resumed) == step + 5
    assert resumed == uninterrupted  # bit for bit, dropout included


def test_sigterm_saves_a_checkpoint_too(tmp_path):
    out = tmp_path / "terminated"
    result, seen = _start_and_signal(out, signal.SIGTERM)
    assert result.returncode == 143, result.stderr
    step = load_checkpoint(out).step
    assert step >= seen and f"SIGTERM: stopped at step {step}" in result.stdout
    assert "resume with:" in result.stdout


def test_a_stale_temporary_from_a_killed_save_goes_at_the_next_save(capsys, run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    stale = run / ".checkpoint.safetensors.k1ll3d.tmp.safetensors"
    stale.write_bytes(b"half a checkpoint")
    assert main(["train", "--resume", str(run), "--steps", "31", "--no-progress"]) == 0
    assert not stale.exists() and load_checkpoint(run).step == 31


# ---------------------------------------------------------------------------------------
# missing extras and non-finite training are one line
# ---------------------------------------------------------------------------------------
def test_a_missing_extra_is_one_line_with_the_pip_command(capsys, run_dir, tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    line = one_line_error(capsys, ["attention", "--checkpoint", str(run_dir), "--out", str(tmp_path / "a.png")])
    assert "'plot' extra" in line and "pip install -e '.[plot]'" in line


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverging_run_stops_with_one_line_and_the_step(capsys, tmp_path):
    argv = ["train", *TINY[:-4], "--steps", "5", "--lr", "1e30", "--optimizer", "sgd", "--schedule", "constant"]
    code = main([*argv, "--warmup", "0", "--out", str(tmp_path / "run"), "--no-progress", "--no-accel"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: training diverged at step ")
    assert "detect_anomaly" in err[0] and "--detect-anomaly" in err[0]


def test_a_python_without_the_projects_dependencies_is_pointed_to_the_venv(tmp_path):
    hide = tmp_path / "hide"
    (hide / "safetensors").mkdir(parents=True)
    (hide / "safetensors" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'safetensors'\", name='safetensors')\n"
    )
    argv = ["train", *TINY[:-4], "--steps", "1", "--out", str(tmp_path / "run"), "--no-progress", "--no-accel"]
    result = run_module(*argv, pythonpath=(hide,))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: safetensors is not installed for ")
    assert ".venv/bin/python -m encoder" in lines[0] and "pip install -e ." in lines[0]


def test_graph_without_dot_writes_the_source_and_says_how_to_get_svg(capsys, tmp_path, monkeypatch):
    pytest.importorskip("graphviz", reason="the viz extra (graphviz package) is not installed")
    monkeypatch.setenv("PATH", str(tmp_path / "no-dot-here"))
    assert main(["graph", "--out", str(tmp_path / "layer.svg"), "--no-accel"]) == 0
    captured = capsys.readouterr()
    assert (tmp_path / "layer.dot").read_text().lstrip().startswith("digraph")
    assert not (tmp_path / "layer.svg").exists()
    assert f"wrote {tmp_path / 'layer.dot'}" in captured.out
    hint = captured.err.strip().splitlines()
    assert len(hint) == 1 and "Install Graphviz" in hint[0] and "SVG" in hint[0]


def test_graph_without_the_viz_extra_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    line = one_line_error(capsys, ["graph", "--out", str(tmp_path / "layer.svg"), "--no-accel"])
    assert "'viz' extra" in line and "pip install -e '.[viz]'" in line
