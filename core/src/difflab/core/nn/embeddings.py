r"""Time (noise-level) embeddings for denoising networks.

Both embeddings map a time tensor of any shape ``S`` (``(B,)``, or ``(B, L)`` for one noise level
per token or frame) to features of shape ``S + (dim,)``, so per-element time works unchanged.

* :class:`SinusoidalTimeEmbedding` (Vaswani et al. 2017, used by DDPM, Ho et al. 2020): with
  ``half = dim // 2`` frequencies ``w_i = max_period^(-i / half)`` for ``i = 0 .. half - 1`` and
  ``u = scale * t`` (``t`` in [0, 1] is stretched to the DDPM step range [0, 1000] by default),

  .. math:: e(t) = [\cos(u w_0), \dots, \cos(u w_{half-1}), \sin(u w_0), \dots, \sin(u w_{half-1})]

  followed by one zero column when ``dim`` is odd.
* :class:`GaussianFourierEmbedding` (Tancik et al. 2020; score SDEs, Song et al. 2021): fixed
  random frequencies ``W ~ N(0, scale^2)`` of size ``dim // 2``,

  .. math:: e(t) = [\sin(2\pi t W), \cos(2\pi t W)].

  score_sde feeds ``log sigma`` for VE processes and ``t`` otherwise; the caller chooses the input.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class SinusoidalTimeEmbedding(nn.Module):
    """Transformer-style sinusoidal embedding of a time ``t`` in [0, 1].

    Args:
        dim: output feature size (>= 2).
        max_period: the slowest frequency is ``1 / max_period`` (10000 as in DDPM).
        scale: ``t`` is multiplied by this before embedding (1000: the DDPM step index range).

    Shapes: ``t`` of shape ``S`` (any, e.g. ``(B,)`` or ``(B, L)``) -> ``S + (dim,)``.
    """

    def __init__(self, dim: int, max_period: float = 10000.0, scale: float = 1000.0) -> None:
        super().__init__()
        if dim < 2:
            raise ValueError(f"SinusoidalTimeEmbedding: dim must be >= 2, got {dim}")
        if max_period <= 1:
            raise ValueError(f"SinusoidalTimeEmbedding: max_period must be > 1, got {max_period}")
        self.dim, self.max_period, self.scale = dim, float(max_period), float(scale)

    def frequencies(self, dtype: torch.dtype = torch.float64, device: torch.device | None = None) -> Tensor:
        """The ``dim // 2`` angular frequencies ``max_period^(-i / half)``."""
        half = self.dim // 2
        i = torch.arange(half, dtype=torch.float64, device=device)
        return torch.exp(-math.log(self.max_period) * i / half).to(dtype)

    def forward(self, t: Tensor) -> Tensor:
        # half-precision inputs are embedded in float32: the phases reach scale * t = 1000
        dtype = t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32
        args = (self.scale * t.to(dtype)).unsqueeze(-1) * self.frequencies(dtype, t.device)
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if self.dim % 2:
            emb = torch.cat([emb, torch.zeros_like(emb[..., :1])], dim=-1)
        return emb

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_period={self.max_period:g}, scale={self.scale:g}"


class GaussianFourierEmbedding(nn.Module):
    """Random Fourier features of a scalar input with fixed Gaussian frequencies.

    Args:
        dim: output feature size (even, >= 2).
        scale: standard deviation of the frequencies (16 in score_sde's NCSN++).
        generator: optional generator for the frequencies (otherwise the global RNG).

    The frequencies are a persistent buffer: they are saved in checkpoints and never trained.
    Shapes: input of shape ``S`` -> ``S + (dim,)``.
    """

    def __init__(self, dim: int, scale: float = 16.0, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"GaussianFourierEmbedding: dim must be even and >= 2, got {dim}")
        if scale <= 0:
            raise ValueError(f"GaussianFourierEmbedding: scale must be > 0, got {scale}")
        self.dim, self.scale = dim, float(scale)
        self.register_buffer("W", torch.randn(dim // 2, generator=generator) * self.scale)

    def forward(self, t: Tensor) -> Tensor:
        dtype = t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32
        args = 2 * math.pi * t.to(dtype).unsqueeze(-1) * self.W.to(dtype)
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, scale={self.scale:g}"


__all__ = ["SinusoidalTimeEmbedding", "GaussianFourierEmbedding"]
