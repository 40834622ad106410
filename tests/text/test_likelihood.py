"""DiffuSeq and ``evaluate``: its probability-flow density would be over learned continuous embeddings,
not tokens, so ``evaluate`` refuses it in one line that says why and points at ``seq2seq`` (BLEU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from difflab.text.cli import main


def user_error_line(argv: list[str], capsys) -> str:
    """The one line on stderr of a user error (exit status 2)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(lines) == 1 and lines[0].startswith("difflab-text: error: "), lines
    return lines[0]


def test_evaluate_refuses_diffuseq_in_one_line_with_the_reason(tmp_path, capsys):
    args = ["fit", "--config", "smoke_diffuseq", f"--trainer.default_root_dir={tmp_path}"]
    args += ["--trainer.enable_progress_bar=false", "--trainer.max_steps=1", "--data.init_args.max_train_pairs=400"]
    assert main(args) == 0
    ckpt = sorted(Path(tmp_path).rglob("*.ckpt"))[-1]
    text = tmp_path / "held_out.txt"
    text.write_text("In the beginning God created the heaven and the earth.\n")
    err = user_error_line(["evaluate", "--ckpt", str(ckpt), str(text)], capsys)
    assert "DiffuSeq checkpoint" in err and "no token likelihood" in err and "embedding" in err
    assert "difflab-text seq2seq" in err
