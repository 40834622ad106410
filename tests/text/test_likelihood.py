"""DiffuSeq and ``evaluate``: no longer refused; its pairs are scored by the token bound through the
probability-flow ODE (:mod:`difflab.text.likelihood`), in the same one-line format as MDLM's bound.
The math and the command line are tested in ``test_diffuseq_likelihood.py``."""

from __future__ import annotations

import math

import torch

from difflab.text.data.text import Document
from difflab.text.evaluate import evaluate_seq2seq, seq2seq_targets
from difflab.text.models import DiffuSeq

PAIRS = [("in the beginning god created", "In the beginning God created"), ("and the earth", "And the earth.")]


def _model(tok) -> DiffuSeq:
    torch.manual_seed(0)
    m = DiffuSeq(tok.vocab_size, 4, dim=16, enc_depth=1, dec_depth=1, heads=2, max_src_len=24, max_trg_len=20,
                 num_steps=50)  # fmt: skip
    m.attach_tokenizer(tok)
    return m


def _docs():
    return [(Document(s, "f.jsonl", i + 1), Document(t, "f.jsonl", i + 1)) for i, (s, t) in enumerate(PAIRS)]


def test_seq2seq_targets_count_the_text_and_its_eos(small_tokenizer):
    m = _model(small_tokenizer)
    data = seq2seq_targets(m, _docs(), 20)
    lengths = [len(ids) + 1 for ids in small_tokenizer.encode_batch([t for _, t in PAIRS])]
    assert data["x0"].shape == (2, 20) and data["tokens"].tolist() == lengths
    for row, n in zip(data["x0"], lengths, strict=True):
        assert int(row[n - 1]) == small_tokenizer.eos_id and (row[n:] == small_tokenizer.pad_id).all()


def test_evaluate_scores_diffuseq_pairs_in_the_bound_format(small_tokenizer):
    m = _model(small_tokenizer)
    ev = evaluate_seq2seq(m, _docs(), draws=3, batch_size=1, trg_len=20, steps=2, probes=1, seed=0, desc="t")
    assert not ev.exact and ev.seq2seq and ev.draws == 3 and ev.blocks == 2 and ev.block_size == 20
    assert math.isfinite(ev.nll) and ev.nll > 0 and ev.stderr > 0
    line = ev.line("f.jsonl")
    assert line.startswith("DiffuSeq: perplexity <= ") and "NELBO bound" in line and "mean of 3 draws" in line
    assert line.endswith(f"{ev.tokens} target tokens of f.jsonl in 2 pairs (targets of 20)")
    again = evaluate_seq2seq(m, _docs(), draws=3, batch_size=2, trg_len=20, steps=2, probes=1, seed=0, desc="t")
    assert again.tokens == ev.tokens and math.isfinite(again.nll)
