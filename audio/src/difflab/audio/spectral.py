r"""The complex STFT representation of SGMSE+ and StoRM, with amplitude compression.

Richter et al. 2023 (SGMSE+) run the diffusion on the complex STFT of the waveform, compressed in
amplitude so that quiet time-frequency bins carry weight:

.. math:: \tilde c = \beta\,|c|^{\alpha}\,e^{i\angle c}, \qquad
          c = \Big(\frac{|\tilde c|}{\beta}\Big)^{1/\alpha} e^{i\angle\tilde c},

with ``alpha = 0.5``, ``beta = 0.15``, ``n_fft = 510`` (256 frequency bins), hop 128, a periodic
Hann window and centred frames. Waveforms are first divided by the noisy signal's peak ``max|y|``
(the same factor is applied to the clean target, and multiplied back after enhancement).

Networks take real tensors: a complex spectrogram ``(B, F, T)`` is stacked as ``(B, 2, F, T)`` with
channel 0 the real and channel 1 the imaginary part (:func:`to_channels` / :func:`from_channels`).
"""

from __future__ import annotations

import torch
from torch import Tensor


def to_channels(spec: Tensor) -> Tensor:
    """Complex ``(B, F, T)`` -> real ``(B, 2, F, T)`` (real, imaginary)."""
    return torch.stack([spec.real, spec.imag], dim=1)


def from_channels(x: Tensor) -> Tensor:
    """Real ``(B, 2k, F, T)`` -> complex ``(B, k, F, T)``; with ``k = 1`` the channel axis is dropped."""
    if x.shape[1] % 2:
        raise ValueError(f"expected an even number of real/imaginary channels, got shape {tuple(x.shape)}")
    c = torch.complex(x[:, 0::2].float(), x[:, 1::2].float())
    return c[:, 0] if c.shape[1] == 1 else c


class SpecTransform:
    """Waveform <-> compressed complex STFT (as real/imaginary channels).

    Args:
        n_fft: FFT size (510 gives 256 bins).
        hop_length: hop in samples (128).
        alpha: amplitude exponent of the compression (0.5).
        beta: scale of the compression (0.15).

    Shapes: :meth:`wav_to_spec` maps ``(B, L)`` to ``(B, 2, F, T)`` with ``F = n_fft // 2 + 1`` and
    ``T = L // hop_length + 1``; :meth:`spec_to_wav` maps back given ``L``.
    """

    def __init__(self, n_fft: int = 510, hop_length: int = 128, alpha: float = 0.5, beta: float = 0.15) -> None:
        if n_fft < 16 or hop_length < 1 or hop_length > n_fft:
            raise ValueError(f"SpecTransform: need n_fft >= 16 and 1 <= hop_length <= n_fft, got {n_fft}, {hop_length}")
        if not 0 < alpha <= 1 or beta <= 0:
            raise ValueError(f"SpecTransform: need 0 < alpha <= 1 and beta > 0, got alpha={alpha}, beta={beta}")
        self.n_fft, self.hop_length, self.alpha, self.beta = int(n_fft), int(hop_length), float(alpha), float(beta)

    @property
    def num_bins(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, length: int) -> int:
        return length // self.hop_length + 1

    def window(self, device: torch.device | None = None) -> Tensor:
        return torch.hann_window(self.n_fft, periodic=True, device=device)

    def compress(self, c: Tensor) -> Tensor:
        if self.alpha == 1:
            return self.beta * c
        mag = c.abs()
        return self.beta * mag.pow(self.alpha) * torch.exp(1j * c.angle())

    def decompress(self, c: Tensor) -> Tensor:
        if self.alpha == 1:
            return c / self.beta
        mag = (c.abs() / self.beta).pow(1.0 / self.alpha)
        return mag * torch.exp(1j * c.angle())

    def stft(self, wav: Tensor) -> Tensor:
        """``(B, L)`` -> complex ``(B, F, T)`` (uncompressed)."""
        return torch.stft(
            wav.float(), self.n_fft, self.hop_length, window=self.window(wav.device), center=True, return_complex=True
        )

    def istft(self, spec: Tensor, length: int) -> Tensor:
        return torch.istft(
            spec, self.n_fft, self.hop_length, window=self.window(spec.device), center=True, length=length
        )

    def wav_to_spec(self, wav: Tensor) -> Tensor:
        """``(B, L)`` waveform -> ``(B, 2, F, T)`` compressed real/imaginary spectrogram."""
        return to_channels(self.compress(self.stft(wav)))

    def spec_to_wav(self, x: Tensor, length: int) -> Tensor:
        """``(B, 2, F, T)`` compressed spectrogram -> ``(B, length)`` waveform."""
        return self.istft(self.decompress(from_channels(x)), length)


__all__ = ["SpecTransform", "from_channels", "to_channels"]
