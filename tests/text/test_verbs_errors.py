"""The text command line on data it was not configured for: other corpora, encodings and sizes, and
the errors of ``generate`` on values the checkpoint does not support (one line, exit status 2)."""

from pathlib import Path

import pytest

from difflab.core.testing import user_error_line
from difflab.text.cli import main
from difflab.text.data.text import TextDataError, read_documents

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def _corpus(path: Path, lines: int = 400, encoding: str = "utf-8", extra: str = "") -> Path:
    text = "\n".join(" ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 9)) + extra for i in range(lines))
    path.write_bytes(text.encode(encoding))
    return path


def _error(argv: list[str], capsys) -> str:
    """The one-line error of ``main(argv)`` (exit status 2)."""
    return user_error_line(main, capsys, argv)


def test_a_latin1_file_names_file_line_and_encoding(tmp_path, capsys):
    f = tmp_path / "latin.txt"
    f.write_bytes("plain line\nsecond line\ncaf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(TextDataError, match=r"latin\.txt:3: not utf-8 text"):
        read_documents(f)
    assert read_documents(f, encoding="latin-1")[2].text == "caf\u00e9 au lait"
    out = tmp_path / "tok.json"
    err = _error(["train-tokenizer", str(f), "--vocab_size", "300", "--out", str(out)], capsys)
    assert "latin.txt:3" in err and "utf-8" in err and "--encoding" in err
    assert not out.exists()
    assert main(["train-tokenizer", str(f), "--vocab_size", "300", "--encoding", "latin-1", "--out", str(out)]) == 0


def test_a_binary_file_is_one_line_error(tmp_path, capsys):
    f = tmp_path / "blob.txt"
    f.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    err = _error(["train-tokenizer", str(f), "--out", str(tmp_path / "tok.json")], capsys)
    assert "blob.txt:1" in err and "utf-8" in err


def test_an_existing_output_is_kept_without_overwrite(tmp_path, capsys):
    f = _corpus(tmp_path / "c.txt", 50)
    out = tmp_path / "tok.json"
    out.write_text("keep")
    err = _error(["train-tokenizer", str(f), "--vocab_size", "300", "--out", str(out)], capsys)
    assert "tok.json" in err and "--overwrite" in err and out.read_text() == "keep"
    assert main(["train-tokenizer", str(f), "--vocab_size", "300", "--out", str(out), "--overwrite"]) == 0


def _fit(tmp_path: Path, config: str, corpus: Path, *extra: str) -> Path:
    args = ["fit", "--config", config, f"--trainer.default_root_dir={tmp_path / 'run'}"]
    args += ["--trainer.enable_progress_bar=false", f"--data.init_args.train_files=[{corpus}]", *extra]
    assert main(args) == 0
    return tmp_path / "run"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke config, unchanged, on a latin-1 corpus of another vocabulary than its default."""
    tmp = tmp_path_factory.mktemp("smoke")
    corpus = _corpus(tmp / "greek.txt", 300, "latin-1", extra=" \u00e9t\u00e9")
    return _fit(tmp, "smoke_mdlm", corpus, "--data.init_args.encoding=latin-1")


def test_smoke_config_on_other_data_then_generate(smoke_run, tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    argv = ["generate", "--ckpt", str(smoke_run), "--num", "2", "--length", "16", "--steps", "4"]
    assert main([*argv, "--prefix", "alpha beta", "--out", str(out)]) == 0
    assert all(line.startswith('{"text": "alpha beta') for line in out.read_text().splitlines())
    err = _error([*argv, "--out", str(out)], capsys)
    assert "--overwrite" in err


def test_generate_rejects_lengths_the_model_does_not_support(smoke_run, capsys):
    base = ["generate", "--ckpt", str(smoke_run), "--num", "1", "--steps", "2"]
    err = _error([*base, "--length", "33"], capsys)
    assert "--length 33" in err and "32" in err
    err = _error([*base, "--length", "4", "--prefix", "alpha beta gamma delta epsilon zeta"], capsys)
    assert "--prefix" in err and "--length 4" in err


def test_block_longer_than_the_model_is_one_line(tmp_path, capsys):
    corpus = _corpus(tmp_path / "c.txt", 200)
    args = ["fit", "--config", "smoke_ar", f"--trainer.default_root_dir={tmp_path}", "--data.init_args.block_size=48"]
    err = _error([*args, f"--data.init_args.train_files=[{corpus}]"], capsys)
    assert "block_size 48" in err and "max_len" in err


def test_step_interval_configs_fit_a_small_corpus(tmp_path, capsys):
    """A shipped config that validates every 1000 steps trains on a corpus of a few batches; a corpus
    of less than one batch is an error, not a run that trains nothing."""
    corpus = _corpus(tmp_path / "c.txt", 3000)
    run = _fit(tmp_path, "ar_kjv", corpus, "--trainer.max_steps=2", "--trainer.accelerator=cpu")
    assert run.is_dir()
    small = _corpus(tmp_path / "small.txt", 100)
    args = ["fit", "--config", "ar_kjv", f"--trainer.default_root_dir={tmp_path}", "--trainer.accelerator=cpu"]
    err = _error([*args, f"--data.init_args.train_files=[{small}]"], capsys)
    assert "small.txt" in err and "fewer than one" in err
