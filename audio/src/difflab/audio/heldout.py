r"""Held-out real-speech mixtures for choosing and scoring a trained enhancer, beside the test split.

* :func:`selection_mixtures`: recorded Asterisk prompts that the test split of the offline default
  does **not** use, mixed as the test split is mixed (held-out Sonic Pi recordings or coloured noise
  ``1/f^k``, SNR drawn from [-5, 15] dB, speech at -26 to -16 dBFS). The pretraining recipe chooses
  its model and sampler on these, never on the test mixtures.
* :func:`babble_noise` and :func:`tonal_noise`: two noises the test split lacks. Babble is the sum
  of ``talkers`` synthetic utterances of the validation split (other voices and words than the
  target), each at its own level and offset; tonal noise is a mains hum (50 or 60 Hz with its
  harmonics up to 2 kHz, amplitudes falling as ``1/h``) plus a steady whine (one sine between 1 and
  4 kHz), the stationary narrow-band interference of recorders and equipment.
* :func:`extra_test_mixtures`: the test split's clean recordings with babble or tonal noise at an
  SNR drawn from [0, 10] dB (``(clean, noisy, label)``).

Every function depends only on its ``seed``; signals are 16 kHz ``(L,)`` float tensors.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from difflab.audio.data.io import load_audio
from difflab.audio.data.synth import (
    SAMPLE_RATE,
    mix_at_snr,
    noise_files,
    noise_segment,
    real_speech_files,
    trim_silence,
)

SNR_RANGE = (-5.0, 15.0)
"""SNR range of the selection mixtures (that of the test split)."""
EXTRA_SNR_RANGE = (0.0, 10.0)
"""SNR range of the babble and tonal test mixtures."""


def _level(clean: Tensor, rng: np.random.Generator) -> Tensor:
    """``clean`` at an RMS drawn from -26 to -16 dBFS (the offline default's levels)."""
    rms = clean.pow(2).mean().sqrt().clamp_min(1e-9)
    return clean * (10 ** (rng.uniform(-26, -16) / 20) / rms)


def _fit_peak(clean: Tensor, noisy: Tensor) -> tuple[Tensor, Tensor]:
    """Both scaled down together when the mixture's peak passes 0.95 (as the offline default writes them)."""
    peak = float(noisy.abs().max())
    scale = 0.95 / peak if peak > 0.95 else 1.0
    return clean * scale, noisy * scale


def test_speech_names(root: str | Path) -> set[str]:
    """The Asterisk prompt names the test split under ``root`` uses (its ``meta.csv`` ``speech`` column)."""
    meta = Path(root) / "test" / "meta.csv"
    if not meta.is_file():
        return set()
    with open(meta, newline="") as fh:
        return {row["speech"] for row in csv.DictReader(fh)}


def selection_mixtures(
    count: int, *, exclude: set[str], seed: int = 0, max_seconds: float = 5.0
) -> list[tuple[Tensor, Tensor, str]]:
    """``count`` held-out real-speech mixtures ``(clean, noisy, label)`` from prompts not in ``exclude``
    (1 s to ``max_seconds`` long), mixed like the test split; ``label`` is ``prompt/noise@SNR``."""
    files = [f for f in real_speech_files() if f.stem not in exclude]
    rng = np.random.default_rng([seed, 7])
    pool, cache = noise_files(held_out=True), {}
    out: list[tuple[Tensor, Tensor, str]] = []
    for j in rng.permutation(len(files)):
        wav, _ = load_audio(str(files[int(j)]), SAMPLE_RATE)
        wav = trim_silence(wav)
        if not SAMPLE_RATE <= wav.shape[0] <= max_seconds * SAMPLE_RATE:
            continue
        clean = _level(wav, rng)
        snr = float(rng.uniform(*SNR_RANGE))
        noise, name = noise_segment(clean.shape[0], pool, rng, cache)
        clean, noisy = _fit_peak(clean, mix_at_snr(clean, noise, snr))
        out.append((clean, noisy, f"{files[int(j)].stem}/{name}@{snr:.1f}dB"))
        if len(out) == count:
            break
    return out


def babble_noise(n: int, talkers: list[Tensor], rng: np.random.Generator, count: int = 6) -> Tensor:
    """``n`` samples of babble: ``count`` of the utterances ``talkers`` (looped, random offsets), each at
    a level drawn within 6 dB, summed; unit RMS."""
    out = torch.zeros(n)
    for k in rng.choice(len(talkers), size=min(count, len(talkers)), replace=False):
        wav = talkers[int(k)] / talkers[int(k)].pow(2).mean().sqrt().clamp_min(1e-9)
        long = wav.repeat(math.ceil((n + wav.shape[0]) / wav.shape[0]))
        start = int(rng.integers(wav.shape[0]))
        out += long[start : start + n] * 10 ** (rng.uniform(-6, 0) / 20)
    return out / out.pow(2).mean().sqrt().clamp_min(1e-9)


def tonal_noise(n: int, rng: np.random.Generator) -> Tensor:
    r"""``n`` samples of tonal interference, unit RMS: a hum ``\sum_h \sin(2\pi h f_0 t + \phi_h)/h`` for
    ``f_0`` 50 or 60 Hz and ``h f_0 < 2`` kHz, plus a whine ``0.5 \sin(2\pi f_w t)``, ``f_w`` in [1, 4] kHz."""
    t = torch.arange(n, dtype=torch.float64) / SAMPLE_RATE
    f0 = float(rng.choice([50.0, 60.0]))
    hum = sum(
        torch.sin(2 * math.pi * h * f0 * t + float(rng.uniform(0, 2 * math.pi))) / h for h in range(1, int(2000 // f0))
    )
    whine = 0.5 * torch.sin(2 * math.pi * float(rng.uniform(1000, 4000)) * t)
    x = (hum + whine).float()
    return x / x.pow(2).mean().sqrt().clamp_min(1e-9)


def extra_test_mixtures(
    cleans: list[Tensor], talkers: list[Tensor], *, seed: int = 0
) -> dict[str, list[tuple[Tensor, Tensor, str]]]:
    """``{"babble": [...], "tonal": [...]}``: each clean recording of ``cleans`` with babble of
    ``talkers`` and with tonal noise, SNR drawn from :data:`EXTRA_SNR_RANGE`: ``(clean, noisy, label)``."""
    out: dict[str, list[tuple[Tensor, Tensor, str]]] = {"babble": [], "tonal": []}
    for kind in out:
        rng = np.random.default_rng([seed, 11, len(kind)])
        for i, clean in enumerate(cleans):
            snr = float(rng.uniform(*EXTRA_SNR_RANGE))
            n = clean.shape[0]
            noise = babble_noise(n, talkers, rng) if kind == "babble" else tonal_noise(n, rng)
            c, noisy = _fit_peak(clean, mix_at_snr(clean, noise, snr))
            out[kind].append((c, noisy, f"{i}/{kind}@{snr:.1f}dB"))
    return out


__all__ = [
    "EXTRA_SNR_RANGE",
    "SNR_RANGE",
    "babble_noise",
    "extra_test_mixtures",
    "selection_mixtures",
    "test_speech_names",
    "tonal_noise",
]
