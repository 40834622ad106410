"""The shipped default denoiser (``pretrained/denoise.ckpt``, written by ``python scripts/pretrain.py
audio``): ``enhance`` uses it without ``--ckpt``, with its recorded sampling; on held-out real-speech
mixtures it beats the Wiener filter by at least the margin set below.

Held-out examples: :func:`difflab.audio.heldout.selection_mixtures` with seed 2 (recorded prompts
in held-out noise, -5 to 15 dB; the recipe chose its sampling on seed 0's), first :data:`COUNT`.
Measured on the shipped file: see :data:`PESQ_MARGIN`.
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

COUNT = 6
"""Held-out mixtures of the comparison."""
PESQ_MARGIN = 0.0
"""Mean PESQ of the default minus the Wiener filter's on them must stay above this."""


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
def test_default_beats_the_wiener_filter_on_heldout_speech():
    from difflab.audio.baselines import wiener_filter
    from difflab.audio.heldout import selection_mixtures
    from difflab.audio.inference import default_checkpoint, load_model
    from difflab.audio.metrics import pesq_wb
    from difflab.audio.scoring import enhance_wave

    path, sampler, steps = default_checkpoint(None, None, None)
    model = load_model(path)
    gains = []
    for clean, noisy, _ in selection_mixtures(COUNT, exclude=set(), seed=2):
        ours = pesq_wb(enhance_wave(model, noisy, (sampler, steps)), clean)
        gains.append(ours - pesq_wb(wiener_filter(noisy), clean))
    assert float(np.mean(gains)) > PESQ_MARGIN, gains
