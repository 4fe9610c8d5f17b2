"""Carry weights between our modules and other libraries' files, without importing torch.

* :mod:`encoder.interop.torch_names`: ``torch.nn.TransformerEncoder(Layer)`` state dicts
  (``to_torch_state_dict``, ``load_torch_state_dict``).
* :mod:`encoder.interop.hf_bert`: Hugging Face BERT folders (``load_hf_bert``, ``save_hf_bert``).
* :mod:`encoder.interop.hf_tokenizer`: the tokenizer of such a folder (``load_tokenizer``).
"""

from .hf_bert import BertCheckpointError, hf_names, hf_to_ours, load_hf_bert, save_hf_bert
from .hf_tokenizer import TOKENIZER_HINT, load_tokenizer
from .torch_names import load_torch_state_dict, to_torch_state_dict

__all__ = [
    "TOKENIZER_HINT",
    "BertCheckpointError",
    "hf_names",
    "hf_to_ours",
    "load_hf_bert",
    "load_tokenizer",
    "load_torch_state_dict",
    "save_hf_bert",
    "to_torch_state_dict",
]
