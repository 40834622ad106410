r"""An NCSN++-style 2-D U-Net over complex spectrograms (real / imaginary channels).

The score network of SGMSE+ and StoRM is NCSN++ (Song et al. 2021, "Score-Based Generative
Modeling through Stochastic Differential Equations"): a U-Net of BigGAN-style residual blocks with
the time injected into every block, residual and skip sums rescaled by ``1/sqrt(2)``,
FIR-filtered resampling (kernel ``[1, 3, 3, 1]``), self-attention at one resolution and a
Gaussian Fourier embedding of ``log t`` (scale 16). This module writes that design compactly:

* ``conv_in`` -> levels of ``num_res_blocks`` :class:`ResBlock` (with :class:`SelfAttention` where
  the frequency size is in ``attention_resolutions``) and a blurred stride-2 downsampling ->
  middle (block, attention, block) -> mirrored levels taking the stored skips -> GroupNorm, SiLU,
  zero-initialised ``conv_out``.
* The input is zero-padded so that both axes divide ``2^(levels - 1)`` and the output is cropped
  back, so any number of STFT frames works.

Presets (:data:`PRESETS`): ``small`` trains on two CPU cores in minutes (≈0.1 M parameters);
``sgmse`` follows SGMSE+'s published configuration (channels 128, multipliers
(1, 1, 2, 2, 2, 2, 2), 2 blocks per level, attention at frequency size 16) for GPU training.

Shapes: ``x`` ``(B, in_channels, F, T)``, ``t`` ``(B,)`` -> ``(B, out_channels, F, T)``.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from difflab.core.nn import GaussianFourierEmbedding
from difflab.core.nn.unet import UNetLevels, run_unet

PRESETS: dict[str, dict] = {
    "small": dict(channels=16, channel_mults=(1, 2, 2, 2), num_res_blocks=1, attention_resolutions=()),
    "sgmse": dict(channels=128, channel_mults=(1, 1, 2, 2, 2, 2, 2), num_res_blocks=2, attention_resolutions=(16,)),
}


def _groups(c: int) -> int:
    for g in (32, 16, 8, 4, 2):
        if c % g == 0 and c // g >= 2:
            return g
    return 1


class Blur(nn.Module):
    """Depthwise FIR filter ``k k^T`` (``k = [1, 3, 3, 1]`` normalised), optionally with stride 2."""

    def __init__(self, channels: int, stride: int = 1, kernel: tuple[int, ...] = (1, 3, 3, 1)) -> None:
        super().__init__()
        k = torch.tensor(kernel, dtype=torch.float32)
        k2 = torch.outer(k, k)
        self.register_buffer("kernel", (k2 / k2.sum()).expand(channels, 1, *k2.shape).clone(), persistent=False)
        self.stride, self.channels, self.k = stride, channels, len(kernel)

    def forward(self, x: Tensor) -> Tensor:
        total = self.k - self.stride
        lo, hi = total // 2, total - total // 2
        x = F.pad(x, (lo, hi, lo, hi))
        return F.conv2d(x, self.kernel.to(x.dtype), stride=self.stride, groups=self.channels)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.blur = Blur(channels, stride=2)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.blur(x))


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.blur = Blur(channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.blur(F.interpolate(x, scale_factor=2.0, mode="nearest")))


class ResBlock(nn.Module):
    """BigGAN-style residual block: GN, SiLU, conv, + Dense(t), GN, SiLU, dropout, conv; sum / sqrt(2)."""

    def __init__(self, c_in: int, c_out: int, temb_dim: int | None, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb = nn.Linear(temb_dim, c_out) if temb_dim else None
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, temb: Tensor | None) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.temb is not None and temb is not None:
            h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return (self.skip(x) + h) / math.sqrt(2.0)


class SelfAttention(nn.Module):
    """Single-head self-attention over all time-frequency positions (residual, / sqrt(2))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return (x + self.out(a.transpose(1, 2).reshape(b, c, h, w))) / math.sqrt(2.0)


