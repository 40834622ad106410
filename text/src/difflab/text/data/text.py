"""Reading text files and turning documents into fixed-length token blocks.

Formats
-------
* Plain text (any extension but ``.jsonl`` / ``.json``): one document per non-empty line.
* JSON lines (``.jsonl`` / ``.json``), language modelling: one object per line, ``{"text": str}``.
* JSON lines, sequence to sequence (DiffuSeq's format): ``{"src": str, "trg": str}`` per line.

Files are read in ``encoding`` (UTF-8 by default); a byte that does not decode is a
:class:`TextDataError` naming the file, the line and the encoding. Blank lines are skipped. Anything
else that is wrong (an empty file, a line that is not JSON, a missing or non-string key, a document
longer than the block in ``pad`` mode) raises a :class:`TextDataError` (a ``ValueError`` and a
:class:`~difflab.core.errors.UserError`, printed in one line by the command line) that names the
file, the line and the problem.

Packing (:func:`pack_blocks`)
-----------------------------
* ``wrap`` (MDLM's wrapping): documents are concatenated, each followed by [EOS], the stream is cut
  into chunks of ``block_size - 2`` tokens, each chunk becomes ``[BOS] chunk [EOS]`` and the last
  incomplete chunk is dropped. No padding; ``attention_mask`` is all ones.
* ``pad``: one block per document, ``[BOS] doc [EOS] [PAD]...``; a document longer than
  ``block_size - 2`` tokens is an error (``truncate=True`` cuts it instead).
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from difflab.core.errors import UserError

Packing = Literal["wrap", "pad"]


class TextDataError(UserError, ValueError):
    """A text file that cannot be used as given; the message names the file (and line) first."""


@dataclass(frozen=True)
class Document:
    """One document and where it came from (``source`` file or corpus name, 1-based ``line``)."""

    text: str
    source: str
    line: int


def _is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in (".jsonl", ".json")


def read_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """``(1-based line number, line)`` of a text file in ``encoding`` (universal newlines); a byte
    that does not decode is a :class:`TextDataError` naming the file, the line and the encoding."""
    path = Path(path)
    if not path.is_file():
        raise TextDataError(f"{path}: no such file")
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except LookupError:
        raise TextDataError(f"{path}: unknown text encoding {encoding!r}") from None
    except UnicodeDecodeError as err:
        line = data[: err.start].count("\n".encode(encoding)) + 1
        raise TextDataError(
            f"{path}:{line}: not {encoding} text (byte 0x{data[err.start]:02x} at offset {err.start}); "
            "if the file is text, give its encoding (--encoding, --data.init_args.encoding), e.g. latin-1"
        ) from None
    return enumerate(io.StringIO(text, newline=None), start=1)


def _json_lines(path: Path, keys: Sequence[str], encoding: str = "utf-8") -> list[tuple[int, dict]]:
    rows = []
    for n, raw in read_lines(path, encoding):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            raise TextDataError(f"{path}:{n}: not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(obj, dict):
            raise TextDataError(f"{path}:{n}: expected a JSON object with keys {list(keys)}, got {type(obj).__name__}")
        for k in keys:
            if k not in obj:
                raise TextDataError(f"{path}:{n}: missing key {k!r} (has {sorted(obj)})")
            if not isinstance(obj[k], str):
                raise TextDataError(f"{path}:{n}: key {k!r} must be a string, got {type(obj[k]).__name__}")
        rows.append((n, obj))
    if not rows:
        raise TextDataError(f"{path}: empty file (no JSON lines)")
    return rows


def read_documents(path: str | Path, encoding: str = "utf-8") -> list[Document]:
    """Documents of a plain-text file (one per non-empty line) or a JSON-lines file (``{"text"}``)."""
    path = Path(path)
    if _is_jsonl(path):
        return [Document(obj["text"], str(path), n) for n, obj in _json_lines(path, ("text",), encoding)]
    docs = [Document(raw.strip(), str(path), n) for n, raw in read_lines(path, encoding) if raw.strip()]
    if not docs:
        raise TextDataError(f"{path}: empty file (no non-blank lines)")
    return docs


def decoded_lines(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    """``(line number, decoded line)`` read one line at a time (memory: one line), each line decoded on
    its own, so a byte that does not decode names its exact line and file offset. Lines end at ``\n``
    (a ``\r`` before it is dropped): ASCII-compatible encodings (UTF-8, latin-1, cp1252, ...)."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise TextDataError(f"{path}: unknown text encoding {encoding!r}") from None
    offset = 0
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            try:
                yield n, raw.decode(encoding)
            except UnicodeDecodeError as err:
                raise TextDataError(
                    f"{path}:{n}: not {encoding} text (byte 0x{raw[err.start]:02x} at offset {offset + err.start}); "
                    "if the file is text, give its encoding (--encoding, --data.init_args.encoding), e.g. latin-1"
                ) from None
            offset += len(raw)


