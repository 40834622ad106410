r"""The skeleton of a DDPM-style U-Net (Ho et al. 2020; NCSN++, Song et al. 2021), without its blocks.

Both image-like networks of difflab (audio's NCSN++ on spectrograms, vision's U-Net on images) are
this skeleton with blocks of their own; the skeleton builds and runs the levels once:

* the encoder (:meth:`UNetLevels.encoder`): per level ``l`` with multiplier ``m_l``, ``num_res_blocks``
  entries ``[res_block(c, channels * m_l)]`` (plus ``attention(c)`` at the levels in
  ``attention_levels``), then, between levels, an entry of ``downsample(c)``'s modules;
* the decoder (:meth:`UNetLevels.decoder`): the mirror image, levels from the bottom up with
  ``num_res_blocks + 1`` residual entries each, whose input is the running features concatenated
  with the encoder output of the same position (popped from the skip widths), then
  ``upsample(c)``'s modules between levels;
* :func:`run_unet`: stem output -> encoder -> middle -> decoder, each entry's modules applied in
  order, a residual block (``isinstance(module, res_type)``) with the time embedding.

Each entry is an ``nn.ModuleList``, so the parameter names (``down.3.0.conv1.weight``) and the order
in which the modules are created (which decides a seeded initialisation) are the networks' own.

Shapes: features ``(B, C, H, W)`` with ``H`` and ``W`` multiples of ``2^(levels - 1)``; the time
embedding ``(B, D)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

Block = Callable[[int, int], nn.Module]
"""``res_block(c_in, c_out)``: a residual block called as ``block(h, temb)``."""


@dataclass(frozen=True)
class UNetLevels:
    """The levels of a U-Net: ``channels * m`` wide at each multiplier ``m`` of ``channel_mults``,
    ``num_res_blocks`` residual blocks ``res_block(c_in, c_out)`` per level (the decoder one more),
    ``attention(c)`` after each block of the levels in ``attention_levels`` (0: full resolution)."""

    channels: int
    channel_mults: Sequence[int]
    num_res_blocks: int
    res_block: Block
    attention: Callable[[int], nn.Module]
    attention_levels: Sequence[int] = ()

    def _entry(self, level: int, c_in: int, c_out: int) -> nn.ModuleList:
        entry = nn.ModuleList([self.res_block(c_in, c_out)])
        if level in self.attention_levels:
            entry.append(self.attention(c_out))
        return entry

    def encoder(self, downsample: Callable[[int], list[nn.Module]]) -> tuple[nn.ModuleList, int, list[int]]:
        """The encoder entries, the width at the bottom and the widths of the skips (the stem's first)."""
        down, c = nn.ModuleList(), self.channels
        skips = [c]
        for level, mult in enumerate(self.channel_mults):
            for _ in range(self.num_res_blocks):
                down.append(self._entry(level, c, self.channels * mult))
                c = self.channels * mult
                skips.append(c)
            if level < len(self.channel_mults) - 1:
                down.append(nn.ModuleList(downsample(c)))
                skips.append(c)
        return down, c, skips

    def decoder(
        self, upsample: Callable[[int], list[nn.Module]], c: int, skips: list[int]
    ) -> tuple[nn.ModuleList, int]:
        """The decoder entries from the bottom width ``c`` (``skips`` is consumed) and the output width."""
        up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(self.channel_mults))):
            for _ in range(self.num_res_blocks + 1):
                up.append(self._entry(level, c + skips.pop(), self.channels * mult))
                c = self.channels * mult
            if level > 0:
                up.append(nn.ModuleList(upsample(c)))
        return up, c


def run_unet(
    h: Tensor, down: nn.ModuleList, mid: nn.ModuleList, up: nn.ModuleList, temb: Tensor | None, res_type: type
) -> Tensor:
    """The features after encoder, middle and decoder, from the stem's output ``h``."""

    def run(modules: nn.ModuleList, h: Tensor) -> Tensor:
        for m in modules:
            h = m(h, temb) if isinstance(m, res_type) else m(h)
        return h

    skips = [h]
    for entry in down:
        h = run(entry, h)
        skips.append(h)
    h = run(mid, h)
    for entry in up:
        if isinstance(entry[0], res_type):
            h = torch.cat([h, skips.pop()], dim=1)
        h = run(entry, h)
    return h


__all__ = ["UNetLevels", "run_unet"]
