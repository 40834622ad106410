"""The shipped default language models (``pretrained/mdlm.ckpt`` and ``ar.ckpt``, written by
``python scripts/pretrain.py text``): ``generate`` and ``evaluate`` use MDLM without ``--ckpt`` and
its recorded steps without ``--steps``, ``--ckpt ar`` names the AR baseline, and the shipped MDLM's
bound beats the unigram model on held-out verses; ``evaluate`` streams a file (any size, the same
numbers as in memory, an undecodable line named wherever it is) and can score evenly spaced blocks.

Margin: the shipped MDLM's bound is 4.967 +- 0.016 nats per token on the 1,155 KJV test verses of the
recipe against the unigram model's 5.695 (perplexity <= 143.6 against 297.5), 0.73 nats better; the
test asks for 0.4 on 150 of those verses (4 draws, three standard errors of slack).
"""

import math
from pathlib import Path

import pytest
import torch

from difflab.core.lightning.pretrained import pretrained_info, recommended_sampling, shipped_path
from difflab.core.testing import user_error_line
from difflab.text.cli import main

SHIPPED = shipped_path("text", "mdlm")
needs_default = pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped default: python scripts/pretrain.py text")

UNIGRAM_MARGIN = 0.4
"""Nats per token by which the shipped MDLM's bound must beat the unigram model on 150 held-out test
verses (measured on the whole test split: 0.73)."""

VERSES = [
    "And the LORD spake unto Moses, saying,",
    "Blessed are the meek: for they shall inherit the earth.",
    "In the beginning was the Word, and the Word was with God, and the Word was God.",
    "The LORD is my shepherd; I shall not want.",
]


