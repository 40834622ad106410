"""The generation backbone: a time- (and class-) conditioned point-set network in plain torch.

Each block mixes local and global structure: an EdgeConv on the kNN graph of the current noisy
coordinates (local), then a per-point MLP that sees the point's feature and the max-pooled shape
feature (global, PointNet style), modulated by the time / class embedding (FiLM). Runs on CPU; no
custom CUDA ops (the PVCNN of PSF / PVD needs compiled voxel ops).

Input ``x_t`` (B, N, 3), ``t`` (B,) in [0, 1], optional ``label`` (B,) long; output (B, N, 3).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from difflab.core.nn import FiLM, SinusoidalTimeEmbedding
from difflab.pointcloud.networks.graph import EdgeConv, knn

Preset = Literal["tiny", "small", "base"]
PRESETS: dict[str, tuple[int, int]] = {"tiny": (64, 3), "small": (128, 4), "base": (256, 6)}


class PointBlock(nn.Module):
    def __init__(self, width: int, cond_dim: int, k: int, local: bool) -> None:
        super().__init__()
        self.edge = EdgeConv(width, width, k) if local else None
        self.norm = nn.LayerNorm(width)
        self.film = FiLM(cond_dim, width, channel_axis=-1)
        self.mlp = nn.Sequential(nn.Linear(2 * width, 2 * width), nn.SiLU(), nn.Linear(2 * width, width))

    def forward(self, h: Tensor, idx: Tensor | None, cond: Tensor) -> Tensor:
        if self.edge is not None:
            h = h + self.edge(h, idx)
        z = self.film(self.norm(h), cond[:, None, :])
        g = z.amax(1, keepdim=True).expand_as(z)
        return h + self.mlp(torch.cat([z, g], -1))


class PointSetDenoiser(nn.Module):
    """Args:
    preset: ``tiny`` (width 64, 3 blocks), ``small`` (128, 4) or ``base`` (256, 6); ``width`` /
        ``depth`` override it.
    k: neighbours of the local EdgeConv in every block (0, the default: global PointNet-style blocks
        only, about 6x cheaper on CPU).
    num_classes: > 0 for class-conditional generation; label ``num_classes`` is the "no class" token
        (classifier-free guidance, or data without categories).
    """

    def __init__(
        self,
        preset: Preset = "small",
        width: int | None = None,
        depth: int | None = None,
        k: int = 0,
        num_classes: int = 0,
        time_scale: float = 1000.0,
    ) -> None:
        super().__init__()
        if preset not in PRESETS:
            raise ValueError(f"PointSetDenoiser: preset must be one of {list(PRESETS)}, got {preset!r}")
        w, d = PRESETS[preset]
        self.width, self.depth = width or w, depth or d
        self.k, self.num_classes = k, num_classes
        cond = 4 * self.width if self.width < 128 else 2 * self.width
        self.time = nn.Sequential(
            SinusoidalTimeEmbedding(self.width, scale=time_scale),
            nn.Linear(self.width, cond),
            nn.SiLU(),
            nn.Linear(cond, cond),
        )
        self.label = nn.Embedding(num_classes + 1, cond) if num_classes > 0 else None
        self.inp = nn.Linear(3, self.width)
        self.blocks = nn.ModuleList(PointBlock(self.width, cond, k, local=k > 0) for _ in range(self.depth))
        self.out = nn.Sequential(nn.LayerNorm(self.width), nn.Linear(self.width, 3))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: Tensor, t: Tensor, label: Tensor | None = None) -> Tensor:
        t = t.reshape(-1).expand(x.shape[0]) if t.numel() in (1, x.shape[0]) else t
        cond = self.time(t.to(x.dtype))
        if self.label is not None:
            if label is None:
                label = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
            cond = cond + self.label(label)
        idx = knn(x, self.k) if self.k > 0 else None
        h = self.inp(x)
        for blk in self.blocks:
            h = blk(h, idx, cond)
        return self.out(h)
