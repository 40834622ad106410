"""The shipped default denoiser (``pretrained/denoise.ckpt``, written by ``python scripts/pretrain.py
audio``): ``enhance`` uses it without ``--ckpt``, with its recorded sampling; on held-out real-speech
mixtures (the test split, which the recipe never used) it beats the Wiener filter on PESQ and the
input on SI-SDR by the margins set below from the measured run (``python benchmarks/audio.py
--pretrained``). The default is a deterministic one-pass model, so the margins only absorb float
differences between machines.

Not asserted, because it does not hold: on the recipe's other held-out mixtures (seed 2 of
:func:`difflab.audio.heldout.selection_mixtures`) the default's PESQ is 0.16 below the Wiener
filter's on average, and on babble and tonal noise it loses to the Wiener filter (audio README,
*Pretrained default*).
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from difflab.audio.cli import main
from difflab.audio.pretrain import NAME
from difflab.core.lightning.pretrained import pretrained_info, recommended_sampling, shipped_path

SHIPPED = shipped_path("audio", NAME)
needs_default = pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped default: python scripts/pretrain.py audio")

PESQ_MARGIN = 0.03
"""Mean PESQ of the default minus the Wiener filter's on the 24 test mixtures must stay above this
(measured: 1.434 - 1.374 = +0.060)."""
SI_SDR_GAIN = 2.0
"""Mean SI-SDR gain of the default over the unprocessed input there, dB (measured: 9.58 - 6.68 = +2.90)."""


def test_help_says_the_default(capsys):
    with pytest.raises(SystemExit):
        main(["enhance", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: the shipped pretrained denoising model" in text and "recorded" in text


@needs_default
def test_enhance_without_ckpt_uses_the_default(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    x = 0.3 * np.sin(2 * np.pi * 200 * t) * (t < 0.25) + 0.05 * rng.standard_normal(8000)
    sf.write(tmp_path / "in.wav", x.astype(np.float32), 16000)
    assert main(["enhance", str(tmp_path / "in.wav"), str(tmp_path / "out.wav")]) == 0
    out, rate = sf.read(tmp_path / "out.wav")
    assert rate == 16000 and out.shape == (8000,) and np.abs(out).max() <= 1.0
    assert np.isfinite(out).all() and np.abs(out).max() > 0


@needs_default
def test_default_records_its_provenance_and_sampling():
    info = pretrained_info(SHIPPED)
    assert info["command"].startswith("python scripts/pretrain.py audio")
    assert {"selection", "test"} <= set(info["evaluation"])
    assert {"unprocessed", "Wiener filter", "predictor"} <= set(info["evaluation"]["test"])
    if info["model"] == "storm":
        assert set(recommended_sampling(SHIPPED)) == {"sampler", "steps"}


@needs_default
def test_default_beats_the_wiener_filter_on_the_real_speech_test_split():
    from difflab.audio.baselines import wiener_filter
    from difflab.audio.inference import default_checkpoint, load_model
    from difflab.audio.metrics import pesq_wb, si_sdr
    from difflab.audio.pretrain import test_mixtures
    from difflab.audio.scoring import enhance_wave

    path, sampler, steps = default_checkpoint(None, None, None)
    model = load_model(path)
    pesq, sdr = [], []
    for clean, noisy, _ in test_mixtures():
        ours, wiener = enhance_wave(model, noisy, (sampler, steps)), wiener_filter(noisy)
        pesq.append(pesq_wb(ours, clean) - pesq_wb(wiener, clean))
        sdr.append(si_sdr(ours, clean) - si_sdr(noisy, clean))
    assert float(np.mean(pesq)) > PESQ_MARGIN, pesq
    assert float(np.mean(sdr)) > SI_SDR_GAIN, sdr