def _file(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_help_says_the_default(capsys):
    for verb in ("generate", "evaluate"):
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "default: the shipped pretrained masked diffusion LM 'mdlm'" in text and "'ar'" in text
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert "recommended steps" in " ".join(capsys.readouterr().out.split())


def test_without_a_shipped_model_the_error_is_one_line(monkeypatch, tmp_path, capsys):
    import difflab.core.lightning.pretrained as pretrained

    monkeypatch.setattr(pretrained, "shipped_path", lambda package, name: tmp_path / f"{name}.ckpt")
    held = _file(tmp_path / "held.txt", VERSES)
    err = user_error_line(main, capsys, ["evaluate", str(held)])
    assert "--ckpt" in err and "python scripts/pretrain.py text" in err
    err = user_error_line(main, capsys, ["generate", "--ckpt", "ar", "--num", "1"])
    assert "'ar'" in err


@needs_default
def test_generate_without_ckpt_uses_the_default_and_its_steps(tmp_path, capsys):
    steps = recommended_sampling(SHIPPED)["steps"]
    assert main(["generate", "--num", "2", "--length", "24", "--out", str(tmp_path / "s.jsonl")]) == 0
    out = capsys.readouterr()
    assert out.out.count("--- sample") == 2 and f"/{steps}" in out.err  # the recorded steps, in the progress
    assert main(["generate", "--num", "2", "--length", "24", "--steps", "4", "--prefix", "And God said"]) == 0
    assert "And God said" in capsys.readouterr().out


@needs_default
def test_evaluate_without_ckpt_and_with_the_shipped_ar(tmp_path, capsys):
    held = _file(tmp_path / "held.txt", VERSES * 3)
    assert main(["evaluate", str(held), "--draws", "2"]) == 0
    assert "MaskedDiffusionLM: perplexity <=" in capsys.readouterr().out
    assert main(["evaluate", "--ckpt", "ar", str(held)]) == 0
    assert "ARLanguageModel: perplexity" in capsys.readouterr().out


@needs_default
def test_shipped_default_records_its_provenance_and_sampling():
    info = pretrained_info(SHIPPED)
    assert info["command"].startswith("python scripts/pretrain.py text")
    assert info["sampling"]["sampler"] == "masked" and info["sampling"]["steps"] >= 1
    table = info["evaluation"]["likelihood"]["kjv test"]
    assert table["mdlm_bound"] < table["unigram_nll"] and table["ar_nll"] < table["unigram_nll"]
    assert SHIPPED.stat().st_size < 8 * 2**20 and shipped_path("text", "ar").is_file()


@needs_default
def test_shipped_bound_beats_the_unigram_model_on_held_out_verses():
    from difflab.text.data.lm import LMDataModule
    from difflab.text.evaluate import evaluate_model, evaluation_blocks
    from difflab.text.inference import load_text_model
    from difflab.text.pretrain import VALIDATION_DOCS

    torch.set_num_threads(1)
    model = load_text_model(SHIPPED).eval()
    train, held = LMDataModule(corpus="kjv", seed=0).load_documents()
    test = held[VALIDATION_DOCS : VALIDATION_DOCS + 150]  # the recipe's test verses
    tok = model.tokenizer
    counts = torch.ones(tok.vocab_size, dtype=torch.float64)
    for ids in tok.encode_batch([d.text for d in train]):
        counts += torch.bincount(torch.tensor([*ids, tok.eos_id]), minlength=tok.vocab_size)
    counts[[tok.pad_id, tok.mask_id]] = 0
    blocks, mask, _ = evaluation_blocks(test, tok, 64)
    scored = blocks[:, 1:][mask[:, 1:].bool()]
    unigram = float(-(counts / counts.sum()).log()[scored].mean())
    bound = evaluate_model(model, test, draws=4, batch_size=64, block_size=64, seed=0, desc="t")
    assert bound.nll + 3 * bound.stderr < unigram - UNIGRAM_MARGIN, (bound.nll, unigram, math.exp(unigram))


# ------------------------------------------------------------------------------------------ streaming evaluate
def _tiny(cls, tok):
    torch.manual_seed(0)
    model = cls(vocab_size=tok.vocab_size, max_len=16, dim=32, depth=1, heads=2).eval()
    model.tokenizer = tok
    return model


def test_streamed_evaluation_equals_the_in_memory_one(small_tokenizer, tmp_path):
    from difflab.text.data.text import iter_documents, read_documents
    from difflab.text.evaluate import CHUNK_DOCS, evaluate_model
    from difflab.text.models import ARLanguageModel, MaskedDiffusionLM

    lines = [f"{v} {i}" for i in range(CHUNK_DOCS // 8 + 3) for v in VERSES[:2]]  # several chunks
    path = _file(tmp_path / "f.txt", lines)
    for cls in (ARLanguageModel, MaskedDiffusionLM):
        model = _tiny(cls, small_tokenizer)
        kw = dict(draws=3, batch_size=16, block_size=16, seed=0, desc="t")
        a = evaluate_model(model, read_documents(path), **kw)
        b = evaluate_model(model, lambda: iter_documents(path), **kw)
        assert a == b and a.tokens > 1000


def test_max_blocks_scores_evenly_spaced_blocks(small_tokenizer):
    from difflab.text.data.text import Document
    from difflab.text.evaluate import evaluate_model, stratum
    from difflab.text.models import ARLanguageModel

    kept = [i for i in range(10) if stratum(i, 10, 4) is not None]
    assert kept == [0, 2, 5, 7] and [stratum(i, 10, 4) for i in kept] == [0, 1, 2, 3]
    assert [stratum(i, 5, 9) for i in range(5)] == list(range(5))
    docs = [Document(VERSES[i % 4], "f", i + 1) for i in range(40)]
    model = _tiny(ARLanguageModel, small_tokenizer)
    full = evaluate_model(model, docs, draws=1, batch_size=8, block_size=16, seed=0, desc="t")
    part = evaluate_model(model, docs, draws=1, batch_size=8, block_size=16, seed=0, desc="t", max_blocks=5)
    assert part.blocks == 5 and part.of == full.blocks > 5 and part.tokens < full.tokens
    assert f"5 evenly spaced of its {full.blocks} blocks" in part.line("f")


def test_evaluate_streams_and_names_a_bad_line_deep_in_the_file(small_tokenizer, tmp_path):
    from difflab.text.data.text import TextDataError, iter_documents

    path = tmp_path / "big.txt"
    path.write_bytes(("\n".join(VERSES * 50) + "\ncaf\xe9 au lait\n" + "\n".join(VERSES)).encode("latin-1"))
    docs = iter_documents(path)
    assert next(docs).text == VERSES[0]  # lazily: the first line before the bad one is read
    with pytest.raises(TextDataError, match=r"big.txt:201: not utf-8 text"):
        list(docs)
    assert [d.text for d in iter_documents(path, "latin-1")][200] == "café au lait"
    jl = tmp_path / "t.jsonl"
    jl.write_text('{"text": "a b"}\n\n{"txt": "c"}\n')
    with pytest.raises(TextDataError, match=r"t.jsonl:3: missing key 'text'"):
        list(iter_documents(jl))
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(TextDataError, match="empty file"):
        list(iter_documents(tmp_path / "empty.txt"))
