"""Classical single-channel speech enhancers: the baselines a diffusion model has to beat.

Both work on the STFT ``Y(k, l)`` (bin ``k``, frame ``l``) of the noisy signal ``y = s + d`` with a
Hann window of about 32 ms (512 samples at 16 kHz, scaled with the rate) and a hop of a quarter
window; the estimate is ``Ŝ(k, l) = G(k, l) · Y(k, l)`` with a real gain ``0 ≤ G ≤ 1``, turned back
into a waveform of the input's length by the inverse STFT (least-squares overlap-add). A gain never
above one cannot create energy from silence: a silent input gives a silent output.

:func:`wiener_filter` — the Wiener gain with the decision-directed a priori SNR estimate of Ephraim
and Malah (*Speech enhancement using a minimum mean-square error short-time spectral amplitude
estimator*, IEEE TASSP 1984):

* noise PSD ``λ_d(k)``: the mean periodogram ``|Y(k, l)|²`` over the frames whose energy
  ``Σ_k |Y(k, l)|²`` is among the lowest ``noise_quantile`` (10 %) of the recording's frames — the
  speech pauses. It assumes noise that is stationary over the input (one utterance or one chunk);
* a posteriori SNR ``γ(k, l) = |Y(k, l)|² / λ_d(k)``;
* a priori SNR, decision-directed:
  ``ξ(k, l) = max(α · |Ŝ(k, l−1)|² / λ_d(k) + (1 − α) · max(γ(k, l) − 1, 0), ξ_min)``
  with ``α = 0.98`` and ``ξ_min = −25 dB`` (the floor keeps the residual noise from turning into
  musical noise), ``Ŝ(k, −1) = 0``;
* Wiener gain ``G(k, l) = ξ(k, l) / (1 + ξ(k, l))``.

:func:`spectral_gate` — the stationary spectral gate of the ``noisereduce`` package's stationary
mode (Sainburg), written from its description:

* level ``M(k, l) = 20 log10 |Y(k, l)|`` (dB); per bin the mean ``μ(k)`` and standard deviation
  ``σ(k)`` of ``M`` over the frames of a noise recording, by default over the input's own
  low-energy frames (the lowest ``noise_quantile``, 20 %, by frame energy, as for the Wiener
  filter: the statistics of the whole input, noisereduce's choice without a noise clip, put the
  threshold above any sound present in much of the input, such as a sustained tone);
* threshold ``T(k) = μ(k) + n_std · σ(k)`` (``n_std`` 1.5); binary mask ``m = [M(k, l) > T(k)]``;
* the mask smoothed by a normalised triangular kernel of ``smooth_hz`` (500 Hz) half-width over
  frequency and ``smooth_ms`` (50 ms) over time (no hard on/off edges);
* gain ``G = 1 − prop_decrease · (1 − m̃)`` (``prop_decrease`` 1: fully gate what is below).

Shapes: waveforms ``(L,)`` or ``(B, L)`` float in, the same shape out, at ``sample_rate``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _stft_setup(sample_rate: int) -> tuple[int, int, Tensor]:
    """``(n_fft, hop, window)``: a Hann window of about 32 ms (a power of two), hop a quarter of it."""
    n_fft = 1 << max(int(round(np.log2(0.032 * sample_rate))), 4)
    return n_fft, n_fft // 4, torch.hann_window(n_fft, dtype=torch.float64)


def _apply_gain(wav: Tensor, sample_rate: int, gain_fn) -> Tensor:
    """STFT each waveform of ``wav`` ``(L,)``/``(B, L)``, multiply by ``gain_fn(|Y|² (F, T) numpy)``
    ``(F, T)``, and invert to the input's shape and dtype."""
    x = torch.as_tensor(wav)
    single = x.ndim == 1
    batch = (x[None] if single else x).to(torch.float64)
    n_fft, hop, window = _stft_setup(sample_rate)
    out = []
    for y in batch:
        spec = torch.stft(y, n_fft, hop, window=window, center=True, return_complex=True)
        gain = torch.from_numpy(gain_fn(spec.abs().square().numpy()))
        out.append(torch.istft(spec * gain, n_fft, hop, window=window, center=True, length=y.shape[-1]))
    res = torch.stack(out).to(x.dtype if x.is_floating_point() else torch.float32)
    return res[0] if single else res


def low_energy_noise_psd(power: np.ndarray, quantile: float = 0.1) -> np.ndarray:
    """Noise PSD ``λ_d(k)`` ``(F,)`` from a periodogram ``|Y|²`` ``(F, T)``: the mean over the frames
    whose energy is at or below the ``quantile`` of the frame energies (at least one frame)."""
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile={quantile}: must be in (0, 1]")
    energy = power.sum(axis=0)
    keep = energy <= np.quantile(energy, quantile)
    return power[:, keep].mean(axis=1)


