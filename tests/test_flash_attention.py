"""FlashAttention (minigrad.ops.flash_attention) is the plain attention, computed in blocks.

Every test compares ``impl="flash"`` with the plain attention (the fused op, and the
composite one op by op) on the same inputs: the output and every gradient (q, k, v, a
float mask) in float64 within 1e-12, over shapes whose sequences are not multiples of
the block, seq_q != seq_k, one block and many, padding, causal, dead rows. Then a
gradient check, float32 within rounding, a 50-step training curve equal to the plain
attention's, the errors, and the graph picture (one node). Each test runs on the
reference path and with the acceleration on (1 and 2 threads).
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

import minigrad
import minigrad.functional as F
from encoder.attention import MultiHeadAttention, scaled_dot_product_attention
from minigrad import gradcheck, gradgradcheck
from minigrad.ops.flash_attention import FlashAttention

ACCEL = pytest.mark.usefixtures("accel_mode")  # the reference path, and the acceleration at 1 and 2 threads


def _tensors(rng, shapes, dtype="float64"):
    return [minigrad.tensor(rng.standard_normal(s), dtype=dtype, requires_grad=True) for s in shapes]


def _mask(rng, kind, b, h, sq, sk, dtype="float64"):
    """A mask of ``kind`` and whether it needs causal (the flag for flash, a mask for plain)."""
    if kind == "padding":  # batch 0 pads every key: its rows are dead
        m = rng.random((b, sk)) < 0.4
        m[:, 0] = False
        m[0] = True
        return minigrad.tensor(m), "key_padding"
    if kind == "bool4d":  # a (batch, heads, seq_q, seq_k) mask with one dead row
        m = rng.random((b, h, sq, sk)) < 0.5
        m[..., 0] = False
        m[0, 0, sq - 1] = True
        return minigrad.tensor(m), "attn"
    if kind == "float":  # requires grad; -inf entries, and row 1 of every head all -inf (dead)
        m = rng.standard_normal((b, h, sq, sk))
        m[rng.random(m.shape) < 0.2] = -math.inf
        m[..., 1, :] = -math.inf
        return minigrad.tensor(m, dtype=dtype, requires_grad=True), "attn"
    if kind == "float_broadcast":  # (seq_q, 1): one value per query row, broadcast over the keys
        return minigrad.tensor(rng.standard_normal((sq, 1)), dtype=dtype, requires_grad=True), "attn"
    return None, None


def _attend(impl, q, k, v, mask, where, causal, block, fused=True):
    kwargs = {"attn_mask": mask} if where == "attn" else {"key_padding_mask": mask} if where else {}
    out, _ = scaled_dot_product_attention(q, k, v, **kwargs, fused=fused, impl=impl, block_size=block, is_causal=causal)
    return out


SHAPES = {  # name -> batch, heads, seq_q, seq_k, d, block
    "one_block": (2, 2, 5, 6, 4, 8),
    "not_divisible": (2, 3, 7, 7, 4, 3),
    "seq_q_ne_seq_k": (1, 2, 9, 5, 3, 4),
    "many_blocks": (1, 2, 17, 13, 4, 2),
    "block_of_one": (1, 1, 4, 3, 2, 1),
}
MASKS = ["none", "padding", "bool4d", "float", "float_broadcast", "causal", "causal_padding"]


@ACCEL
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_flash_equals_the_plain_attention_in_float64(shape, mask_kind):
    b, h, sq, sk, d, block = SHAPES[shape]
    rng = np.random.default_rng(zlib.crc32(f"{shape}-{mask_kind}".encode()))
    q, k, v = _tensors(rng, [(b, h, sq, d), (b, h, sk, d), (b, h, sk, d + 1)])
    causal = mask_kind.startswith("causal")
    mask, where = _mask(rng, mask_kind.replace("causal_", ""), b, h, sq, sk)
    xs = [q, k, v] + ([mask] if mask is not None and mask.requires_grad else [])
    u = minigrad.tensor(rng.standard_normal((b, h, sq, d + 1)))
    results = {}
    for name, impl, fused in (("flash", "flash", True), ("fused", "naive", True), ("composite", "naive", False)):
        out = _attend(impl, q, k, v, mask, where, causal, block, fused)
        grads = minigrad.grad(out, xs, u)
        results[name] = [out.detach().numpy()] + [g.numpy() for g in grads]
    flash = results["flash"]
    assert np.isfinite(flash[0]).all()
    for other in ("fused", "composite"):
        for i, (a, e) in enumerate(zip(flash, results[other])):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12, err_msg=f"{other}, output {i}")
    if mask_kind in ("padding", "float"):  # the dead rows: output exactly 0 and no gradient through them
        dead = (0, slice(None)) if mask_kind == "padding" else (slice(None), slice(None), 1)
        assert np.all(flash[0][dead] == 0.0) and np.all(flash[1][dead] == 0.0)  # O and dq


@ACCEL
def test_random_shapes_blocks_and_masks():
    """12 draws of batch, heads, seq_q, seq_k, d, block, a mask kind and causal: flash == fused, 1e-12."""
    rng = np.random.default_rng(25)
    for _ in range(12):
        b, h, sq, sk, d = (int(x) for x in rng.integers(1, (3, 4, 20, 20, 7)))
        block, kind = int(rng.integers(1, 9)), str(rng.choice(["none", "padding", "bool4d", "float"]))
        causal = bool(rng.random() < 0.5)
        q, k, v = _tensors(rng, [(b, h, sq, d), (b, h, sk, d), (b, h, sk, d)])
        mask, where = _mask(rng, kind, b, h, sq, sk) if min(sq, sk) > 1 else (None, None)
        xs = [q, k, v] + ([mask] if mask is not None and mask.requires_grad else [])
        u = minigrad.tensor(rng.standard_normal((b, h, sq, d)))
        got = []
        for impl in ("flash", "naive"):
            out = _attend(impl, q, k, v, mask, where, causal, block)
            got.append([out.detach().numpy()] + [g.numpy() for g in minigrad.grad(out, xs, u)])
        case = str((b, h, sq, sk, d, block, kind, causal))
        for a, e in zip(*got):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12, err_msg=case)


@ACCEL
def test_a_4d_mask_and_its_gradient_through_every_path():
    """Issue 22: a float (batch, heads, seq_q, seq_k) mask that requires grad gets the composite path's gradient."""
    rng = np.random.default_rng(22)
    q, k, v = _tensors(rng, [(2, 2, 5, 4), (2, 2, 6, 4), (2, 2, 6, 3)])
    mask = minigrad.tensor(rng.standard_normal((2, 2, 5, 6)), dtype="float64", requires_grad=True)
    grads = {}
    for impl, fused in (("naive", False), ("naive", True), ("flash", True)):
        out, _ = scaled_dot_product_attention(q, k, v, attn_mask=mask, fused=fused, impl=impl, block_size=2)
        (g,) = minigrad.grad((out * out).sum(), [mask])
        grads[impl, fused] = g.numpy()
    assert np.abs(grads["naive", False]).max() > 1e-3  # a real gradient, not zeros
    for key in (("naive", True), ("flash", True)):
        np.testing.assert_allclose(grads[key], grads["naive", False], rtol=1e-12, atol=1e-12)


