"""Sequence-to-sequence data: DiffuSeq's JSON lines ``{"src", "trg"}`` and the default KJV restoration task.

Default task (``task="kjv_restore"``): restore the case and punctuation of King James verses.
``src`` is a verse lower-cased with its punctuation removed (letters, digits and apostrophes kept,
whitespace collapsed), ``trg`` the original verse::

    {"src": "and god said let there be light and there was light",
     "trg": "And God said, Let there be light: and there was light."}

Why this task: it is real text with a unique right answer (the original verse), there are 31,102
verses to learn from, offline (Debian ``bible-kjv``), and it is learnable by a small model in
minutes on a CPU to a clear but partial degree, while copying the source is a strong baseline
(corpus BLEU about 55 on the held-out verses: every word is there, the case and punctuation are
not) that brief CPU training does not reach. The alternatives the
default corpora offer are too small (a title per Wikipedia article: 106 pairs) or not learnable
(a verse from the previous one). Verses are split into train / validation / test by a seeded
permutation, then verses whose target is longer than the block are left out.

Batch dict (what :class:`Seq2SeqDataModule` yields):

=============  ============  ===================================================================
key            shape         meaning
=============  ============  ===================================================================
``x0``         (B, Lt) long  target ids ``trg [EOS] [PAD]...``; every position is generated
                             (the [PAD] tail sets the length, as in DiffuSeq)
``src``        (B, Ls) long  source ids ``src [EOS] [PAD]...``
``src_mask``   (B, Ls) long  1 on real source tokens
=============  ============  ===================================================================
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset

from difflab.core.lightning.data import SplitDataModule
from difflab.text.data.text import Document, pad_sequences, read_pairs
from difflab.text.tokenizer import TextTokenizer, load_tokenizer, train_bpe

Task = Literal["kjv_restore"]
TASKS: tuple[str, ...] = ("kjv_restore",)


def strip_case_and_punctuation(text: str) -> str:
    """Lower case, every character but letters, digits, apostrophes and whitespace removed, spaces collapsed."""
    text = re.sub(r"[^\w\s']|_", " ", text.lower())
    return " ".join(text.split())


def restoration_pairs() -> list[tuple[str, str]]:
    """``(src, trg)`` for every KJV verse: (stripped verse, verse), in canonical order."""
    from difflab.text.data.corpora import kjv_verses

    return [(strip_case_and_punctuation(v.text), v.text) for v in kjv_verses()]


def task_splits(
    task: str = "kjv_restore", seed: int = 0, val_size: int = 1000, test_size: int = 1000
) -> dict[str, list[tuple[str, str]]]:
    """The ``train`` / ``val`` / ``test`` pairs of a default task (seeded permutation of all verses)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    pairs = restoration_pairs()
    perm = np.random.default_rng(seed).permutation(len(pairs))
    pairs = [pairs[i] for i in perm]
    return {
        "test": pairs[:test_size],
        "val": pairs[test_size : test_size + val_size],
        "train": pairs[test_size + val_size :],
    }


def write_pairs(path: str | Path, pairs: list[tuple[str, str]]) -> Path:
    """Write ``(src, trg)`` pairs as DiffuSeq JSON lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"src": s, "trg": t}) + "\n" for s, t in pairs), encoding="utf-8")
    return path


class PairDataset(Dataset):
    """Rows of padded source / target ids as the batch dict of the module docstring."""

    def __init__(self, src: Tensor, src_mask: Tensor, trg: Tensor) -> None:
        self.src, self.src_mask, self.trg = src, src_mask, trg

    def __len__(self) -> int:
        return self.trg.shape[0]

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"x0": self.trg[i], "src": self.src[i], "src_mask": self.src_mask[i]}


def encode_pairs(
    tok: TextTokenizer,
    src: list[Document],
    trg: list[Document] | None,
    src_len: int,
    trg_len: int,
    truncate: bool = False,
    fix: str | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Padded ``src`` (N, Ls), its mask and ``trg`` (N, Lt) (``[EOS]`` after each); too long is an error
    ending with ``fix`` (default: the data module's options to change)."""

    def pad(docs, length: int, what: str) -> tuple[Tensor, Tensor]:
        ids = tok.encode_batch([d.text for d in docs])
        hint = fix or f"raise --data.init_args.{what}_len or pass --data.init_args.truncate true to cut it"
        return pad_sequences(
            docs, ids, length, pad_id=tok.pad_id, eos_id=tok.eos_id, truncate=truncate, what=what, fix=hint
        )

    s, sm = pad(src, src_len, "src")
    return s, sm, None if trg is None else pad(trg, trg_len, "trg")[0]


