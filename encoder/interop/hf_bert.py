"""Read and write BERT checkpoints as Hugging Face's ``save_pretrained`` lays them out.

A folder holds ``config.json`` and ``model.safetensors`` (only arrays: nothing is
unpickled). Tensor names, Hugging Face -> ours (``bert.`` in front of the model's own
names in a BertForMaskedLM / BertForPreTraining file)::

    embeddings.{word,position,token_type}_embeddings.weight   same names
    embeddings.LayerNorm.*                                    embeddings.norm.*
    encoder.layer.N.attention.self.{query,key,value}.*        encoder.layers.N.self_attn.{q,k,v}_proj.*
    encoder.layer.N.attention.output.dense.*                  encoder.layers.N.self_attn.out_proj.*
    encoder.layer.N.attention.output.LayerNorm.*              encoder.layers.N.norm1.*
    encoder.layer.N.intermediate.dense.*                      encoder.layers.N.ff.linear1.*
    encoder.layer.N.output.dense.*                            encoder.layers.N.ff.linear2.*
    encoder.layer.N.output.LayerNorm.*                        encoder.layers.N.norm2.*
    pooler.dense.*                                            pooler.dense.*
    cls.predictions.transform.dense.*                         mlm.dense.*
    cls.predictions.transform.LayerNorm.*                     mlm.norm.*
    cls.predictions.bias                                      mlm.bias
    cls.predictions.decoder.{weight,bias}                     tied: the word embeddings and mlm.bias
    cls.seq_relationship.*                                    nsp.*

Old checkpoints name LayerNorm parameters ``gamma``/``beta``; they are read as weight/bias.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import minigrad
from minigrad.files import atomic_path, write_atomic

from ..bert import BertForMaskedLM, BertModel
from ..bert_config import BertConfig, BertConfigError

_PICKLE_FILES = ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")
# (Hugging Face name prefix, ours), for names without the "bert." prefix; {n} is a layer number
_NAMES = [
    ("embeddings.LayerNorm.", "embeddings.norm."),
    ("encoder.layer.{n}.attention.self.query.", "encoder.layers.{n}.self_attn.q_proj."),
    ("encoder.layer.{n}.attention.self.key.", "encoder.layers.{n}.self_attn.k_proj."),
    ("encoder.layer.{n}.attention.self.value.", "encoder.layers.{n}.self_attn.v_proj."),
    ("encoder.layer.{n}.attention.output.dense.", "encoder.layers.{n}.self_attn.out_proj."),
    ("encoder.layer.{n}.attention.output.LayerNorm.", "encoder.layers.{n}.norm1."),
    ("encoder.layer.{n}.intermediate.dense.", "encoder.layers.{n}.ff.linear1."),
    ("encoder.layer.{n}.output.dense.", "encoder.layers.{n}.ff.linear2."),
    ("encoder.layer.{n}.output.LayerNorm.", "encoder.layers.{n}.norm2."),
    ("cls.predictions.transform.dense.", "mlm.dense."),
    ("cls.predictions.transform.LayerNorm.", "mlm.norm."),
    ("cls.predictions.bias", "mlm.bias"),
    ("cls.seq_relationship.", "nsp."),
]


def _rename(name: str, pairs: list[tuple[str, str]]) -> str:
    """``name`` with the first matching prefix of ``pairs`` replaced (unchanged when none matches)."""
    for src, dst in pairs:
        m = re.match(re.escape(src).replace(re.escape("{n}"), r"(\d+)"), name)
        if m:
            return dst.format(n=m.group(1) if m.groups() else "") + name[m.end() :]
    return name


class BertCheckpointError(RuntimeError):
    """A BERT folder or state dict that cannot be read exactly."""


def hf_to_ours(name: str) -> str:
    """Our parameter name for a Hugging Face BERT tensor name (``bert.`` prefix already removed)."""
    if "LayerNorm." in name:
        name = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", name))
    return _rename(name, _NAMES)


def hf_names(model: BertModel) -> dict[str, str]:
    """Our parameter name -> the name Hugging Face's ``save_pretrained`` gives it, for ``model``."""
    prefix = "bert." if model.mlm is not None or model.nsp is not None else ""
    out = {}
    for ours, _ in model.named_parameters():  # (kept attention weights are not saved)
        hf = _rename(ours, [(dst, src) for src, dst in _NAMES])
        out[ours] = hf if hf.startswith("cls.") else prefix + hf
    return out


