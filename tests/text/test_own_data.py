"""The data decides the vocabulary: the smoke configs train unchanged on a corpus whose tokenizer has
another size than their default, generate and evaluate from the checkpoint alone, a checkpoint is
refused on data of another tokenizer; evaluate's bound is the NELBO averaged over stratified draws;
the README's commands for one's own corpus run as written."""

import re
from pathlib import Path

import pytest
import torch

from difflab.core.testing import run_readme_commands, user_error_line
from difflab.text.cli import main

README = Path(__file__).resolve().parents[2] / "text" / "README.md"
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
VOCAB = 300  # the smoke configs' BPE size is 512


def corpus(path: Path, lines: int = 300, offset: int = 0, encoding: str = "utf-8") -> Path:
    rows = (" ".join(WORDS[((i + offset) * k) % len(WORDS)] for k in range(1, 9)) for i in range(lines))
    path.write_bytes("\n".join(rows).encode(encoding))
    return path


def one_line_error(capsys, argv: list[str]) -> str:
    return user_error_line(main, capsys, argv)


def quiet() -> list[str]:
    return ["--trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("tok")
    out = tmp / "tok.json"
    assert main(["train-tokenizer", str(corpus(tmp / "c.txt")), "--vocab_size", str(VOCAB), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(("config", "line"), [("smoke_ar", "perplexity "), ("smoke_gidd", "perplexity <= ")])
def test_smoke_config_trains_on_another_vocabulary(config, line, tokenizer, tmp_path, monkeypatch, capsys):
    from difflab.text.inference import load_text_model
    from difflab.text.tokenizer import TextTokenizer

    monkeypatch.chdir(tmp_path)
    data = [f"--data.init_args.train_files=[{corpus(tmp_path / 'c.txt')}]", f"--data.init_args.tokenizer={tokenizer}"]
    assert main(["fit", "--config", config, *data, *quiet(), "--trainer.val_check_interval=2"]) == 0
    summary = capsys.readouterr().out
    names = ("val/nll =", "val/ppl =") if config == "smoke_ar" else ("val/nll_bound =", "val/ppl_bound =")
    assert all(name in summary for name in names), summary
    run = tmp_path / "outputs/text" / config
    model = load_text_model(run)
    size = TextTokenizer.from_file(tokenizer).vocab_size
    assert size < 512 and model.vocab_size == size == model.tokenizer.vocab_size and model.data_block_size == 32
    assert main(["generate", "--ckpt", str(run), "--num", "2", "--length", "16", "--steps", "2"]) == 0
    held_out = corpus(tmp_path / "held.txt", 20, offset=7)
    assert main(["evaluate", "--ckpt", str(run), str(held_out), "--draws", "2"]) == 0
    out = capsys.readouterr()
    assert f"{model.__class__.__name__}: {line}" in out.out and "tokens of" in out.out
    assert "evaluate held.txt" in out.err  # progress


@pytest.fixture(scope="module")
def mdlm_run(tokenizer, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("mdlm")
    data = [f"--data.init_args.train_files=[{corpus(tmp / 'c.txt')}]", f"--data.init_args.tokenizer={tokenizer}"]
    assert main(["fit", "--config", "smoke_mdlm", f"--trainer.default_root_dir={tmp}", *data, *quiet()]) == 0
    return tmp


def test_a_checkpoint_is_refused_on_data_of_another_tokenizer(mdlm_run, capsys):
    argv = ["validate", "--config", "smoke_mdlm", f"--trainer.default_root_dir={mdlm_run}", "--ckpt_path", "last"]
    train = f"--data.init_args.train_files=[{mdlm_run / 'c.txt'}]"
    err = one_line_error(capsys, [*argv, *quiet(), train])  # the data's own BPE-512, not the checkpoint's
    data_size = int(re.search(r"\) has (\d+)", err).group(1))
    assert f"of {VOCAB} tokens" in err and data_size != VOCAB and "--data.init_args.tokenizer" in err
    assert "BPE-512 trained on" in err
    assert main([*argv, *quiet(), train, f"--data.init_args.tokenizer={mdlm_run}"]) == 0
    out = capsys.readouterr().out
    assert "val/nll_bound" in out and "val/ppl_bound" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--draws", "0"], "--draws"),
        (["--batch_size", "0"], "--batch_size"),
        (["--encoding", "nonsense"], "--encoding"),
        (["--block_size", "33"], "--block_size 33"),
    ],
)
def test_evaluate_rejects_bad_arguments_in_one_line(argv, needle, mdlm_run, tmp_path, capsys):
    f = corpus(tmp_path / "h.txt", 5)
    assert needle in one_line_error(capsys, ["evaluate", "--ckpt", str(mdlm_run), str(f), *argv])


def test_evaluate_names_file_line_and_encoding(mdlm_run, tmp_path, capsys):
    f = tmp_path / "latin.txt"
    f.write_bytes("alpha beta\ngamma caf\u00e9\n".encode("latin-1"))
    err = one_line_error(capsys, ["evaluate", "--ckpt", str(mdlm_run), str(f)])
    assert "latin.txt:2" in err and "utf-8" in err and "--encoding" in err
    assert main(["evaluate", "--ckpt", str(mdlm_run), str(f), "--encoding", "latin-1", "--draws", "1"]) == 0
    assert "one draw, no standard error" in capsys.readouterr().out
    err = one_line_error(capsys, ["evaluate", "--ckpt", str(mdlm_run), str(tmp_path / "missing.txt")])
    assert "missing.txt" in err


def test_evaluation_blocks_score_every_token_once(small_tokenizer):
    from difflab.text.data.text import Document
    from difflab.text.evaluate import evaluation_blocks

    docs = [Document(t, "f", i + 1) for i, t in enumerate(["In the beginning God created", "the heaven"] * 5)]
    stream = sum(len(ids) + 1 for ids in small_tokenizer.encode_batch([d.text for d in docs]))
    blocks, mask, short = evaluation_blocks(docs, small_tokenizer, 8)
    assert blocks.shape[1] == 8 and short == int(stream % 6 != 0)
    assert int(mask[:, 1:].sum()) == stream + blocks.shape[0]  # each token once, plus each block's [EOS]
    assert (blocks[:, 0] == small_tokenizer.bos_id).all()


def test_evaluate_bound_is_the_elbo_of_the_model(small_tokenizer):
    """The file-stratified draws and the per-block stratified ELBO estimate the same bound; the AR
    value is the exact NLL of the same blocks."""
    from difflab.text.data.text import Document
    from difflab.text.evaluate import evaluate_model, evaluation_blocks
    from difflab.text.models import ARLanguageModel, MaskedDiffusionLM

    torch.manual_seed(0)
    docs = [Document("In the beginning God created the heaven and the earth.", "f", i + 1) for i in range(12)]
    for cls in (MaskedDiffusionLM, ARLanguageModel):
        model = cls(vocab_size=small_tokenizer.vocab_size, max_len=16, dim=32, depth=1, heads=2).eval()
        model.tokenizer = small_tokenizer
        result = evaluate_model(model, docs, draws=64, batch_size=8, block_size=16, seed=0, desc="t")
        blocks, mask, _ = evaluation_blocks(docs, small_tokenizer, 16)
        if cls is ARLanguageModel:
            total, count = model.exact_nll(blocks, mask)
            assert result.exact and result.nll == pytest.approx(total / count, rel=1e-6)
            continue
        total, count = model.elbo_nll(blocks, mask, n_times=256, generator=torch.Generator().manual_seed(1))
        assert result.tokens == count and result.stderr > 0
        assert abs(result.nll - total / count) < 4 * result.stderr + 0.02


def test_readme_own_data_commands(tmp_path, monkeypatch, capsys):
    """The README's commands for one's own corpus, as written, with the smoke config and small counts."""
    monkeypatch.chdir(tmp_path)
    corpus(tmp_path / "my_corpus.txt")
    corpus(tmp_path / "my_heldout.txt", 20, offset=5)
    small = {"8000": str(VOCAB), "64": "2", "4": "2", "8": "2"}
    run_readme_commands(README, main, "difflab-text", small, {"mdlm_kjv": "smoke_mdlm"})
    out = capsys.readouterr().out
    assert "MaskedDiffusionLM: perplexity <= " in out and Path("samples.jsonl").is_file()
