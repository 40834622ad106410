"""Spectrogram figures: before / after enhancement, side by side on one colour scale.

The features and the display are librosa's: ``librosa.stft`` magnitudes in dB by
``librosa.amplitude_to_db`` and ``librosa.display.specshow`` with time and frequency axes.
"""

from __future__ import annotations

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
        ax.set_title(name, fontsize=10)
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("")
    axes[0][0].set_ylabel("frequency (Hz)")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.85, label="dB")
    if title:
        fig.suptitle(title, fontsize=10, y=1.04)
    return fig


__all__ = ["log_spectrogram", "spectrogram_figure"]