def _read_folder(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if not folder.exists():
        raise BertCheckpointError(f"load_hf_bert: {folder} does not exist")
    if not folder.is_dir():
        raise BertCheckpointError(
            f"load_hf_bert: {folder} is not a folder (expected config.json and model.safetensors)"
        )
    weights = folder / "model.safetensors"
    if not weights.exists():
        pickles = [name for name in _PICKLE_FILES if (folder / name).exists()]
        if pickles:
            raise BertCheckpointError(
                f"load_hf_bert: {folder} has {pickles[0]} but no model.safetensors; refusing it: it is a pickle, and "
                "unpickling can run arbitrary code (convert it to model.safetensors where you trust it)"
            )
        if (folder / "model.safetensors.index.json").exists():
            raise BertCheckpointError(
                f"load_hf_bert: {folder} holds a sharded checkpoint; only one model.safetensors is read"
            )
        raise BertCheckpointError(f"load_hf_bert: {folder} has no model.safetensors")
    if not (folder / "config.json").exists():
        raise BertCheckpointError(f"load_hf_bert: {folder} has no config.json")
    try:
        config = json.loads((folder / "config.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BertCheckpointError(f"load_hf_bert: {folder / 'config.json'} is not valid JSON: {exc}") from None
    try:
        arrays = load_file(str(weights))
    except TypeError as exc:  # NumPy has no bfloat16
        raise BertCheckpointError(f"load_hf_bert: {weights} holds tensors NumPy cannot read ({exc}); "
                                  "save the checkpoint in float32") from None  # fmt: skip
    except (SafetensorError, OSError, ValueError) as exc:
        raise BertCheckpointError(f"load_hf_bert: {weights} is not a valid safetensors file: {exc}") from None
    return config, arrays


def _as_numpy(value: Any) -> Any:
    """A host array for a NumPy array, a minigrad or torch tensor, or nested lists."""
    if isinstance(value, minigrad.Tensor):
        return value.detach().numpy()
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()  # a torch tensor
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        return value
    return minigrad.tensor(value).numpy()


def _our_state(arrays: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a Hugging Face state dict into our names, and the tied decoder tensors to check."""
    prefixed = any(k.startswith("bert.") for k in arrays)
    ours: dict[str, Any] = {}
    tied: dict[str, Any] = {}
    for key, value in arrays.items():
        name = key[len("bert.") :] if prefixed and key.startswith("bert.") else key
        if name in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias"):
            tied[name] = _as_numpy(value)
            continue
        if name in ("embeddings.position_ids", "embeddings.token_type_ids"):
            continue  # buffers older versions saved: arange(max_len) and zeros, rebuilt on the fly
        ours[hf_to_ours(name)] = _as_numpy(value)
    return ours, tied


def load_hf_bert(
    source: str | os.PathLike | Mapping[str, Any],
    config: dict[str, Any] | BertConfig | None = None,
    dtype: Any = None,
    device: str | None = None,
) -> BertModel:
    """A BERT from a ``save_pretrained`` folder, or from a state dict (names -> arrays) and ``config``.

    Builds a :class:`~encoder.bert.BertForMaskedLM` when the checkpoint has the masked-LM
    head (``cls.predictions.*``), else a :class:`~encoder.bert.BertModel` (with the pooler
    when the checkpoint has one). Parameters are in ``dtype`` (default: minigrad's default
    dtype) on ``device``. Every tensor must find its place and every parameter a tensor.
    """
    if isinstance(source, Mapping):
        if config is None:
            raise BertCheckpointError("load_hf_bert: a state dict needs config= (the keys of config.json)")
        arrays, config_dict = dict(source), config
    else:
        config_dict, arrays = _read_folder(Path(source))
        if config is not None:
            config_dict = config
    try:
        cfg = config_dict if isinstance(config_dict, BertConfig) else BertConfig.from_dict(config_dict)
    except BertConfigError as exc:
        raise BertCheckpointError(f"load_hf_bert: {exc}") from None
    ours, tied = _our_state(arrays)
    has_mlm = any(k.startswith("mlm.") for k in ours)
    has_nsp = any(k.startswith("nsp.") for k in ours)
    pooler = any(k.startswith("pooler.") for k in ours)
    if has_nsp and not pooler:
        raise BertCheckpointError("load_hf_bert: the checkpoint has the next-sentence head but no pooler")
    if has_mlm:
        model: BertModel = BertForMaskedLM(cfg, add_pooling_layer=pooler, nsp_head=has_nsp)
    else:
        model = BertModel(cfg, add_pooling_layer=pooler, nsp_head=has_nsp)
    model.to(device=device, dtype=dtype or minigrad.get_default_dtype())
    _check_tied(ours, tied)
    try:
        model.load_state_dict(ours)
    except RuntimeError as exc:
        problems = [line.strip() for line in str(exc).splitlines()[1:]]
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise BertCheckpointError(
            "load_hf_bert: the tensors do not fit the config: " + "; ".join(problems[:3]) + more
        ) from None
    return model.eval()


def _check_tied(ours: dict[str, Any], tied: dict[str, Any]) -> None:
    """The decoder tensors older files store must equal what they are tied to (else they would be dropped)."""
    pairs = {
        "cls.predictions.decoder.weight": "embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "mlm.bias",
    }
    for name, value in tied.items():
        other = ours.get(pairs[name])
        if other is None or other.shape != value.shape or not (other == value).all():
            raise BertCheckpointError(
                f"load_hf_bert: {name} differs from {pairs[name]}; an untied masked-LM decoder is not supported"
            )


def _contiguous(array: Any) -> Any:
    return array if array.flags.c_contiguous else array.copy(order="C")  # safetensors writes C order


def save_hf_bert(model: BertModel, folder: str | os.PathLike) -> Path:
    """Write ``config.json`` and ``model.safetensors`` as ``save_pretrained`` would; returns the folder.

    ``transformers`` loads the folder back (``BertModel`` / ``BertForMaskedLM`` /
    ``BertForPreTraining``.from_pretrained) with no missing or unexpected keys. Files are
    written atomically; the tied decoder weight is not stored (as Hugging Face does).
    """
    from safetensors.numpy import save_file

    if not isinstance(model, BertModel):
        raise TypeError(f"save_hf_bert: expected a BertModel, got {type(model).__name__}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = hf_names(model)
    tensors = {names[k]: _contiguous(p.detach().numpy()) for k, p in model.named_parameters()}
    dtypes = {str(t.dtype) for t in tensors.values()}
    config = model.config.to_dict()
    if model.nsp is not None:
        architecture = "BertForPreTraining"
    else:
        architecture = "BertForMaskedLM" if model.mlm is not None else "BertModel"
    config.update(architectures=[architecture], dtype=dtypes.pop() if len(dtypes) == 1 else "float32")
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    write_atomic(folder / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder
