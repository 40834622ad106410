r"""A time-conditioned U-Net for image-to-image diffusion (DDPM's U-Net, Ho et al. 2020, scaled down).

Layout: a 3x3 stem, ``len(channel_mults)`` resolution levels of ``num_res_blocks`` residual blocks
(GroupNorm -> SiLU -> conv, the time embedding added as a FiLM scale / shift after the first conv,
then GroupNorm -> SiLU -> dropout -> conv, with a 1x1 skip when the width changes), stride-2
downsampling between levels, self-attention at the levels listed in ``attention_levels``, a middle
block (res, attention, res; ``mid_attention=False``: res, res, convolutions and GroupNorm only, so
its memory grows linearly with the tile size) and the mirrored decoder with skip connections. The
last conv is zero initialised, so an untrained network outputs 0.

The time ``t`` in [0, 1] is embedded with :class:`difflab.core.nn.SinusoidalTimeEmbedding` and an
MLP. Inputs whose height / width are not multiples of ``2^(levels - 1)`` are reflect-padded and the
output cropped back, so any image size works (tiles included).

Shapes: ``x`` ``(B, in_channels, H, W)``, ``t`` ``(B,)`` -> ``(B, out_channels, H, W)``.

Presets (:data:`UNET_PRESETS`): ``small`` (CPU; 32 channels, mults 1-2, 1 block per level,
0.7 M parameters) and ``large`` (GPU; 96 channels, mults 1-2-2-4, 2 blocks per level, attention
at the two lowest resolutions, 44 M parameters).
"""

from __future__ import annotations

import functools
import math

import torch.nn.functional as F
from torch import Tensor, nn

from difflab.core.nn import FiLM, SinusoidalTimeEmbedding
from difflab.core.nn.unet import UNetLevels, run_unet

UNET_PRESETS: dict[str, dict] = {
    "small": dict(channels=32, channel_mults=(1, 2), num_res_blocks=1, attention_levels=()),
    "large": dict(channels=96, channel_mults=(1, 2, 2, 4), num_res_blocks=2, attention_levels=(2, 3)),
}


def _norm(c: int) -> nn.GroupNorm:
    groups = math.gcd(c, 32) if c >= 8 else 1
    return nn.GroupNorm(groups, c)


def _downsample(c: int) -> list[nn.Module]:
    return [nn.Conv2d(c, c, 3, stride=2, padding=1)]


def _upsample(c: int) -> list[nn.Module]:
    return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)]


class ResBlock(nn.Module):
    """Residual block with FiLM time conditioning."""

    def __init__(self, c_in: int, c_out: int, t_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.film = FiLM(t_dim, c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.film(h, temb)
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return h + self.skip(x)


class Attention(nn.Module):
    """Single-head spatial self-attention with a residual connection."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm, self.qkv, self.out = _norm(c), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return x + self.out(o.transpose(1, 2).reshape(b, c, h, w))


class UNet(nn.Module):
    """Time-conditioned U-Net (see the module docstring).

    Args:
        in_channels: input channels (6 for ``[x_t, y]`` of RGB SR).
        out_channels: output channels (3).
        channels: width of the first level.
        channel_mults: width multiplier per level; the number of levels.
        num_res_blocks: residual blocks per level.
        attention_levels: level indices (0 = full resolution) with self-attention.
        dropout: dropout inside the residual blocks.
        time_scale: multiplier of ``t`` before the sinusoidal embedding (1000: DDPM's step range).
        mid_attention: self-attention in the middle block (its memory is quadratic in the pixels there).
    """

    def __init__(
        self,
        in_channels: int = 6,
        out_channels: int = 3,
        channels: int = 32,
        channel_mults: tuple[int, ...] = (1, 2, 2),
        num_res_blocks: int = 1,
        attention_levels: tuple[int, ...] = (),
        dropout: float = 0.0,
        time_scale: float = 1000.0,
        mid_attention: bool = True,
    ) -> None:
        super().__init__()
        if not channel_mults or channels < 1 or num_res_blocks < 1:
            raise ValueError(
                f"UNet: need channels >= 1, num_res_blocks >= 1 and a level, got {channels}, {num_res_blocks}, "
                f"{channel_mults}"
            )
        bad = [a for a in attention_levels if not 0 <= a < len(channel_mults)]
        if bad:
            raise ValueError(f"UNet: attention_levels {bad} outside 0..{len(channel_mults) - 1}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.levels = len(channel_mults)
        t_dim = 4 * channels
        self.time_embed = nn.Sequential(
            SinusoidalTimeEmbedding(channels, scale=time_scale),
            nn.Linear(channels, t_dim),
            nn.SiLU(),
            nn.Linear(t_dim, t_dim),
        )
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1)
        block = functools.partial(ResBlock, t_dim=t_dim, dropout=dropout)
        levels = UNetLevels(channels, channel_mults, num_res_blocks, block, Attention, attention_levels)
        self.down, c, skips = levels.encoder(_downsample)
        attention: nn.Module = Attention(c) if mid_attention else nn.Identity()
        self.mid = nn.ModuleList([ResBlock(c, c, t_dim, dropout), attention, ResBlock(c, c, t_dim, dropout)])
        self.up, c = levels.decoder(_upsample, c, skips)
        self.out_norm = _norm(c)
        self.out = nn.Conv2d(c, out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @classmethod
    def from_preset(cls, name: str, in_channels: int = 6, out_channels: int = 3, **overrides) -> UNet:
        """Build the ``small`` or ``large`` preset (:data:`UNET_PRESETS`)."""
        if name not in UNET_PRESETS:
            raise ValueError(f"unknown UNet preset {name!r}; expected one of {sorted(UNET_PRESETS)}")
        return cls(in_channels, out_channels, **{**UNET_PRESETS[name], **overrides})

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNet expects (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        h0, w0 = x.shape[-2:]
        mult = 2 ** (self.levels - 1)
        ph, pw = (-h0) % mult, (-w0) % mult
        if ph or pw:
            mode = "reflect" if h0 > ph and w0 > pw else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        t = t.to(x.dtype).reshape(-1).expand(x.shape[0]) if t.numel() == 1 else t.to(x.dtype).reshape(x.shape[0])
        temb = self.time_embed(t)
        h = run_unet(self.stem(x), self.down, self.mid, self.up, temb, ResBlock)
        out = self.out(F.silu(self.out_norm(h)))
        return out[..., :h0, :w0]


__all__ = ["UNet", "UNET_PRESETS", "ResBlock", "Attention"]
