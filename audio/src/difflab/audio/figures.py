"""Spectrogram figures: before / after enhancement, side by side on one colour scale.

The features and the display are librosa's: ``librosa.stft`` magnitudes in dB by
``librosa.amplitude_to_db`` and ``librosa.display.specshow`` with time and frequency axes.
"""

from __future__ import annotations

import textwrap

import numpy as np
import torch

from difflab.core.figures import pyplot

N_FFT, HOP = 510, 128


def _librosa():
    try:
        import librosa
        import librosa.display
    except ImportError as err:  # pragma: no cover - a dependency of difflab-audio
        raise ImportError("spectrogram figures need librosa: pip install librosa") from err
    return librosa


def log_spectrogram(wav: torch.Tensor | np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """``20 log10 max(|STFT|, 1e-6)`` in dB, ``(F, T)``: a Hann-windowed librosa STFT, centred with reflected edges."""
    librosa = _librosa()
    x = np.asarray(torch.as_tensor(np.asarray(wav), dtype=torch.float32).flatten())
    spec = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, window="hann", center=True, pad_mode="reflect"))
    return librosa.amplitude_to_db(spec, ref=1.0, amin=1e-6, top_db=None)


def spectrogram_figure(
    panels: dict[str, torch.Tensor | np.ndarray],
    sample_rate: int = 16000,
    *,
    title: str | None = None,
    dynamic_range_db: float = 80.0,
):
    """One row of log-magnitude spectrograms (e.g. noisy / enhanced / clean) sharing a colour scale."""
    librosa, plt = _librosa(), pyplot()
    specs = {k: log_spectrogram(v) for k, v in panels.items()}
    top = max(float(s.max()) for s in specs.values())
    fig, axes = plt.subplots(1, len(specs), figsize=(3.4 * len(specs), 3.0), sharey=True, squeeze=False)
    titles = {name: textwrap.fill(name, 30) for name in specs}  # long labels wrap, not run into the next panel
    for ax, (name, s) in zip(axes[0], specs.items()):
        im = librosa.display.specshow(
            s,
            sr=sample_rate,
            hop_length=HOP,
            n_fft=N_FFT,
            x_axis="time",
            y_axis="hz",
            ax=ax,
            cmap="magma",
            vmin=top - dynamic_range_db,
            vmax=top,
        )
        ax.set_title(titles[name], fontsize=10)
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("")
    axes[0][0].set_ylabel("frequency (Hz)")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.85, label="dB")
    if title:
        lines = max(t.count("\n") for t in titles.values())
        fig.suptitle(title, fontsize=10, y=1.04 + 0.06 * lines)
    return fig


def quality_vs_nfe_figure(
    curves: dict[str, list[tuple[int, float, float]]], references: dict[str, tuple[float, float]]
):
    """PESQ and SI-SDR against network evaluations for SGMSE+ and StoRM (PC and probability-flow ODE).

    Args:
        curves: ``{"sgmse/pc" | "sgmse/probability_flow" | "storm/pc" | "storm/probability_flow":
            [(NFE, PESQ, SI-SDR)]}``.
        references: ``{"pesq" | "si_sdr": (predictive baseline, unprocessed input)}``, drawn as lines.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, k, name in ((axes[0], 1, "PESQ (wb)"), (axes[1], 2, "SI-SDR (dB)")):
        for key, label, c, ls in (
            ("sgmse/pc", "SGMSE+ (PC)", "C0", "o-"),
            ("sgmse/probability_flow", "SGMSE+ (ODE)", "C0", "s--"),
            ("storm/pc", "StoRM (PC)", "C3", "o-"),
            ("storm/probability_flow", "StoRM (ODE)", "C3", "s--"),
        ):
            pts = curves[key]
            ax.plot([q[0] for q in pts], [q[k] for q in pts], ls, color=c, label=label)
        predictive, unprocessed = references["pesq" if k == 1 else "si_sdr"]
        ax.axhline(predictive, color="C2", ls="--", label="predictive (NFE 1)")
        ax.axhline(unprocessed, color="gray", ls=":", label="unprocessed")
        ax.set_xscale("log")
        ax.set_xlabel("network evaluations (NFE)")
        ax.set_ylabel(name)
    axes[0].legend(fontsize=8)
    fig.suptitle("quality versus NFE on real-speech test mixtures (CPU-trained small models)", fontsize=10)
    fig.tight_layout()
    return fig


__all__ = ["log_spectrogram", "quality_vs_nfe_figure", "spectrogram_figure"]
