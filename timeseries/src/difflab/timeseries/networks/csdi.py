r"""A CSDI-style conditional denoiser (Tashiro et al. 2021, "CSDI: Conditional Score-based Diffusion
Models for Probabilistic Time Series Imputation").

The window is a grid of ``D`` series (features) by ``L`` time steps. Each cell carries two values,
the *given* value ``cond_mask * x`` and the noisy value ``(1 - cond_mask) * x_t`` of the cells to
generate, lifted to ``C`` channels. Residual blocks alternate

* a **time transformer**: self-attention over the ``L`` steps of each series,
* a **feature transformer**: self-attention over the ``D`` series at each step (skipped when ``D = 1``),

then add the projected *side information* and pass a gated activation ``sigmoid(a) * tanh(b)``; each
block returns ``(x + residual) / sqrt 2`` and a skip output, the skips are summed (divided by
``sqrt(n_blocks)``) and projected to one value per cell (the last layer starts at zero).

Side information (per cell): a sinusoidal embedding of the cell's timestamp (relative time in steps,
so irregular timestamps are used as they are), a learned embedding of the series index, the
``cond_mask``, and optional calendar features (time of day / day of week). The diffusion time ``t`` in
[0, 1] is embedded sinusoidally (scale 1000), passed through a 2-layer MLP and added in every block.

Shapes: ``x_t``, ``cond``, ``cond_mask`` ``(B, L, D)``; ``t`` ``(B,)``; ``times`` ``(B, L)``;
``calendar`` ``(B, L, F)`` or None; output ``(B, L, D)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from difflab.core.nn import SinusoidalTimeEmbedding


def _transformer(channels: int, heads: int) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(
        channels, heads, dim_feedforward=channels * 2, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    )


class CSDIBlock(nn.Module):
    """One residual block: diffusion-time bias, time attention, feature attention, side info, gate."""

    def __init__(self, channels: int, side_dim: int, emb_dim: int, heads: int) -> None:
        super().__init__()
        self.diff_proj = nn.Linear(emb_dim, channels)
        self.side_proj = nn.Conv1d(side_dim, 2 * channels, 1)
        self.mid_proj = nn.Conv1d(channels, 2 * channels, 1)
        self.out_proj = nn.Conv1d(channels, 2 * channels, 1)
        self.time_layer = _transformer(channels, heads)
        self.feature_layer = _transformer(channels, heads)

    def forward(self, x: Tensor, side: Tensor, emb: Tensor) -> tuple[Tensor, Tensor]:
        # x (B, C, D, L), side (B, S, D, L), emb (B, E)
        b, c, d, n = x.shape
        y = x + self.diff_proj(emb)[:, :, None, None]
        # attention over time: sequences of length L for every (batch, series)
        y = self.time_layer(y.permute(0, 2, 3, 1).reshape(b * d, n, c)).reshape(b, d, n, c).permute(0, 3, 1, 2)
        if d > 1:  # attention over series at every step
            y = self.feature_layer(y.permute(0, 3, 2, 1).reshape(b * n, d, c)).reshape(b, n, d, c).permute(0, 3, 2, 1)
        y = self.mid_proj(y.reshape(b, c, d * n)) + self.side_proj(side.reshape(b, -1, d * n))
        gate, filt = y.chunk(2, dim=1)
        y = self.out_proj(torch.sigmoid(gate) * torch.tanh(filt))
        residual, skip = y.chunk(2, dim=1)
        return (x + residual.reshape(b, c, d, n)) / math.sqrt(2.0), skip.reshape(b, c, d, n)


class CSDIDenoiser(nn.Module):
    """CSDI-style denoiser over a ``(L, D)`` window (see module docstring).

    Args:
        num_series: ``D``, the number of series (for the series embedding).
        channels: residual channels ``C`` (CSDI: 64).
        n_blocks: residual blocks (CSDI: 4).
        heads: attention heads.
        time_emb_dim: size of the timestamp embedding (CSDI: 128).
        feature_emb_dim: size of the series embedding (CSDI: 16).
        diffusion_emb_dim: size of the diffusion-time embedding (CSDI: 128).
        calendar_dim: number of calendar features in the side information (0: none).
    """

    def __init__(
        self,
        num_series: int = 1,
        channels: int = 64,
        n_blocks: int = 4,
        heads: int = 8,
        time_emb_dim: int = 128,
        feature_emb_dim: int = 16,
        diffusion_emb_dim: int = 128,
        calendar_dim: int = 4,
    ) -> None:
        super().__init__()
        if num_series < 1 or channels < 1 or n_blocks < 1:
            raise ValueError(
                "CSDIDenoiser: num_series, channels and n_blocks must be >= 1, "
                f"got {num_series}, {channels}, {n_blocks}"
            )
        if channels % heads:
            raise ValueError(f"CSDIDenoiser: channels ({channels}) must be divisible by heads ({heads})")
        self.num_series, self.calendar_dim = num_series, calendar_dim
        self.time_embed = SinusoidalTimeEmbedding(time_emb_dim, max_period=10000.0, scale=1.0)
        self.feature_embed = nn.Embedding(num_series, feature_emb_dim)
        self.diffusion_embed = nn.Sequential(
            SinusoidalTimeEmbedding(diffusion_emb_dim),
            nn.Linear(diffusion_emb_dim, diffusion_emb_dim),
            nn.SiLU(),
            nn.Linear(diffusion_emb_dim, diffusion_emb_dim),
            nn.SiLU(),
        )
        side_dim = time_emb_dim + feature_emb_dim + 1 + calendar_dim
        self.input_proj = nn.Conv1d(2, channels, 1)
        self.blocks = nn.ModuleList(CSDIBlock(channels, side_dim, diffusion_emb_dim, heads) for _ in range(n_blocks))
        self.output_proj1 = nn.Conv1d(channels, channels, 1)
        self.output_proj2 = nn.Conv1d(channels, 1, 1)
        nn.init.zeros_(self.output_proj2.weight)
        nn.init.zeros_(self.output_proj2.bias)

    def side_info(self, times: Tensor, cond_mask: Tensor, calendar: Tensor | None) -> Tensor:
        """``(B, S, D, L)`` side information."""
        b, n, d = cond_mask.shape
        te = self.time_embed(times.to(cond_mask.dtype)).to(cond_mask.dtype)  # (B, L, Et)
        parts = [te[:, None].expand(b, d, n, -1)]
        fe = self.feature_embed(torch.arange(d, device=cond_mask.device))  # (D, Ef)
        parts.append(fe[None, :, None].expand(b, d, n, -1))
        parts.append(cond_mask.transpose(1, 2)[..., None])
        if self.calendar_dim:
            if calendar is None:
                calendar = cond_mask.new_zeros(b, n, self.calendar_dim)
            parts.append(calendar[:, None].expand(b, d, n, -1).to(cond_mask.dtype))
        return torch.cat(parts, dim=-1).permute(0, 3, 1, 2)

    def forward(
        self, x_t: Tensor, t: Tensor, cond: Tensor, cond_mask: Tensor, times: Tensor, calendar: Tensor | None = None
    ) -> Tensor:
        b, n, d = x_t.shape
        if d != self.num_series:
            raise ValueError(f"CSDIDenoiser was built for {self.num_series} series, got input with {d}")
        total = torch.stack([cond_mask * cond, (1 - cond_mask) * x_t], dim=1)  # (B, 2, L, D)
        h = self.input_proj(total.transpose(2, 3).reshape(b, 2, d * n)).reshape(b, -1, d, n)
        h = torch.relu(h)
        side = self.side_info(times, cond_mask, calendar)
        emb = self.diffusion_embed(t.reshape(b).to(x_t.dtype))
        skips = 0
        for block in self.blocks:
            h, skip = block(h, side, emb)
            skips = skips + skip
        h = skips / math.sqrt(len(self.blocks))
        c = h.shape[1]
        out = self.output_proj2(torch.relu(self.output_proj1(h.reshape(b, c, d * n))))
        return out.reshape(b, d, n).transpose(1, 2)


__all__ = ["CSDIDenoiser", "CSDIBlock"]