def wiener_gain(
    power: np.ndarray, noise_psd: np.ndarray, *, alpha: float = 0.98, xi_min_db: float = -25.0
) -> np.ndarray:
    """Wiener gains ``G(k, l)`` ``(F, T)`` for the periodogram ``|Y|²`` ``(F, T)`` with the
    decision-directed a priori SNR (see the module docstring); ``noise_psd`` ``(F,)``."""
    xi_min = 10 ** (xi_min_db / 10)
    # a noise floor far below the signal keeps γ finite where a bin holds no noise at all
    lam = np.maximum(noise_psd, 1e-12 * max(float(power.mean()), 1e-30))
    gamma = power / lam[:, None]
    gain = np.empty_like(power)
    prev = np.zeros(power.shape[0])  # |Ŝ(k, l-1)|² / λ_d(k)
    for t in range(power.shape[1]):
        xi = np.maximum(alpha * prev + (1 - alpha) * np.maximum(gamma[:, t] - 1.0, 0.0), xi_min)
        gain[:, t] = xi / (1.0 + xi)
        prev = gain[:, t] ** 2 * gamma[:, t]
    return gain


def wiener_filter(
    wav: Tensor | np.ndarray,
    sample_rate: int = 16000,
    *,
    alpha: float = 0.98,
    xi_min_db: float = -25.0,
    noise_quantile: float = 0.1,
) -> Tensor:
    """Wiener filter with the decision-directed a priori SNR and a noise PSD from the low-energy
    frames (module docstring); ``wav`` ``(L,)`` or ``(B, L)``, each waveform on its own."""
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha={alpha}: must be in [0, 1)")
    return _apply_gain(
        wav,
        sample_rate,
        lambda p: wiener_gain(p, low_energy_noise_psd(p, noise_quantile), alpha=alpha, xi_min_db=xi_min_db),
    )


def _triangle(half: int) -> np.ndarray:
    w = 1.0 - np.abs(np.arange(-half, half + 1)) / (half + 1)
    return w / w.sum()


def gate_gain(
    power: np.ndarray,
    noise_power: np.ndarray,
    *,
    bin_hz: float,
    frame_ms: float,
    n_std: float = 1.5,
    prop_decrease: float = 1.0,
    smooth_hz: float = 500.0,
    smooth_ms: float = 50.0,
) -> np.ndarray:
    """Spectral-gate gains ``(F, T)`` for the periodogram ``power`` ``(F, T)``, the threshold from the
    periodogram of the noise ``noise_power`` ``(F, T')``; ``bin_hz`` / ``frame_ms`` are the STFT's
    bin spacing and hop (for the smoothing widths)."""
    from scipy.signal import fftconvolve

    level = 10 * np.log10(power + 1e-20)
    noise_level = 10 * np.log10(noise_power + 1e-20)
    threshold = noise_level.mean(axis=1) + n_std * noise_level.std(axis=1)
    mask = (level > threshold[:, None]).astype(np.float64)
    kernel = np.outer(_triangle(int(smooth_hz / bin_hz)), _triangle(int(smooth_ms / frame_ms)))
    smooth = np.clip(fftconvolve(mask, kernel, mode="same"), 0.0, 1.0)
    return 1.0 - prop_decrease * (1.0 - smooth)


def spectral_gate(
    wav: Tensor | np.ndarray,
    sample_rate: int = 16000,
    *,
    noise: Tensor | np.ndarray | None = None,
    noise_quantile: float = 0.2,
    n_std: float = 1.5,
    prop_decrease: float = 1.0,
    smooth_hz: float = 500.0,
    smooth_ms: float = 50.0,
) -> Tensor:
    """Stationary spectral gating (module docstring); ``noise`` ``(L',)``: a recording of the noise
    alone for the threshold (default: the ``noise_quantile`` lowest-energy frames of each input).
    ``wav`` ``(L,)`` or ``(B, L)``."""
    if not 0.0 <= prop_decrease <= 1.0:
        raise ValueError(f"prop_decrease={prop_decrease}: must be in [0, 1]")
    n_fft, hop, window = _stft_setup(sample_rate)
    noise_power = None
    if noise is not None:
        d = torch.as_tensor(noise, dtype=torch.float64)
        noise_power = torch.stft(d, n_fft, hop, window=window, center=True, return_complex=True).abs().square().numpy()
    opts = dict(
        bin_hz=sample_rate / n_fft,
        frame_ms=1000 * hop / sample_rate,
        n_std=n_std,
        prop_decrease=prop_decrease,
        smooth_hz=smooth_hz,
        smooth_ms=smooth_ms,
    )

    def gain(p: np.ndarray) -> np.ndarray:
        if noise_power is not None:
            return gate_gain(p, noise_power, **opts)
        energy = p.sum(axis=0)
        return gate_gain(p, p[:, energy <= np.quantile(energy, noise_quantile)], **opts)

    return _apply_gain(wav, sample_rate, gain)


__all__ = ["gate_gain", "low_energy_noise_psd", "spectral_gate", "wiener_filter", "wiener_gain"]
