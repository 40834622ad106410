"""The command line: resume, test, enhance and make-dataset (every config's fast_dev_run, the checkpoint
round trip and help are in tests/architecture/test_contracts.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from difflab.audio.cli import main
from difflab.core.cli import builtin_configs
from difflab.core.lightning.checkpoint import find_last_checkpoint

CONFIGS = builtin_configs("audio")


def test_configs_ship():
    for method in ("sgmse", "storm", "predictive"):
        assert {f"{method}_denoise", f"{method}_dereverb", f"smoke_{method}"} <= set(CONFIGS)
    assert {"sgmse_vbdmd", "storm_vbdmd"} <= set(CONFIGS)


@pytest.fixture(scope="module")
def smoke_ckpt(tmp_path_factory, tiny_root):
    import os

    root = tmp_path_factory.mktemp("smoke")
    cwd, env = os.getcwd(), os.environ.get("DIFFLAB_AUDIO_DATA")
    os.chdir(root)
    os.environ["DIFFLAB_AUDIO_DATA"] = str(tiny_root.parent)
    try:
        main(["fit", "-c", "smoke_storm", "--trainer.enable_progress_bar=false"])
    finally:
        os.chdir(cwd)
        if env is None:
            os.environ.pop("DIFFLAB_AUDIO_DATA", None)
        else:
            os.environ["DIFFLAB_AUDIO_DATA"] = env
    ckpt = root / "outputs" / "audio" / "smoke_storm" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    return ckpt


def test_resume_and_test(smoke_ckpt, tmp_path, monkeypatch, default_data_env, capsys):
    import torch

    monkeypatch.chdir(smoke_ckpt.parents[6])
    assert torch.load(smoke_ckpt, weights_only=False)["global_step"] == 2
    main(
        [
            "fit",
            "-c",
            "smoke_storm",
            "--trainer.max_steps=3",
            "--ckpt_path",
            str(smoke_ckpt),
            "--trainer.enable_progress_bar=false",
        ]
    )
    resumed = find_last_checkpoint(smoke_ckpt.parents[3])  # the resumed run's own version folder
    assert resumed != smoke_ckpt and torch.load(resumed, weights_only=False)["global_step"] == 3
    capsys.readouterr()
    main(["test", "-c", "smoke_storm", "--ckpt_path", "last", "--trainer.enable_progress_bar=false"])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("test: ")]
    assert len(lines) == 1 and "SI-SDR" in lines[0] and "(unprocessed " in lines[0], lines  # model beside input


def test_enhance_command_on_files_and_folders(smoke_ckpt, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    sf.write(str(folder / "a.wav"), rng.standard_normal((12000, 2)).astype(np.float32) * 0.1, 24000)
    sf.write(str(folder / "b.flac"), rng.standard_normal(9000).astype(np.float32) * 0.1, 16000)
    assert (
        main(
            [
                "enhance",
                str(folder),
                str(tmp_path / "out"),
                "--ckpt",
                str(smoke_ckpt),
                "--steps",
                "2",
                "--chunk_seconds",
                "0.3",
                "--overlap_seconds",
                "0.05",
            ]
        )
        == 0
    )
    a, b = sf.info(str(tmp_path / "out" / "a.wav")), sf.info(str(tmp_path / "out" / "b.wav"))
    assert (a.samplerate, a.channels, a.frames, a.subtype) == (24000, 2, 12000, "PCM_16")
    assert (b.samplerate, b.channels, b.frames) == (16000, 1, 9000)
    (tmp_path / "junk.wav").write_text("no audio")
    assert _error(["enhance", str(tmp_path / "junk.wav"), str(tmp_path / "j.wav"), "--ckpt", str(smoke_ckpt)])
    err = _error(["enhance", str(folder), str(tmp_path / "out"), "--ckpt", str(smoke_ckpt)])
    assert "a.wav" in err and "--overwrite" in err  # an existing output is not replaced


def _error(argv: list[str], last: bool = False) -> str:
    """The one-line error of ``main(argv)`` (exit status 2); ``last``: the last line on stderr, after
    progress lines."""
    import contextlib
    import io

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as stop:
        main(argv)
    lines = stderr.getvalue().strip().splitlines()
    lines = lines[-1:] if last else lines
    assert stop.value.code == 2 and len(lines) == 1 and lines[0].startswith("difflab-audio"), lines
    return lines[0]


class _Loud:
    """A stand-in model whose output is three times its input (beyond full scale for loud input)."""

    sample_rate = 16000

    def enhance(self, x, **kwargs):
        return 3 * x


def _loud_folder(tmp_path, monkeypatch):
    from difflab.audio import inference

    monkeypatch.setattr(inference, "load_model", lambda ckpt, device="cpu": _Loud())
    folder = tmp_path / "in"
    folder.mkdir()
    t = np.arange(40000) / 16000
    sf.write(str(folder / "loud.wav"), (0.6 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    sf.write(str(folder / "quiet.wav"), (0.01 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"")
    return folder, ckpt


def test_enhance_scales_a_loud_output_to_minus_1_dbfs_instead_of_clipping(tmp_path, monkeypatch, capsys):
    folder, ckpt = _loud_folder(tmp_path, monkeypatch)
    # 2.5 s in chunks of 1 s: the over is only known after the first chunk was written
    argv = ["enhance", str(folder), str(tmp_path / "out"), "--ckpt", str(ckpt), "--chunk_seconds", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "1 of 2 outputs were beyond full scale and scaled to a peak of -1 dBFS" in out
    loud, _ = sf.read(str(tmp_path / "out" / "loud.wav"))
    x, _ = sf.read(str(folder / "loud.wav"))
    assert abs(20 * np.log10(np.abs(loud).max()) + 1.0) < 0.01  # peak -1 dBFS
    gain = 10 ** (-1 / 20) / (3 * np.abs(x).max())
    np.testing.assert_allclose(loud, 3 * gain * x, atol=2 / 32768)  # one gain for the whole file: no distortion
    quiet, _ = sf.read(str(tmp_path / "out" / "quiet.wav"))
    np.testing.assert_allclose(quiet, 3 * sf.read(str(folder / "quiet.wav"))[0], atol=1 / 32768)  # level kept
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left
    assert "--overwrite" in _error(argv)


def test_enhance_overs_clip_keeps_the_level_and_warns(tmp_path, monkeypatch, capsys):
    folder, ckpt = _loud_folder(tmp_path, monkeypatch)
    argv = ["enhance", str(folder), str(tmp_path / "out"), "--ckpt", str(ckpt), "--overs", "clip"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "1 of 2 outputs were clipped" in out and "loud.wav" in out and "% of its samples" in out
    assert np.abs(sf.read(str(tmp_path / "out" / "loud.wav"))[0]).max() > 0.999
    assert main([*argv, "--overwrite"]) == 0


def test_enhance_folder_goes_on_past_bad_files_and_names_them(tmp_path, monkeypatch, capsys):
    folder, ckpt = _loud_folder(tmp_path, monkeypatch)
    (folder / "junk.wav").write_text("no audio")
    sf.write(str(folder / "empty.wav"), np.zeros(0, np.float32), 16000)
    err = _error(["enhance", str(folder), str(tmp_path / "out"), "--ckpt", str(ckpt)], last=True)
    assert "2 of 4 recordings failed" in err and "empty.wav" in err and "junk.wav" in err, err
    assert "loud.wav" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["loud.wav", "quiet.wav"]
    out = capsys.readouterr().out
    assert "skipped:" in out and "holds no samples" in out
    # one bad file given alone is an error at once
    assert "holds no samples" in _error(
        ["enhance", str(folder / "empty.wav"), str(tmp_path / "e.wav"), "--ckpt", str(ckpt)]
    )


def test_enhance_checks_inputs_before_loading(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"")  # never read: the input errors come first
    (tmp_path / "empty").mkdir()
    assert "no audio files" in _error(["enhance", str(tmp_path / "empty"), str(tmp_path / "o"), "--ckpt", str(ckpt)])
    (tmp_path / "x.wav").write_bytes(b"")
    err = _error(["enhance", str(tmp_path / "x.wav"), str(tmp_path / "o.mp3"), "--ckpt", str(ckpt)])
    assert "o.mp3" in err
    err = _error(["enhance", str(tmp_path / "x.wav"), str(tmp_path / "o"), "--ckpt", str(ckpt), "--chunk_seconds", "0"])
    assert "--chunk_seconds" in err


def test_make_dataset_keeps_an_existing_data_set(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "mine.txt").write_text("keep")
    err = _error(["make-dataset", "--task", "denoise", str(tmp_path / "d"), "--num_train", "2"])
    assert str(tmp_path / "d") in err and "--overwrite" in err
    assert (tmp_path / "d" / "mine.txt").read_text() == "keep"


def test_make_dataset_command(tmp_path):
    assert (
        main(
            [
                "make-dataset",
                "--task",
                "denoise",
                "--out",
                str(tmp_path / "d"),
                "--num_train",
                "2",
                "--num_valid",
                "1",
                "--num_test",
                "1",
            ]
        )
        == 0
    )
    assert len(list((tmp_path / "d" / "train" / "clean").glob("*.wav"))) == 2


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "difflab.audio.cli"], capture_output=True, text=True, check=True)
    assert "enhance" in out.stdout and "make-dataset" in out.stdout and "sgmse_denoise" in out.stdout


def test_package_is_a_namespace_portion():
    import difflab
    import difflab.audio

    assert getattr(difflab, "__file__", None) is None
    assert difflab.audio.__version__


def test_demo_runs_end_to_end(tmp_path, tiny_root, capsys):
    assert (
        main(
            [
                "demo",
                "--out",
                str(tmp_path / "demo"),
                "--data_root",
                str(tiny_root),
                "--max_steps",
                "1",
                "--methods",
                "predictive",
                "storm",
                "--num_eval",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    artifacts = [line for line in out.splitlines() if line.startswith("artifact: ")]
    assert len(artifacts) == 5 and "| unprocessed |" in out
    for line in artifacts:
        path = line.split("artifact: ", 1)[1].split(" | ")[0]
        assert Path(path).exists()
    from difflab.audio.inference import load_model

    assert type(load_model(tmp_path / "demo" / "storm.ckpt")).__name__ == "StoRM"


def test_smoke_config_on_8khz_data_then_enhance(tmp_path, monkeypatch, tiny_root):
    """The data decides the rate: the smoke config (16 kHz model) fitted on 8 kHz data works at 8 kHz."""
    import torch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIFFLAB_AUDIO_DATA", str(tiny_root.parent))
    argv = ["fit", "-c", "smoke_storm", "--data.init_args.sample_rate", "8000", "--trainer.enable_progress_bar=false"]
    main(argv)
    ckpt = find_last_checkpoint(tmp_path / "outputs" / "audio" / "smoke_storm")
    assert torch.load(ckpt, weights_only=False)["hyper_parameters"]["sample_rate"] == 8000
    sf.write(str(tmp_path / "in.wav"), np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1, 8000)
    assert main(["enhance", "in.wav", "out.wav", "--ckpt", str(ckpt), "--steps", "1"]) == 0
    assert sf.info(str(tmp_path / "out.wav")).samplerate == 8000