def iter_documents(path: str | Path, encoding: str = "utf-8") -> Iterator[Document]:
    """The documents of :func:`read_documents`, read lazily one line at a time (memory bounded by the
    longest line, for files of any size); the same one-line errors, raised when the line is reached."""
    path = Path(path)
    if not path.is_file():
        raise TextDataError(f"{path}: no such file")
    jsonl, any_doc = _is_jsonl(path), False
    for n, raw in decoded_lines(path, encoding):
        if not raw.strip():
            continue
        if jsonl:
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as err:
                raise TextDataError(f"{path}:{n}: not valid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(obj, dict):
                raise TextDataError(f"{path}:{n}: expected a JSON object with keys ['text'], got {type(obj).__name__}")
            if "text" not in obj:
                raise TextDataError(f"{path}:{n}: missing key 'text' (has {sorted(obj)})")
            if not isinstance(obj["text"], str):
                raise TextDataError(f"{path}:{n}: key 'text' must be a string, got {type(obj['text']).__name__}")
            text = obj["text"]
        else:
            text = raw.strip()
        any_doc = True
        yield Document(text, str(path), n)
    if not any_doc:
        kind = "no JSON lines" if jsonl else "no non-blank lines"
        raise TextDataError(f"{path}: empty file ({kind})")


def read_pairs(path: str | Path, encoding: str = "utf-8") -> list[tuple[Document, Document]]:
    """``(src, trg)`` documents of a DiffuSeq-style JSON-lines file ``{"src": ..., "trg": ...}``."""
    path = Path(path)
    return [
        (Document(obj["src"], str(path), n), Document(obj["trg"], str(path), n))
        for n, obj in _json_lines(path, ("src", "trg"), encoding)
    ]


def pack_blocks(
    docs: Sequence[Document],
    ids: Sequence[Sequence[int]],
    block_size: int,
    *,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    packing: Packing = "wrap",
    truncate: bool = False,
) -> tuple[Tensor, Tensor]:
    """Token blocks ``(N, block_size)`` long and their attention mask ``(N, block_size)`` (see module doc).

    Args:
        docs: the documents (for error messages), parallel to ``ids``.
        ids: token ids of each document, without special tokens.
    """
    if block_size < 3:
        raise ValueError(f"block_size must be >= 3 ([BOS], one token, [EOS]), got {block_size}")
    if packing not in ("wrap", "pad"):
        raise ValueError(f"packing must be 'wrap' or 'pad', got {packing!r}")
    inner = block_size - 2
    if packing == "wrap":
        stream: list[int] = []
        for d, toks in zip(docs, ids, strict=True):
            if not toks:
                raise TextDataError(f"{d.source}:{d.line}: document has no tokens")
            stream.extend(toks)
            stream.append(eos_id)
        n = len(stream) // inner
        if n == 0:
            raise TextDataError(
                f"{docs[0].source if docs else '<no documents>'}: {len(stream)} tokens in all, fewer than one block of "
                f"{inner} (+[BOS] and [EOS]); use a smaller block_size or more text"
            )
        body = torch.tensor(stream[: n * inner], dtype=torch.long).view(n, inner)
        blocks = torch.cat(
            [torch.full((n, 1), bos_id, dtype=torch.long), body, torch.full((n, 1), eos_id, dtype=torch.long)], 1
        )
        return blocks, torch.ones_like(blocks)
    rows, masks = [], []
    for d, toks in zip(docs, ids, strict=True):
        if len(toks) > inner:
            if not truncate:
                raise TextDataError(
                    f"{d.source}:{d.line}: line is {len(toks)} tokens long, longer than the block "
                    f"({block_size} with [BOS] and [EOS], so at most {inner}); raise block_size or set truncate"
                )
            toks = toks[:inner]
        row = [bos_id, *toks, eos_id]
        masks.append([1] * len(row) + [0] * (block_size - len(row)))
        rows.append(row + [pad_id] * (block_size - len(row)))
    return torch.tensor(rows, dtype=torch.long), torch.tensor(masks, dtype=torch.long)


def pad_sequences(
    docs: Sequence[Document],
    ids: Sequence[Sequence[int]],
    length: int,
    *,
    pad_id: int,
    bos_id: int | None = None,
    eos_id: int | None = None,
    truncate: bool = False,
    what: str = "sequence",
    fix: str,
) -> tuple[Tensor, Tensor]:
    """``(N, length)`` ids (optional [BOS] / [EOS] around each) and mask; too long is an error naming file and line
    and ending with ``fix`` (the option to change, in the caller's words)."""
    extra = (bos_id is not None) + (eos_id is not None)
    rows, masks = [], []
    for d, toks in zip(docs, ids, strict=True):
        if not toks:
            raise TextDataError(f"{d.source}:{d.line}: {what} is empty")
        if len(toks) + extra > length:
            if not truncate:
                raise TextDataError(
                    f"{d.source}:{d.line}: {what} is {len(toks)} tokens long, longer than the block "
                    f"({length} including special tokens); {fix}"
                )
            toks = toks[: length - extra]
        row = ([bos_id] if bos_id is not None else []) + list(toks) + ([eos_id] if eos_id is not None else [])
        masks.append([1] * len(row) + [0] * (length - len(row)))
        rows.append(row + [pad_id] * (length - len(row)))
    return torch.tensor(rows, dtype=torch.long), torch.tensor(masks, dtype=torch.long)


__all__ = [
    "Document",
    "Packing",
    "TextDataError",
    "decoded_lines",
    "iter_documents",
    "pack_blocks",
    "pad_sequences",
    "read_documents",
    "read_lines",
    "read_pairs",
]
