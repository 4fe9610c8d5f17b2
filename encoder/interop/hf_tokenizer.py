"""The tokenizer of a Hugging Face BERT folder, through the ``tokenizers`` package (the ``bert`` extra).

``tokenizer.json`` (the full pipeline, as ``save_pretrained`` writes it) is preferred;
otherwise ``vocab.txt`` is read as a BERT WordPiece vocabulary, lower-cased unless
``tokenizer_config.json`` says ``"do_lower_case": false``. WordPiece is never re-implemented
here: both paths are the ``tokenizers`` package's own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

TOKENIZER_HINT = "pip install 'minigrad-encoder[bert]'"


class TokenizerError(RuntimeError):
    """A folder whose tokenizer cannot be loaded."""


def _import_tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError:
        raise TokenizerError(
            f"reading a BERT tokenizer needs the tokenizers package (the bert extra): {TOKENIZER_HINT}"
        ) from None
    return tokenizers


def has_tokenizer(folder: str | os.PathLike) -> bool:
    folder = Path(folder)
    return (folder / "tokenizer.json").is_file() or (folder / "vocab.txt").is_file()


def _lowercase(folder: Path) -> bool:
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return True
    try:
        return bool(json.loads(path.read_text()).get("do_lower_case", True))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenizerError(f"{path} is not valid JSON: {exc}") from None


def load_tokenizer(folder: str | os.PathLike) -> Any:
    """The folder's tokenizer: a ``tokenizers.Tokenizer`` (``encode(text).ids``, ``.tokens``,
    ``token_to_id``, ``id_to_token``), with [CLS] ... [SEP] added around each text."""
    folder = Path(folder)
    if not has_tokenizer(folder):
        raise TokenizerError(f"{folder} has no tokenizer.json or vocab.txt")
    tokenizers = _import_tokenizers()
    try:
        if (folder / "tokenizer.json").is_file():
            return tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        from tokenizers.implementations import BertWordPieceTokenizer

        wordpiece = BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=_lowercase(folder))
        return wordpiece._tokenizer  # the underlying tokenizers.Tokenizer, pipeline included
    except Exception as exc:  # the Rust side raises plain Exceptions for unreadable files
        raise TokenizerError(f"cannot read the tokenizer in {folder}: {exc}") from None
