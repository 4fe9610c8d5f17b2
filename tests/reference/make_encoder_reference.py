"""Make the PyTorch reference values for tests/test_encoder_parity.py (needs torch).

Regenerate with a Python that has torch (2.13 CPU was used) and numpy:

    python tests/reference/make_encoder_reference.py

It writes tests/reference/encoder_reference.npz. For every model shape (nhead 1/2/4,
one layer or a 2-layer stack) it stores randomized float64 parameters in PyTorch's
naming, an input and a random upstream gradient ("{nhead}_{layers}/..."), shared by
the cases of that shape; for every case (post-LN/pre-LN x no mask / key padding mask /
causal float mask / both) PyTorch's output, input gradient and parameter gradients
("{case}/..."). The tests load this file with numpy only.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch

B, S, D, FF = 2, 5, 8, 12
LENGTHS = [5, 3]  # the second sequence has 2 padded positions


def case_name(norm_first: bool, nhead: int, mask: str, layers: int) -> str:
    return f"{'pre' if norm_first else 'post'}_h{nhead}_{mask}_L{layers}"


def main() -> None:
    torch.manual_seed(0)
    out: dict[str, np.ndarray] = {}
    padding = torch.tensor([[i >= n for i in range(S)] for n in LENGTHS])
    causal = torch.triu(torch.full((S, S), float("-inf"), dtype=torch.float64), diagonal=1)
    shared: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    for norm_first, nhead, mask, layers in itertools.product(
        (False, True), (1, 2, 4), ("none", "padding", "causal", "both"), (1, 2)
    ):
        name = case_name(norm_first, nhead, mask, layers)
        layer = torch.nn.TransformerEncoderLayer(
            D, nhead, FF, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=torch.float64
        )
        if layers == 1:
            model: torch.nn.Module = layer
        else:
            model = torch.nn.TransformerEncoder(
                layer, layers, norm=torch.nn.LayerNorm(D, dtype=torch.float64), enable_nested_tensor=False
            )
        if (nhead, layers) not in shared:  # randomize everything, LayerNorm affine parameters included
            params = {k: torch.randn_like(p) * 0.4 for k, p in model.named_parameters()}
            x = torch.randn(B, S, D, dtype=torch.float64)
            params["__x"] = x
            params["__upstream"] = torch.randn(B, S, D, dtype=torch.float64)
            shared[(nhead, layers)] = params
            for k, v in params.items():
                out[f"h{nhead}_L{layers}/{k.lstrip('_')}"] = v.numpy()
        params = shared[(nhead, layers)]
        with torch.no_grad():
            for k, p in model.named_parameters():
                p.copy_(params[k])
        x = params["__x"].clone().requires_grad_(True)
        kpm = padding if mask in ("padding", "both") else None
        am = causal if mask in ("causal", "both") else None
        if layers == 1:
            y = model(x, src_mask=am, src_key_padding_mask=kpm)
        else:
            y = model(x, mask=am, src_key_padding_mask=kpm)
        y.backward(params["__upstream"])
        out[f"{name}/out"] = y.detach().numpy()
        out[f"{name}/grad_x"] = x.grad.numpy()
        for key, p in model.named_parameters():
            out[f"{name}/grad/{key}"] = p.grad.numpy()
    path = Path(__file__).with_name("encoder_reference.npz")
    np.savez_compressed(path, **out)
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(out)} arrays) with torch {torch.__version__}")


if __name__ == "__main__":
    main()
