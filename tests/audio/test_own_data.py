"""A user's own recordings: the data decides the sample rate (no model overrides), clips shorter
than the training crop and multi-channel files are handled, the README's commands run as written,
and the command line refuses what would give a silent wrong result."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from difflab.audio.cli import main
from difflab.core.lightning.checkpoint import find_last_checkpoint
from difflab.core.testing import run_readme_commands, user_error_line

README = Path(__file__).resolve().parents[2] / "audio" / "README.md"
RATE = 8000  # the smoke configs' model is 16 kHz by default
VOICEBANK = ["--data.class_path", "difflab.audio.data.VoiceBankDataModule"]


def write_own_data(root: Path, rate: int = RATE, stereo: bool = True) -> Path:
    """VoiceBank-DEMAND layout, ``root/{train,valid,test}/{clean,noisy}/*.wav``: tones in noise of
    0.3 to 0.8 s (shorter than the smoke crop of 8064 samples), one stereo training pair."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("valid", 1), ("test", 2)):
        for i in range(n):
            t = np.arange(int(rate * (0.3 + 0.1 * i + 0.05 * len(split)))) / rate
            clean = 0.3 * np.sin(2 * np.pi * (180 + 40 * i) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
            noisy = clean + 0.05 * rng.standard_normal(t.shape)
            if stereo and split == "train" and i == 0:
                clean, noisy = np.stack([clean, clean], 1), np.stack([noisy, 0.9 * noisy], 1)
            for kind, x in (("clean", clean), ("noisy", noisy)):
                (root / split / kind).mkdir(parents=True, exist_ok=True)
                sf.write(str(root / split / kind / f"u{i}.wav"), x.astype(np.float32), rate)
    return root


def quiet() -> list[str]:
    return ["--trainer.enable_progress_bar", "false"]


def one_line_error(capsys, argv: list[str]) -> str:
    return user_error_line(main, capsys, argv, keep=lambda line: line.startswith("difflab-audio"))


def test_smoke_config_trains_at_the_rate_of_the_data_and_enhances(tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.chdir(tmp_path)
    write_own_data(tmp_path / "my")
    data = [*VOICEBANK, "--data.init_args.root", "my"]
    with pytest.warns(UserWarning, match=r"2 of 12 files have more than one channel .*mixed down to mono"):
        assert main(["fit", "--config", "smoke_sgmse", *data, *quiet()]) == 0
    ckpt = find_last_checkpoint(tmp_path / "outputs/audio/smoke_sgmse")
    assert torch.load(ckpt, weights_only=False)["hyper_parameters"]["sample_rate"] == RATE
    run = "outputs/audio/smoke_sgmse"
    assert main(["enhance", "my/test/noisy", "enhanced", "--ckpt", run, "--steps", "1"]) == 0
    for name in ("u0.wav", "u1.wav"):
        info, src = sf.info(f"enhanced/{name}"), sf.info(f"my/test/noisy/{name}")
        assert (info.samplerate, info.frames, info.channels) == (RATE, src.frames, 1)
    t = np.arange(16000 * 3 // 2) / 16000  # another rate than the model's: resampled there and back, with a note
    sf.write("wide.wav", (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 16000)
    capsys.readouterr()
    assert main(["enhance", "wide.wav", "wide_out.wav", "--ckpt", run, "--steps", "1"]) == 0
    assert "16000 Hz, the model works at 8000 Hz" in capsys.readouterr().out
    info = sf.info("wide_out.wav")
    assert (info.samplerate, info.frames) == (16000, t.size)
    err = one_line_error(capsys, ["test", "--config", "smoke_sgmse", *data, *quiet(), "--ckpt_path", "last",
                                  "--data.init_args.sample_rate", "16000"])  # fmt: skip
    assert "--data.init_args.sample_rate 16000" in err and "8000 Hz" in err


def test_files_of_several_rates_are_an_error_naming_both(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_own_data(tmp_path / "my", stereo=False)
    for kind in ("clean", "noisy"):
        x, _ = sf.read(f"my/train/{kind}/u1.wav")
        sf.write(f"my/train/{kind}/u1.wav", np.repeat(x, 2), 2 * RATE)
    err = one_line_error(capsys, ["fit", "--config", "smoke_sgmse", *VOICEBANK, "--data.init_args.root", "my"])
    assert "8000 Hz" in err and "16000 Hz" in err and "--data.init_args.sample_rate" in err


def test_the_default_data_is_never_written_into_a_folder_of_other_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine" / "train").mkdir(parents=True)
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    err = one_line_error(capsys, ["fit", "--config", "smoke_sgmse", "--data.init_args.root", "mine"])
    assert "mine" in err and "VoiceBankDataModule" in err
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt", "train"]


def test_readme_own_data_commands(tmp_path, monkeypatch):
    """The README's commands for one's own recordings, as written, on the smoke recipe (two steps)."""
    monkeypatch.chdir(tmp_path)
    write_own_data(tmp_path / "my", stereo=False)
    smoke = {"sgmse_denoise": "smoke_sgmse"}
    run_readme_commands(
        README, main, "difflab-audio", smoke, {"outputs/audio/sgmse_denoise": "outputs/audio/smoke_sgmse"}
    )
    written = sorted(p.name for p in (tmp_path / "enhanced").iterdir())
    assert written == ["u0.wav", "u1.wav"] and sf.info(str(tmp_path / "enhanced" / "u0.wav")).samplerate == RATE