class Seq2SeqDataModule(SplitDataModule):
    """Source / target pairs for sequence-to-sequence diffusion.

    Data: ``train_files`` / ``val_files`` / ``test_files`` of DiffuSeq JSON lines ``{"src", "trg"}``
    (a missing key, bad JSON, an empty file or, unless ``truncate``, a sequence longer than its block
    fails naming the file and line). Without files the default ``task`` is built (see the module
    docstring); its pairs longer than the blocks are left out (``max_train_pairs`` caps the training set).

    Tokenizer: ``tokenizer`` (a tokenizer.json with [PAD] [MASK] [BOS] [EOS], or a difflab-text
    checkpoint or run folder: its tokenizer) or, if None, a byte-level BPE of ``vocab_size`` trained on
    the training sources and targets. The command line links :attr:`tokenizer_vocab_size` into
    ``--model.init_args.vocab_size``.

    Args:
        task: default task when ``train_files`` is None.
        train_files, val_files, test_files: JSON-lines files.
        tokenizer: path of a tokenizer.json or of a difflab-text checkpoint, or None.
        vocab_size: BPE size when the tokenizer is trained here.
        src_len: source block length (tokens + [EOS]).
        trg_len: target block length (tokens + [EOS], then [PAD]).
        truncate: cut over-long user sequences instead of failing.
        val_size, test_size: held-out pairs of the default task.
        max_train_pairs: use at most this many training pairs.
        batch_size, seed, num_workers: loader settings (``seed`` also sets the default task's split).
        encoding: text encoding of the files (``latin-1``, ``cp1252``, ...).
    """

    def __init__(
        self,
        task: Task | None = "kjv_restore",
        train_files: list[str] | None = None,
        val_files: list[str] | None = None,
        test_files: list[str] | None = None,
        tokenizer: str | None = None,
        vocab_size: int = 1024,
        src_len: int = 32,
        trg_len: int = 32,
        truncate: bool = False,
        val_size: int = 1000,
        test_size: int = 1000,
        max_train_pairs: int | None = None,
        batch_size: int = 64,
        seed: int = 0,
        num_workers: int = 0,
        encoding: str = "utf-8",
    ) -> None:
        super().__init__()
        if train_files is None and task is None:
            raise ValueError("Seq2SeqDataModule: give train_files or a default task")
        if batch_size < 1:
            raise ValueError(f"Seq2SeqDataModule: batch_size must be >= 1, got {batch_size}")
        self.save_hyperparameters(ignore=["vocab_size"])  # the model records the tokenizer's own size
        self.task, self.train_files, self.val_files, self.test_files = task, train_files, val_files, test_files
        self.tokenizer_path, self.vocab_size = tokenizer, vocab_size
        self.src_len, self.trg_len, self.truncate = src_len, trg_len, truncate
        self.val_size, self.test_size, self.max_train_pairs = val_size, test_size, max_train_pairs
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.encoding = encoding
        self.tokenizer: TextTokenizer | None = None
        self.pairs: dict[str, list[tuple[Document, Document]]] = {}

    def _load(self) -> dict[str, list[tuple[Document, Document]]]:
        if self.train_files:
            out = {"train": [p for f in self.train_files for p in read_pairs(f, self.encoding)]}
            if self.val_files:
                out["val"] = [p for f in self.val_files for p in read_pairs(f, self.encoding)]
            else:  # hold out a seeded 5 %
                perm = np.random.default_rng(self.seed).permutation(len(out["train"]))
                n_val = max(1, len(perm) // 20)
                if n_val >= len(perm):
                    raise ValueError(f"{self.train_files[0]}: too few pairs to hold out a validation set")
                tr = out["train"]
                out["val"], out["train"] = [tr[i] for i in perm[:n_val]], [tr[i] for i in perm[n_val:]]
            if self.test_files:
                out["test"] = [p for f in self.test_files for p in read_pairs(f, self.encoding)]
            return out
        splits = task_splits(self.task, self.seed, self.val_size, self.test_size)  # type: ignore[arg-type]
        name = f"task:{self.task}"
        return {
            k: [(Document(s, f"{name}:{k}", i + 1), Document(t, f"{name}:{k}", i + 1)) for i, (s, t) in enumerate(v)]
            for k, v in splits.items()
        }

    def _fits(self, pairs: list[tuple[Document, Document]]) -> list[tuple[Document, Document]]:
        tok = self.tokenizer
        assert tok is not None
        ls = tok.encode_batch([s.text for s, _ in pairs])
        lt = tok.encode_batch([t.text for _, t in pairs])
        return [
            p for p, a, b in zip(pairs, ls, lt, strict=True) if 0 < len(a) < self.src_len and 0 < len(b) < self.trg_len
        ]

    def _dataset(self, pairs: list[tuple[Document, Document]]) -> PairDataset:
        assert self.tokenizer is not None
        s, sm, t = encode_pairs(
            self.tokenizer, [p[0] for p in pairs], [p[1] for p in pairs], self.src_len, self.trg_len, self.truncate
        )
        assert t is not None
        return PairDataset(s, sm, t)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        pairs = self._load()
        if self.max_train_pairs is not None:
            pairs["train"] = pairs["train"][: self.max_train_pairs]
        if self.tokenizer_path is not None:
            self.tokenizer = load_tokenizer(self.tokenizer_path)
        elif not self.train_files:
            key = (self.task, self.vocab_size, self.seed, self.val_size, self.test_size, self.max_train_pairs or 0)
            self.tokenizer = TextTokenizer.from_str(_task_tokenizer(*key), f"BPE-{self.vocab_size} on {self.task}")
        else:
            self.tokenizer = train_bpe([d.text for s_t in pairs["train"] for d in s_t], self.vocab_size)
            self.tokenizer.source = f"BPE-{self.vocab_size} trained on {', '.join(self.train_files)}"
        if not self.train_files:  # the default task: leave out what does not fit the blocks
            pairs = {k: self._fits(v) for k, v in pairs.items()}
        self.pairs = pairs
        self.train_set = self._dataset(pairs["train"])
        self.val_set = self._dataset(pairs["val"])
        self.test_set = self._dataset(pairs["test"]) if "test" in pairs else None

    @property
    def tokenizer_vocab_size(self) -> int:
        """The size of the tokenizer's vocabulary (the data is read and the tokenizer built on first use)."""
        self.setup()
        assert self.tokenizer is not None
        return self.tokenizer.vocab_size

    def references(self, split: str = "test") -> tuple[list[str], list[str]]:
        """``(sources, targets)`` texts of a split (after setup)."""
        self.setup()
        pairs = self.pairs.get(split) or self.pairs["val"]
        return [s.text for s, _ in pairs], [t.text for _, t in pairs]

    def state_dict(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer.to_str() if self.tokenizer is not None else None}


@functools.lru_cache(maxsize=4)
def _task_tokenizer(task: str, vocab_size: int, seed: int, val_size: int, test_size: int, max_train: int) -> str:
    """BPE trained on the sources and targets of a default task's training split (cached per process)."""
    train = task_splits(task, seed, val_size, test_size)["train"]
    if max_train:
        train = train[:max_train]
    return train_bpe([x for pair in train for x in pair], vocab_size).to_str()


def collate_sources(
    tok: TextTokenizer, sources: list[str], src_len: int, source: str = "<input>", truncate: bool = False
) -> tuple[Tensor, Tensor]:
    """Padded source ids and mask for raw strings (``source`` names them in errors, which say that
    ``--truncate`` cuts an over-long source)."""
    docs = [Document(s, source, i + 1) for i, s in enumerate(sources)]
    s, sm, _ = encode_pairs(tok, docs, None, src_len, 0, truncate, fix="pass --truncate to cut it")
    return s, sm


__all__ = [
    "TASKS",
    "strip_case_and_punctuation",
    "restoration_pairs",
    "task_splits",
    "write_pairs",
    "PairDataset",
    "encode_pairs",
    "collate_sources",
    "Seq2SeqDataModule",
]
