"""The ``bert`` command: a BERT checkpoint's predictions at [MASK], and what flows back through its attention.

    python -m encoder bert --weights DIR --text "the capital of france is [MASK] ."
    python -m encoder bert --weights DIR --text "..." --grads --out pictures/
    python -m encoder bert --weights DIR --text "..." --device cuda

DIR is a folder as Hugging Face's ``save_pretrained`` writes it (config.json,
model.safetensors, and vocab.txt or tokenizer.json): nothing is ever downloaded. The
command prints the top predictions at every [MASK] and, for every layer and head, where
the first [MASK] looks; with ``--grads`` also the key whose attention weight moves the
predicted token's logit most (d logit / d weight). ``--out`` writes one picture per layer
(the weights of every head and, with ``--grads``, their gradients) and the explorer page
``explore.html``: the whole graph of the forward and backward pass of that logit.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import minigrad

from .errors import CLIError


def register(subparsers: Any) -> None:
    """Add the ``bert`` command to the ``python -m encoder`` parser."""
    p = subparsers.add_parser(
        "bert",
        help="a BERT checkpoint folder: top predictions at [MASK], attention maps and their gradients",
        description="Run a masked-LM BERT from a save_pretrained folder on one text with [MASK] tokens.",
    )
    p.add_argument("--weights", required=True, help="folder with config.json, model.safetensors and vocab.txt")
    p.add_argument(
        "--text", required=True, help='text with at least one [MASK], e.g. "paris is the [MASK] of france ."'
    )
    p.add_argument("--grads", action="store_true", help="also d logit(predicted token) / d attention weights")
    p.add_argument("--top", type=int, default=5, help="predictions to print at each [MASK] (default 5)")
    p.add_argument("--out", default=None,
                   help="folder for the pictures (one PNG per layer) and the explorer page explore.html")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.set_defaults(func=run_bert)


def _device(name: str) -> str:
    """`--device cuda` without a GPU is a one-line error, before anything is loaded."""
    try:
        minigrad.backend.get_backend(name)
    except minigrad.BackendError as exc:
        raise CLIError(str(exc)) from None
    return minigrad.backend.normalize_device(name)


def _load(folder: Path, device: str) -> tuple[Any, Any]:
    from ..interop import BertCheckpointError, load_hf_bert, load_tokenizer
    from ..interop.hf_tokenizer import TokenizerError

    if not folder.is_dir():
        raise CLIError(f"--weights {folder}: no such folder (a save_pretrained folder: config.json, model.safetensors)")
    try:
        model = load_hf_bert(folder, device=device)
        tokenizer = load_tokenizer(folder)
    except (BertCheckpointError, TokenizerError) as exc:
        raise CLIError(str(exc)) from None
    if model.mlm is None:
        raise CLIError(
            f"--weights {folder}: a BertModel without the masked-LM head (cls.predictions.*) cannot predict [MASK]"
        )
    return model, tokenizer


def _fmt(token: str, value: float) -> str:
    return f"{token} {value:.3f}"


def run_bert(args: argparse.Namespace) -> int:
    """Print the predictions and the attention summary; write the pictures with ``--out``."""
    from ..bert_attention import logit_attention

    if args.top < 1:
        raise CLIError(f"--top must be a positive integer, got {args.top}")
    model, tokenizer = _load(Path(args.weights), _device(args.device))
    mask_id = tokenizer.token_to_id("[MASK]")
    if mask_id is None:
        raise CLIError(f"--weights {args.weights}: the vocabulary has no [MASK] token")
    encoding = tokenizer.encode(args.text)
    ids, tokens = minigrad.tensor([encoding.ids], device=model.device), list(encoding.tokens)
    positions = [i for i, t in enumerate(encoding.ids) if t == mask_id]
    if not positions:
        raise CLIError(f"--text has no [MASK] token: {args.text!r}")
    limit = model.config.max_position_embeddings
    if len(tokens) > limit:
        raise CLIError(f"--text is {len(tokens)} tokens long; the model takes at most {limit}")
    c = model.config
    print(f"{args.weights}: BERT, {c.num_hidden_layers} layers x {c.num_attention_heads} heads, hidden {c.hidden_size}")
    print("tokens: " + " ".join(tokens))
    first = None
    for position in positions:
        result = logit_attention(model, ids, position, grads=args.grads and first is None)
        first = first or result
        top = ", ".join(_fmt(tokenizer.id_to_token(i) or str(i), p) for i, p in result.top(args.top))
        print(f"[MASK] at {position}: {top}")
    predicted = tokenizer.id_to_token(first.token_id)
    what = f"d logit({predicted!r}) / d weight" if args.grads else ""
    print(
        f"attention of the [MASK] at {first.position} (row {first.position} of each map){'; ' + what if what else ''}:"
    )
    for layer, w in enumerate(first.weights):
        for head in range(w.shape[0]):
            row = w[head, first.position]
            k = int(row.argmax())
            line = f"  layer {layer} head {head}: looks most at {tokens[k]!r} ({row[k]:.3f})"
            if first.grads is not None:
                g = first.grads[layer][head, first.position]
                j = int(abs(g).argmax())
                line += f"; largest gradient at {tokens[j]!r} ({g[j]:+.3g})"
            print(line)
    if args.out:
        _pictures(Path(args.out), first, tokens, predicted)
        _explorer_page(Path(args.out), model, ids, tokens, first.position, first.token_id, predicted)
    return 0


def _explorer_page(out: Path, model: Any, ids: Any, tokens: list[str], position: int, token: int, name: str) -> None:
    """``OUT/explore.html``: the explorer page of the predicted token's logit at ``position``
    (as a loss to minimize, -logit), with every layer's attention and its gradients."""
    from minigrad import viz

    def minus_logit(hidden: Any) -> Any:
        logits = model.mlm(hidden[:, position], model.embeddings.word_embeddings.weight)
        return -logits[0, token]

    was_training = model.training
    model.eval()
    try:
        page = viz.explore(model, ids, loss=minus_logit, tokens=tokens,
                           title=f"BERT: loss = -logit({name!r}) at position {position}")
        path = page.save(out / "explore.html")
    except OSError as exc:
        raise CLIError(f"cannot write the explorer page to {out}: {exc}") from None
    finally:
        model.train(was_training)
    print(f"wrote {path}")


def _pictures(out: Path, result: Any, tokens: list[str], predicted: str) -> None:
    from ..attention_maps import plot_attention

    try:
        out.mkdir(parents=True, exist_ok=True)
        for layer, w in enumerate(result.weights):
            # plot_attention draws d loss / d weight; the loss that raising this prediction
            # would minimize is -logit, so its gradient is -(d logit / d weight)
            grads = None if result.grads is None else -result.grads[layer]
            title = f"layer {layer}" + (f"; loss = -logit({predicted!r})" if grads is not None else "")
            path = plot_attention(w, tokens=tokens, grads=grads, path=out / f"bert_layer{layer}.png", title=title)
            print(f"wrote {path}")
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot write the pictures to {out}: {exc}") from None
