"""Tokenizers: train a byte-level BPE with the four special tokens, or load any ``tokenizer.json``.

Every model in difflab.text needs four special tokens, looked up by their exact strings:

========  ==========================================================================
token     role
========  ==========================================================================
[PAD]     fills sequences shorter than the block (attention mask 0)
[MASK]    the absorbing state of masked diffusion and GIDD
[BOS]     first token of every block / sequence
[EOS]     separates documents in packed blocks, ends sequences
========  ==========================================================================

:func:`train_bpe` (``difflab-text train-tokenizer``) trains a byte-level BPE (HF ``tokenizers``;
Sennrich et al. 2016, byte-level as GPT-2) whose first four ids are ``[PAD]=0 [MASK]=1 [BOS]=2
[EOS]=3``. :class:`TextTokenizer` wraps any ``tokenizers.Tokenizer`` and fails with the file name
and the missing token when one of the four is absent. :func:`load_tokenizer` reads a
``tokenizer.json`` or the tokenizer kept in a difflab-text checkpoint (a ``.ckpt`` file or a run folder).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from difflab.core.errors import UserError

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[MASK]", "[BOS]", "[EOS]")


class TokenizerError(UserError, ValueError):
    """A tokenizer file that cannot be used; the message names the file first."""


def _require_tokenizers():
    try:
        import tokenizers
    except ImportError as err:  # pragma: no cover - tokenizers is a hard dependency
        raise ImportError("difflab.text needs HF tokenizers: pip install tokenizers") from err
    return tokenizers


class TextTokenizer:
    """A ``tokenizers.Tokenizer`` with the ids of [PAD], [MASK], [BOS] and [EOS].

    Args:
        tokenizer: a ``tokenizers.Tokenizer``.
        source: where it came from (a path, or a description); used in error messages.

    Raises:
        ValueError: one of the special tokens is not in the vocabulary (names ``source`` and the token).
    """

    def __init__(self, tokenizer, source: str = "<in memory>") -> None:
        self.tokenizer = tokenizer
        self.source = source
        ids = {}
        for tok in SPECIAL_TOKENS:
            i = tokenizer.token_to_id(tok)
            if i is None:
                raise TokenizerError(
                    f"{source}: tokenizer has no {tok} token (difflab.text needs {', '.join(SPECIAL_TOKENS)}); "
                    "train one with `difflab-text train-tokenizer` or add the token to the tokenizer"
                )
            ids[tok] = i
        self.pad_id, self.mask_id, self.bos_id, self.eos_id = (ids[t] for t in SPECIAL_TOKENS)
        self.special_ids = frozenset(ids.values())

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_file(cls, path: str | Path) -> TextTokenizer:
        """Load a ``tokenizer.json`` (any HF tokenizers file with the four special tokens)."""
        tk = _require_tokenizers()
        path = Path(path)
        if not path.is_file():
            raise TokenizerError(f"{path}: no such tokenizer file")
        try:
            tok = tk.Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises a plain Exception on malformed JSON
            raise TokenizerError(f"{path}: not a valid tokenizer.json ({err})") from err
        return cls(tok, str(path))

    @classmethod
    def from_str(cls, text: str, source: str = "<checkpoint>") -> TextTokenizer:
        tk = _require_tokenizers()
        return cls(tk.Tokenizer.from_str(text), source)

    def to_str(self) -> str:
        return self.tokenizer.to_str()

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(path))
        return path

    # ------------------------------------------------------------------ use
    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int], stop_at_eos: bool = False) -> str:
        """Text of ``ids`` with special tokens dropped; [EOS] separates documents by a newline.

        With ``stop_at_eos`` the text ends at the first [EOS] after some content.
        """
        docs: list[list[int]] = [[]]
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                if stop_at_eos and any(docs):
                    break
                docs.append([])
            elif i not in self.special_ids:
                docs[-1].append(i)
        parts = [self.tokenizer.decode(d, skip_special_tokens=True).strip() for d in docs if d]
        return "\n".join(parts)

    def decode_batch(self, rows, stop_at_eos: bool = False) -> list[str]:
        return [self.decode(r, stop_at_eos) for r in rows]

    def same_as(self, other: TextTokenizer) -> bool:
        """Whether ``other`` maps every text to the same ids (the same serialised tokenizer)."""
        return self.to_str() == other.to_str()

    def __repr__(self) -> str:
        return f"TextTokenizer(source={self.source!r}, vocab_size={self.vocab_size})"


def load_tokenizer(path: str | Path) -> TextTokenizer:
    """The tokenizer of a ``tokenizer.json``, or the one kept in a difflab-text checkpoint (a ``.ckpt``
    file, or a run folder: its newest ``last.ckpt``), so a model's own tokenizer can be given to a data
    module without a separate file. Failures are :class:`TokenizerError` naming the path."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".ckpt":
        from difflab.core.lightning.checkpoint import checkpoint_file, read_checkpoint

        checkpoint = read_checkpoint(checkpoint_file(path), expected="a tokenizer.json or a difflab-text checkpoint")
        text = checkpoint.get("difflab_tokenizer")
        if not text:
            raise TokenizerError(f"{path}: the checkpoint carries no tokenizer (expected one written by difflab-text)")
        return TextTokenizer.from_str(text, f"{path} (the checkpoint's tokenizer)")
    return TextTokenizer.from_file(path)


def train_bpe(texts: Iterable[str], vocab_size: int = 4096, min_frequency: int = 2) -> TextTokenizer:
    """Train a byte-level BPE on ``texts``; ids 0..3 are [PAD] [MASK] [BOS] [EOS].

    Args:
        texts: training documents (any iterable of strings).
        vocab_size: target vocabulary size including the special tokens and the 256 byte symbols.
        min_frequency: minimum pair count for a merge.
    """
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be >= {256 + len(SPECIAL_TOKENS)} for a byte-level BPE, got {vocab_size}")
    tk = _require_tokenizers()
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return TextTokenizer(tok, "<trained BPE>")


__all__ = ["SPECIAL_TOKENS", "TextTokenizer", "TokenizerError", "load_tokenizer", "train_bpe"]
