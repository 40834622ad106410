"""The classical baselines: Wiener filter (decision-directed a priori SNR) and spectral gating."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.audio.baselines import gate_gain, low_energy_noise_psd, spectral_gate, wiener_filter, wiener_gain
from difflab.audio.metrics import si_sdr

RATE = 16000


def _sine_burst_in_noise(snr_db: float = 0.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(clean, noisy)``: a 440 Hz sine present in the middle 60 % of 2 s, white noise throughout
    at ``snr_db`` over the burst."""
    rng = np.random.default_rng(seed)
    n = 2 * RATE
    t = np.arange(n) / RATE
    clean = np.where((t > 0.4) & (t < 1.6), 0.3 * np.sin(2 * np.pi * 440 * t), 0.0)
    noise = rng.standard_normal(n)
    noise *= np.sqrt(np.mean(clean[(t > 0.4) & (t < 1.6)] ** 2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return torch.from_numpy(clean).float(), torch.from_numpy(clean + noise).float()


@pytest.mark.parametrize("enhancer", [wiener_filter, spectral_gate])
def test_improves_si_sdr_of_a_sine_in_white_noise(enhancer):
    clean, noisy = _sine_burst_in_noise()
    out = enhancer(noisy, RATE)
    assert out.shape == noisy.shape and out.dtype == noisy.dtype
    assert si_sdr(out, clean) > si_sdr(noisy, clean) + 6.0, (si_sdr(out, clean), si_sdr(noisy, clean))


@pytest.mark.parametrize("enhancer", [wiener_filter, spectral_gate])
def test_silence_stays_silent_and_noise_loses_energy(enhancer):
    assert enhancer(torch.zeros(8000), RATE).abs().max() == 0
    noise = torch.from_numpy(np.random.default_rng(1).standard_normal(RATE)).float() * 0.1
    assert enhancer(noise, RATE).square().sum() < 0.5 * noise.square().sum()  # gains <= 1 remove it


def test_batch_is_each_waveform_on_its_own():
    _, a = _sine_burst_in_noise(seed=2)
    _, b = _sine_burst_in_noise(snr_db=10.0, seed=3)
    out = wiener_filter(torch.stack([a, b]), RATE)
    torch.testing.assert_close(out[1], wiener_filter(b, RATE))


def test_wiener_gain_matches_the_decision_directed_recursion_by_hand():
    rng = np.random.default_rng(4)
    power = rng.exponential(1.0, (3, 5)) * np.array([[1.0], [5.0], [20.0]])
    lam = np.array([1.0, 1.0, 2.0])
    alpha, xi_min = 0.9, 10 ** (-20 / 10)
    g = wiener_gain(power, lam, alpha=alpha, xi_min_db=-20)
    prev = np.zeros(3)
    for t in range(5):
        gamma = power[:, t] / lam
        xi = np.maximum(alpha * prev + (1 - alpha) * np.maximum(gamma - 1, 0), xi_min)
        np.testing.assert_allclose(g[:, t], xi / (1 + xi))
        prev = (xi / (1 + xi)) ** 2 * power[:, t] / lam
    assert (g > 0).all() and (g < 1).all()


def test_low_energy_noise_psd_is_the_mean_over_the_quiet_frames():
    power = np.ones((2, 10))
    power[:, 3:] = 100.0  # 7 loud frames
    np.testing.assert_allclose(low_energy_noise_psd(power, 0.2), [1.0, 1.0])
    with pytest.raises(ValueError, match="quantile=0"):
        low_energy_noise_psd(power, 0.0)


def test_gate_passes_what_is_far_above_the_noise_threshold():
    noise = np.random.default_rng(5).exponential(1.0, (40, 200))
    loud = noise.copy()
    loud[10, 50:150] = 1e6
    g = gate_gain(loud, noise, bin_hz=31.25, frame_ms=8.0, smooth_hz=0.0, smooth_ms=0.0)
    assert (g[10, 50:150] == 1).all() and g[20].mean() < 0.2
