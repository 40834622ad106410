"""Spectrogram figures: before / after enhancement, side by side on one colour scale."""

from __future__ import annotations

import numpy as np
import torch


def log_spectrogram(wav: torch.Tensor | np.ndarray, n_fft: int = 510, hop: int = 128) -> np.ndarray:
    """``20 log10 |STFT|`` in dB, ``(F, T)``."""
    x = torch.as_tensor(np.asarray(wav), dtype=torch.float32).flatten()
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), center=True, return_complex=True)
    return (20 * torch.log10(spec.abs().clamp_min(1e-6))).numpy()


def spectrogram_figure(
    panels: dict[str, torch.Tensor | np.ndarray],
    sample_rate: int = 16000,
    *,
    title: str | None = None,
    dynamic_range_db: float = 80.0,
):
    """One row of log-magnitude spectrograms (e.g. noisy / enhanced / clean) sharing a colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = {k: log_spectrogram(v) for k, v in panels.items()}
    top = max(float(s.max()) for s in specs.values())
    fig, axes = plt.subplots(1, len(specs), figsize=(3.4 * len(specs), 3.0), sharey=True, squeeze=False)
    for ax, (name, s) in zip(axes[0], specs.items()):
        dur = (s.shape[1] - 1) * 128 / sample_rate
        im = ax.imshow(
            s,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=top - dynamic_range_db,
            vmax=top,
            extent=(0, dur, 0, sample_rate / 2000),
        )
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("time (s)")
    axes[0][0].set_ylabel("frequency (kHz)")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.85, label="dB")
    if title:
        fig.suptitle(title, fontsize=10, y=1.04)
    return fig


__all__ = ["log_spectrogram", "spectrogram_figure"]
