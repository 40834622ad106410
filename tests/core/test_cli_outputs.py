"""The command line's behaviour shared by every package, on the toy model: outputs under
``--trainer.default_root_dir`` in a folder per run, ``last.ckpt`` at the final step, ``--ckpt_path
last`` that finds it or says where it looked, no resuming on other data, one-line user errors."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
import torch

from difflab.core.cli import main
from difflab.core.errors import UserError
from difflab.core.lightning.checkpoint import find_last_checkpoint
from difflab.core.progress import LineProgress, StepProgress, progress
from difflab.core.verbs import VerbParser, check_output, count, existing_file

QUIET = ["--trainer.enable_progress_bar", "false"]


def _fit(root, *extra: str) -> int:
    return main(["fit", "-c", "smoke_toy", "--trainer.default_root_dir", str(root), *QUIET, *extra])


def _files(folder) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_every_file_goes_under_the_root_and_runs_do_not_overwrite(tmp_path, monkeypatch, capsys):
    work, root = tmp_path / "cwd", tmp_path / "runs"
    work.mkdir()
    monkeypatch.chdir(work)
    assert _fit(root, "--trainer.max_epochs", "1") == 0
    assert _fit(root, "--trainer.max_epochs", "1") == 0
    assert not any(work.iterdir()), "nothing may be written outside --trainer.default_root_dir"
    files = _files(root)
    for version in ("version_0", "version_1"):
        assert f"lightning_logs/{version}/checkpoints/last.ckpt" in files
        assert f"lightning_logs/{version}/config.yaml" in files
    assert "val metrics after 4 steps: val/loss = " in capsys.readouterr().out


def test_last_checkpoint_holds_the_final_step(tmp_path):
    # smoke_toy checkpoints every 2 steps and at epoch ends; 5 steps end between both
    assert _fit(tmp_path, "--trainer.max_steps", "5", "--trainer.max_epochs", "-1") == 0
    last = tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 5


def test_resume_last_finds_the_newest_run_and_continues(tmp_path, capsys):
    assert _fit(tmp_path, "--trainer.max_epochs", "1") == 0
    assert _fit(tmp_path, "--trainer.max_epochs", "2", "--ckpt_path", "last") == 0
    assert "resuming from" in capsys.readouterr().out
    resumed = find_last_checkpoint(tmp_path)
    assert resumed.parts[-3] == "version_1" and torch.load(resumed, weights_only=False)["global_step"] == 8


def _one_line_error(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("difflab-core: error: "), err
    for fragment in fragments:
        assert fragment in err[0], (fragment, err[0])
    return err[0]


def test_resume_last_without_a_run_is_an_error_that_says_where_it_looked(tmp_path, capsys):
    with pytest.raises(SystemExit) as code:
        _fit(tmp_path / "empty", "--ckpt_path", "last")
    assert code.value.code == 2
    _one_line_error(capsys, "--ckpt_path last", str(tmp_path / "empty"))
    assert not (tmp_path / "empty").exists()


def test_a_checkpoint_of_other_data_is_not_resumed(tmp_path, capsys):
    assert _fit(tmp_path, "--trainer.max_epochs", "1") == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as code:
        _fit(tmp_path, "--ckpt_path", "last", "--data.init_args.kind", "moons")
    assert code.value.code == 2
    _one_line_error(capsys, "other data", "'mixture' there, 'moons' here")
    assert not (tmp_path / "lightning_logs/version_1").exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", bytes(range(256))])
def test_an_unreadable_checkpoint_is_one_line(tmp_path, capsys, content):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    with pytest.raises(SystemExit) as code:
        _fit(tmp_path / "run", "--ckpt_path", str(bad))
    assert code.value.code == 2
    line = _one_line_error(capsys, str(bad))
    assert "weights_only" not in line


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(UserError):
        _fit(tmp_path, "--ckpt_path", "last", "--debug")


def test_no_lightning_tips(tmp_path, capsys, caplog):
    assert _fit(tmp_path, "--trainer.max_epochs", "1") == 0
    out = capsys.readouterr()
    assert "Tip:" not in out.out + out.err + caplog.text


def test_verb_parser_errors_are_one_line(capsys):
    parser = VerbParser(prog="difflab-x verb")
    parser.add_argument("--steps", type=count(1), default=10)
    parser.add_argument("--ckpt", type=existing_file)
    for argv, fragment in (
        (["--steps", "0"], "must be at least 1"),
        (["--steps", "-5"], "must be at least 1"),
        (["--steps", "two"], "not a whole number"),
        (["--ckpt", "nope.ckpt"], "nope.ckpt: no such file"),
    ):
        with pytest.raises(SystemExit) as code:
            parser.parse_args(argv)
        assert code.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("difflab-x verb: error: ") and fragment in err[0], err
    assert parser.parse_args(["--steps", "3"]).steps == 3 and not parser.parse_args([]).debug


def test_outputs_are_not_replaced_without_overwrite(tmp_path):
    assert check_output(tmp_path / "new.zarr", overwrite=False) == tmp_path / "new.zarr"
    assert check_output(tmp_path, overwrite=False) == tmp_path  # an empty folder
    (tmp_path / "taken.txt").write_text("x")
    for path in (tmp_path, tmp_path / "taken.txt"):
        with pytest.raises(UserError, match="--overwrite"):
            check_output(path, overwrite=False)
        assert check_output(path, overwrite=True) == path


def test_an_optional_output_is_positional_or_out(capsys):
    parser = VerbParser(prog="difflab-x verb")
    parser.add_output("results JSON", Path("detections.json"))
    assert parser.parse_args([]).out == Path("detections.json")
    assert parser.parse_args(["a.json"]).out == parser.parse_args(["--out", "a.json"]).out == Path("a.json")
    assert parser.parse_args(["a.json", "--out", "a.json"]).out == Path("a.json")
    assert "output" not in vars(parser.parse_args([]))
    with pytest.raises(SystemExit):
        parser.parse_args(["a.json", "--out", "b.json"])
    assert "two outputs given: a.json and --out b.json" in capsys.readouterr().err


def test_folder_inputs_take_the_suffixes_and_name_the_files_left_alone(tmp_path, capsys):
    from difflab.core.verbs import folder_inputs

    for name in ("b.WAV", "a.wav", "notes.txt", ".DS_Store"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub.wav").mkdir()
    assert folder_inputs(tmp_path, (".wav",), "audio files") == [tmp_path / "a.wav", tmp_path / "b.WAV"]
    assert capsys.readouterr().out.strip() == f"{tmp_path}: 1 file(s) of another suffix left alone (notes.txt)"
    with pytest.raises(UserError, match=r"no point files \(\.ply, \.xyz\)"):
        folder_inputs(tmp_path, (".ply", ".xyz"), "point files")


def test_progress_without_a_terminal_is_a_line_every_interval():
    stream = io.StringIO()
    bar = LineProgress("enhance", 4, "files", every=0.0, stream=stream)
    for _ in range(4):
        bar.update()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5 and lines[-1].startswith("enhance: 4/4 files (100%)")
    assert list(progress(range(3), "x", every=3600)) == [0, 1, 2]
    assert "left" not in lines[-1] and "left" in lines[1]  # no "about 0 s left" once finished


def test_step_progress_counts_updates_and_sampler_callbacks(capsys):
    bar = StepProgress("sample", 6, "steps", every=0.0)
    bar.update(3)
    bar({"step": 3})  # a sampler's callback(state) counts one step
    bar.update(2)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("sample: 6/6 steps (100%)")
    assert lines[1].startswith("sample: 4/6 steps (67%)")


def test_count_is_an_argparse_type():
    with pytest.raises(argparse.ArgumentTypeError):
        count(0)("-1")
    assert count(0)("0") == 0