class NCSNpp(nn.Module):
    """NCSN++-style U-Net (see the module docstring).

    Args:
        in_channels: input channels (4 for SGMSE+ ``[x_t, y]``, 6 for StoRM ``[x_t, y, y_hat]``,
            2 for the predictive network).
        out_channels: output channels (2: real and imaginary part).
        channels: base width ``nf``.
        channel_mults: width multiplier per level (the number of levels).
        num_res_blocks: residual blocks per level.
        attention_resolutions: frequency sizes (``input_resolution / 2^level``) with self-attention.
        input_resolution: number of frequency bins the resolutions refer to (256 for n_fft 510).
        fourier_scale: std of the Gaussian Fourier frequencies of ``log t``.
        time_conditional: embed ``t`` (False for the predictive network, which then ignores ``t``).
        dropout: dropout inside the residual blocks.
    """

    def __init__(
        self,
        in_channels: int = 4,
        out_channels: int = 2,
        channels: int = 16,
        channel_mults: tuple[int, ...] | list[int] = (1, 2, 2, 2),
        num_res_blocks: int = 1,
        attention_resolutions: tuple[int, ...] | list[int] = (),
        input_resolution: int = 256,
        fourier_scale: float = 16.0,
        time_conditional: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if channels < 4 or not channel_mults or num_res_blocks < 1:
            raise ValueError(
                f"NCSNpp: need channels >= 4, at least one level and num_res_blocks >= 1, got {channels}, "
                f"{channel_mults}, {num_res_blocks}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.time_conditional = time_conditional
        self.num_levels = len(channel_mults)
        temb_dim = 4 * channels if time_conditional else None
        if time_conditional:
            self.time_embed = nn.Sequential(
                GaussianFourierEmbedding(channels, scale=fourier_scale, generator=torch.Generator().manual_seed(0)),
                nn.Linear(channels, temb_dim),
                nn.SiLU(),
                nn.Linear(temb_dim, temb_dim),
            )
        self.conv_in = nn.Conv2d(in_channels, channels, 3, padding=1)
        attention_levels = [lv for lv in range(self.num_levels) if input_resolution // 2**lv in attention_resolutions]
        block = functools.partial(ResBlock, temb_dim=temb_dim, dropout=dropout)
        levels = UNetLevels(channels, channel_mults, num_res_blocks, block, SelfAttention, attention_levels)
        self.down, c, skips = levels.encoder(lambda c: [Downsample(c)])
        self.mid = nn.ModuleList(
            [
                ResBlock(c, c, temb_dim, dropout),
                SelfAttention(c) if attention_resolutions else nn.Identity(),
                ResBlock(c, c, temb_dim, dropout),
            ]
        )
        self.up, c = levels.decoder(lambda c: [Upsample(c)], c, skips)
        self.norm_out = nn.GroupNorm(_groups(c), c)
        self.conv_out = nn.Conv2d(c, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> NCSNpp:
        """Build the ``small`` or ``sgmse`` preset (:data:`PRESETS`), with keyword overrides."""
        if name not in PRESETS:
            raise ValueError(f"NCSNpp: unknown preset {name!r}; expected one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def forward(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"NCSNpp expects {self.in_channels} input channels, got shape {tuple(x.shape)}")
        fq, fr = x.shape[-2:]
        m = 2 ** (self.num_levels - 1)
        pad_f, pad_t = (-fq) % m, (-fr) % m
        if pad_f or pad_t:
            x = F.pad(x, (0, pad_t, 0, pad_f))
        temb = None
        if self.time_conditional:
            if t is None:
                raise ValueError("NCSNpp(time_conditional=True) needs t")
            t = t.reshape(x.shape[0], -1)[:, 0] if t.ndim > 1 else t.expand(x.shape[0]) if t.ndim == 0 else t
            temb = self.time_embed(torch.log(t.clamp_min(1e-5)).to(x.dtype))
        h = run_unet(self.conv_in(x), self.down, self.mid, self.up, temb, ResBlock)
        out = self.conv_out(F.silu(self.norm_out(h)))
        return out[..., :fq, :fr]


__all__ = ["NCSNpp", "PRESETS"]
