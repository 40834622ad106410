"""Metrics: ours (through torchmetrics) against the pesq and pystoi packages called directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.audio.data.io import load_audio
from difflab.audio.data.synth import ASTERISK_DIR
from difflab.audio.metrics import estoi, evaluate, format_table, pause_noise, pesq_wb, si_sdr


@pytest.fixture(scope="module")
def speech():
    files = sorted(ASTERISK_DIR.glob("*.g722"))
    if not files:
        pytest.skip("asterisk-core-sounds-en-g722 is not installed")
    wav = max((load_audio(f, 16000)[0] for f in files[:12]), key=lambda w: w.shape[0])
    rng = np.random.default_rng(0)
    noisy = wav + 0.05 * torch.from_numpy(rng.standard_normal(wav.shape[0])).float()
    return wav.numpy().astype(np.float64), noisy.numpy().astype(np.float64)


def test_pesq_matches_reference(speech):
    from pesq import pesq

    clean, noisy = speech
    ref = pesq(16000, clean, noisy, "wb")  # reference first
    assert pesq_wb(noisy, clean) == pytest.approx(ref, abs=1e-3)  # ours: prediction first
    assert pesq_wb(clean, clean) > 4.4


def test_estoi_matches_reference(speech):
    from pystoi import stoi

    clean, noisy = speech
    assert estoi(noisy, clean) == pytest.approx(stoi(clean, noisy, 16000, extended=True), abs=1e-4)


def test_si_sdr_closed_form(speech):
    clean, noisy = speech
    a = np.dot(noisy, clean) / np.dot(clean, clean)
    ref = 10 * np.log10(np.sum((a * clean) ** 2) / np.sum((a * clean - noisy) ** 2))
    assert si_sdr(noisy, clean) == pytest.approx(ref, abs=1e-6)
    assert si_sdr(3.0 * clean, clean) > 100  # scale invariant


def test_evaluate_reports_the_unprocessed_input(speech):
    clean, noisy = speech
    res = evaluate({"oracle": [clean]}, [clean], [noisy])
    assert list(res) == ["unprocessed", "oracle"]
    assert res["oracle"]["pesq"][0] > res["unprocessed"]["pesq"][0]
    table = format_table(res)
    assert "unprocessed" in table and "PESQ (wb)" in table


def test_pesq_on_silence_is_nan_not_a_crash():
    with pytest.warns(UserWarning, match="PESQ could not score"):
        assert np.isnan(pesq_wb(np.zeros(16000), np.random.default_rng(0).standard_normal(16000)))


def test_pause_noise_measures_what_is_left_where_the_reference_is_silent():
    rng = np.random.default_rng(0)
    clean = np.concatenate([np.zeros(8000), rng.standard_normal(16000), np.zeros(8000)])
    noise = 0.01 * rng.standard_normal(clean.size)
    # clean energy 16000, noise energy in the pauses about 1e-4 * 16000 (the half-silent edge frames aside)
    assert pause_noise(clean + noise, clean) == pytest.approx(-40.0, abs=0.5)
    assert pause_noise(clean + 0.1 * noise, clean) == pytest.approx(-60.0, abs=0.5)
    assert pause_noise(clean, clean) < -150
    assert np.isnan(pause_noise(rng.standard_normal(16000), rng.standard_normal(16000) + 10))
    res = evaluate({"noisy": [clean + noise]}, [clean], metrics=("si_sdr", "pause_noise"))
    assert res["noisy"]["pause_noise"][0] == pytest.approx(pause_noise(clean + noise, clean))
