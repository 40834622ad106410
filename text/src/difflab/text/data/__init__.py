"""Data of difflab.text: readers, packing, default corpora and LightningDataModules."""

from difflab.text.data.corpora import CORPORA, corpus_documents, kjv_verses, news_articles, wiki_articles
from difflab.text.data.lm import LMDataModule, corpus_tokenizer
from difflab.text.data.seq2seq import Seq2SeqDataModule, task_splits
from difflab.text.data.text import Document, pack_blocks, pad_sequences, read_documents, read_pairs

__all__ = [
    "CORPORA",
    "corpus_documents",
    "kjv_verses",
    "news_articles",
    "wiki_articles",
    "LMDataModule",
    "Seq2SeqDataModule",
    "task_splits",
    "corpus_tokenizer",
    "Document",
    "pack_blocks",
    "pad_sequences",
    "read_documents",
    "read_pairs",
]
