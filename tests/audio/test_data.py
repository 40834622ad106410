"""Data: the offline default data on disk, bad-input errors, I/O, STFT representation."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from difflab.audio.data import AudioFileError, PairedAudioDataset, VoiceBankDataModule, load_audio, pair_folders
from difflab.audio.data.io import check_clip
from difflab.audio.data.synth import coloured_noise, mix_at_snr
from difflab.audio.spectral import SpecTransform


def test_default_layout_and_real_speech_test_set(tiny_root):
    for split, n in (("train", 8), ("valid", 2), ("test", 2)):
        clean = sorted(p.name for p in (tiny_root / split / "clean").glob("*.wav"))
        noisy = sorted(p.name for p in (tiny_root / split / "noisy").glob("*.wav"))
        assert clean == noisy and len(clean) == n
        for name in clean:
            ci, ni = sf.info(str(tiny_root / split / "clean" / name)), sf.info(str(tiny_root / split / "noisy" / name))
            assert ci.samplerate == ni.samplerate == 16000 and ci.frames == ni.frames and ci.subtype == "PCM_16"
    rows = list(csv.DictReader(open(tiny_root / "test" / "meta.csv")))
    assert all(r["voice"].startswith("asterisk") for r in rows)
    train_rows = list(csv.DictReader(open(tiny_root / "train" / "meta.csv")))
    assert {r["voice"].split(":")[0] for r in train_rows} <= {"espeak", "flite"}


def test_mixtures_have_the_recorded_snr(tiny_root):
    rows = list(csv.DictReader(open(tiny_root / "train" / "meta.csv")))
    for r in rows:
        snr = float(r["snr_db"])
        assert -5 <= snr <= 15
        clean, _ = sf.read(str(tiny_root / "train" / "clean" / r["file"]))
        noisy, _ = sf.read(str(tiny_root / "train" / "noisy" / r["file"]))
        measured = 10 * np.log10(np.sum(clean**2) / np.sum((noisy - clean) ** 2))
        assert abs(measured - snr) < 0.3, (r, measured)  # 16-bit quantisation


def test_dereverb_pairs_are_aligned(reverb_root):
    clean, _ = sf.read(str(next((reverb_root / "train" / "clean").glob("*.wav"))))
    rev, _ = sf.read(str(next((reverb_root / "train" / "noisy").glob("*.wav"))))
    assert clean.shape == rev.shape and not np.allclose(clean, rev)
    corr = np.correlate(rev[:16000], clean[:16000], mode="full")
    lag = int(np.argmax(corr)) - (min(16000, len(clean)) - 1)
    assert abs(lag) <= 16  # direct path at (about) sample 0


def test_room_impulse_responses_start_at_the_direct_path():
    """The RIR's first sample is the direct sound (a lead of even a few samples delays the reverberant
    input against its anechoic target: a per-frequency phase rotation the network cannot learn), also
    where a reflection is louder than the direct sound."""
    from difflab.audio.data.synth import room_impulse_response

    rng = np.random.default_rng(0)
    later_peak = 0
    for _ in range(12):
        rir, _ = room_impulse_response(rng, (0.6, 1.0), (3.0, 8.0))
        rir = rir.numpy()
        assert int(np.argmax(np.abs(rir[:20]))) == 0
        later_peak += int(np.argmax(np.abs(rir))) > 0
    assert later_peak >= 1  # the case where taking the RIR's peak as the direct path was wrong


def test_coloured_noise_slope_and_snr_mixing():
    rng = np.random.default_rng(0)
    for k in (0.0, 1.0, 2.0):
        x = coloured_noise(2**16, k, rng).numpy()
        p = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(x.size)
        sel = (f > 1e-3) & (f < 0.4)
        slope = np.polyfit(np.log(f[sel]), np.log(p[sel]), 1)[0]
        assert abs(slope + k) < 0.1
    s, n = torch.randn(8000), torch.randn(8000) * 3
    m = mix_at_snr(s, n, 5.0)
    assert 10 * math.log10(float(s.pow(2).sum() / (m - s).pow(2).sum())) == pytest.approx(5.0, abs=1e-3)


def test_load_resamples_and_mixes_down(tmp_path):
    t = np.arange(44100) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], 1) * 0.5
    sf.write(str(tmp_path / "s.wav"), stereo, 44100)
    with pytest.warns(UserWarning, match="mixed down"):
        wav, rate = load_audio(tmp_path / "s.wav", 16000)
    assert rate == 44100 and abs(wav.shape[0] - 16000) <= 1
    spec = np.abs(np.fft.rfft(wav.numpy()))
    assert abs(np.argmax(spec) * 16000 / wav.shape[0] - 440) < 2


def _pair_dirs(root, names_clean, names_noisy):
    for d, names in (("clean", names_clean), ("noisy", names_noisy)):
        (root / d).mkdir(parents=True, exist_ok=True)
        for n in names:
            sf.write(str(root / d / n), np.random.default_rng(0).standard_normal(8000) * 0.1, 16000)
    return root / "clean", root / "noisy"


def test_bad_input_errors_name_file_and_problem(tmp_path):
    c, n = _pair_dirs(tmp_path / "names", ["a.wav", "b.wav"], ["a.wav", "c.wav"])
    with pytest.raises(AudioFileError, match=r"b\.wav has no partner"):
        pair_folders(c, n)
    c, n = _pair_dirs(tmp_path / "len", ["a.wav"], ["a.wav"])
    sf.write(str(n / "a.wav"), np.ones(9000) * 0.1, 16000)
    with pytest.raises(AudioFileError, match=r"a\.wav.*lengths differ"):
        PairedAudioDataset(pair_folders(c, n)).validate()
    bad = tmp_path / "junk.wav"
    bad.write_text("this is not audio")
    with pytest.raises(AudioFileError, match=r"junk\.wav: not a readable audio file"):
        load_audio(bad)
    sf.write(str(tmp_path / "quiet.wav"), np.zeros(16000), 16000)
    wav, _ = load_audio(tmp_path / "quiet.wav")
    with pytest.raises(AudioFileError, match=r"quiet\.wav: silent"):
        check_clip(wav, tmp_path / "quiet.wav", 16000)
    with pytest.raises(AudioFileError, match=r"short\.wav: too short"):
        check_clip(torch.ones(100), tmp_path / "short.wav", 16000)
    c, n = _pair_dirs(tmp_path / "silent", ["a.wav"], ["a.wav"])
    sf.write(str(c / "a.wav"), np.zeros(8000), 16000)
    with pytest.raises(AudioFileError, match=r"clean/a\.wav: silent"):
        PairedAudioDataset(pair_folders(c, n))[0]


def test_voicebank_module_batches(tiny_root):
    dm = VoiceBankDataModule(str(tiny_root), batch_size=2, crop_samples=8064, eval_batch_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["clean"].shape == batch["noisy"].shape == (2, 8064)
    ev = next(iter(dm.val_dataloader()))
    assert ev["clean"].shape[0] == 2 and ev["length"].max() == ev["clean"].shape[1]
    with pytest.raises(AudioFileError, match="missing split folder"):
        VoiceBankDataModule(str(tiny_root / "nowhere")).setup("fit")


def test_stft_representation_round_trip():
    st = SpecTransform()
    wav = torch.randn(2, 16000) * 0.1
    x = st.wav_to_spec(wav)
    assert x.shape == (2, 2, 256, 16000 // 128 + 1)
    assert torch.allclose(st.spec_to_wav(x, 16000), wav, atol=1e-4)
    raw = st.stft(wav)
    comp = torch.complex(x[:, 0], x[:, 1])
    assert torch.allclose(comp.abs(), 0.15 * raw.abs().sqrt(), atol=1e-5)
    assert torch.allclose(torch.hann_window(510, periodic=True), st.window())


def test_default_data_does_not_depend_on_the_thread_count(tmp_path):
    """Written with 1 and with 2 torch threads, the files are byte-identical (before, a few samples
    differed by one 16-bit step, enough to change what a briefly trained model learns)."""
    import torch

    from difflab.audio.data.synth import make_dataset

    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            make_dataset(tmp_path / f"t{n}", "denoise", num_train=2, num_valid=0, num_test=1, seed=0, verbose=False)
            assert torch.get_num_threads() == n
    finally:
        torch.set_num_threads(threads)
    files = sorted(p.relative_to(tmp_path / "t1") for p in (tmp_path / "t1").rglob("*.wav"))
    assert len(files) == 6
    for f in files:
        assert (tmp_path / "t1" / f).read_bytes() == (tmp_path / "t2" / f).read_bytes(), f
