"""Spectrogram figures: librosa's features equal a direct STFT, and the figure is drawn."""

from __future__ import annotations

import numpy as np
import torch

from difflab.audio.figures import log_spectrogram, spectrogram_figure
from difflab.core.figures import save_figure


def test_log_spectrogram_equals_a_direct_stft_in_db():
    x = 0.1 * np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    spec = torch.stft(torch.as_tensor(x), 510, 128, window=torch.hann_window(510), center=True, return_complex=True)
    ref = (20 * torch.log10(spec.abs().clamp_min(1e-6))).numpy()
    out = log_spectrogram(x)
    assert out.shape == ref.shape == (256, 63)
    assert np.abs(out - ref).max() < 0.01
    assert abs(log_spectrogram(np.zeros(4000)).max() + 120.0) < 1e-3  # the 1e-6 floor


def test_spectrogram_figure_shares_one_colour_scale(tmp_path):
    x = 0.1 * np.random.default_rng(1).standard_normal(8000)
    fig = spectrogram_figure({"noisy": x, "clean": 0.5 * x}, 16000, title="t", dynamic_range_db=60.0)
    images = [ax.collections[0] for ax in fig.axes[:2]]
    assert all(im.get_clim() == images[0].get_clim() for im in images)
    assert images[0].get_clim()[1] - images[0].get_clim()[0] == 60.0
    assert save_figure(fig, tmp_path / "a" / "s.png", dpi=50).stat().st_size > 0
