"""encoder.checkpoint: safetensors checkpoints, atomic writes, and refusing anything else."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from safetensors import safe_open

import minigrad
from encoder.checkpoint import FORMAT, CheckpointError, load_checkpoint, restore_model, save_checkpoint
from encoder.models import ModelConfig, build_model
from encoder.training import Trainer
from minigrad import optim

CONFIG = dict(
    vocab_size=7, num_classes=5, d_model=16, nhead=2, num_layers=2, dim_feedforward=32, dropout=0.0, max_len=8
)


def make_model(seed: int = 0, **overrides):
    minigrad.manual_seed(seed)
    return build_model(ModelConfig(**{**CONFIG, **overrides}))


def trained(seed: int = 0):
    """A model and an AdamW optimizer with state after two steps."""
    model = make_model(seed)
    opt = optim.AdamW(list(model.parameters()), lr=1e-2, weight_decay=0.01)
    tokens = minigrad.tensor([[1, 2, 3, 4], [4, 3, 2, 0]], dtype="int64")
    mask = minigrad.tensor([[False] * 4, [False] * 3 + [True]])
    for _ in range(2):
        loss = minigrad.functional.sum(model(tokens, mask) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, opt


def weights(model) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


META = {"step": 7, "model_config": {"d_model": 16}, "train_config": {"lr": 0.01, "seed": 3}, "note": np.float32(0.5)}


@pytest.fixture
def saved(tmp_path):
    model, opt = trained()
    path = save_checkpoint(tmp_path / "ck.safetensors", model, opt, META)
    return path, model, opt


# ---------------------------------------------------------------------------------------
# round trip and file format
# ---------------------------------------------------------------------------------------
def test_round_trip_model_optimizer_and_metadata(saved):
    path, model, opt = saved
    ckpt = load_checkpoint(path)
    assert ckpt.step == 7
    assert ckpt.meta["model_config"] == {"d_model": 16}
    assert ckpt.meta["train_config"] == {"lr": 0.01, "seed": 3}
    assert ckpt.meta["note"] == 0.5  # NumPy scalars become plain numbers
    assert ckpt.meta["format"] == FORMAT and ckpt.meta["optimizer"]["type"] == "AdamW"

    fresh = make_model(seed=1)
    assert any(not np.array_equal(a, weights(fresh)[k]) for k, a in weights(model).items())
    restore_model(fresh, ckpt)
    expected = weights(model)
    got = weights(fresh)
    assert list(got) == list(expected)
    for k in expected:
        assert got[k].dtype == expected[k].dtype and np.array_equal(got[k], expected[k]), k

    opt2 = optim.AdamW(list(fresh.parameters()), lr=0.5)
    opt2.load_state_dict(ckpt.optimizer_state())
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == [dict(g) for g in b["param_groups"]]
    assert a["param_groups"][0]["lr"] == 1e-2
    assert sorted(a["state"]) == sorted(b["state"]) and len(a["state"]) == len(list(model.parameters()))
    for i, sa in a["state"].items():
        sb = b["state"][i]
        assert sa["step"] == sb["step"] == 2
        for name in ("exp_avg", "exp_avg_sq"):
            assert np.array_equal(sa[name].numpy(), sb[name].numpy()), (i, name)


def test_round_trip_continues_training_identically(saved):
    path, model, opt = saved
    clone = make_model(seed=5)
    restore_model(clone, load_checkpoint(path))
    opt2 = optim.AdamW(list(clone.parameters()), lr=1e-2, weight_decay=0.01)
    opt2.load_state_dict(load_checkpoint(path).optimizer_state())
    tokens = minigrad.tensor([[3, 1, 1, 2]], dtype="int64")
    for m, o in ((model, opt), (clone, opt2)):
        loss = minigrad.functional.sum(m(tokens) ** 2)
        o.zero_grad()
        loss.backward()
        o.step()
    for k, v in weights(model).items():
        assert np.array_equal(v, weights(clone)[k]), k


def test_file_is_plain_safetensors_with_model_keys(saved):
    path, model, opt = saved
    arrays = safetensors.numpy.load_file(str(path))
    model_keys = {k for k in arrays if k.startswith("model.")}
    assert model_keys == {f"model.{k}" for k in model.state_dict()}
    assert "model.encoder.layers.1.self_attn.q_proj.weight" in arrays
    assert "model.embed.embedding.weight" in arrays
    for k, v in model.state_dict().items():
        assert np.array_equal(arrays[f"model.{k}"], v.numpy())
    optim_keys = {k for k in arrays if k.startswith("optim.")}
    n = len(list(model.parameters()))
    assert optim_keys == {f"optim.{i}.{name}" for i in range(n) for name in ("exp_avg", "exp_avg_sq")}
    assert set(arrays) == model_keys | optim_keys
    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["encoder"])
    assert meta["format"] == FORMAT and meta["version"] == 1 and meta["step"] == 7


def test_checkpoint_without_optimizer(tmp_path):
    model = make_model()
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    ckpt = load_checkpoint(path)
    assert ckpt.optimizer_state() is None and ckpt.optimizer_arrays == {} and ckpt.step == 0
    assert not [k for k in safetensors.numpy.load_file(str(path)) if not k.startswith("model.")]


def test_directory_means_its_checkpoint_file(saved):
    path, _, _ = saved
    os.replace(path, path.parent / "checkpoint.safetensors")
    assert load_checkpoint(path.parent).step == 7


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_unstorable_metadata_is_refused_before_writing(tmp_path):
    with pytest.raises(TypeError, match="object"):
        save_checkpoint(tmp_path / "x.safetensors", make_model(), meta={"bad": object()})
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------------------
def test_failed_write_keeps_the_previous_checkpoint(saved, monkeypatch):
    path, model, opt = saved
    before = path.read_bytes()
    real_save = safetensors.numpy.save_file

    def half_then_crash(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as f:  # a half-written file on disk, then the crash
            f.truncate(os.path.getsize(filename) // 2)
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", half_then_crash)
    other, _ = trained(seed=9)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, other, opt, {"step": 99})
    assert path.read_bytes() == before
    assert load_checkpoint(path).step == 7
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left


@pytest.mark.parametrize("exc", [OSError("rename failed"), KeyboardInterrupt()])
def test_failed_rename_leaves_no_temporary_file(saved, monkeypatch, exc):
    path, model, opt = saved
    before = path.read_bytes()

    def fail(src, dst):
        raise exc

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(type(exc)):
        save_checkpoint(path, make_model(seed=4), None, {"step": 1})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_new_checkpoint_replaces_the_old_one(saved):
    path, model, opt = saved
    other, _ = trained(seed=9)
    save_checkpoint(path, other, None, {"step": 8})
    ckpt = load_checkpoint(path)
    assert ckpt.step == 8 and ckpt.optimizer_state() is None
    assert np.array_equal(ckpt.model_state["head.weight"], other.head.weight.detach().numpy())
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


# ---------------------------------------------------------------------------------------
# refusing what is not one of our checkpoints
# ---------------------------------------------------------------------------------------
class Payload:
    """Unpickling this creates the file ``marker``: proof that the pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_the_payload_really_runs_when_unpickled(tmp_path):
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker))).close()
    assert marker.exists()  # so the checks below, that it did not run, mean something


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_is_refused_without_being_executed(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3], "payload": Payload(marker)}, protocol=protocol))
    with pytest.raises(CheckpointError, match="pickle") as err:
        load_checkpoint(path)
    assert "safetensors" in str(err.value)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="pickle"):
        Trainer.from_checkpoint(path)
    assert not marker.exists()


