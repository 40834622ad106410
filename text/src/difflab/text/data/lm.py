"""Language-model data: token blocks from the default corpora or from text / JSON-lines files.

Batch dict (what :class:`LMDataModule` yields, the ``DiffusionModule`` contract):

==================  ===========  ============================================================
key                 shape        meaning
==================  ===========  ============================================================
``x0``              (B, L) long  token ids of a block, ``[BOS] ... [EOS]`` (``L = block_size``)
``attention_mask``  (B, L) long  1 on real tokens, 0 on [PAD] (all ones with ``wrap`` packing)
==================  ===========  ============================================================
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

# Resumable shuffling from core (epoch e uses seed + e, restarts mid-epoch from the fit loop).
from difflab.core.lightning.data import SplitDataModule
from difflab.text.data.corpora import Corpus, corpus_documents
from difflab.text.data.text import Document, Packing, TextDataError, pack_blocks, read_documents
from difflab.text.tokenizer import TextTokenizer, load_tokenizer, train_bpe


class BlockDataset(Dataset):
    """Rows of ``(N, L)`` token blocks as ``{"x0": (L,), "attention_mask": (L,)}``."""

    def __init__(self, blocks: Tensor, mask: Tensor) -> None:
        self.blocks, self.mask = blocks, mask

    def __len__(self) -> int:
        return self.blocks.shape[0]

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"x0": self.blocks[i], "attention_mask": self.mask[i]}


def documents_for(corpus: str | None, files: list[str] | None, encoding: str = "utf-8") -> list[Document]:
    """Documents of the given files (read in ``encoding``), or of a default corpus."""
    if files:
        return [d for f in files for d in read_documents(f, encoding)]
    if corpus is None:
        raise ValueError("give train_files or a default corpus ('kjv', 'wiki' or 'news')")
    return [Document(t, f"corpus:{corpus}", i + 1) for i, t in enumerate(corpus_documents(corpus))]


class LMDataModule(SplitDataModule):
    """Fixed-length token blocks for language modelling.

    Data: ``train_files`` (plain text, one document per line, or JSON lines ``{"text"}``) and optional
    ``val_files``; without ``val_files`` a seeded ``val_fraction`` of the documents is held out.
    Without files the default ``corpus`` is used (``kjv``, ``wiki`` or ``news``; see
    :mod:`difflab.text.data.corpora`).

    Tokenizer: ``tokenizer`` is the path of a ``tokenizer.json`` (from ``difflab-text
    train-tokenizer`` or any HF tokenizers file with [PAD] [MASK] [BOS] [EOS]) or of a difflab-text
    checkpoint or run folder (its tokenizer); None trains a byte-level BPE of ``vocab_size`` on the
    training documents (deterministic, a few seconds). The tokenizer decides the model's vocabulary:
    the command line links :attr:`tokenizer_vocab_size` into ``--model.init_args.vocab_size``.

    Args:
        corpus: default corpus used when ``train_files`` is None.
        train_files: training text files.
        val_files: held-out text files.
        tokenizer: path of a tokenizer.json or of a difflab-text checkpoint, or None.
        vocab_size: BPE size when the tokenizer is trained here.
        block_size: tokens per block including [BOS] and [EOS].
        packing: ``wrap`` (concatenate and cut, MDLM) or ``pad`` (one document per block).
        truncate: in ``pad`` mode, cut documents longer than the block instead of failing.
        val_fraction: held-out share of the documents when ``val_files`` is None.
        max_documents: use only this many documents (after the seeded shuffle; for quick runs).
        batch_size: batch size.
        seed: seed of the split and of the training order.
        num_workers: DataLoader workers.
        encoding: text encoding of ``train_files`` / ``val_files`` (``latin-1``, ``cp1252``, ...).
    """

    def __init__(
        self,
        corpus: Corpus | None = "kjv",
        train_files: list[str] | None = None,
        val_files: list[str] | None = None,
        tokenizer: str | None = None,
        vocab_size: int = 2048,
        block_size: int = 64,
        packing: Packing = "wrap",
        truncate: bool = False,
        val_fraction: float = 0.05,
        max_documents: int | None = None,
        batch_size: int = 32,
        seed: int = 0,
        num_workers: int = 0,
        encoding: str = "utf-8",
    ) -> None:
        super().__init__()
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"LMDataModule: val_fraction must be in (0, 1), got {val_fraction}")
        if batch_size < 1:
            raise ValueError(f"LMDataModule: batch_size must be >= 1, got {batch_size}")
        self.save_hyperparameters(ignore=["vocab_size"])  # the model records the tokenizer's own size
        self.corpus, self.train_files, self.val_files = corpus, train_files, val_files
        self.tokenizer_path, self.vocab_size = tokenizer, vocab_size
        self.block_size, self.packing, self.truncate = block_size, packing, truncate
        self.val_fraction, self.max_documents = val_fraction, max_documents
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.encoding = encoding
        self.tokenizer: TextTokenizer | None = None
        self.train_set: BlockDataset | None = None
        self.val_set: BlockDataset | None = None
        self.train_documents: list[Document] = []
        self.val_documents: list[Document] = []

    # ------------------------------------------------------------------ setup
    def load_documents(self) -> tuple[list[Document], list[Document]]:
        docs = documents_for(self.corpus, self.train_files, self.encoding)
        perm = np.random.default_rng(self.seed).permutation(len(docs))
        docs = [docs[i] for i in perm]
        if self.max_documents is not None:
            docs = docs[: self.max_documents]
        if self.val_files:
            return docs, [d for f in self.val_files for d in read_documents(f, self.encoding)]
        n_val = max(1, int(round(self.val_fraction * len(docs))))
        if n_val >= len(docs):
            raise ValueError(f"LMDataModule: {len(docs)} documents are too few to hold out {n_val} for validation")
        return docs[n_val:], docs[:n_val]

    def build_tokenizer(self, train_docs: list[Document]) -> TextTokenizer:
        if self.tokenizer_path is not None:
            return load_tokenizer(self.tokenizer_path)
        if self.train_files is None and self.corpus is not None:
            key = (self.corpus, self.vocab_size, self.max_documents or 0, self.seed, self.val_fraction)
            return TextTokenizer.from_str(_corpus_tokenizer(*key), f"BPE-{self.vocab_size} trained on {self.corpus}")
        tok = train_bpe((d.text for d in train_docs), self.vocab_size)
        tok.source = f"BPE-{self.vocab_size} trained on {', '.join(self.train_files or [])}"
        return tok

    def blocks(self, docs: list[Document]) -> tuple[Tensor, Tensor]:
        tok = self.tokenizer
        assert tok is not None
        ids = tok.encode_batch([d.text for d in docs])
        return pack_blocks(
            docs,
            ids,
            self.block_size,
            bos_id=tok.bos_id,
            eos_id=tok.eos_id,
            pad_id=tok.pad_id,
            packing=self.packing,
            truncate=self.truncate,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.train_documents, self.val_documents = self.load_documents()
        self.tokenizer = self.build_tokenizer(self.train_documents)
        self.train_set = BlockDataset(*self.blocks(self.train_documents))
        self.val_set = BlockDataset(*self.blocks(self.val_documents))

    @property
    def tokenizer_vocab_size(self) -> int:
        """The size of the tokenizer's vocabulary (the data is read and the tokenizer built on first use)."""
        self.setup()
        assert self.tokenizer is not None
        return self.tokenizer.vocab_size

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        assert self.train_set is not None
        if len(self.train_set) < self.batch_size:  # every batch is full: none at all would train nothing
            source = ", ".join(self.train_files) if self.train_files else f"corpus {self.corpus}"
            raise TextDataError(
                f"{source}: {len(self.train_set)} training blocks of {self.block_size} tokens, fewer than one batch; "
                f"lower --data.init_args.batch_size (now {self.batch_size}) or block_size, or give more text"
            )
        return super().train_dataloader()

    def state_dict(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer.to_str() if self.tokenizer is not None else None}


@functools.lru_cache(maxsize=4)
def _corpus_tokenizer(corpus: str, vocab_size: int, max_documents: int, seed: int, val_fraction: float) -> str:
    """BPE trained on the training part of a default corpus (cached per process)."""
    dm = LMDataModule(
        corpus=corpus, vocab_size=vocab_size, max_documents=max_documents or None, seed=seed, val_fraction=val_fraction
    )
    train, _ = dm.load_documents()
    return train_bpe((d.text for d in train), vocab_size).to_str()


def corpus_tokenizer(corpus: Corpus = "kjv", vocab_size: int = 2048, seed: int = 0) -> TextTokenizer:
    """The BPE an :class:`LMDataModule` on ``corpus`` trains by default (same split, same tokenizer)."""
    return TextTokenizer.from_str(_corpus_tokenizer(corpus, vocab_size, 0, seed, 0.05), f"BPE-{vocab_size} on {corpus}")


__all__ = ["LMDataModule", "BlockDataset", "documents_for", "corpus_tokenizer"]
