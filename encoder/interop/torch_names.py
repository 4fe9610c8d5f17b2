"""Carry weights between our modules and PyTorch's, without importing torch.

``to_torch_state_dict`` gives the keys and shapes of ``torch.nn.TransformerEncoderLayer``
/ ``torch.nn.TransformerEncoder`` with NumPy arrays as values (``torch.from_numpy``
each to load them into PyTorch); ``load_torch_state_dict`` takes such a dict (NumPy
arrays, or anything with ``.numpy()``) and fills our module.

Names that differ: PyTorch stacks W_q, W_k, W_v into ``self_attn.in_proj_weight``
(3 d_model x d_model) and ``in_proj_bias``; our feed-forward is the module ``ff``.
"""

from __future__ import annotations

from typing import Any

import minigrad
from minigrad import nn

from ..layers import TransformerEncoder, TransformerEncoderLayer

_LAYER_RENAMES = {
    "self_attn.out_proj.weight": "self_attn.out_proj.weight",
    "self_attn.out_proj.bias": "self_attn.out_proj.bias",
    "ff.linear1.weight": "linear1.weight",
    "ff.linear1.bias": "linear1.bias",
    "ff.linear2.weight": "linear2.weight",
    "ff.linear2.bias": "linear2.bias",
    "norm1.weight": "norm1.weight",
    "norm1.bias": "norm1.bias",
    "norm2.weight": "norm2.weight",
    "norm2.bias": "norm2.bias",
}


def _layer_prefixes(module: nn.Module) -> list[tuple[str, TransformerEncoderLayer]]:
    if isinstance(module, TransformerEncoderLayer):
        return [("", module)]
    if isinstance(module, TransformerEncoder):
        return [(f"layers.{i}.", layer) for i, layer in enumerate(module.layers)]
    raise TypeError(f"interop: expected a TransformerEncoderLayer or TransformerEncoder, got {type(module).__name__}")


def to_torch_state_dict(module: nn.Module, grads: bool = False) -> dict[str, Any]:
    """PyTorch-named state dict (NumPy arrays) of a layer or a stack of layers.

    With ``grads=True`` the values are the parameters' gradients instead (after a
    backward), named the same way -- handy for comparing with PyTorch's ``.grad``.
    """

    def value(p: minigrad.Tensor) -> minigrad.Tensor:
        if not grads:
            return p.detach()
        if p.grad is None:
            raise RuntimeError("to_torch_state_dict(grads=True): a parameter has no gradient; run backward first")
        return p.grad.detach()

    out: dict[str, Any] = {}
    for prefix, layer in _layer_prefixes(module):
        attn = layer.self_attn
        projections = (attn.q_proj, attn.k_proj, attn.v_proj)
        out[prefix + "self_attn.in_proj_weight"] = minigrad.concat([value(p.weight) for p in projections]).numpy()
        if attn.q_proj.bias is not None:
            out[prefix + "self_attn.in_proj_bias"] = minigrad.concat([value(p.bias) for p in projections]).numpy()
        params = dict(layer.named_parameters())
        for our_key, torch_key in _LAYER_RENAMES.items():
            if our_key in params:
                out[prefix + torch_key] = value(params[our_key]).numpy()
    if isinstance(module, TransformerEncoder) and module.norm is not None:
        for key, p in module.norm.named_parameters():
            out["norm." + key] = value(p).numpy()
    return out


def _as_array(value: Any) -> Any:
    if hasattr(value, "detach") and hasattr(value, "numpy") and not isinstance(value, minigrad.Tensor):
        return value.detach().numpy()  # a torch tensor
    return value


def load_torch_state_dict(module: nn.Module, state_dict: dict[str, Any], strict: bool = True) -> None:
    """Fill a layer or stack from a PyTorch-named state dict (shapes checked, by key)."""
    ours: dict[str, Any] = {}
    used = set()
    d = None
    for prefix, layer in _layer_prefixes(module):
        d = layer.d_model
        key = prefix + "self_attn.in_proj_weight"
        if key in state_dict:
            w = _as_array(state_dict[key])
            if tuple(w.shape) != (3 * d, d):
                raise RuntimeError(
                    f"load_torch_state_dict: {key}: checkpoint shape {tuple(w.shape)} != model shape {(3 * d, d)}"
                )
            for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
                ours[f"{prefix}self_attn.{name}.weight"] = w[i * d : (i + 1) * d]
            used.add(key)
        key = prefix + "self_attn.in_proj_bias"
        if key in state_dict:
            b = _as_array(state_dict[key])
            if tuple(b.shape) != (3 * d,):
                raise RuntimeError(
                    f"load_torch_state_dict: {key}: checkpoint shape {tuple(b.shape)} != model shape {(3 * d,)}"
                )
            for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
                ours[f"{prefix}self_attn.{name}.bias"] = b[i * d : (i + 1) * d]
            used.add(key)
        for our_key, torch_key in _LAYER_RENAMES.items():
            if prefix + torch_key in state_dict:
                ours[prefix + our_key] = _as_array(state_dict[prefix + torch_key])
                used.add(prefix + torch_key)
    for key in state_dict:
        if key.startswith("norm.") and isinstance(module, TransformerEncoder):
            ours[key] = _as_array(state_dict[key])
            used.add(key)
    unexpected = [k for k in state_dict if k not in used]
    if unexpected and strict:
        raise RuntimeError("load_torch_state_dict: unexpected keys: " + ", ".join(unexpected))
    module.load_state_dict(ours, strict=strict)