def test_old_protocol_pickle_is_refused_without_being_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps(Payload(marker), protocol=0))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()


def test_torch_save_zip_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as z:  # the layout of torch.save: a pickle inside a zip
        z.writestr("archive/data.pkl", pickle.dumps(Payload(marker), protocol=2))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(path)
    assert not marker.exists()


def test_truncated_checkpoint_is_refused_clearly(saved):
    path, _, _ = saved
    data = path.read_bytes()
    for size in (len(data) // 2, 12, 4, 0):
        cut = path.with_name(f"cut{size}.safetensors")
        cut.write_bytes(data[:size])
        with pytest.raises(CheckpointError, match="not a valid safetensors checkpoint") as err:
            load_checkpoint(cut)
        assert str(cut) in str(err.value)
        assert "\n" not in str(err.value)


def test_safetensors_without_our_metadata_is_refused(tmp_path):
    arrays = {"model.head.weight": np.zeros((5, 16), dtype=np.float32)}
    plain = tmp_path / "plain.safetensors"
    safetensors.numpy.save_file(arrays, str(plain))
    with pytest.raises(CheckpointError, match="not an encoder checkpoint"):
        load_checkpoint(plain)
    other = tmp_path / "other.safetensors"
    safetensors.numpy.save_file(arrays, str(other), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not an encoder checkpoint"):
        load_checkpoint(other)
    corrupt = tmp_path / "corrupt.safetensors"
    safetensors.numpy.save_file(arrays, str(corrupt), metadata={"encoder": "{not json"})
    with pytest.raises(CheckpointError, match="metadata is corrupt"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file(arrays, str(foreign), metadata={"encoder": json.dumps({"format": "something-else"})})
    with pytest.raises(CheckpointError, match="unknown checkpoint format 'something-else'"):
        load_checkpoint(foreign)


def test_checkpoint_without_training_metadata_cannot_resume(tmp_path):
    path = save_checkpoint(tmp_path / "bare.safetensors", make_model(), meta={"step": 3})
    assert load_checkpoint(path).step == 3
    with pytest.raises(CheckpointError, match="incomplete"):
        Trainer.from_checkpoint(path)


# ---------------------------------------------------------------------------------------
# a checkpoint that does not fit the model
# ---------------------------------------------------------------------------------------
def test_different_width_names_the_mismatched_key(saved):
    path, _, _ = saved
    wider = make_model(d_model=32, nhead=2, dim_feedforward=64)
    before = weights(wider)
    with pytest.raises(CheckpointError, match="does not fit") as err:
        restore_model(wider, load_checkpoint(path))
    msg = str(err.value)
    assert "embed.embedding.weight" in msg
    assert "(7, 16)" in msg and "(7, 32)" in msg
    for k, v in weights(wider).items():  # nothing was half loaded
        assert np.array_equal(v, before[k]), k


def test_different_depth_names_the_missing_keys(saved):
    path, _, _ = saved
    deeper = make_model(num_layers=3)
    with pytest.raises(CheckpointError, match="missing keys") as err:
        restore_model(deeper, load_checkpoint(path))
    assert "encoder.layers.2.self_attn.q_proj.weight" in str(err.value)
    shallow = make_model(num_layers=1)
    with pytest.raises(CheckpointError, match="unexpected keys") as err:
        restore_model(shallow, load_checkpoint(path))
    assert "encoder.layers.1." in str(err.value)


# ---------------------------------------------------------------------------------------
# leftovers of killed saves, weights that are not finite
# ---------------------------------------------------------------------------------------
def test_the_next_save_removes_temporaries_that_killed_saves_left(saved):
    path, model, opt = saved
    stale = [path.parent / f".{path.name}.{tag}.tmp.safetensors" for tag in ("a1b2", "zz_9")]
    for p in stale:
        p.write_bytes(b"half a checkpoint")
    other = path.parent / ".other.safetensors.x.tmp.safetensors"  # another file's: not ours to remove
    other.write_bytes(b"x")
    save_checkpoint(path, model, opt, META)
    assert not any(p.exists() for p in stale) and other.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, other.name])


def test_a_killed_save_leaves_the_old_checkpoint_and_the_next_save_cleans_up(tmp_path):
    """SIGKILL in the middle of a save, for real: a child process is killed while it writes."""
    import signal
    import subprocess
    import sys
    import time

    model, opt = trained()
    path = save_checkpoint(tmp_path / "ck.safetensors", model, opt, META)
    before = path.read_bytes()
    code = (
        "import sys, time, safetensors.numpy as s\n"
        "real = s.save_file\n"
        "def slow(tensors, name, metadata=None):\n"
        "    open(name, 'wb').write(b'partial'); print('writing', flush=True); time.sleep(60)\n"
        "s.save_file = slow\n"
        "from tests.test_checkpoint import trained, META\n"
        "from encoder.checkpoint import save_checkpoint\n"
        "m, o = trained(); save_checkpoint(sys.argv[1], m, o, META)\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'tests'}"}
    argv = [sys.executable, "-c", code, str(path)]
    proc = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.1)
    leftovers = list(tmp_path.glob(".ck.safetensors.*.tmp.safetensors"))
    assert len(leftovers) == 1 and path.read_bytes() == before  # the old checkpoint is whole
    save_checkpoint(path, model, opt, META)
    assert not leftovers[0].exists()


def test_a_checkpoint_with_a_nan_weight_is_refused_naming_it(saved, tmp_path):
    path, model, opt = saved
    name = next(k for k in model.state_dict() if k.endswith("linear1.weight"))
    dict(model.named_parameters())[name].data[0, 0] = float("nan")
    bad = save_checkpoint(tmp_path / "nan.safetensors", model, opt, META)
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")) as info:
        restore_model(make_model(), load_checkpoint(bad))
    assert "NaN or infinite" in str(info.value) and "--detect-anomaly" in str(info.value)
