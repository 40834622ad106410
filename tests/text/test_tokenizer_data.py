"""Tokenizer training / loading, text readers, packing and bad-input errors."""

import json

import pytest
import torch

from difflab.text.data.text import Document, pack_blocks, read_documents, read_pairs
from difflab.text.tokenizer import SPECIAL_TOKENS, TextTokenizer


def test_trained_bpe_has_special_tokens_first(small_tokenizer):
    tok = small_tokenizer
    assert (tok.pad_id, tok.mask_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    text = "And God said, Let there be light."
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert not set(ids) & tok.special_ids


def test_tokenizer_json_roundtrip(tmp_path, small_tokenizer):
    path = small_tokenizer.save(tmp_path / "tokenizer.json")
    again = TextTokenizer.from_file(path)
    assert again.encode("the light") == small_tokenizer.encode("the light")
    assert again.vocab_size == small_tokenizer.vocab_size


def test_foreign_tokenizer_loads_and_missing_token_is_named(tmp_path):
    import tokenizers as tk

    vocab = {"[PAD]": 0, "[MASK]": 1, "[BOS]": 2, "[EOS]": 3, "[UNK]": 4, "hello": 5, "world": 6}
    tok = tk.Tokenizer(tk.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tk.pre_tokenizers.Whitespace()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    tok.save(str(tmp_path / "ok.json"))
    loaded = TextTokenizer.from_file(tmp_path / "ok.json")
    assert loaded.encode("hello world") == [5, 6]
    del vocab["[MASK]"]
    bad = tk.Tokenizer(tk.models.WordLevel(vocab, unk_token="[UNK]"))
    bad.save(str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match=r"bad\.json.*no \[MASK\] token"):
        TextTokenizer.from_file(tmp_path / "bad.json")


def test_decode_separates_documents_at_eos(small_tokenizer):
    tok = small_tokenizer
    ids = [tok.bos_id, *tok.encode("the light"), tok.eos_id, *tok.encode("the earth"), tok.eos_id]
    assert tok.decode(ids) == "the light\nthe earth"
    assert tok.decode(ids, stop_at_eos=True) == "the light"


def test_readers_and_errors(tmp_path):
    txt = tmp_path / "a.txt"
    txt.write_text("first line\n\nsecond line\n")
    docs = read_documents(txt)
    assert [(d.text, d.line) for d in docs] == [("first line", 1), ("second line", 3)]
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(ValueError, match=r"empty\.txt: empty file"):
        read_documents(tmp_path / "empty.txt")
    j = tmp_path / "b.jsonl"
    j.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"txt": "oops"}) + "\n")
    with pytest.raises(ValueError, match=r"b\.jsonl:2: missing key 'text'"):
        read_documents(j)
    j.write_text(json.dumps({"text": "ok"}) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"b\.jsonl:2: not valid JSON"):
        read_documents(j)
    j.write_text(json.dumps({"text": 3}) + "\n")
    with pytest.raises(ValueError, match=r"b\.jsonl:1: key 'text' must be a string"):
        read_documents(j)
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps({"src": "a", "trg": "b"}) + "\n" + json.dumps({"src": "a"}) + "\n")
    with pytest.raises(ValueError, match=r"p\.jsonl:2: missing key 'trg'"):
        read_pairs(p)


def test_pack_wrap_and_pad(small_tokenizer):
    docs = [Document(f"doc {i}", "f.txt", i + 1) for i in range(3)]
    ids = [[10, 11, 12], [13, 14], [15, 16, 17, 18]]
    blocks, mask = pack_blocks(docs, ids, 6, bos_id=2, eos_id=3, pad_id=0, packing="wrap")
    # stream: 10 11 12 3 13 14 3 15 16 17 18 3 -> chunks of 4, remainder dropped
    assert blocks.tolist() == [[2, 10, 11, 12, 3, 3], [2, 13, 14, 3, 15, 3], [2, 16, 17, 18, 3, 3]]
    assert mask.all()
    blocks, mask = pack_blocks(docs, ids, 6, bos_id=2, eos_id=3, pad_id=0, packing="pad")
    assert blocks[1].tolist() == [2, 13, 14, 3, 0, 0] and mask[1].tolist() == [1, 1, 1, 1, 0, 0]
    with pytest.raises(ValueError, match=r"f\.txt:3: line is 4 tokens long, longer than the block"):
        pack_blocks(docs, ids, 5, bos_id=2, eos_id=3, pad_id=0, packing="pad")
    cut, _ = pack_blocks(docs, ids, 5, bos_id=2, eos_id=3, pad_id=0, packing="pad", truncate=True)
    assert cut[2].tolist() == [2, 15, 16, 17, 3]


def test_lm_datamodule_on_files_and_saved_tokenizer(tmp_path, small_tokenizer):
    from difflab.text.data import LMDataModule

    lines = [f"line number {i} of the light and the earth" for i in range(60)]
    (tmp_path / "train.txt").write_text("\n".join(lines))
    (tmp_path / "val.jsonl").write_text("\n".join(json.dumps({"text": s}) for s in lines[:5]))
    small_tokenizer.save(tmp_path / "tok.json")
    dm = LMDataModule(
        corpus=None,
        train_files=[str(tmp_path / "train.txt")],
        val_files=[str(tmp_path / "val.jsonl")],
        tokenizer=str(tmp_path / "tok.json"),
        block_size=16,
        batch_size=4,
    )
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["x0"].shape == (4, 16) and batch["x0"].dtype == torch.long
    assert (batch["x0"][:, 0] == small_tokenizer.bos_id).all()
    assert len(dm.val_set) >= 1


def test_default_corpora_are_offline_and_real():
    from difflab.text.data.corpora import kjv_verses, news_articles, wiki_articles

    v = kjv_verses()
    assert len(v) == 31102
    assert v[0].text == "In the beginning God created the heaven and the earth."
    assert (v[-1].book, v[-1].chapter, v[-1].verse) == ("Revelation", 22, 21)
    assert len({x.book for x in v}) == 66
    assert len(news_articles()) == 300
    arts = wiki_articles()
    assert len(arts) == 106 and all(paras for _, paras in arts)
