"""Write tests/reference/optim_reference.npz: PyTorch's results that tests/test_optim.py checks.

Regenerate (needs PyTorch and NumPy; minigrad is not used):

    /path/to/python-with-torch tests/reference/make_optim_reference.py

The problem: a 3x4 weight ``W`` and a length-4 bias ``b`` (float64) minimise the fixed
quadratic loss ``sum(0.5 * A_W * (W - T_W)**2) + sum(0.5 * A_b * (b - T_b)**2)``, so the
gradients are ``A * (p - T)``. Each optimizer in ``CONFIGS`` runs ``STEPS`` steps; at
step ``SKIP_BIAS_STEP`` (1-based) the bias has no gradient (``grad = None``), so it must
be skipped (and, for Adam, its step count must not advance). The file holds the inputs,
the configurations (as JSON) and the parameters after every step, plus the results of
``torch.nn.utils.clip_grad_norm_`` for a few norm types.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

STEPS = 5
SKIP_BIAS_STEP = 3
OUT = Path(__file__).with_name("optim_reference.npz")

# name -> (class name, keyword arguments, optional per-group overrides for [W, b])
CONFIGS: dict[str, dict] = {
    "adam": {"cls": "Adam", "kwargs": {"lr": 0.1}},
    "adam_l2": {"cls": "Adam", "kwargs": {"lr": 0.05, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.1}},
    "adam_groups": {
        "cls": "Adam",
        "kwargs": {"lr": 0.1, "betas": [0.9, 0.999]},
        "groups": [{}, {"lr": 0.01, "eps": 1e-3}],
    },
    "adamw": {"cls": "AdamW", "kwargs": {"lr": 0.05, "betas": [0.9, 0.95], "weight_decay": 0.1}},
    "adamw_default_wd": {"cls": "AdamW", "kwargs": {"lr": 0.01}},
    "sgd": {"cls": "SGD", "kwargs": {"lr": 0.1}},
    "sgd_momentum": {"cls": "SGD", "kwargs": {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.05}},
    "sgd_nesterov": {"cls": "SGD", "kwargs": {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05}},
}

CLIP_NORM_TYPES = [2.0, 1.0, math.inf, 3.0]


def make_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240611)
    return {
        "W0": rng.standard_normal((3, 4)),
        "b0": rng.standard_normal(4),
        "A_W": rng.uniform(0.5, 2.0, (3, 4)),
        "T_W": rng.standard_normal((3, 4)),
        "A_b": rng.uniform(0.5, 2.0, 4),
        "T_b": rng.standard_normal(4),
    }


def run_torch(config: dict, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    W = torch.tensor(inputs["W0"], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(inputs["b0"], dtype=torch.float64, requires_grad=True)
    kwargs = dict(config["kwargs"])
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    groups = config.get("groups")
    params = [W, b] if groups is None else [{"params": [p], **g} for p, g in zip([W, b], groups)]
    cls = getattr(torch.optim, config["cls"])
    if config["cls"] in ("Adam", "AdamW"):
        kwargs.update(foreach=False, fused=False)  # the plain single-tensor algorithm
    opt = cls(params, **kwargs)
    Ws, bs = [], []
    for step in range(1, STEPS + 1):
        with torch.no_grad():
            W.grad = torch.tensor(inputs["A_W"]) * (W - torch.tensor(inputs["T_W"]))
            b.grad = None if step == SKIP_BIAS_STEP else torch.tensor(inputs["A_b"]) * (b - torch.tensor(inputs["T_b"]))
        opt.step()
        Ws.append(W.detach().numpy().copy())
        bs.append(b.detach().numpy().copy())
    return np.stack(Ws), np.stack(bs)


def run_clip(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for i, norm_type in enumerate(CLIP_NORM_TYPES):
        W = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(4, dtype=torch.float64, requires_grad=True)
        W.grad = torch.tensor(inputs["T_W"] * 3.0)
        b.grad = torch.tensor(inputs["T_b"] * 3.0)
        total = torch.nn.utils.clip_grad_norm_([W, b], max_norm=1.5, norm_type=norm_type)
        out[f"clip{i}/total"] = np.asarray(total.item())
        out[f"clip{i}/W_grad"] = W.grad.numpy().copy()
        out[f"clip{i}/b_grad"] = b.grad.numpy().copy()
    return out


def main() -> None:
    inputs = make_inputs()
    arrays: dict[str, np.ndarray] = dict(inputs)
    meta = {
        "configs": CONFIGS,
        "steps": STEPS,
        "skip_bias_step": SKIP_BIAS_STEP,
        "clip_norm_types": [str(n) for n in CLIP_NORM_TYPES],
        "clip_max_norm": 1.5,
        "clip_grad_scale": 3.0,
        "torch_version": torch.__version__,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    for name, config in CONFIGS.items():
        arrays[f"{name}/W"], arrays[f"{name}/b"] = run_torch(config, inputs)
    arrays.update(run_clip(inputs))
    np.savez(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, torch {torch.__version__})")


if __name__ == "__main__":
    main()