@ACCEL
@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck(causal):
    rng = np.random.default_rng(5)
    q, k, v = _tensors(rng, [(1, 2, 5, 3), (1, 2, 4, 3), (1, 2, 4, 2)])
    pad = minigrad.tensor(np.array([False, True, False, False]))
    assert gradcheck(lambda q, k, v: F.flash_attention(q, k, v, pad, causal=causal, block_size=2), [q, k, v])


@pytest.mark.parametrize("causal", [False, True])
def test_gradgradcheck(causal):
    """Second order works by itself: the backward is Tensor ops (with L rebuilt differentiably)."""
    rng = np.random.default_rng(6)
    q, k, v = _tensors(rng, [(1, 1, 4, 2), (1, 1, 3, 2), (1, 1, 3, 2)])
    pad = minigrad.tensor(np.array([False, True, False]))
    assert gradgradcheck(lambda q, k, v: F.flash_attention(q, k, v, pad, causal=causal, block_size=2), [q, k, v])


@ACCEL
def test_float32_agrees_within_rounding():
    rng = np.random.default_rng(7)
    shapes = [(2, 4, 37, 16), (2, 4, 29, 16), (2, 4, 29, 16)]
    arrays = [rng.standard_normal(s) for s in shapes]
    u = rng.standard_normal((2, 4, 37, 16))
    got = {}
    for dtype in ("float32", "float64"):
        for impl in ("naive", "flash"):
            xs = [minigrad.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
            out, _ = scaled_dot_product_attention(*xs, impl=impl, block_size=8, is_causal=True)
            grads = minigrad.grad(out, xs, minigrad.tensor(u, dtype=dtype))
            assert out.dtype == getattr(minigrad, dtype)
            got[dtype, impl] = [out.detach().numpy()] + [g.numpy() for g in grads]
    for i, exact in enumerate(got["float64", "naive"]):
        scale = np.abs(exact).max()
        naive_err = np.abs(got["float32", "naive"][i] - exact).max() / scale
        flash_err = np.abs(got["float32", "flash"][i] - exact).max() / scale
        assert flash_err < 1e-5, (i, flash_err)
        assert flash_err < 10 * naive_err + 1e-6, (i, flash_err, naive_err)


def test_the_output_is_one_node_that_saves_o_and_l():
    rng = np.random.default_rng(3)
    q, k, v = _tensors(rng, [(1, 2, 6, 4), (1, 2, 6, 4), (1, 2, 6, 4)])
    node = F.flash_attention(q, k, v, block_size=4).grad_fn
    assert isinstance(node, FlashAttention) and node.op_name == "flash_attention"
    assert node.next == (q, k, v)  # straight from the leaves: one node, nothing in between
    assert node.out.shape == (1, 2, 6, 4) and node.lse.shape == (1, 2, 6, 1)  # O and L
    saved = [a for a in vars(node).values() if isinstance(a, np.ndarray)]
    assert max(a.size for a in saved) == 1 * 2 * 6 * 4  # nothing of the (6, 6) weights' size
    scores = q.detach().numpy() @ k.detach().numpy().swapaxes(-1, -2) / 2.0
    np.testing.assert_allclose(node.lse, np.log(np.exp(scores).sum(-1, keepdims=True)), rtol=1e-12)


def test_graph_picture_shows_one_flash_attention_node():
    pytest.importorskip("graphviz", reason="the graph pictures need the graphviz package")
    from minigrad import viz

    mha = MultiHeadAttention(8, 2, impl="flash", block_size=2)
    x = minigrad.randn(1, 5, 8, requires_grad=True)
    out, _ = mha(x)
    source = viz.draw_graph(out.sum()).source
    assert source.count("flash_attention") == 1
    assert "attention_weights" not in source and "softmax" not in source


def _losses(impl: str, steps: int = 50) -> list[float]:
    from encoder.tasks import get_task
    from encoder.training import TrainConfig, Trainer, model_config_for

    task = get_task("sort")
    config = model_config_for(task, d_model=16, nhead=2, num_layers=2, dropout=0.0, attention=impl, block_size=3)
    trainer = Trainer(TrainConfig(task="sort", steps=steps, batch_size=4, progress=False), config, task)
    trainer.model.to(dtype="float64")
    trainer.optimizer = trainer._make_optimizer()
    return [trainer.train_step(trainer.train_batch(i))[0] for i in range(steps)]


def test_training_with_flash_follows_the_plain_attention_curve():
    """Same seed, float64, 50 steps: the losses of flash (reference path, and accelerated) are the plain ones."""
    naive, flash = _losses("naive"), _losses("flash")
    assert naive[-1] < 0.9 * naive[0]  # it learns
    np.testing.assert_allclose(flash, naive, rtol=1e-9, atol=0)
    pytest.importorskip("numba", reason="the accelerated half needs numba (the fast extra)")
    minigrad.accel.enable(malloc=False)
    try:
        np.testing.assert_allclose(_losses("flash"), naive, rtol=1e-9, atol=0)
    finally:
        minigrad.accel.disable()


def test_errors_name_the_way_out():
    q = minigrad.randn(1, 2, 4, 3)
    with pytest.raises(ValueError, match=r"impl='flash' does not support dropout \(dropout_p=0.1\); use impl='naive'"):
        scaled_dot_product_attention(q, q, q, dropout_p=0.1, impl="flash")
    out, weights = scaled_dot_product_attention(q, q, q, dropout_p=0.1, training=False, impl="flash")
    assert weights is None and out.shape == (1, 2, 4, 3)  # dropout is off in eval mode
    with pytest.raises(ValueError, match="impl must be one of naive, flash, got 'fast'"):
        scaled_dot_product_attention(q, q, q, impl="fast")
    with pytest.raises(ValueError, match="flash_attention: block_size must be a positive integer, got 0"):
        F.flash_attention(q, q, q, block_size=0)
    with pytest.raises(ValueError, match=r"mask: shapes \(3, 4\) and \(1, 2, 4, 4\) cannot be broadcast"):
        F.flash_attention(q, q, q, minigrad.tensor(np.zeros((3, 4), dtype=bool)))
    with pytest.raises(TypeError, match="flash_attention: mask must be bool or float32, got float64"):
        F.flash_attention(q, q, q, minigrad.zeros(4, 4, dtype="float64"))
    mha = MultiHeadAttention(6, 2, impl="flash")
    with pytest.raises(ValueError, match="impl='flash' never forms the attention weights"):
        mha(minigrad.randn(1, 4, 6), need_weights=True)
    with pytest.raises(ValueError, match="MultiHeadAttention: block_size must be a positive integer, got -1"):
        MultiHeadAttention(6, 2, impl="flash", block_size=-1)
    with pytest.raises(ValueError, match="ModelConfig: attention must be 'naive' or 'flash', got 'x'"):
        from encoder.models import ModelConfig

        ModelConfig(vocab_size=5, num_classes=2, attention="x")


def _peak_bytes(impl: str, seq: int) -> int:
    import tracemalloc

    q, k, v = (minigrad.randn(1, 4, seq, 16, dtype="float64", requires_grad=True) for _ in range(3))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out, _ = scaled_dot_product_attention(q, k, v, impl=impl, block_size=32)
        minigrad.grad(out, [q, k, v], minigrad.ones_like(out))
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@ACCEL
def test_flash_never_holds_the_weights():
    """Forward + backward at seq 512: the plain attention's peak is above its (4, 512, 512) weights;
    flash.s stays below a third of them (it holds (512, 16) arrays and (32, 32) blocks)."""
    weights = 4 * 512 * 512 * 8
    plain, flash = _peak_bytes("naive", 512), _peak_bytes("flash", 512)
    assert plain > weights
    assert flash < weights / 3, (flash, weights)


def test_the_benchmark_runs(capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import flash_attention as bench

    try:
        assert bench.main(["--seqs", "64", "--block-size", "16", "--repeats", "1", "--accel", "off"]) == 0
    finally:
        minigrad.accel.disable()
    line = capsys.readouterr().out.strip().splitlines()[-2].split()
    assert line[0] == "64" and float(line[-1]) < 1e-5  # the row of seq 64; flash agrees with plain


def test_the_cli_trains_with_flash_and_draws_its_attention(tmp_path, capsys):
    from encoder.checkpoint import load_checkpoint
    from encoder.cli import main

    was_on = minigrad.accel.is_enabled()

    tiny = ["--task", "reverse", "--layers", "1", "--d-model", "16", "--heads", "2", "--steps", "4"]
    out = tmp_path / "run"
    argv = ["train", *tiny, "--eval-every", "4", "--attention", "flash", "--block-size", "3"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    config = load_checkpoint(out / "checkpoint.safetensors").meta["model_config"]
    assert (config["attention"], config["block_size"]) == ("flash", 3)
    # the attention maps need the weights: they are formed for the picture, and the layer stays flash
    assert main(["attention", "--checkpoint", str(out), "--out", str(tmp_path / "attn.png")]) == 0
    assert list(tmp_path.glob("attn*.png"))
    capsys.readouterr()
    assert main(["train", *tiny, "--attention", "flash", "--dropout", "0.1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --attention flash does not support --dropout 0.1; use --attention naive, or --dropout 0"]
    if not was_on:
        minigrad.accel.disable()  # the CLI turned the acceleration on
