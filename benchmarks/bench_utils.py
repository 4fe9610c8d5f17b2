"""The workload of the benchmarks: the configs, the batch, the two models and their training steps.

The scripts in this folder import this module, ``bench_env`` (threads, BLAS, minigrad's
acceleration, the header lines) and ``bench_measure`` (timing, memory); run them as
``python benchmarks/<script>.py`` (Python puts the script's folder first on
``sys.path``, so ``import bench_utils`` works).

PyTorch is optional everywhere: ``bench_env.import_torch`` returns None when it is
missing (the project's own virtualenv and CI have no torch), and every torch code path
is guarded; the functions here that need torch take the module as an argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

import minigrad
import minigrad.functional as F
from minigrad.accel.threads import even_slices


# ---- the model sizes ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchConfig:
    """One benchmark size: (batch, seq, d_model, heads, d_ff, layers, vocab) of a sequence classifier."""

    name: str
    batch: int
    seq: int
    d_model: int
    nhead: int
    d_ff: int
    layers: int
    vocab: int
    num_classes: int = 4

    def describe(self) -> str:
        return (
            f"{self.name}: batch {self.batch}, seq {self.seq}, d_model {self.d_model}, heads {self.nhead}, "
            f"d_ff {self.d_ff}, layers {self.layers}, vocab {self.vocab}, classes {self.num_classes}"
        )


CONFIGS = {
    "tiny": BenchConfig("tiny", 16, 16, 32, 4, 64, 1, 16),
    "small": BenchConfig("small", 32, 32, 128, 4, 512, 2, 64),
    "medium": BenchConfig("medium", 32, 64, 256, 8, 1024, 4, 128),
}


def matmul_flops(cfg: BenchConfig) -> tuple[int, int]:
    """(forward, forward+backward) matrix-multiplication FLOPs of one training step, counted analytically.

    A product (m, k) @ (k, n) costs 2*m*k*n FLOPs (one multiply and one add per term).
    With N = batch*seq tokens, D = d_model, S = seq, F = d_ff, per encoder layer:

        q, k, v projections  3 * 2*N*D*D
        scores q @ k^T           2*N*S*D     (all heads together: B*H*S*S*(D/H) terms)
        weights @ v              2*N*S*D
        output projection        2*N*D*D
        feed-forward           2 * 2*N*D*F   (D -> F -> D)
        -------------------------------------
        layer forward = 8*N*D^2 + 4*N*S*D + 4*N*D*F

    plus the classifier head 2*B*D*C. The backward pass of every product needs two
    products of the same size (the gradient of each operand), so forward+backward = 3x
    forward. Not counted: the embedding lookup, softmax, layer norm, elementwise ops and
    the optimizer (all O(N*D) or O(params), memory bound). Padded positions are computed
    (and counted) by both frameworks.
    """
    n = cfg.batch * cfg.seq
    d, s, f = cfg.d_model, cfg.seq, cfg.d_ff
    layer = 8 * n * d * d + 4 * n * s * d + 4 * n * d * f
    forward = cfg.layers * layer + 2 * cfg.batch * d * cfg.num_classes
    return forward, 3 * forward


# ---- the batch ----------------------------------------------------------------------------------------
def make_batch(cfg: BenchConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Token ids with padding, the key padding mask (True = padding) and one label per sequence.

    Lengths are drawn in [seq/2, seq]; padded positions hold token 0 (the padding index).
    """
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, cfg.vocab, size=(cfg.batch, cfg.seq), dtype=np.int64)
    lengths = rng.integers(cfg.seq // 2, cfg.seq + 1, size=cfg.batch)
    lengths[0] = cfg.seq  # at least one full-length sequence
    padding = np.arange(cfg.seq)[None, :] >= lengths[:, None]
    tokens[padding] = 0
    labels = rng.integers(0, cfg.num_classes, size=cfg.batch, dtype=np.int64)
    return {"tokens": tokens, "padding_mask": padding, "labels": labels}


# ---- minigrad ---------------------------------------------------------------------------------------
LR = 1e-3  # Adam with its defaults otherwise (betas 0.9, 0.999, eps 1e-8), the same in both frameworks


def build_minigrad(cfg: BenchConfig, device: str = "cpu", seed: int = 0) -> tuple[Any, Any]:
    """Our SequenceClassifier (mean pooling, no dropout, post-LN, ReLU) and its Adam optimizer."""
    from encoder.models import ModelConfig, build_model

    minigrad.manual_seed(seed)
    config = ModelConfig(
        vocab_size=cfg.vocab,
        num_classes=cfg.num_classes,
        head="sequence",
        d_model=cfg.d_model,
        nhead=cfg.nhead,
        num_layers=cfg.layers,
        dim_feedforward=cfg.d_ff,
        dropout=0.0,
        max_len=cfg.seq,
        pooling="mean",
        padding_idx=0,
    )
    model = build_model(config)
    model.to(device)
    optimizer = minigrad.optim.Adam(list(model.parameters()), lr=LR)
    return model, optimizer


def minigrad_inputs(batch: dict[str, np.ndarray], device: str = "cpu") -> tuple[Any, Any, Any]:
    return tuple(minigrad.tensor(batch[k], device=device) for k in ("tokens", "padding_mask", "labels"))


def minigrad_loss(model: Any, inputs: tuple[Any, Any, Any]) -> Any:
    tokens, padding_mask, labels = inputs
    return F.cross_entropy(model(tokens, padding_mask), labels)


def minigrad_chunks(batch: dict[str, np.ndarray], parts: int, device: str = "cpu") -> list[tuple[Any, Any, Any]]:
    """The batch split into ``parts`` chunks of consecutive sequences (for ``minigrad_step``)."""
    size = len(batch["labels"])
    if not 1 <= parts <= size:
        raise ValueError(f"cannot split a batch of {size} into {parts} chunks")
    return [minigrad_inputs({k: v[lo:hi] for k, v in batch.items()}, device) for lo, hi in even_slices(size, parts)]


def minigrad_step(model: Any, optimizer: Any, inputs: tuple[Any, Any, Any] | list[tuple[Any, Any, Any]]) -> Any:
    """One training step: forward, loss, backward, Adam update. Returns the loss tensor.

    ``inputs`` as a list of chunks (``minigrad_chunks``): ``minigrad.data_parallel_backward``
    runs the chunks' forward and backward (on threads with the acceleration on, else one
    after the other), each weighted by its share of the batch.
    """
    optimizer.zero_grad()
    if isinstance(inputs, list):
        sizes = [len(chunk[2]) for chunk in inputs]
        loss = minigrad.data_parallel_backward(
            lambda chunk: minigrad_loss(model, chunk),
            inputs,
            list(model.parameters()),
            [n / sum(sizes) for n in sizes],
        )
    else:
        loss = minigrad_loss(model, inputs)
        loss.backward()
    optimizer.step()
    return loss


def cuda_synchronize_minigrad() -> None:
    """Wait for the GPU (CuPy is imported here only, so CPU runs never need it)."""
    import cupy

    cupy.cuda.Device().synchronize()


# ---- PyTorch ------------------------------------------------------------------------------------------
def sinusoidal_table_np(max_len: int, d_model: int) -> np.ndarray:
    """The same table as ``encoder.embeddings.sinusoidal_table``, in NumPy (float32)."""
    pos = np.arange(max_len, dtype=np.float64)[:, None]
    angle = pos * np.exp(np.arange(0, d_model, 2, dtype=np.float64) * (-math.log(10000.0) / d_model))
    table = np.stack([np.sin(angle), np.cos(angle)], axis=-1).reshape(max_len, -1)[:, :d_model]
    return table.astype(np.float32)


def build_torch(torch: Any, cfg: BenchConfig, source: Any = None, device: str = "cpu") -> tuple[Any, Any]:
    """The same classifier in PyTorch and its Adam optimizer.

    The encoder is ``torch.nn.TransformerEncoder(batch_first=True, norm_first=False,
    dropout=0, enable_nested_tensor=False)``. With ``source`` (our minigrad model) every
    weight is copied from it: the embedding, the encoder stack through
    ``encoder.interop.to_torch_state_dict`` and the head; otherwise torch's own init is
    kept (enough for memory measurements, where values do not matter).
    """
    nn = torch.nn

    class TorchSequenceClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(cfg.vocab, cfg.d_model, padding_idx=0)
            self.register_buffer("pe", torch.from_numpy(sinusoidal_table_np(cfg.seq, cfg.d_model)))
            layer = nn.TransformerEncoderLayer(
                cfg.d_model, cfg.nhead, cfg.d_ff, dropout=0.0, activation="relu", batch_first=True, norm_first=False
            )
            self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
            self.head = nn.Linear(cfg.d_model, cfg.num_classes)
            self.scale = math.sqrt(cfg.d_model)

        def forward(self, tokens: Any, padding_mask: Any) -> Any:
            # as encoder.models.SequenceClassifier: embed * sqrt(d) + PE, encoder, masked mean, head
            x = self.embed(tokens) * self.scale + self.pe[: tokens.shape[1]]
            h = self.encoder(x, src_key_padding_mask=padding_mask)
            keep = (~padding_mask).to(h.dtype).unsqueeze(-1)
            return self.head((h * keep).sum(1) / keep.sum(1))

    model = TorchSequenceClassifier()
    if source is not None:
        from encoder.interop import to_torch_state_dict

        state = {"encoder." + k: torch.from_numpy(v.copy()) for k, v in to_torch_state_dict(source.encoder).items()}
        state["embed.weight"] = torch.from_numpy(source.embed.embedding.weight.detach().numpy().copy())
        state["pe"] = torch.from_numpy(source.pos.table.numpy()[: cfg.seq].copy())
        state["head.weight"] = torch.from_numpy(source.head.weight.detach().numpy().copy())
        state["head.bias"] = torch.from_numpy(source.head.bias.detach().numpy().copy())
        model.load_state_dict(state, strict=True)
    model.to(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    return model, optimizer


def torch_inputs(torch: Any, batch: dict[str, np.ndarray], device: str = "cpu") -> tuple[Any, Any, Any]:
    return tuple(torch.from_numpy(batch[k].copy()).to(device) for k in ("tokens", "padding_mask", "labels"))


def torch_loss(torch: Any, model: Any, inputs: tuple[Any, Any, Any]) -> Any:
    tokens, padding_mask, labels = inputs
    return torch.nn.functional.cross_entropy(model(tokens, padding_mask), labels)


def torch_step(torch: Any, model: Any, optimizer: Any, inputs: tuple[Any, Any, Any]) -> Any:
    optimizer.zero_grad(set_to_none=True)
    loss = torch_loss(torch, model, inputs)
    loss.backward()
    optimizer.step()
    return loss
